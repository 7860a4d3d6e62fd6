"""Write the README's measured tables from the JSON the benchmarks saved (never by hand).

Each table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` in README.md and is rendered from the
JSON named in :data:`TABLES`; ``tests/test_readme_tables.py`` checks that every block is exactly what its JSON renders
to, so a number edited by hand, or a JSON re-measured without re-rendering, fails the tests.

Usage: .venv/bin/python benchmarks/readme_tables.py          # rewrite the blocks in README.md
       .venv/bin/python benchmarks/readme_tables.py --check  # exit 1 if a block differs from its JSON
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from shift_tables import render as render_shift  # noqa: E402  (after the sys.path line above)

README = ROOT / "README.md"


def _load(name: str) -> dict:
    return json.loads((ROOT / "docs" / name).read_text())


def _points(x: float) -> str:
    return f"{100 * x:+.1f}"


def render_demo_table(table: dict) -> str:
    """The demo × strategy table of ``docs/demo_table.json`` (``benchmarks/demo_table.py``)."""
    seeds = table["seeds"]
    lines = [f"Measured {table['measured']} ({table['machine']}), {table['epochs']} epochs, seeds "
             f"{', '.join(map(str, range(seeds)))}: mean ± standard deviation over the {seeds} seeds. \"before\" = the "
             "source-trained model (not trained again per seed); scratch = the same network from random init and "
             "classical = the model without pretrained weights named below, both trained on the same items, under the "
             "same validation rule and with the same seeds as the pretrained model (they come from the linear-probe "
             "run and do not depend on the strategy); gain = after − the strongest of those two, with a 95% interval "
             "from a hierarchical bootstrap over seeds and eval items (eval groups where the demo declares them). "
             "Time = the whole run with its 3 seeds.", "",
             "| demo | backbone | strategy | train / eval | before | after | scratch | classical | k-NN | gain over the "
             "strongest without pretraining (95% CI) | time |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    classical = {}
    for r in table["rows"]:
        b = r["baselines"]
        classical[r["demo"]] = b["classical"]["label"]
        gain = r["vs_strongest"]
        lo, hi = gain["ci95"]
        groups = f" ({r['eval_groups']} groups)" if r.get("eval_groups") else ""
        lines.append(f"| {r['demo']} | {r['backbone']} | {r['strategy']} | {r['train']} / {r['eval']}{groups} | "
                     f"{r['before']:.3f} | {r['after']['mean']:.3f} ± {r['after']['std']:.3f} | "
                     f"{b['scratch']['mean']:.3f} ± {b['scratch']['std']:.3f} | "
                     f"{b['classical']['mean']:.3f} ± {b['classical']['std']:.3f} | {b['knn']['mean']:.3f} | "
                     f"{_points(gain['difference'])} vs {r['strongest_no_pretraining']} ({_points(lo)} to {_points(hi)}) | "
                     f"{r['seconds']:.0f} s |")
    lines += ["", "Classical models: " + "; ".join(f"{demo}: {label}" for demo, label in classical.items()) + "."]
    if table.get("not_measured"):
        lines += ["", "Not measured in this round (time): " + ", ".join(table["not_measured"]) + "."]
    return "\n".join(lines)


def _types(block: dict) -> str:
    per = block.get("per_type") or {}
    return "/".join(f"{per[k]['f1']:.2f}".lstrip("0") for k in sorted(per))


def render_task_tables(table: dict) -> str:
    """Named-entity recognition and speech recognition (``docs/task_tables.json``, ``benchmarks/task_tables.py``)."""
    ner = [r for r in table["rows"] if r["task"] == "ner"]
    asr = [r for r in table["rows"] if r["task"] == "asr"]
    lines = []
    if ner:
        types = "/".join(sorted(ner[0]["after"]["per_type"]))
        lines += [f"#### Named-entity recognition (`{ner[0]['demo']}`, `{ner[0]['backbone']}`, with source, "
                  f"{ner[0]['epochs']} epochs; measured {table['measured']})", "",
                  f"Entity F1 (exact span match) on {ner[0]['eval']} target eval sentences after training on "
                  f"{ner[0]['train']}; per type {types} in brackets; the scratch twin trains the same network from "
                  "random init on the same sentences; Δ = after − before with its paired 95% interval (bootstrap over "
                  "sentences).", "",
                  "| strategy | before | after (95% CI) | Δ vs before (95% CI) | scratch | time |", "|---|---|---|---|---|---|"]
        for r in ner:
            b, a, d = r["before"], r["after"], r["vs_before"]
            lo, hi = a["entity_f1_ci95"]
            scratch = (r["baselines"].get("scratch") or {}).get("entity_f1")
            lines.append(f"| {r['strategy']} | {b['entity_f1']:.3f} ({_types(b)}) | {a['entity_f1']:.3f} ({_types(a)}) "
                         f"({lo:.2f}–{hi:.2f}) | {_points(d['difference'])} ({_points(d['ci95'][0])} to "
                         f"{_points(d['ci95'][1])}) | " + ("—" if scratch is None else f"{scratch:.3f}") +
                         f" | {r['seconds']:.0f} s |")
    if asr:
        b = asr[0]["before"]
        src = asr[0]["source"].get("before") or {}
        lines += ["", f"#### Speech recognition adapted to accents (`{asr[0]['demo']}`, `{asr[0]['backbone']}`, "
                      f"{asr[0]['epochs']} epochs; measured {table['measured']})", "",
                  f"Word error rate (lower is better) on {asr[0]['eval']} eval utterances from unseen target-accent "
                  f"speakers, after training on {asr[0]['train']}, and on the source accent (forgetting check). Before: "
                  f"target WER {b['wer']:.3f} ({b['wer_ci95'][0]:.2f}–{b['wer_ci95'][1]:.2f})"
                  + (f", source WER {src['wer']:.3f}" if "wer" in src else "") + ".", "",
                  "| strategy | target WER after (95% CI) | Δ vs before (95% CI) | target CER after | source WER after | "
                  "time |", "|---|---|---|---|---|---|"]
        for r in asr:
            a, d, s_after = r["after"], r["vs_before"], r["source"].get("after") or {}
            lines.append(f"| {r['strategy']} | {a['wer']:.3f} ({a['wer_ci95'][0]:.2f}–{a['wer_ci95'][1]:.2f}) | "
                         f"{_points(d['difference'])} ({_points(d['ci95'][0])} to {_points(d['ci95'][1])}) | "
                         f"{a['cer']:.3f} | " + (f"{s_after['wer']:.3f}" if "wer" in s_after else "—") +
                         f" | {r['seconds']:.0f} s |")
    return "\n".join(lines)


def render_shift_tables() -> str:
    """Diagnose, rank validation, adaptation, clustering and the curve (``benchmarks/shift_tables.py``): diagnose,
    adaptation, clustering and the curve from its runs on two demos each, the rank validation from its own re-run."""
    merged: dict = {}
    for name, parts in (("shift_tables_b.json", ("diagnose", "adapt", "cluster", "curve")),
                        ("shift_tables_a.json", ("diagnose", "adapt", "cluster", "curve")),
                        ("rank_tables.json", ("rank",))):
        for demo, measured in _load(name).items():
            merged.setdefault(demo, {}).update({k: v for k, v in measured.items() if k in parts})
    return re.sub(r"^### ", "#### ", render_shift(merged), flags=re.M)


#: The compatibility matrix's columns (``tests/compat_paths.PATHS``) as the README names them.
COMPAT_COLUMNS = {"linear_probe": "linear probe", "partial": "partial", "full": "full", "lora": "LoRA",
                  "scratch": "scratch twin", "adapt_backbone": "DANN `--adapt-backbone`", "ner": "NER",
                  "predict": "predict", "try_it": "Try it", "onnx": "ONNX export + parity"}


def render_compat_matrix(table: dict) -> str:
    """The family × path matrix of ``docs/compat_matrix.json`` (``benchmarks/compat_matrix.py``): ok, refused (with
    the reason, numbered below the table), fails (with the error), or — where the path is not the modality's."""
    paths = table["paths"]
    lines = [f"Checked {table['measured']} ({table['machine']}; transformers {table['transformers']}, torch "
             f"{table['torch']}) on tiny random-weight `save_pretrained` folders of each family, 2 classes × 6 items, "
             "one epoch: ok = the run finished and its check held (the top block trained by partial, LoRA merged "
             "into the weights, the same predictions from `predict` as in the report, ONNX within the parity "
             "tolerance...).", "",
             "| family | `model_type` | modality | " + " | ".join(COMPAT_COLUMNS.get(p, p) for p in paths) + " |",
             "|---|---|---|" + "---|" * len(paths)]
    notes: list[str] = []
    for row in table["families"]:
        shown = []
        for path in paths:
            cell = row["cells"][path]
            if cell["status"] in ("refused", "fails"):
                notes.append(f"{row['label']}, {COMPAT_COLUMNS.get(path, path)}: {cell['detail']}")
                shown.append(f"{cell['status']} ({len(notes)})")
            else:
                shown.append({"ok": "ok", "n/a": "—"}.get(cell["status"], cell["status"]))
        lines.append(f"| {row['label']} | `{row['model_type']}` | {row['modality']} | " + " | ".join(shown) + " |")
    if notes:
        lines += [""] + [f"- ({i}) {note}" for i, note in enumerate(notes, 1)]
    return "\n".join(lines)


