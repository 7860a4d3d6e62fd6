"""Where an export of a finished run is written, and writing it all or nothing: shared by the ONNX export
(:mod:`tlcore.inference.onnx_export`) and the Hugging Face Hub export (:mod:`tlcore.inference.hub_export`).

Product rules: an export goes to ``RUN/export/<format>`` or to a folder outside the run (never into the run's own
``model/``, ``before/``...); an existing export (any non-empty folder) is never overwritten; a failed export leaves
nothing behind — it is written to a hidden temporary folder beside the destination that is renamed at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Optional

from tlcore.errors import ConfigError, TransferLabError


class ExportError(TransferLabError):
    """The export cannot be made, or it was made but does not do what it should (ONNX: parity with PyTorch failed;
    Hugging Face: the model card does not read back, or the push to the Hub failed)."""


#: What an existing folder holds, told by a file in it (for the refusal message): an ONNX export's parity.json, the
#: saved model of a Hugging Face export (or of a run folder).
_MARKERS = (("parity.json", "an ONNX export"), ("model/config.json", "a saved model (a Hugging Face export or a run)"))


def holds(folder: Path) -> str:
    """What the non-empty ``folder`` holds, in words (:data:`_MARKERS`), else "files"."""
    return next((what for marker, what in _MARKERS if (folder / marker).exists()), "files")


def check_location(run_dir: Path, dest: Path, default: Path) -> Path:
    """``dest``, when it is not the run folder nor inside its own files (anything under ``RUN/export/`` is allowed)."""
    run_abs, dest_abs = run_dir.resolve(), dest.resolve()
    if dest_abs == run_abs or (run_abs in dest_abs.parents and dest_abs.relative_to(run_abs).parts[0] != "export"):
        raise ConfigError(f"--out {dest} is inside the run's own files; export to {default} (the default) or to a "
                          "folder outside the run")
    return dest


def export_destination(run_dir: Path, out: Optional[str | Path], default: Path) -> Path:
    """The export folder (``out``, else ``default``), checked: new or empty, and not inside the run's own folders."""
    dest = check_location(run_dir, Path(out) if out else default, default)
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"--out {dest} is a file; give a folder for the export")
    if dest.is_dir() and any(dest.iterdir()):
        raise ConfigError(f"{dest} already holds {holds(dest)}; TransferLab never overwrites saved files — delete that "
                          f"folder to export again, or export elsewhere with --out NEW_FOLDER")
    return dest


@contextlib.contextmanager
def staged_folder(dest: Path) -> Iterator[Path]:
    """A temporary folder beside ``dest`` to write the export into; renamed to ``dest`` when the block succeeds,
    removed (with a ``RUN/export/`` parent it had to make) when it fails."""
    made_parent = not dest.parent.exists()   # RUN/export/ is removed again if the export fails
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp", dir=dest.parent))   # one per export, even in one process
    tmp.chmod(0o755)   # mkdtemp's 0700 would hide the export from everyone but its writer
    try:
        yield tmp
        try:
            os.replace(tmp, dest)   # onto a missing or empty folder only: never over another export
        except OSError:
            raise ConfigError(f"{dest} was filled while exporting (another export?); nothing was overwritten") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if made_parent and not dest.exists():
            with contextlib.suppress(OSError):
                dest.parent.rmdir()
