"""Before any training: how far is the target from the source (diagnose), and which backbone will transfer (rank).

``run_diagnose`` embeds both sets with a backbone, measures the mismatch (MMD + permutation test, proxy
A-distance, Fréchet, CORAL, label shift, a 2-D map), tests per-property drift of the raw inputs, and writes a
plain-language verdict. ``run_rank`` scores every candidate backbone on the labeled target without
fine-tuning (LogME, H-score, k-NN CV accuracy; LEEP and NCE where the backbone has a pretrained classifier),
each with a subsampling interval, and can validate the ranking by fine-tuning each candidate (Kendall tau).
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
import soundfile as sf

from tlcore.data.dataset import Dataset
from tlcore.data.loaders import load_dataset
from tlcore.diagnostics import (
    DEFINITIONS,
    audio_properties,
    bootstrap_score,
    compare_embeddings,
    h_score,
    image_properties,
    kendall_tau,
    knn_cv_accuracy,
    leep,
    logme,
    mismatch_verdict,
    nce,
    property_drift,
    rank_backbones,
    separating_words,
    text_properties,
    vocabulary_overlap,
)
from tlcore.models.features import extract_features
from tlcore.models.registry import RANDOM_SUFFIX, build_backbone, list_backbones
from tlcore.progress import Progress, ProgressFn, no_progress

MAX_PROPERTY_ITEMS = 1000


def _sample(ds: Dataset, n: int, seed: int) -> list:
    if len(ds) <= n:
        return list(ds.items)
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), n, replace=False))
    return [ds.items[i] for i in idx]


def _properties(ds: Dataset, tokenizer, seed: int) -> dict[str, np.ndarray]:
    items = _sample(ds, MAX_PROPERTY_ITEMS, seed)
    if ds.modality == "image":
        return image_properties(items)
    if ds.modality == "text":
        return text_properties(items, tokenizer=tokenizer)
    waves = []
    for path in items:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
        waves.append((data, sr))
    return audio_properties(waves)


def run_diagnose(modality: str, source: str, target: str, *, backbone: Optional[str] = None, seed: int = 0,
                 n_permutations: int = 200, progress: ProgressFn = no_progress) -> dict:
    """The diagnose report (JSON-ready): verdict first, then scores with definitions, drift, map."""
    t0 = time.time()
    progress(Progress("data", 0, 2, "loading data"))
    a = load_dataset(source, modality)
    b = load_dataset(target, modality)
    progress(Progress("features", 0, 2, "embedding both sets"))
    bb = build_backbone(backbone, modality)
    fa = extract_features(bb, a, stage="features: source", progress=progress)
    fb = extract_features(bb, b, stage="features: target", progress=progress)
    progress(Progress("mismatch", 0, 1, "MMD, domain classifier, Fréchet, CORAL"))
    mismatch = compare_embeddings(fa, fb, seed=seed, labels_a=a.labels, labels_b=b.labels, n_permutations=n_permutations)
    progress(Progress("drift", 0, 1, "per-property two-sample tests"))
    tokenizer = getattr(bb, "tokenizer", None)
    drift = property_drift(_properties(a, tokenizer, seed), _properties(b, tokenizer, seed))
    verdict = mismatch_verdict(mismatch, drift, n_target_labels=len(b) if b.labels is not None else None)
    report = {
        "modality": modality, "backbone": bb.backbone_name, "seed": seed,  # type: ignore[attr-defined]
        "data": {"source": len(a), "target": len(b), "source_path": source, "target_path": target,
                 "source_classes": a.classes, "target_classes": b.classes},
        "verdict": verdict.to_dict(),
        "mismatch": mismatch.to_dict(),
        "drift": drift.to_dict(),
        "definitions": DEFINITIONS,
    }
    if modality == "text":
        report["text"] = {"vocabulary": vocabulary_overlap(a.items, b.items),
                          "separating_words": separating_words(a.items, b.items, k=15)}
    report["timings_s"] = {"total": round(time.time() - t0, 3)}
    progress(Progress("done", 1, 1, verdict.summary))
    return report


def _source_probs(bb, ds: Dataset) -> Optional[np.ndarray]:
    """Softmax of the backbone's own pretrained classifier (ImageNet head), when it has one."""
    import torch

    net = getattr(bb, "net", None)
    if bb.modality != "image" or not hasattr(net, "forward_features") or not getattr(bb, "pretrained", False):
        return None
    out = []
    with torch.no_grad():
        for i in range(0, len(ds), 32):
            logits = net(bb.preprocess(ds.items[i:i + 32])["pixel_values"])
            out.append(torch.softmax(logits, -1).numpy())
    return np.concatenate(out)


