"""The README's compatibility matrix ("bring any model"), run with today's code.

Every model family of ``tests/tiny_hf.py`` (a tiny random-weight ``save_pretrained`` folder, what a hub id resolves to)
through every path of ``tests/compat_paths.py`` — the same checks ``tests/test_compat_matrix.py`` asserts. Writes
``docs/compat_matrix.json``; ``benchmarks/readme_tables.py`` renders it into the README's ``table:compat`` block.

Usage: .venv/bin/python benchmarks/compat_matrix.py [--families bert,vit,...]   (about 2-3 minutes on 2 busy cores)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

OUT = ROOT / "docs" / "compat_matrix.json"


def main() -> int:
    from compat_paths import PATHS, check_family
    from tiny_hf import FAMILIES, build_family

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated family names (default: all)")
    names = [n for n in ap.parse_args().families.split(",") if n]
    unknown = sorted(set(names) - set(FAMILIES))
    if unknown:
        ap.error(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")

    import torch
    import transformers

    torch.set_num_threads(1)
    rows, t0 = [], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRANSFERLAB_HOME"] = str(Path(tmp) / "home")      # no cache or run of the user's is touched
        for name in names:
            family = FAMILIES[name]
            folder = build_family(name, Path(tmp) / "models" / name)
            model_type = json.loads((folder / "config.json").read_text())["model_type"]
            cells = check_family(family, folder, Path(tmp) / "work" / name, log=lambda line: print(line, flush=True))
            rows.append({"family": name, "label": family.label, "modality": family.modality, "model_type": model_type,
                         "cells": {path: cell.to_dict() for path, cell in cells.items()}})
    table = {"measured": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores, CPU",
             "transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
             "seconds": round(time.time() - t0), "paths": list(PATHS), "families": rows}
    OUT.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n")
    bad = [f"{r['family']} {p}" for r in rows for p, c in r["cells"].items() if c["status"] == "fails"]
    print(f"wrote {OUT.relative_to(ROOT)} ({len(rows)} families, {table['seconds']} s); fails: {', '.join(bad) or 'none'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
