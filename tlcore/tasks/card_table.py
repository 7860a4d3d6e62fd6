"""The two pure helpers of the model card (:mod:`tlcore.reporting.model_card`) that the tasks' ``card`` modules
share: a number as the card shows it, and the before / after / baselines table of a task's metrics. They live
here, not in ``tlcore.reporting``, because task code must not import the reporting layer."""

from __future__ import annotations

from typing import Optional

from tlcore.tasks.spec import TaskSpec

#: One column of the card's table: (report key, label in the card, higher is better).
CardMetric = tuple[str, str, bool]


def card_metrics(spec: TaskSpec) -> list[CardMetric]:
    """The columns of ``spec``'s table: its metrics, headline first, under their card labels."""
    return [(m.key, m.card_label or m.label, m.higher_is_better) for m in spec.metrics]


def num(x: Optional[float], pct: bool) -> str:
    """``x`` as a percentage (``pct``) or as 0.xxx; "–" for a missing number."""
    if x is None:
        return "–"
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def metric_table(report: dict, metrics: list[CardMetric], pct: bool) -> list[str]:
    """Markdown rows: before, after and each baseline of ``report``; the headline metric with its 95% interval,
    then the other metrics."""
    key0 = metrics[0][0]
    head = "| model | " + " | ".join([metrics[0][1], "95% CI"] + [m[1] for m in metrics[1:]]) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 2)]
    rows = [("before", report["before"]), ("after", report["after"])]
    rows += [(f"baseline: {k}", v) for k, v in report.get("baselines", {}).items()]
    for name, m in rows:
        lo, hi = m.get(f"{key0}_ci95", [m.get(key0), m.get(key0)])
        cells = [num(m.get(key0), pct), f"{num(lo, pct)} – {num(hi, pct)}"] + [num(m.get(k), pct) for k, _, _ in metrics[1:]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