def candidate_backbones(modality: str) -> list[str]:
    """Registered (non-test) backbones of the modality plus each one's random-init twin (a built-in control)."""
    names = [s.name for s in list_backbones(modality)]
    return names + [n + RANDOM_SUFFIX for n in names]


def run_rank(modality: str, target: str, *, backbones: Optional[Sequence[str]] = None, seed: int = 0,
             n_boot: int = 30, validate: bool = False, validate_eval: Optional[str] = None,
             progress: ProgressFn = no_progress) -> dict:
    """Rank backbones for a labeled target set without fine-tuning; optionally validate by fine-tuning each."""
    ds = load_dataset(target, modality, require_labels=True)
    classes = ds.classes
    y = np.array([classes.index(c) for c in ds.labels])  # type: ignore[union-attr]
    names = list(backbones or candidate_backbones(modality))
    scores: dict[str, dict[str, tuple[float, float, float]]] = {}
    for i, name in enumerate(names):
        progress(Progress("rank", i, len(names), f"scoring {name}"))
        bb = build_backbone(name, modality)
        f = extract_features(bb, ds, stage=f"features: {name}", progress=progress)
        sub = dict(n_boot=n_boot, seed=seed, replace=False, fraction=0.8)
        per = {
            "logme": bootstrap_score(logme, f, y, **sub),
            "h_score": bootstrap_score(lambda a, b: h_score(a, b, inverse="shrinkage"), f, y, **sub),
            "knn_accuracy": bootstrap_score(lambda a, b: knn_cv_accuracy(a, b, seed=seed), f, y, n_boot=n_boot,
                                            seed=seed, replace=False, fraction=0.8),
        }
        probs = _source_probs(bb, ds)
        if probs is not None:
            per["leep"] = bootstrap_score(leep, probs, y, **sub)
            per["nce"] = bootstrap_score(lambda p, t: nce(p.argmax(1), t), probs, y, **sub)
        scores[name] = per
    table = rank_backbones(scores)
    report: dict = {"modality": modality, "target": target, "n": len(ds), "classes": classes, "ranking": table,
                    "advice": _advice(table)}
    if validate:
        report["validation"] = validate_ranking(modality, target, names, scores, eval_path=validate_eval, seed=seed,
                                                progress=progress)
    progress(Progress("done", 1, 1, f"best: {table[0]['backbone']}"))
    return report


def _advice(table: list[dict]) -> str:
    if len(table) < 2:
        return "Only one candidate: nothing to rank."
    best, second = table[0], table[1]
    close = [s for s in second["tied_with_best"]]
    if close:
        return (f"{best['backbone']} ranks first, but {second['backbone']} is within the interval on "
                f"{', '.join(close)}: the data cannot separate them; fine-tune both.")
    return f"{best['backbone']} ranks first on every score's interval; start with it."


def validate_ranking(modality: str, target: str, names: Sequence[str], scores: dict, *, eval_path: Optional[str],
                     seed: int, progress: ProgressFn) -> dict:
    """Fine-tune (linear probe) every candidate and correlate each score with the real accuracy (Kendall tau)."""
    import tempfile

    from tlcore.config import FinetuneConfig
    from tlcore.settings.inductive import run_finetune

    accuracy = {}
    for name in names:
        progress(Progress("validate", len(accuracy), len(names), f"fine-tuning {name}"))
        with tempfile.TemporaryDirectory() as out:
            cfg = FinetuneConfig(modality=modality, target=target, eval=eval_path, backbone=name, seed=seed,
                                 strategy="linear_probe", out=out, baselines=[])
            accuracy[name] = run_finetune(cfg)["after"]["accuracy"]
    score_names = sorted({s for per in scores.values() for s in per})
    tau = {s: kendall_tau({n: scores[n][s][0] for n in names if s in scores[n]}, accuracy) for s in score_names}
    return {"strategy": "linear_probe", "accuracy": accuracy,
            "kendall_tau": {k: (None if v != v else round(v, 3)) for k, v in tau.items()}}

