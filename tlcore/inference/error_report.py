"""A finished run's error analysis as JSON and as a few readable lines: what the CLI's ``errors`` command and the API's
:func:`tlcore.error_analysis` return (the Compare page draws the same analysis, :mod:`ui.errors`).

The analysis itself is the task's (``task_of(report).part("errors").error_analysis(report)``:
:mod:`tlcore.evaluation.errors` for classification and multi-label, :mod:`tlcore.tasks.ner.errors`,
:mod:`tlcore.tasks.asr.errors`); this module only reads the run folder and turns the analysis into plain data, keeping
the ``top`` largest entries of every ranked list (confusion cells, losses, entity errors, utterances, word edits) and
every count whole. Item indices are positions in the report's ``eval_predictions``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from tlcore.errors import DataError
from tlcore.evaluation.errors import ClassificationErrors, largest_increases, top_losses
from tlcore.tasks import task_of
from tlcore.tasks.asr.errors import TranscriptErrors, worst_utterances
from tlcore.tasks.ner.errors import KIND_TEXT, KINDS, EntityError, NerErrors

MODELS = ("after", "before")
SHOWN = 5           # entries per list in the summary lines (the JSON keeps ``top``)
FINETUNE_HINT = "give the folder a finished `python -m tlcore finetune --out RUN_DIR` wrote"


def read_run_report(run_dir: str | Path) -> dict:
    """The report.json of the finished fine-tuning run in ``run_dir``; DataError (one line) when the folder is missing,
    holds no finished run, holds a damaged report or an analysis's report (diagnose, audit, curve ...)."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise DataError(f"{run_dir}: no such run folder; {FINETUNE_HINT}")
    path = folder / "report.json"
    if not path.is_file():
        raise DataError(f"{run_dir} holds no finished run (no report.json): {FINETUNE_HINT}, or wait for the run to "
                        "finish")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} cannot be read ({type(exc).__name__}: truncated or not JSON): the run folder is "
                        "damaged") from None
    if not isinstance(report, dict):
        raise DataError(f"{path} is not a run report (a JSON object): the run folder is damaged")
    if report.get("kind"):
        raise DataError(f"{run_dir} holds an analysis report ({report['kind']}), not a fine-tuning run: an error "
                        f"analysis needs the eval predictions of a trained model; {FINETUNE_HINT}")
    return report


def _ref(a: Any, i: int) -> dict:
    """One eval item of a classification analysis: its position, name and path / text."""
    return {"index": i, "name": a.names[i], "item": a.items[i]}


def _item_row(a: ClassificationErrors, i: int) -> dict:
    loss = a.loss or {}
    return {**_ref(a, i), "truth": a.truth[i], **{f"predicted_{m}": a.predicted[m][i] for m in MODELS},
            **{f"loss_{m}": (loss.get(m) or [None] * len(a.truth))[i] for m in MODELS}}


def _shown(row: dict, width: int = 40) -> str:
    """An item in a summary line: its name, and its text when the item is not the file the name names."""
    item = str(row["item"])
    if not item or item.replace("\\", "/").endswith(str(row["name"])):
        return str(row["name"])
    return f"{row['name']} “{item if len(item) <= width else item[:width - 1] + '…'}”"


def _classification(a: ClassificationErrors, top: Optional[int]) -> tuple[dict, list[str]]:
    # the loss rankings again, with ``top`` entries (the analysis ranks a fixed number for the page)
    k = top or len(a.truth)
    after, before = (a.loss or {}).get("after"), (a.loss or {}).get("before")
    highest = top_losses(after, k) if after else []
    rose = largest_increases(before, after, k) if after and before else []
    models = {}
    for m in MODELS:
        wrong = [c for c in a.cells[m] if c.error]
        models[m] = {"errors": sum(c.count for c in wrong), "error_cells": len(wrong),
                     "largest_cells": [{"true": c.true, "predicted": c.predicted, "count": c.count,
                                        "items": [_ref(a, i) for i in c.items[:top]]} for c in wrong[:top]],
                     "per_class": [{"class": e.name, "missed": len(e.missed), "spurious": len(e.spurious)}
                                   for e in a.per_class[m]]}
    data = {"multi_label": a.multi_label, "classes": a.classes, "eval_items": len(a.truth), "models": models,
            "cell_meaning": ("a label missed (in the truth, not predicted) or spurious (predicted, not in the truth)"
                             if a.multi_label else "true class -> predicted class"),
            "loss_definition": a.loss_definition, "loss_note": a.loss_note,
            "top_losses": [_item_row(a, i) for i in highest], "loss_rose": [_item_row(a, i) for i in rose],
            "rose_note": a.rose_note}
    lines = [f"{len(a.truth)} eval items, {len(a.classes)} {'labels' if a.multi_label else 'classes'}"]
    for m in MODELS:
        b = models[m]
        if a.multi_label:
            head = f"{m}: {b['errors']} label errors"
            cells = "; ".join(f"{c['true']} {c['predicted']} ({c['count']})" for c in b["largest_cells"][:SHOWN])
        else:
            head = f"{m}: {b['errors']} of {len(a.truth)} items wrong, in {b['error_cells']} confusion cells"
            cells = "; ".join(f"{c['true']} → {c['predicted']} ({c['count']})" for c in b["largest_cells"][:SHOWN])
        lines.append(head + (f"; largest: {cells}" if cells else ""))
    if highest:
        lines.append("highest loss after transfer:")
        lines += [f"  {_shown(r)}: true {r['truth']}, predicted {r['predicted_after']}, loss {r['loss_after']:.3g}"
                  for r in data["top_losses"][:SHOWN]]
        lines.append("loss rose most (before → after):" + ("" if rose else f" {a.rose_note}"))
        lines += [f"  {_shown(r)}: {r['loss_before']:.3g} → {r['loss_after']:.3g}" for r in data["loss_rose"][:SHOWN]]
    else:
        lines.append(a.loss_note)
    return data, lines


