"""The speech recognition sections of the model card: the source-accent (forgetting) check, WER per group, and the
transcripts that changed most."""

from __future__ import annotations

from tlcore.tasks.asr import SPEC
from tlcore.tasks.card_table import card_metrics, metric_table, num


def detail(report: dict) -> list[str]:
    before, after = report["before"], report["after"]
    lines: list[str] = []
    if report.get("source_eval"):
        lines += (["## Source accent (forgetting check)", ""]
                  + metric_table(report["source_eval"], card_metrics(SPEC), SPEC.card_percent) + [""])
    for column, table in after.get("per_group", {}).items():
        lines += [f"## WER per {column}", "", f"| {column} | before | after | clips |", "|---|---|---|---|"]
        for value, m in table.items():
            lines.append(f"| {value} | {num(before['per_group'][column][value]['wer'], True)} "
                         f"| {num(m['wer'], True)} | {m['n']} |")
        lines.append("")
    changed = report.get("flipped", {}).get("changed", [])[:5]
    if changed:
        lines += ["## Transcripts that changed most", "", "| reference | before | after |", "|---|---|---|"]
        lines += [f"| {c['reference']} | {c['before']} | {c['after']} |" for c in changed]
    return lines
