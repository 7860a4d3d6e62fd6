"""The short diagnosis a fine-tuning run's report and model card carry: the Diagnose page's verdict on the run's
source vs target, and the properties that drift most. The pipeline computes it and hands it to the run writer
(``RunWriter.finish(..., diagnosis=...)``): the writer only writes."""

from __future__ import annotations

import logging
from typing import Optional

from tlcore.diagnostics.diagnose import run_diagnose

log = logging.getLogger(__name__)


def diagnosis_summary(config: dict, *, top: int = 5) -> Optional[dict]:
    """The domain-mismatch diagnosis of the run's source vs target (``config``: the run's settings as a dict,
    ``FinetuneConfig.to_dict()``) with the ``top`` drifting properties; None without a source set. The backbone
    features are the run's own (cached), so this costs seconds. A failure here never fails the run: the summary
    then says why it is missing."""
    source, target = config.get("source"), config.get("target")
    if not source or not target:
        return None
    try:
        full = run_diagnose(config["modality"], str(source), str(target), backbone=config.get("backbone"),
                            seed=int(config.get("seed") or 0), task=config.get("task"))
    except Exception as exc:  # noqa: BLE001 - the run's results must not depend on the diagnosis
        log.warning("diagnosis summary failed", exc_info=True)
        return {"error": f"not computed: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"}
    rows = sorted((r for r in (full.get("drift") or {}).get("rows", []) if r.get("drifting")),
                  key=lambda r: -float(r.get("effect") or 0))
    drift = []
    for r in rows[:top]:
        text = f"{r['name']} (effect {float(r['effect']):.2f}"
        if r.get("mean_a") is not None and r.get("mean_b") is not None:
            text += f"; source mean {float(r['mean_a']):.3g} → target mean {float(r['mean_b']):.3g}"
        drift.append(text + ")")
    verdict = full.get("verdict") or {}
    return {"severity": verdict.get("severity"), "verdict": verdict.get("summary"), "top_drift": drift,
            "backbone": full.get("backbone"), "source": str(source), "target": str(target)}
