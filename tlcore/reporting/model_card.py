"""The run folder's README.md: one model card for every task — what was transferred, the before/after table
with 95% intervals, the baselines (and those skipped, with the reason), the per-class / per-type / per-group
detail, the warnings and how to use the model.

Given an export record (``export/onnx/parity.json``, see :mod:`tlcore.inference.onnx_export`) the card also has an
"Export" section. The run's own README.md is written once, when the run finishes, and is never rewritten: an
export writes the card with its Export section to ``export/onnx/README.md``, and the app can render a run's card
with ``model_card_markdown(report, export=read_export(...))``."""

from __future__ import annotations

from typing import Optional

#: Per task: title, the headline metrics (key, label, higher is better), and how to load the model.
TASKS = {
    "classify": {"title": "{modality} classifier", "unit": "examples",
                 "metrics": [("accuracy", "accuracy", True), ("macro_f1", "macro-F1", True)],
                 "use": ["from tlcore import load_run", "load_run('RUN_DIR').predict([...])"]},
    "ner": {"title": "named-entity recognition (token classification)", "unit": "sentences",
            "metrics": [("entity_f1", "entity F1", True), ("entity_precision", "precision", True),
                        ("entity_recall", "recall", True), ("token_accuracy", "token accuracy", True)],
            "use": ["from tlcore import load_run", "load_run('RUN_DIR').predict(['just saw priya at tesco in leeds'])"]},
    "asr": {"title": "speech recognition adapted to an accent", "unit": "clips",
            "metrics": [("wer", "WER", False), ("cer", "CER", False)],
            "use": ["from tlcore import load_run", "load_run('RUN_DIR').predict(['clip.wav'])",
                    "# model/ is a standard Whisper folder: WhisperForConditionalGeneration.from_pretrained('model')"]},
}


def _num(x: Optional[float], pct: bool) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def _table(report: dict, metrics: list[tuple[str, str, bool]], pct: bool) -> list[str]:
    key0 = metrics[0][0]
    head = "| model | " + " | ".join([metrics[0][1], "95% CI"] + [m[1] for m in metrics[1:]]) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 2)]
    rows = [("before", report["before"]), ("after", report["after"])]
    rows += [(f"baseline: {k}", v) for k, v in report.get("baselines", {}).items()]
    for name, m in rows:
        lo, hi = m.get(f"{key0}_ci95", [m.get(key0), m.get(key0)])
        cells = [_num(m.get(key0), pct), f"{_num(lo, pct)} – {_num(hi, pct)}"] + [_num(m.get(k), pct) for k, _, _ in metrics[1:]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _detail(report: dict) -> list[str]:
    task, before, after = report.get("task", "classify"), report["before"], report["after"]
    if task == "ner":
        scratch = report.get("baselines", {}).get("scratch") or {}
        lines = ["## Per entity type (F1)", "", "| type | support | before | after | scratch |", "|---|---|---|---|---|"]
        for kind in sorted(set(after.get("per_type", {})) | set(before.get("per_type", {}))):
            b, a, s = (m.get("per_type", {}).get(kind) for m in (before, after, scratch))
            support = (a or b or {}).get("support", 0)
            lines.append(f"| {kind} | {support} | " + " | ".join(_num((m or {}).get("f1"), False) for m in (b, a, s)) + " |")
        return lines
    if task == "asr":
        lines: list[str] = []
        if report.get("source_eval"):
            s = report["source_eval"]
            lines += ["## Source accent (forgetting check)", ""] + _table(s, TASKS["asr"]["metrics"], True) + [""]
        for column, table in after.get("per_group", {}).items():
            lines += [f"## WER per {column}", "", f"| {column} | before | after | clips |", "|---|---|---|---|"]
            for value, m in table.items():
                lines.append(f"| {value} | {_num(before['per_group'][column][value]['wer'], True)} "
                             f"| {_num(m['wer'], True)} | {m['n']} |")
            lines.append("")
        changed = report.get("flipped", {}).get("changed", [])[:5]
        if changed:
            lines += ["## Transcripts that changed most", "", "| reference | before | after |", "|---|---|---|"]
            lines += [f"| {c['reference']} | {c['before']} | {c['after']} |" for c in changed]
        return lines
    lines = ["## Per class (after)", "", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for c, m in after.get("per_class", {}).items():
        lines.append(f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    return lines


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


def model_card_markdown(report: dict, *, export: Optional[dict] = None) -> str:
    task = report.get("task", "classify")
    spec = TASKS.get(task, TASKS["classify"])
    d, unit = report.get("data", {}), spec["unit"]
    pct = task == "asr"
    train_line = f"- data: {d.get('train', 0)} training {unit}"
    if d.get("val"):
        train_line += f" ({d['val']} of them held out for early stopping)"
    train_line += f", {d.get('eval', 0)} evaluation {unit}"
    train_line += f", {d['source']} source {unit}" if d.get("source") else ""
    train_line += f", {d['unlabeled']} unlabeled {unit}" if d.get("unlabeled") else ""
    labels = d.get("entity_types") or d.get("classes")
    lines = [
        f"# TransferLab model: {spec['title'].format(modality=report.get('modality', ''))}", "",
        f"- setting: {report.get('setting', 'inductive')}; backbone: `{report.get('backbone')}`; "
        f"strategy: `{report.get('strategy')}`; seed {report.get('seed', 0)}",
    ]
    if labels:
        lines.append(f"- {'entity types' if task == 'ner' else 'classes'} ({len(labels)}): {', '.join(labels)}")
    lines += [train_line, f"- 'before' is the {report['before'].get('kind', 'model before transfer')}"]
    if report.get("scoring"):
        lines.append(f"- scoring: {report['scoring']}")
    better = "higher" if spec["metrics"][0][2] else "lower"
    headline = spec["metrics"][0][1]
    lines += ["", f"## {headline[:1].upper() + headline[1:]} on the held-out target eval split ({better} is better)", ""]
    lines += _table(report, spec["metrics"], pct)
    skipped = report.get("baselines_skipped") or {}
    if skipped:
        lines += ["", "Baselines not computed: " + "; ".join(f"{k} — {v}" for k, v in skipped.items()) + "."]
    lines += [""] + _diagnosis(report.get("diagnosis")) + _detail(report)
    notes = list(report.get("warnings", [])) + list(report.get("notes", []))
    if notes:
        lines += ["", "## Warnings and notes", ""] + [f"- {w}" for w in notes]
    if export:
        lines += [""] + _export(export)
    lines += ["", "## Use", "", "```python"] + spec["use"] + ["```", "",
              "Or: `python -m tlcore predict --run RUN_DIR --input PATH_OR_TEXT`.", ""]
    return "\n".join(lines)
