"""The NER sections of the model card: entity F1 per type, before, after and for the scratch baseline."""

from __future__ import annotations

from tlcore.tasks.card_table import num


def detail(report: dict) -> list[str]:
    before, after = report["before"], report["after"]
    scratch = report.get("baselines", {}).get("scratch") or {}
    lines = ["## Per entity type (F1)", "", "| type | support | before | after | scratch |", "|---|---|---|---|---|"]
    for kind in sorted(set(after.get("per_type", {})) | set(before.get("per_type", {}))):
        b, a, s = (m.get("per_type", {}).get(kind) for m in (before, after, scratch))
        support = (a or b or {}).get("support", 0)
        lines.append(f"| {kind} | {support} | " + " | ".join(num((m or {}).get("f1"), False) for m in (b, a, s)) + " |")
    return lines
