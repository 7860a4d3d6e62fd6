"""The parts of an ONNX export (the public entry is :mod:`tlcore.inference.onnx_export`), one concern each:

* :mod:`~tlcore.inference.onnx.layout` — the export folder: where it goes, its files, reading them back;
* :mod:`~tlcore.inference.onnx.families` — the preprocessing that travels with the export (the backbone's config);
* :mod:`~tlcore.inference.onnx.graph` — tracing the PyTorch model into ``model.onnx``;
* :mod:`~tlcore.inference.onnx.runtime` — predicting with an export through onnxruntime;
* :mod:`~tlcore.inference.onnx.parity` — checking the export against the PyTorch model.
"""
