"""The classification sections of the model card: precision, recall and F1 per class of the model after transfer."""

from __future__ import annotations


def detail(report: dict) -> list[str]:
    lines = ["## Per class (after)", "", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for c, m in report["after"].get("per_class", {}).items():
        lines.append(f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    return lines
