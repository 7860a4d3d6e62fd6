"""The measured tables of docs/benchmarks.md: each sits between ``<!-- table:NAME (written by ...) -->`` and
``<!-- /table:NAME -->`` and is rewritten from its JSON by the benchmark that measured it, never by hand."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def _block(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- table:{re.escape(name)} [^\n]*-->\n)(.*?)(\n<!-- /table:{re.escape(name)} -->)", re.S)


def write_block(name: str, body: str, *, script: str, source: str, section: str, doc: Path = DOC) -> None:
    """Put ``body`` into block ``name`` of ``doc``; a missing block is appended under a ``section`` heading that
    says how to re-measure it (``script``), its header naming the JSON it comes from (``source``)."""
    text, inner = doc.read_text(), "\n" + body + "\n"
    pattern = _block(name)
    if pattern.search(text):
        text = pattern.sub(lambda m: m.group(1) + inner + m.group(3), text)
    else:
        header = f"<!-- table:{name} (written by {script} from {source}: do not edit by hand) -->"
        text = (text.rstrip("\n") + f"\n\n## {section}\n\n`PYTHONPATH=. .venv/bin/python {script}`.\n\n"
                f"{header}\n{inner}\n<!-- /table:{name} -->\n")
    doc.write_text(text)


def block_matches(name: str, body: str, doc: Path = DOC) -> bool:
    """True when block ``name`` of ``doc`` holds exactly ``body``."""
    m = _block(name).search(doc.read_text())
    return m is not None and m.group(2) == "\n" + body + "\n"