def render_recipe(evidence: dict) -> str:
    """The recipe's settings: each value's mean development accuracy over the cells it applies to
    (``docs/recipe.json``, ``benchmarks/derive_defaults.py --recipe``; the cells and scores of
    :func:`tlcore.recipe.value_scores`, the rule's own)."""
    from tlcore.recipe import value_scores

    runs = evidence["runs"]
    lines = [f"Derived {evidence['derived']}: {len(runs)} development runs (10 epochs, seed 0, each strategy at its "
             "derived learning rate; the demos' target splits with 30% held out, never an eval split). Mean "
             "development accuracy of each value over the (demo, strategy) cells the setting applies to, with the "
             "cells it won / lost against the prior value; **bold** = chosen (best mean; a tie keeps the prior).", "",
             "| setting | cells | value: mean development accuracy (cells won / lost against the prior) |",
             "|---|---|---|"]
    for name, by_value in value_scores(runs).items():
        prior, shown = evidence["prior"][name], []
        for value in evidence["factors"][name]:
            scores = by_value.get(value)
            if not scores:
                continue
            mean = sum(a for a, _, _ in scores) / len(scores)
            won, lost = sum(a > b for a, b, _ in scores), sum(a < b for a, b, _ in scores)
            text = f"{value}: {mean:.3f}" + ("" if value == prior else f" ({won}/{lost})")
            shown.append(f"**{text}**" if value == evidence["chosen"][name] else text)
        cells = by_value[prior]
        strategies = sorted({cell[1] for _, _, cell in cells})
        lines.append(f"| `{name}` | {len(cells)} ({', '.join(strategies)}) | " + "; ".join(shown) + " |")
    return "\n".join(lines)


