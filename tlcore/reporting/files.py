"""Files of a run folder written so a reader never sees half of one: to a temporary name, then renamed."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_text(path: Path, text: str) -> None:
    """``text`` at ``path``, written atomically (temporary name in the same folder, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: object) -> None:
    """``data`` as indented JSON at ``path``, written atomically (temporary name, then rename)."""
    write_text(path, json.dumps(data, indent=2, default=float))
