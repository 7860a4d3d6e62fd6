"""Multi-label's label audit (:func:`tlcore.diagnostics.audit.run_audit` calls this task part): each item's label set
checked against out-of-fold probabilities of one-vs-rest linear probes on the pretrained features (cleanlab's
multi-label confident learning, :func:`~tlcore.diagnostics.audit.find_multilabel_issues`), plus the duplicate, conflict
(identical items with different label sets), train/eval and outlier checks of
:func:`~tlcore.diagnostics.audit.find_data_issues`.

Per label, the probe is a logistic regression (C = 1) on standardised features, scored by stratified k-fold
cross-validation on that label (k = min(5, its rarer side)); a label on fewer than 2 items (or off fewer than 2) gets
its base rate as every item's probability: too few items to hold any out.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from tlcore.data.overlap import content_key, item_kind
from tlcore.device import small_problem_threads
from tlcore.diagnostics.audit import KINDS, METHOD, find_data_issues, find_multilabel_issues
from tlcore.errors import DataError
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone
from tlcore.progress import Progress, ProgressFn
from tlcore.strategies.linear_probe import standardize
from tlcore.tasks.multilabel import SPEC
from tlcore.tasks.multilabel.data import MultiLabelData, check_trainable, load_multilabel

FOLDS = 5


def _load(path: str, role: str, labeled: bool) -> MultiLabelData:
    try:
        data = load_multilabel(path)
        if labeled:
            check_trainable(data)
    except DataError as exc:
        raise DataError(f"{role} data: {exc}") from None
    return data


def out_of_fold_probs(features: np.ndarray, y: np.ndarray, *, seed: int) -> np.ndarray:
    """(n, K) out-of-fold probabilities of one-vs-rest probes for the (n, K) 0/1 matrix ``y`` (module docstring)."""
    out = np.tile(y.mean(0), (len(y), 1)).astype(np.float64)
    for k in range(y.shape[1]):
        on = int(y[:, k].sum())
        folds = min(FOLDS, on, len(y) - on)
        if folds < 2:
            continue
        for fit, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, y[:, k]):
            z, mu, sd = standardize(features[fit])
            with small_problem_threads(z):
                clf = LogisticRegression(C=1.0, max_iter=2000).fit(z, y[fit, k])
            out[held, k] = clf.predict_proba((features[held] - mu) / sd)[:, 1]
    return out


def audit(modality: str, target: str, *, eval_path: Optional[str], source: Optional[str], backbone: Optional[str],
          seed: int, progress: ProgressFn) -> dict:
    """The audit report, in classification's shape (rows with ``suggested`` a ``|``-joined label set)."""
    sets = {"target": _load(target, "target", True)}
    if source:
        sets["source"] = _load(source, "source", True)
    eval_data = _load(eval_path, "eval", False) if eval_path else None
    bb = build_backbone(backbone, modality)
    every = {**sets, **({"eval": eval_data} if eval_data is not None else {})}
    feats = {role: extract_features(bb, d.dataset(), stage=f"features: {role}", progress=progress)
             for role, d in every.items()}
    keys = {role: [content_key(x, item_kind(modality)) for x in d.items] for role, d in every.items()}
    rows, counts, notes = [], {}, {}
    for step, (role, d) in enumerate(sets.items()):
        progress(Progress("audit", step, len(sets), f"{role}: cross-validated probes, cleanlab"))
        vocab = d.vocabulary()
        y = d.multi_hot(vocab)
        probs = out_of_fold_probs(feats[role], y, seed=seed)
        label_sets = [[vocab.index(t) for t in ys] for ys in d.label_sets]  # type: ignore[union-attr]
        shown = ["|".join(ys) or "(none)" for ys in d.label_sets]  # type: ignore[union-attr]
        distinct = sorted(set(shown))
        at_eval = role == "target" and eval_data is not None
        scan = find_data_issues([distinct.index(s) for s in shown], None, feats[role], classes=distinct, names=d.names,
                                keys=keys[role], eval_features=feats["eval"] if at_eval else None,
                                eval_keys=keys["eval"] if at_eval else None,
                                eval_names=eval_data.names if at_eval else None)  # type: ignore[union-attr]
        said: list[str] = []
        issues = find_multilabel_issues(label_sets, probs, classes=vocab, notes=said) + scan.issues
        if said:
            notes[role] = said
        counts[role] = {kind: sum(t.kind == kind for t in issues) for kind in KINDS}
        for t in issues:
            other = None
            if t.other is not None:
                other = (eval_data.names if t.kind == "train_eval_duplicate" else d.names)[t.other]  # type: ignore[union-attr]
            rows.append({"set": role, "index": t.index, "name": d.names[t.index], "item": str(d.items[t.index]),
                         "label": shown[t.index], "issue": t.kind, "score": round(t.score, 4),
                         "suggested": "|".join(vocab[k] for k in t.suggested) if isinstance(t.suggested, list) else None,
                         "reason": t.reason, "other": other})
    progress(Progress("audit", len(sets), len(sets), f"{len(rows)} issue(s)"))
    return {"modality": modality, "task": SPEC.name, "backbone": bb.backbone_name, "seed": seed,  # type: ignore[attr-defined]
            "data": {**{role: len(d) for role, d in sets.items()}, "eval": len(eval_data) if eval_data else 0,
                     "target_path": target, "source_path": source, "eval_path": eval_path,
                     "classes": {role: d.vocabulary() for role, d in sets.items()}},
            "issues": rows, "counts": counts,
            "flagged_items": {role: len({r["name"] for r in rows if r["set"] == role}) for role in sets},
            "probe": {role: {"kind": "one-vs-rest logistic regression per label, C 1, out-of-fold"} for role in sets},
            "label_skipped": {}, "notes": notes, "kinds": KINDS,
            "method": {**METHOD, "label": "cleanlab.filter.find_label_issues(multi_label=True) on out-of-fold "
                                          "one-vs-rest probe probabilities; score: cleanlab.multilabel_classification."
                                          "get_label_quality_scores; suggested: the labels with probability >= 0.5"}}
