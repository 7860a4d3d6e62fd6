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
"""

from __future__ import annotations

from typing import Mapping


def transfer_warnings(comparisons: Mapping[str, Mapping], *, metric: str = "accuracy",
                      higher_is_better: bool = True) -> list[str]:
    """Warnings for ``comparisons`` = {reference name: {"difference": d, "ci95": [lo, hi]}} (d = after − reference).

    >>> transfer_warnings({"scratch": {"difference": 0.01, "ci95": [-0.02, 0.04]}})[0][:22]
    'negative transfer risk'
    """
    out = []
    for ref, d in comparisons.items():
        lo, hi = d["ci95"]
        # Express everything as "gain" (positive = after is better), in points.
        sign = 1 if higher_is_better else -1
        gain, g_lo, g_hi = sign * 100 * d["difference"], *sorted((sign * 100 * lo, sign * 100 * hi))
        interval = f"95% CI of the gain {g_lo:+.1f} to {g_hi:+.1f}"
        if g_hi < 0:
            out.append(f"negative transfer: the transferred model's {metric} is worse than {ref} by {-gain:.1f} points "
                       f"({interval}); try another backbone or strategy, a lower learning rate or fewer epochs")
        elif g_lo <= 0 and ref == "scratch":
            out.append(f"negative transfer risk: the transferred model does not beat training from scratch beyond the "
                       f"95% interval ({metric} gain {gain:+.1f} points, {interval})")
        elif g_lo <= 0:
            out.append(f"no clear gain over {ref}: the {metric} gain of {gain:+.1f} points is not beyond the 95% "
                       f"interval ({interval}); more eval data would tell")
    return out
