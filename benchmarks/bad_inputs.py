"""Reliability: the bad-input corpus (tests/corpus) run once, with the figures table of docs/reliability.md.

    .venv/bin/python benchmarks/bad_inputs.py [--markdown] [--write] [-k SUBSTRING]

``--write`` puts the measured figures into docs/reliability.md: the corpus line of its figures table and the
corpus table (every case, as ``--markdown`` prints it).

Each case builds its hostile input in a fresh folder and runs it through the CLI (in-process), the Python API or
the app's upload functions; the outcome is a clear one-line error, a handled notice, ok, a traceback or a hang,
plus whether a protected run folder changed or a secret outside the data set showed up in the output.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="also print every case as a markdown table row")
    ap.add_argument("--write", action="store_true", help="write the figures into docs/reliability.md (whole corpus only)")
    ap.add_argument("-k", default="", help="only the kinds containing this text")
    args = ap.parse_args(argv)
    if args.write and args.k:
        ap.error("--write puts the whole corpus's figures into docs/reliability.md: drop -k, or use --markdown")
    from corpus import all_cases, expected, run_case

    cases = [c for c in all_cases() if args.k in c.kind]
    rows = []
    for i, case in enumerate(cases):
        home = Path(tempfile.mkdtemp(prefix="tl-corpus-"))
        os.environ["TRANSFERLAB_HOME"] = str(home / "home")
        out = run_case(case, home / "case")
        rows.append((case, out, expected(case, out)))
        print(f"{i + 1:3d}/{len(cases)} {case.group:11s} {case.kind:45s} {out.result:9s} "
              f"{'as expected' if rows[-1][2] else 'NOT AS EXPECTED'}", flush=True)
    by = collections.Counter(o.result for _, o, _ in rows)
    groups = collections.Counter(c.group for c, _, _ in rows)
    leaked, damaged = sum(bool(o.leaked) for _, o, _ in rows), sum(bool(o.damaged) for _, o, _ in rows)
    unexpected = sum(not ok for _, _, ok in rows)
    print(f"\n{len(rows)} kinds ({', '.join(f'{g} {n}' for g, n in sorted(groups.items()))}): "
          f"{by['error']} clear errors, {by['notice']} handled with a notice, {by['ok']} handled (valid input), "
          f"{by['traceback']} tracebacks, {by['hang']} hangs; "
          f"{leaked} reads outside the data set, {damaged} run folders damaged, {unexpected} not as expected")
    table = [f"| {c.group} | {c.kind} | {o.result} | {o.message.replace('|', '/')[:160]} |" for c, o, _ in rows]
    if args.markdown:
        print("\n| group | input | outcome | message |\n|---|---|---|---|")
        print("\n".join(table))
    if args.write:
        line = (f"| bad-input corpus: {len(rows)} kinds over the CLI, the API and the app's upload path (measured "
                f"{datetime.date.today()}: {', '.join(f'{g} {n}' for g, n in sorted(groups.items()))}) | "
                "`benchmarks/bad_inputs.py`, `tests/test_bad_input_corpus.py` | "
                f"{by['error']} clear one-line errors (exit 2), {by['notice']} handled with a notice (also in the report's "
                f"warnings), {by['ok']} valid-but-odd inputs handled correctly; **{by['traceback']} tracebacks, "
                f"{by['hang']} hangs, {unexpected} not as expected, {leaked} files read outside a data set, "
                f"{damaged} run folders damaged** |")
        write_figures(ROOT / "docs" / "reliability.md", line, table)
    return 0 if not unexpected else 1


def write_figures(path: Path, corpus_line: str, table: list[str]) -> None:
    """Replace the corpus line of the figures table and the rows of the corpus table in ``path``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    lines = [corpus_line if line.startswith("| bad-input corpus:") else line for line in lines]
    head = next(i for i, line in enumerate(lines) if line.startswith("| group | input | outcome |"))
    end = head + 2
    while end < len(lines) and lines[end].startswith("| "):
        end += 1
    lines[head + 2:end] = table
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
