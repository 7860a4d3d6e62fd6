"""A plain-language verdict on source/target mismatch, with a recommended transfer strategy.

Thresholds (rules of thumb, calibrated on synthetic 384-d features and meant to be read, not obeyed):

* Proxy A-distance (PAD): none < 0.5 (domain classifier error ε > 0.375), mild < 1.5, strong ≥ 1.5 (ε < 0.125).
* MMD: none when p ≥ 0.05; otherwise mild, or strong when MMD² ≥ 0.05 (median-heuristic bandwidth; a
  mean shift of 0.5 within-set std in every one of 384 dims gives ≈ 0.07).
* Label shift: total variation none < 0.1, mild < 0.3, strong ≥ 0.3.
* Property drift: none with no drifting property; strong if one drifts with effect ≥ 0.8 (a "large"
  effect, Cohen 1988), else mild.

Overall severity = the worst embedding signal (PAD, MMD). Label shift and property drift can raise it to
"mild" but not to "strong" on their own: the embeddings decide whether the backbone sees two domains.
Target label counts: "few" < 100, "many" ≥ 1000.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tlcore.diagnostics._common import JsonResult
from tlcore.diagnostics.drift import DriftReport
from tlcore.diagnostics.mismatch import MismatchReport

SEVERITIES = ("none", "mild", "strong")
PAD_MILD, PAD_STRONG = 0.5, 1.5
MMD_ALPHA, MMD2_STRONG = 0.05, 0.05
TV_MILD, TV_STRONG = 0.1, 0.3
DRIFT_EFFECT_STRONG = 0.8
FEW_LABELS, MANY_LABELS = 100, 1000


@dataclass
class Verdict(JsonResult):
    """Outcome of :func:`mismatch_verdict`.

    ``severity``: "none" | "mild" | "strong". ``summary``: one or two sentences on what was found.
    ``signals``: [{"name", "value", "severity", "meaning"}] per measure. ``recommendation``: what to try.
    ``drifting_properties``: names of drifting properties, largest effect first.
    """

    severity: str
    summary: str
    signals: list[dict] = field(default_factory=list)
    recommendation: str = ""
    drifting_properties: list[str] = field(default_factory=list)


def _worst(*levels: str) -> str:
    return max(levels, key=SEVERITIES.index) if levels else "none"


def _signals(mismatch: MismatchReport, drift: DriftReport | None) -> list[dict]:
    pad, mmd = mismatch.pad, mismatch.mmd
    out = [
        {
            "name": "proxy_a_distance",
            "value": pad.pad,
            "severity": "strong" if pad.pad >= PAD_STRONG else "mild" if pad.pad >= PAD_MILD else "none",
            "meaning": f"a linear classifier tells the sets apart with AUC {pad.auc:.2f} "
            f"(error {pad.error:.1%}; 50% would be chance)",
        },
        {
            "name": "mmd",
            "value": mmd.mmd2,
            "severity": "none" if not mmd.p_value < MMD_ALPHA else "strong" if mmd.mmd2 >= MMD2_STRONG else "mild",
            "meaning": f"MMD² = {mmd.mmd2:.4f}, permutation p = {mmd.p_value:.3f} "
            + ("(difference detected)" if mmd.p_value < MMD_ALPHA else "(no detectable difference)"),
        },
    ]
    if mismatch.label_shift is not None:
        tv = mismatch.label_shift.total_variation
        out.append({
            "name": "label_shift",
            "value": tv,
            "severity": "strong" if tv >= TV_STRONG else "mild" if tv >= TV_MILD else "none",
            "meaning": f"class proportions differ by {tv:.0%} of probability mass (total variation)",
        })
    if drift is not None:
        rows = drift.drifting
        top = max((r.effect for r in rows), default=0.0)
        out.append({
            "name": "property_drift",
            "value": float(len(rows)),
            "severity": "none" if not rows else "strong" if top >= DRIFT_EFFECT_STRONG else "mild",
            "meaning": f"{len(rows)} of {len(drift.rows)} item properties drift"
            + (": " + ", ".join(_describe(r) for r in rows[:5]) if rows else ""),
        })
    return out


def _describe(row) -> str:
    if row.mean_a is not None and row.mean_b is not None:
        return f"{row.name} ({row.mean_a:.3g} → {row.mean_b:.3g}, effect {row.effect:.2f})"
    return f"{row.name} (effect {row.effect:.2f})"


def _recommend(severity: str, n_labels: int | None) -> str:
    if severity == "none":
        return ("The target looks like the source to this backbone: a linear probe (frozen backbone, new head) "
                "should do. Fine-tune more only if the probe underfits.")
    if not n_labels:
        return ("No labeled target data: use the source-trained model and try domain adaptation (e.g. CORAL or "
                "DANN) with unlabeled target data; labeling even a few target items per class helps most."
                if severity == "strong" else
                "No labeled target data: the source-trained model should mostly carry over; domain adaptation "
                "with unlabeled target data may recover the rest.")
    if severity == "mild":
        if n_labels < FEW_LABELS:
            return ("Start with a linear probe; with so few labels, partial fine-tuning (top blocks) is the most "
                    "to try, with augmentation.")
        return "Partial fine-tuning (top blocks) or LoRA should beat a linear probe; compare both."
    if n_labels < FEW_LABELS:
        return ("Strong shift with few labels: a linear probe alone will likely underfit. Try domain adaptation "
                "with unlabeled target data, or partial fine-tuning (top blocks / LoRA) with strong "
                "regularisation and augmentation; labeling more target data helps most.")
    if n_labels < MANY_LABELS:
        return "Strong shift: partial fine-tuning or LoRA; go to full fine-tuning if accuracy still lags."
    return "Strong shift with plenty of labels: full fine-tuning (or LoRA) on the target data."


def mismatch_verdict(
    mismatch: MismatchReport, drift: DriftReport | None = None, *, n_target_labels: int | None = None
) -> Verdict:
    """Turn a :class:`MismatchReport` (and optionally a :class:`DriftReport`) into a verdict in words.

    Rules (thresholds in the module docstring): each measure gets a severity; overall severity is the
    worst of PAD and MMD, raised to at least "mild" by label shift or property drift; the recommendation
    depends on severity and ``n_target_labels`` (None or 0: no labeled target data). Deterministic.
    """
    signals = _signals(mismatch, drift)
    by_name = {s["name"]: s["severity"] for s in signals}
    severity = _worst(by_name["proxy_a_distance"], by_name["mmd"])
    side = _worst(by_name.get("label_shift", "none"), by_name.get("property_drift", "none"))
    if side != "none":
        severity = _worst(severity, "mild")
    pad = mismatch.pad
    headline = {
        "none": "No meaningful mismatch between source and target features",
        "mild": "Mild mismatch between source and target features",
        "strong": "Strong mismatch between source and target features",
    }[severity]
    parts = [f"{headline}: a linear domain classifier reaches AUC {pad.auc:.2f} (PAD {pad.pad:.2f}), "
             f"MMD² = {mismatch.mmd.mmd2:.4f} (p = {mismatch.mmd.p_value:.3f})."]
    recommendation = _recommend(severity, n_target_labels)
    if mismatch.label_shift is not None and by_name["label_shift"] != "none":
        tv = mismatch.label_shift.total_variation
        parts.append(f"Class proportions differ (total variation {tv:.2f}).")
        recommendation += " Class proportions differ: use a class-balanced loss or re-weighting and report macro-F1."
    drifting = [r.name for r in drift.drifting] if drift is not None else []
    if drifting:
        parts.append(f"Drifting properties: {', '.join(drifting)}.")
        recommendation += (f" Check the drifting properties ({', '.join(drifting[:5])}): normalise them or cover "
                           "them with augmentation.")
    return Verdict(severity=severity, summary=" ".join(parts), signals=signals,
                   recommendation=recommendation, drifting_properties=drifting)
