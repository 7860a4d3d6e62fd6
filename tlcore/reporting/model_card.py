"""The run folder's README.md: one model card for every task — what was transferred, the before/after table
with 95% intervals, the baselines (and those skipped, with the reason), the task's own detail (its ``card`` module:
per class, per entity type, per group...), the warnings and how to use the model. What differs between tasks (title,
units, metrics, labels, usage) comes from the task's spec (:func:`tlcore.tasks.task_of`).

Given an export record (``export/onnx/parity.json``, see :mod:`tlcore.inference.onnx_export`) the card also has an
"Export" section. The run's own README.md is written once, when the run finishes, and is never rewritten: an
export writes the card with its Export section to ``export/onnx/README.md``, and the app can render a run's card
with ``model_card_markdown(report, export=read_export(...))``."""

from __future__ import annotations

from typing import Optional

from tlcore.evaluation.policy import baseline_label, strongest_no_pretraining
from tlcore.tasks import task_of
from tlcore.tasks.card_table import card_metrics, metric_table


def _diagnosis(summary: Optional[dict]) -> list[str]:
    if not summary:
        return []
    lines = ["## Domain mismatch (diagnosed before training)", "", f"- verdict: {summary.get('verdict', '–')}"]
    for row in summary.get("top_drift", [])[:5]:
        lines.append(f"- drifting property: {row}")
    return lines + [""]


def _export(export: Optional[dict]) -> list[str]:
    if not export:
        return []
    p = export.get("parity") or {}
    inputs = ", ".join(f"`{i['name']}` {i['dtype']} {i['shape']}" for i in export.get("inputs", []))
    outputs = ", ".join(f"`{o['name']}` {o['shape']}" for o in export.get("outputs", []))
    folder = export.get("folder", "export/onnx")
    unit = f"real tokens of {p.get('items')} eval sentences" if p.get("unit") == "tokens" else "eval items"
    capped = f" (the first {p.get('items')} of {p.get('items_available')})" if p.get("items_available", 0) > p.get("items", 0) else ""
    lines = ["## Export (ONNX)", "",
             f"- `{folder}/{export.get('file', 'model.onnx')}`: the model after transfer, exported with "
             f"{export.get('exporter', 'torch.onnx.export')} (opset {export.get('opset')}, onnxruntime "
             f"{export.get('onnxruntime', '?')}); inputs {inputs}; output {outputs}.",
             "- `labels.json`: the order of the logits; `preprocessing.json`: what to do to raw inputs first.",
             f"- parity with PyTorch on {p.get('compared', 0)} {unit}{capped}: max |Δ logit| "
             f"{p.get('max_abs_diff', float('nan')):.2e} (tolerance {p.get('tolerance', float('nan')):.1e} = "
             f"{p.get('rel_tolerance', 0):g} × max(1, largest |logit| {p.get('logit_scale', float('nan')):.2f})), argmax "
             f"agreement {100 * p.get('argmax_agreement', 0):.1f}% — {'passed' if p.get('passed') else 'FAILED'}.",
             f"- inputs compared: {p.get('inputs', 'the run’s eval items')}.",
             "- predict with it: `python -m tlcore predict --run RUN_DIR --input PATH_OR_TEXT --onnx`."]
    return lines


def _no_pretraining_line(report: dict, spec) -> list[str]:
    """The gain over the strongest baseline without pretrained weights, named (empty when the run has none)."""
    m = spec.metric
    best = strongest_no_pretraining(report, m.key, higher_is_better=m.higher_is_better)
    comp = (report.get("comparisons") or {}).get(best or "")
    if best is None or not comp:
        return []
    lo, hi = comp["ci95"]
    verdict = ("beyond noise" if (lo > 0 if m.higher_is_better else hi < 0) else
               "the baseline is better beyond noise" if (hi < 0 if m.higher_is_better else lo > 0) else "within noise")
    return ["", f"Against the strongest baseline without pretrained weights ({baseline_label(report, best)}): "
                f"{100 * comp['difference']:+.1f} points of {m.card_label or m.label} (95% CI {100 * lo:+.1f} to "
                f"{100 * hi:+.1f}), {verdict}."]


def model_card_markdown(report: dict, *, export: Optional[dict] = None) -> str:
    spec = task_of(report)
    d, unit = report.get("data", {}), spec.card_unit
    metrics = card_metrics(spec)
    train_line = f"- data: {d.get('train', 0)} training {unit}"
    if d.get("val"):
        train_line += f" ({d['val']} of them held out as the validation split, never scored as eval)"
    train_line += f", {d.get('eval', 0)} evaluation {unit}"
    train_line += f", {d['source']} source {unit}" if d.get("source") else ""
    train_line += f", {d['unlabeled']} unlabeled {unit}" if d.get("unlabeled") else ""
    labels = d.get(spec.labels_key) if spec.labels_key else None
    lines = [
        f"# TransferLab model: {spec.card_title.format(modality=report.get('modality', ''))}", "",
        f"- setting: {report.get('setting', 'inductive')}; backbone: `{report.get('backbone')}`; "
        f"strategy: `{report.get('strategy')}`; seed {report.get('seed', 0)}",
    ]
    if labels:
        lines.append(f"- {spec.label_noun} ({len(labels)}): {', '.join(labels)}")
    lines += [train_line, f"- 'before' is the {report['before'].get('kind', 'model before transfer')}"]
    if report.get("scoring"):
        lines.append(f"- scoring: {report['scoring']}")
    better = "higher" if metrics[0][2] else "lower"
    headline = metrics[0][1]
    lines += ["", f"## {headline[:1].upper() + headline[1:]} on the held-out target eval split ({better} is better)", ""]
    lines += metric_table(report, metrics, spec.card_percent)
    lines += _no_pretraining_line(report, spec)
    skipped = report.get("baselines_skipped") or {}
    if skipped:
        lines += ["", "Baselines not computed: " + "; ".join(f"{k} — {v}" for k, v in skipped.items()) + "."]
    lines += [""] + _diagnosis(report.get("diagnosis")) + spec.part("card").detail(report)
    notes = list(report.get("warnings", [])) + list(report.get("notes", []))
    if notes:
        lines += ["", "## Warnings and notes", ""] + [f"- {w}" for w in notes]
    if export:
        lines += [""] + _export(export)
    lines += ["", "## Use", "", "```python"] + list(spec.use) + ["```", "",
              "Or: `python -m tlcore predict --run RUN_DIR --input PATH_OR_TEXT`.", ""]
    return "\n".join(lines)
