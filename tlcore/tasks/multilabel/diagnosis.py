"""Multi-label data before training: the shared mismatch report of the two sets' items (embeddings, per-property
drift, vocabulary for texts) plus how often each label occurs in each set. Backbone ranking is not offered for
multi-label data: the transferability scores (LogME, H-score, LEEP, NCE) are defined for one label per item."""

from __future__ import annotations

from typing import Optional

from tlcore.diagnostics import DEFINITIONS, compare_embeddings, mismatch_verdict, property_drift
from tlcore.diagnostics.diagnose import embed_pair, item_properties, report_head, require_items, text_section
from tlcore.errors import ConfigError, DataError
from tlcore.progress import Progress, ProgressFn
from tlcore.tasks.multilabel import SPEC
from tlcore.tasks.multilabel.data import MultiLabelData, load_multilabel

LABEL_DEFINITIONS = {
    "label_frequency": "Share of each set's items that carry the label (a label can be frequent in the source and "
                       "rare in the target: per-label F1 then matters more than micro-F1).",
}


def _load(path: str, role: str) -> MultiLabelData:
    try:
        data = load_multilabel(path)
    except DataError as exc:
        raise DataError(f"{role} data: {exc}") from None
    require_items(len(data), role, "items")
    return data


def _frequencies(data: MultiLabelData) -> dict[str, float]:
    return {label: count / len(data) for label, count in data.label_counts().items()}


def diagnose(modality: str, source: str, target: str, *, backbone: Optional[str], seed: int, n_permutations: int,
             progress: ProgressFn, map_method: str = "pca") -> dict:
    """The mismatch of the items (as classification's, without a class label shift) and the label frequencies."""
    sa, sb = _load(source, "source"), _load(target, "target")
    a, b = sa.dataset(), sb.dataset()
    bb, fa, fb = embed_pair(modality, a, b, backbone, progress)
    progress(Progress("mismatch", 0, 1, "MMD, domain classifier, Fréchet, CORAL"))
    mismatch = compare_embeddings(fa, fb, seed=seed, n_permutations=n_permutations, map_method=map_method)
    progress(Progress("drift", 0, 1, "per-property two-sample tests"))
    tokenizer = getattr(bb, "tokenizer", None)
    drift = property_drift(item_properties(a, tokenizer, seed), item_properties(b, tokenizer, seed))
    verdict = mismatch_verdict(mismatch, drift, n_target_labels=len(sb) if sb.label_sets is not None else None)
    fa_, fb_ = _frequencies(sa), _frequencies(sb)
    report = {
        **report_head(modality, SPEC.name, bb, seed),
        "data": {"source": len(sa), "target": len(sb), "source_path": source, "target_path": target,
                 "source_classes": sa.vocabulary(), "target_classes": sb.vocabulary()},
        "verdict": verdict.to_dict(), "mismatch": mismatch.to_dict(), "drift": drift.to_dict(),
        "definitions": {**DEFINITIONS, **LABEL_DEFINITIONS},
        "labels": {"frequency": {label: {"source": fa_.get(label, 0.0), "target": fb_.get(label, 0.0)}
                                 for label in sorted(set(fa_) | set(fb_))}},
    }
    if modality == "text":
        report["text"] = text_section(a, b)
    return report


def rank(modality: str, target: str, names: list[str], *, seed: int, n_boot: int, progress: ProgressFn):
    raise ConfigError("ranking backbones is not available for multi-label data: its scores (LogME, H-score, k-NN "
                      "accuracy) assume one label per item; fine-tune the candidates with --task multilabel and "
                      "compare their micro-F1")
