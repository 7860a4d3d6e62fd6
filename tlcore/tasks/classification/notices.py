"""Classification runs' notices: the data warnings a run starts with (groups, conflicting labels, class names) and
the note that recommends the linear probe when fine-tuning did not clearly beat it."""

from __future__ import annotations

from typing import Optional

from tlcore.data.dataset import Dataset
from tlcore.evaluation.metrics import MAX_CONFUSION_CLASSES
from tlcore.evaluation.notices import case_only_warnings
from tlcore.evaluation.policy import alert


def group_warnings(train: Dataset, eval_ds: Dataset) -> list[dict]:
    """Groups declared on one side only, or shared by training and eval (a given --eval set: the automatic split
    never shares one): the eval numbers then measure seen objects/speakers, not new ones."""
    if (train.groups is None) != (eval_ds.groups is None):
        side = "eval" if train.groups is None else "training"
        return [alert("groups_one_side", f"only the {side} data declares groups; intervals "
                      f"{'resample eval groups' if eval_ds.groups is not None else 'resample single eval items'}, and "
                      "whether eval groups also occur in training cannot be checked")]
    if train.groups is None or eval_ds.groups is None:
        return []
    shared = sorted(set(train.groups) & set(eval_ds.groups))
    if not shared:
        return []
    return [alert("groups_shared", f"{len(shared)} of {len(set(eval_ds.groups))} eval groups also occur in the training "
                  f"data (e.g. {shared[0]!r}): the eval numbers partly measure groups the model has seen; hold out "
                  "whole groups for an honest estimate on new ones")]


def class_warnings(classes: list[str]) -> list[dict]:
    """Classes whose names differ only in letter case, and a class count past what the report's confusion matrices
    hold: the run goes on, and says so."""
    out = case_only_warnings(classes, folders=True)
    if len(classes) > MAX_CONFUSION_CLASSES:
        out.append(alert("report_size", f"{len(classes)} classes: the report stores per-class scores but no "
                         f"confusion matrix (at most {MAX_CONFUSION_CLASSES} classes; {len(classes)} x {len(classes)} "
                         "counts per model would make a report of many MB)"))
    return out


def probe_recommendation(strategy: str, after_accuracy: float, probe_accuracy: float, comparison: dict) -> Optional[str]:
    """A note recommending the linear probe when the fine-tuned model does not beat it beyond the 95% interval of
    the paired difference on the same eval items (``comparison`` = ``paired_difference(after, probe)``); None when
    fine-tuning won clearly. Driven only by the numbers of the run."""
    lo, hi = comparison["ci95"]
    if lo > 0:
        return None
    gain = 100 * comparison["difference"]
    if hi < 0:
        verdict, why = "is worse than", "fine-tuning lost accuracy that the frozen pretrained features had"
    else:
        verdict, why = ("is not clearly better than", "fine-tuning has not shown that it earns its extra cost (more "
                        "labeled eval data would narrow the interval)")
    return (f"linear probe recommended: the {strategy} fine-tuned model ({after_accuracy:.3f} accuracy) {verdict} the "
            f"linear probe on the same pretrained features ({probe_accuracy:.3f}) on the same eval items (difference "
            f"{gain:+.1f} points, 95% CI {100 * lo:+.1f} to {100 * hi:+.1f}); on this data {why}. Use strategy "
            "linear_probe: features computed once, no backbone to train or store")
