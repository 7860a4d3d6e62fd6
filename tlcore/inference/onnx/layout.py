"""An ONNX export folder (``RUN/export/onnx`` by default): its files, and reading them back.

``model.onnx``, ``labels.json`` (the class or tag of each logit), ``preprocessing.json`` (what a caller does to raw
inputs; its ``tlcore`` key says how TransferLab rebuilds it), ``parity.json`` (provenance and the parity check) and
``README.md`` (the run's model card with an Export section).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from tlcore.errors import DataError
from tlcore.inference.export_folder import ExportError

EXPORT_DIR = Path("export") / "onnx"
ONNX_FILE = "model.onnx"
BATCH_SIZE = 32

__all__ = ["BATCH_SIZE", "EXPORT_DIR", "ONNX_FILE", "ExportError", "default_export_dir", "export_command", "read_export",
           "read_json", "write_json"]


def default_export_dir(run: str | Path) -> Path:
    """Where ``export_onnx(run)`` writes: ``RUN/export/onnx``."""
    return Path(run) / EXPORT_DIR


def export_command(run: str | Path) -> str:
    return f"python -m tlcore export --run {run} --format onnx"


def read_export(folder: str | Path) -> Optional[dict]:
    """``parity.json`` of a finished export folder (what the model card's Export section renders), else None."""
    path = Path(folder) / "parity.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_json(path: Path, want: type = dict):
    """A JSON file of the export; DataError (delete and export again) when it is missing, unreadable or not a
    ``want``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise DataError(f"{path}: missing or unreadable; the ONNX export is incomplete — delete its folder and export "
                        "again") from None
    if not isinstance(data, want):
        raise DataError(f"{path} is not a JSON {want.__name__}; delete the export folder and export again")
    return data


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, default=float))
