"""The run folder's README.md: a model card with the before/after table."""

from __future__ import annotations

from pathlib import Path


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _row(name: str, m: dict) -> str:
    lo, hi = m.get("accuracy_ci95", [m["accuracy"], m["accuracy"]])
    return f"| {name} | {_pct(m['accuracy'])} | {_pct(lo)} – {_pct(hi)} | {m.get('macro_f1', 0):.3f} |"


def model_card_markdown(report: dict) -> str:
    d = report["data"]
    lines = [
        f"# TransferLab model: {report['modality']} classifier",
        "",
        f"- backbone: `{report['backbone']}`; strategy: `{report['strategy']}`; seed {report['seed']}",
        f"- classes ({len(d['classes'])}): {', '.join(d['classes'])}",
        f"- data: {d['train']} training and {d['eval']} evaluation examples"
        + (f", {d['source']} source examples" if d.get("source") else ""),
        f"- 'before' is the {report['before'].get('kind', 'model before transfer')}",
        "",
        "## Accuracy on the held-out target eval split",
        "",
        "| model | accuracy | 95% CI | macro-F1 |",
        "|---|---|---|---|",
        _row("before", report["before"]),
        _row("after", report["after"]),
    ]
    for name, m in report.get("baselines", {}).items():
        lines.append(_row(f"baseline: {name}", m))
    lines += ["", "## Per class (after)", "", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for c, m in report["after"]["per_class"].items():
        lines.append(f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    if report.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in report["warnings"]]
    lines += ["", "## Use", "", "```python", "from tlcore.models.transfer_model import TransferModel",
              "model = TransferModel.from_pretrained('model')", "model.predict([...])", "```", "",
              "Or: `python -m tlcore predict --run RUN_DIR --input PATH`.", ""]
    return "\n".join(lines)


def write_model_card(path: Path, report: dict) -> None:
    path.write_text(model_card_markdown(report))
