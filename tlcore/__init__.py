"""TransferLab engine: transfer learning for image, text and speech on small data sets.

The engine never imports Streamlit; it is usable from notebooks, the CLI (``python -m tlcore``) and the app.
"""

__version__ = "0.1.0"
