"""Streamlit-only helpers shared by the pages (the engine, ``tlcore``, never imports these)."""
