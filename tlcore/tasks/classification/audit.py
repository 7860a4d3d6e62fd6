"""Classification's label audit (:func:`tlcore.diagnostics.audit.run_audit` calls this task part): the labeled target
(and source) set's items scored by cross-validated linear probes on the backbone's pretrained features (cached, as
every run's), then cleanlab's label issues, duplicates and outliers (:func:`~tlcore.diagnostics.audit.find_data_issues`).

The out-of-sample probabilities are the probe's out-of-fold ones (:func:`~tlcore.tasks.classification.calibrate.
probe_out_of_fold_logits`: k = min(5, smallest class) stratified folds, each item scored by a probe fitted without
it), with the L2 strength a run's probe would choose (:func:`~tlcore.strategies.linear_probe.fit_linear_head`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from tlcore.data.dataset import Dataset
from tlcore.data.loaders import load_dataset
from tlcore.data.overlap import content_key, item_kind
from tlcore.diagnostics.audit import KINDS, METHOD, find_data_issues, require_classes
from tlcore.errors import DataError
from tlcore.evaluation.calibration import softmax
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone
from tlcore.progress import Progress, ProgressFn
from tlcore.strategies.linear_probe import fit_linear_head
from tlcore.tasks.classification import SPEC
from tlcore.tasks.classification.calibrate import probe_out_of_fold_logits


def _load(path: str, modality: str, role: str) -> Dataset:
    try:
        return load_dataset(path, modality)
    except DataError as exc:
        raise DataError(f"{role} data: {exc}") from None


def _probe_probs(f: np.ndarray, y: np.ndarray, n_classes: int, seed: int) -> tuple[Optional[np.ndarray], dict]:
    """(out-of-fold probabilities or None, the probe block of the report)."""
    _, _, info = fit_linear_head(f, y, n_classes, seed=seed)
    logits, folds = probe_out_of_fold_logits(f, y, n_classes, C=float(info["C"]), seed=seed)
    if logits is None:
        return None, {"skipped": "the smallest class has fewer than 2 items: no cross-validation folds, so no "
                                 "out-of-sample probabilities to check labels with (duplicates and outliers are still "
                                 "checked)"}
    probs = softmax(logits)
    return probs, {"C": float(info["C"]), "folds": folds,
                   "out_of_fold_accuracy": float((probs.argmax(1) == y).mean())}


def audit(modality: str, target: str, *, eval_path: Optional[str], source: Optional[str], backbone: Optional[str],
          seed: int, progress: ProgressFn) -> dict:
    """The audit report (module docstring); rows name each item, show it (its path or text), and give the issue, a
    reason, a score (lower = worse) and the suggested label of a label issue."""
    sets = {"target": _load(target, modality, "target")}
    if source:
        sets["source"] = _load(source, modality, "source")
    for role, ds in sets.items():
        require_classes(ds.labels, f"the {role} set")
    eval_ds = _load(eval_path, modality, "eval") if eval_path else None
    bb = build_backbone(backbone, modality)
    feats = {role: extract_features(bb, ds, stage=f"features: {role}", progress=progress)
             for role, ds in {**sets, **({"eval": eval_ds} if eval_ds is not None else {})}.items()}
    kind = item_kind(modality)
    keys = {role: [content_key(x, kind) for x in ds.items]
            for role, ds in {**sets, **({"eval": eval_ds} if eval_ds is not None else {})}.items()}
    rows, counts, probes, skipped, notes = [], {}, {}, {}, {}
    for step, (role, ds) in enumerate(sets.items()):
        progress(Progress("audit", step, len(sets), f"{role}: cross-validated probe, cleanlab"))
        classes = ds.classes
        y = np.array([classes.index(c) for c in ds.labels])  # type: ignore[union-attr]
        probs, probes[role] = _probe_probs(feats[role], y, len(classes), seed)
        at_eval = role == "target" and eval_ds is not None
        scan = find_data_issues(y, probs, feats[role], classes=classes, names=ds.names, keys=keys[role],
                                eval_features=feats["eval"] if at_eval else None,
                                eval_keys=keys["eval"] if at_eval else None,
                                eval_names=eval_ds.names if at_eval else None,  # type: ignore[union-attr]
                                label_skipped=probes[role].get("skipped"))
        counts[role] = scan.counts
        if scan.label_skipped:
            skipped[role] = scan.label_skipped
        if scan.notes:
            notes[role] = scan.notes
        for t in scan.issues:
            other = None
            if t.other is not None:
                other = (eval_ds.names if t.kind == "train_eval_duplicate" else ds.names)[t.other]  # type: ignore[union-attr]
            rows.append({"set": role, "index": t.index, "name": ds.names[t.index], "item": str(ds.items[t.index]),
                         "label": ds.labels[t.index], "issue": t.kind, "score": round(t.score, 4),  # type: ignore[index]
                         "suggested": classes[t.suggested] if t.suggested is not None else None,
                         "reason": t.reason, "other": other})
    progress(Progress("audit", len(sets), len(sets), f"{len(rows)} issue(s)"))
    flagged = {role: len({r["name"] for r in rows if r["set"] == role}) for role in sets}
    return {"modality": modality, "task": SPEC.name, "backbone": bb.backbone_name, "seed": seed,  # type: ignore[attr-defined]
            "data": {**{role: len(ds) for role, ds in sets.items()}, "eval": len(eval_ds) if eval_ds else 0,
                     "target_path": target, "source_path": source, "eval_path": eval_path,
                     "classes": {role: ds.classes for role, ds in sets.items()}},
            "issues": rows, "counts": counts, "flagged_items": flagged, "probe": probes,
            "label_skipped": skipped, "notes": notes, "kinds": KINDS, "method": METHOD}