#: block name -> (the JSON files in docs/ it is written from, its renderer)
TABLES: dict[str, tuple[tuple[str, ...], Callable[[], str]]] = {
    "demo": (("demo_table.json",), lambda: render_demo_table(_load("demo_table.json"))),
    "tasks": (("task_tables.json",), lambda: render_task_tables(_load("task_tables.json"))),
    "shift": (("shift_tables_a.json", "shift_tables_b.json", "rank_tables.json"),
              render_shift_tables),
    "recipe": (("recipe.json",), lambda: render_recipe(_load("recipe.json"))),
    "compat": (("compat_matrix.json",), lambda: render_compat_matrix(_load("compat_matrix.json"))),
    "audit": (("audit_table.json",), lambda: __import__("audit_table").render(_load("audit_table.json"))),
    "label-next": (("label_next_table.json",),
                   lambda: __import__("label_next_table").render(_load("label_next_table.json"))),
    "calibration": (("calibration_table.json",),
                    lambda: __import__("calibration_table").render(_load("calibration_table.json"))),
}


def _block(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- table:{name} [^\n]*-->\n)(.*?)(\n<!-- /table:{name} -->)", re.S)


def readme_block(text: str, name: str) -> str:
    """The text of block ``name`` in the README ``text`` (ValueError when it is missing)."""
    m = _block(name).search(text)
    if m is None:
        raise ValueError(f"README.md has no <!-- table:{name} ... --> block")
    return m.group(2)


def rendered(name: str) -> str:
    """Block ``name`` as the README holds it: the table with a blank line on each side."""
    return "\n" + TABLES[name][1]() + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 when a block differs")
    a = ap.parse_args()
    text = README.read_text()
    stale = [name for name in TABLES if readme_block(text, name) != rendered(name)]
    if a.check:
        print("\n".join(f"README block {n} differs from {', '.join(TABLES[n][0])}" for n in stale) or "README tables match")
        return 1 if stale else 0
    for name in TABLES:
        text = _block(name).sub(lambda m, n=name: m.group(1) + rendered(n) + m.group(3), text)
    README.write_text(text)
    print(f"rewrote {len(TABLES)} blocks ({', '.join(stale) or 'none'} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
