"""The negative-transfer policy: one set of rules, the same for every task and metric.

For each reference model r (``before``, the ``scratch`` baseline, ...) the run has the paired difference
d = metric(after) − metric(r) on the same eval items with its 95% bootstrap interval [lo, hi]. "Better" means
higher for accuracy / F1 and lower for error rates (WER, CER). Then:

* **negative transfer** — the interval lies entirely on the worse side: after is worse than r.
* **negative transfer risk** — r is the ``scratch`` baseline and the interval includes 0: the pretrained model
  does not beat the same network trained from scratch on the same data, which is what negative transfer means
  (Wang et al., "Characterizing and Avoiding Negative Transfer", CVPR 2019).
* **no clear gain over r** — any other reference, interval includes 0: more eval data would tell.
* nothing — the interval lies entirely on the better side.

Warnings are structured (:func:`transfer_alerts`): ``{"kind", "against", "difference", "ci95", "text"}``, so a
reader (the app, a script) goes by ``kind`` and never parses the text. A run report keeps the texts in
``warnings`` (the report contract since the first version) and the structured entries, in the same order, in
``warnings_detail``; :func:`report_alerts` reads both, and reports written before ``warnings_detail`` existed.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from tlcore.config import NO_PRETRAINING

#: Kinds of warnings. The first three come from the comparisons; the others describe the data or the run.
NEGATIVE_TRANSFER = "negative_transfer"
NEGATIVE_TRANSFER_RISK = "negative_transfer_risk"
NO_CLEAR_GAIN = "no_clear_gain"
EVAL_OVERLAP = "eval_overlap"
SKIPPED_INPUTS = "skipped_inputs"
NOTICE = "notice"
TRACKING = "tracking"      # the run could not be logged to its experiment tracker (tlcore/reporting/tracking.py)
#: How the texts of each comparison kind begin (reports before ``warnings_detail`` are read by these).
_PREFIXES = ((NEGATIVE_TRANSFER_RISK, "negative transfer risk"), (NEGATIVE_TRANSFER, "negative transfer:"),
             (NO_CLEAR_GAIN, "no clear gain over"), (EVAL_OVERLAP, "train/eval overlap"),
             (EVAL_OVERLAP, "target training item(s) identical"), (SKIPPED_INPUTS, "file(s)/row(s) skipped"))


def alert(kind: str, text: str, *, against: Optional[str] = None, difference: Optional[float] = None,
          ci95: Optional[list[float]] = None) -> dict:
    """One structured warning: what kind, against which reference (comparisons only), the paired difference
    (after − reference, in the metric's own units) with its 95% interval, and the sentence shown to people."""
    return {"kind": kind, "against": against, "difference": difference, "ci95": ci95, "text": text}


def as_alert(warning: Any) -> dict:
    """A structured warning from an entry of a report's warnings: a dict as it is, a text by its opening words."""
    if isinstance(warning, dict):
        return {**alert(NOTICE, ""), **warning}
    text = str(warning)
    kind = next((k for k, prefix in _PREFIXES if prefix in text[:60]), NOTICE)
    return alert(kind, text)


def report_alerts(report: Mapping) -> list[dict]:
    """The structured warnings of a report: ``warnings_detail`` when it has them, else inferred from the texts."""
    detail = report.get("warnings_detail")
    if isinstance(detail, list) and len(detail) == len(report.get("warnings") or []):
        return [as_alert(w) for w in detail]
    return [as_alert(w) for w in report.get("warnings") or []]


def split_alerts(warnings: list) -> tuple[list[str], list[dict]]:
    """(texts, structured entries) of a list of warnings, texts or dicts: what a report stores."""
    detail = [as_alert(w) for w in warnings]
    return [w["text"] for w in detail], detail


def strongest_no_pretraining(report: Mapping, metric: str, *, higher_is_better: bool = True,
                             names: tuple[str, ...] = NO_PRETRAINING) -> Optional[str]:
    """The name of the best baseline without pretrained weights in ``report`` on ``metric`` (the random-init twin or
    the classical model), or None when it has none: the honest reference for "does transfer help?"."""
    have = [(name, block[metric]) for name, block in (report.get("baselines") or {}).items()
            if name in names and isinstance(block, Mapping) and isinstance(block.get(metric), (int, float))]
    if not have:
        return None
    return (max if higher_is_better else min)(have, key=lambda pair: pair[1])[0]


def baseline_label(report: Mapping, name: str) -> str:
    """A baseline as people read it: the classical model by what it is ("TF-IDF + logistic regression")."""
    block = (report.get("baselines") or {}).get(name) or {}
    return str((block.get("training") or {}).get("model") or name)


def transfer_warnings(comparisons: Mapping[str, Mapping], *, metric: str = "accuracy",
                      higher_is_better: bool = True) -> list[str]:
    """The texts of :func:`transfer_alerts`.

    >>> transfer_warnings({"scratch": {"difference": 0.01, "ci95": [-0.02, 0.04]}})[0][:22]
    'negative transfer risk'
    """
    return [a["text"] for a in transfer_alerts(comparisons, metric=metric, higher_is_better=higher_is_better)]


def transfer_alerts(comparisons: Mapping[str, Mapping], *, metric: str = "accuracy",
                    higher_is_better: bool = True) -> list[dict]:
    """Structured warnings for ``comparisons`` = {reference name: {"difference": d, "ci95": [lo, hi]}}
    (d = after − reference): negative transfer, negative transfer risk, or no clear gain (module docstring)."""
    out = []
    for ref, d in comparisons.items():
        lo, hi = d["ci95"]
        # Express everything as "gain" (positive = after is better), in points.
        sign = 1 if higher_is_better else -1
        gain, g_lo, g_hi = sign * 100 * d["difference"], *sorted((sign * 100 * lo, sign * 100 * hi))
        interval = f"95% CI of the gain {g_lo:+.1f} to {g_hi:+.1f}"
        facts = {"against": ref, "difference": float(d["difference"]), "ci95": [float(lo), float(hi)]}
        if g_hi < 0:
            out.append(alert(NEGATIVE_TRANSFER, f"negative transfer: the transferred model's {metric} is worse than "
                             f"{ref} by {-gain:.1f} points ({interval}); try another backbone or strategy, a lower "
                             "learning rate or fewer epochs", **facts))
        elif g_lo <= 0 and ref == "scratch":
            out.append(alert(NEGATIVE_TRANSFER_RISK, "negative transfer risk: the transferred model does not beat "
                             f"training from scratch beyond the 95% interval ({metric} gain {gain:+.1f} points, "
                             f"{interval})", **facts))
        elif g_lo <= 0:
            out.append(alert(NO_CLEAR_GAIN, f"no clear gain over {ref}: the {metric} gain of {gain:+.1f} points is not "
                             f"beyond the 95% interval ({interval}); more eval data would tell", **facts))
    return out