def _span(tokens: Sequence[str], span: Optional[Sequence]) -> Optional[dict]:
    if span is None:
        return None
    kind, start, end = span
    return {"type": kind, "start": int(start), "end": int(end), "text": " ".join(tokens[start:end])}


def _entity_error(a: NerErrors, e: EntityError) -> dict:
    tokens = a.tokens[e.sentence]
    return {"sentence": e.sentence, "kind": e.kind, "gold": _span(tokens, e.gold),
            "predicted": _span(tokens, e.predicted), "text": " ".join(tokens)}


def _ner(a: NerErrors, top: Optional[int]) -> tuple[dict, list[str]]:
    data = {"sentences": len(a.gold), "kinds": dict(KIND_TEXT), "counts": a.counts,
            "errors": {m: [_entity_error(a, e) for e in a.errors[m][:top]] for m in MODELS},
            "error_totals": {m: len(a.errors[m]) for m in MODELS}}
    lines = [f"{len(a.gold)} eval sentences"]
    for m in MODELS:
        counts = ", ".join(f"{a.counts[m][k]} {k.replace('_', ' ')}" for k in KINDS)
        lines.append(f"{m}: {len(a.errors[m])} entity errors ({counts})")
    for e in data["errors"]["after"][:SHOWN]:
        gold = f"gold {e['gold']['type']} “{e['gold']['text']}”" if e["gold"] else "no gold entity"
        pred = f"predicted {e['predicted']['type']} “{e['predicted']['text']}”" if e["predicted"] else "nothing predicted"
        lines.append(f"  after, {e['kind'].replace('_', ' ')}: {gold} · {pred} in “{e['text']}”")
    return data, lines


def _asr(a: TranscriptErrors, top: Optional[int]) -> tuple[dict, list[str]]:
    def rows(counter: Any, keys: tuple[str, ...]) -> list[dict]:
        ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        return [{**dict(zip(keys, k if isinstance(k, tuple) else (k,))), "count": int(c)} for k, c in ranked]

    data = {"utterances": len(a.references),
            "worst": {m: [{"index": i, "name": a.names[i], "reference": a.references[i],
                           "transcript": a.transcripts[m][i], "wer": a.wer[m][i]}
                          for i in worst_utterances(a.references, a.transcripts[m], top or len(a.references))]
                      for m in MODELS},
            "substitutions": {m: rows(a.words[m].substitutions, ("reference", "recognised_as")) for m in MODELS},
            "deletions": {m: rows(a.words[m].deletions, ("reference",)) for m in MODELS},
            "insertions": {m: rows(a.words[m].insertions, ("recognised_as",)) for m in MODELS}}
    lines = [f"{len(a.references)} eval utterances"]
    for m in MODELS:
        worst = "; ".join(f"{w['name']} (WER {w['wer']:.2f}: “{w['transcript']}” for “{w['reference']}”)"
                          for w in data["worst"][m][:SHOWN])
        subs = ", ".join(f"{s['reference']} → {s['recognised_as']} ×{s['count']}"
                         for s in data["substitutions"][m][:SHOWN])
        lines.append(f"{m}: worst utterances: {worst or 'none with errors'}")
        lines.append(f"{m}: most frequent substitutions: {subs or 'none'}")
    return data, lines


#: How each task's error analysis (by its type) becomes JSON and lines: one entry per analysis type, as the Compare
#: page's ``ui.errors.VIEWS``.
DIGESTS: dict[type, Callable[[Any, Optional[int]], tuple[dict, list[str]]]] = {
    ClassificationErrors: _classification, NerErrors: _ner, TranscriptErrors: _asr}


def error_report(report: dict, *, top: Optional[int]) -> tuple[dict, list[str]]:
    """(JSON-ready analysis, summary lines) of a finished run's ``report``; ``top`` entries per ranked list (None:
    every entry).
    DataError (one line) when the report holds no per-item predictions (a run saved by an older version)."""
    spec = task_of(report)
    analysis = spec.part("errors").error_analysis(report)
    data, lines = DIGESTS[type(analysis)](analysis, top)
    return {"task": spec.name, "top": top, **data}, lines
