"""The multi-label sections of the model card: per label, support, F1 before / after / scratch with the after
interval, and the decision threshold the model uses."""

from __future__ import annotations

from tlcore.tasks.card_table import num


def detail(report: dict) -> list[str]:
    before, after = report["before"].get("per_class", {}), report["after"].get("per_class", {})
    scratch = (report.get("baselines", {}).get("scratch") or {}).get("per_class", {})
    thresholds = (report.get("thresholds") or {}).get("after", {})
    lines = ["## Per label (F1)", "", "| label | support | before | after | after 95% CI | scratch | threshold |",
             "|---|---|---|---|---|---|---|"]
    for label, a in after.items():
        lo, hi = a.get("f1_ci95", [None, None])
        lines.append(f"| {label} | {a.get('support', 0)} | {num((before.get(label) or {}).get('f1'), False)} | "
                     f"{num(a.get('f1'), False)} | {num(lo, False)} – {num(hi, False)} | "
                     f"{num((scratch.get(label) or {}).get('f1'), False)} | {num(thresholds.get(label), False)} |")
    validation = (report.get("training") or {}).get("validation")
    if validation:
        lines += ["", f"Validation: {validation}."]
    return lines
