"""Which backbone will transfer best? Rank candidates on the labeled target without fine-tuning.

* classify: LogME, H-score, k-NN CV accuracy on pooled features (LEEP and NCE where the backbone has a
  pretrained classifier), each with a subsampling interval; ``validate`` fine-tunes each candidate (Kendall tau).
* ner: the same scores on word features (hidden state at each word's first sub-token) with the word's BIO tag
  as the label; intervals subsample whole sentences, since words of one sentence are not independent.
* asr: the zero-shot word and character error rate of each candidate Whisper on the target (lower is better),
  with a bootstrap interval over clips: a decoder's error rate needs no training to measure, while
  feature-based scores do not apply to sequence outputs.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from tlcore.data.dataset import Dataset
from tlcore.data.loaders import load_dataset
from tlcore.diagnostics import (
    bootstrap_score,
    h_score,
    kendall_tau,
    knn_cv_accuracy,
    leep,
    logme,
    nce,
    rank_backbones,
)
from tlcore.diagnostics.task_data import load_asr_set, load_ner_set, resolve_task
from tlcore.errors import ConfigError
from tlcore.models.features import extract_features
from tlcore.models.registry import RANDOM_SUFFIX, build_backbone, list_backbones
from tlcore.progress import Progress, ProgressFn, no_progress

SUBSAMPLE = dict(replace=False, fraction=0.8)


def candidate_backbones(modality: str, task: Optional[str] = None) -> list[str]:
    """Registered (non-test) backbones of the modality plus each one's random-init twin (a built-in control).
    For ``task="asr"``: the bundled Whisper and its random-init twin (the speech recognisers ``rank`` decodes with)."""
    if task == "asr":
        from tlcore.tasks.asr.model import DEFAULT_BACKBONE

        return [DEFAULT_BACKBONE, DEFAULT_BACKBONE + RANDOM_SUFFIX]
    names = [s.name for s in list_backbones(modality)]
    return names + [n + RANDOM_SUFFIX for n in names]


def feature_scores(features: np.ndarray, labels: np.ndarray, *, seed: int, n_boot: int,
                   groups: Optional[Sequence[np.ndarray]] = None) -> dict[str, tuple[float, float, float]]:
    """LogME, H-score (shrinkage) and k-NN CV accuracy of (features (n, d), labels (n,)), each as (point, lo, hi)
    from :func:`bootstrap_score` on 80% subsamples without replacement.

    ``groups``: row indices of each unit that must be drawn whole (the words of a sentence); the subsamples
    then draw 80% of the groups. Without groups each row is its own unit."""
    units = len(groups) if groups is not None else features.shape[0]

    def on_units(score: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[np.ndarray], float]:
        def fn(idx: np.ndarray) -> float:
            rows = idx if groups is None else np.concatenate([groups[i] for i in idx])
            return score(features[rows], labels[rows])
        return fn

    scores = {"logme": logme, "h_score": lambda a, b: h_score(a, b, inverse="shrinkage"),
              "knn_accuracy": lambda a, b: knn_cv_accuracy(a, b, seed=seed)}
    return {name: bootstrap_score(on_units(fn), np.arange(units), n_boot=n_boot, seed=seed, **SUBSAMPLE)
            for name, fn in scores.items()}


def run_rank(modality: str, target: str, *, backbones: Optional[Sequence[str]] = None, seed: int = 0,
             n_boot: int = 30, validate: bool = False, validate_eval: Optional[str] = None,
             task: Optional[str] = None, progress: ProgressFn = no_progress) -> dict:
    """Rank backbones for a labeled target set without fine-tuning (see the module docstring per task);
    ``task=None`` detects it from the data. Optionally validate by fine-tuning each (classification only)."""
    task = resolve_task(task, modality, ("target", target))
    if validate and task != "classify":
        raise ConfigError(f"validating the ranking by fine-tuning every candidate is available for classification "
                          f"only, not for task {task!r}; rank without --validate, then fine-tune the top candidates "
                          f"with `finetune --task {task}` and compare their reports")
    names = list(backbones or candidate_backbones(modality, task=task))
    if task == "ner":
        report, scores = _rank_ner(target, names, seed=seed, n_boot=n_boot, progress=progress)
    elif task == "asr":
        report, scores = _rank_asr(target, names, seed=seed, progress=progress)
    else:
        report, scores = _rank_classify(modality, target, names, seed=seed, n_boot=n_boot, progress=progress)
    table = report["ranking"]
    report["advice"] = _advice(table)
    if validate:
        report["validation"] = validate_ranking(modality, target, names, scores, eval_path=validate_eval, seed=seed,
                                                progress=progress)
    progress(Progress("done", 1, 1, f"best: {table[0]['backbone']}"))
    return report


# ---------------------------------------------------------------- classification


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


def _rank_classify(modality: str, target: str, names: list[str], *, seed: int, n_boot: int,
                   progress: ProgressFn) -> tuple[dict, dict]:
    ds = load_dataset(target, modality, require_labels=True)
    classes = ds.classes
    y = np.array([classes.index(c) for c in ds.labels])  # type: ignore[union-attr]
    scores: dict[str, dict[str, tuple[float, float, float]]] = {}
    for i, name in enumerate(names):
        progress(Progress("rank", i, len(names), f"scoring {name}"))
        bb = build_backbone(name, modality)
        f = extract_features(bb, ds, stage=f"features: {name}", progress=progress)
        per = feature_scores(f, y, seed=seed, n_boot=n_boot)
        probs = _source_probs(bb, ds)
        if probs is not None:
            sub = dict(n_boot=n_boot, seed=seed, **SUBSAMPLE)
            per["leep"] = bootstrap_score(leep, probs, y, **sub)
            per["nce"] = bootstrap_score(lambda p, t: nce(p.argmax(1), t), probs, y, **sub)
        scores[name] = per
    return {"modality": modality, "task": "classify", "target": target, "n": len(ds), "classes": classes,
            "ranking": rank_backbones(scores)}, scores


# ---------------------------------------------------------------- NER


def _rank_ner(target: str, names: list[str], *, seed: int, n_boot: int, progress: ProgressFn) -> tuple[dict, dict]:
    from tlcore.tasks.ner.data import encode, tag_vocabulary
    from tlcore.tasks.ner.model import TokenTagger

    data = load_ner_set(target, "target", require_tags=True)
    tags = data.tags
    assert tags is not None
    scores: dict[str, dict[str, tuple[float, float, float]]] = {}
    words = truncated = 0
    for i, name in enumerate(names):
        progress(Progress("rank", i, len(names), f"scoring {name}"))
        tagger = TokenTagger(build_backbone(name, "text"), tag_vocabulary(data.entity_types()), backbone_name=name)
        enc = encode(tagger.tokenizer, data.sentences, tagger.max_length)
        x, where = tagger.word_features(enc)
        y = np.array([tags[s][w] for s, w in where])
        groups = [np.flatnonzero(where[:, 0] == s) for s in range(len(data))]
        scores[name] = feature_scores(x, y, seed=seed, n_boot=n_boot, groups=[g for g in groups if g.size])
        words, truncated = len(y), enc.truncated
    return {"modality": "text", "task": "ner", "target": target, "n": len(data), "n_words": words,
            "truncated_sentences": truncated, "classes": sorted({t for seq in tags for t in seq}),
            "entity_types": data.entity_types(), "entities": data.entity_counts(), "unit": "word",
            "ranking": rank_backbones(scores)}, scores


# ---------------------------------------------------------------- ASR


def load_recognizer(name: str, *, seed: int = 0):
    """``(WhisperForConditionalGeneration, WhisperProcessor, display name)`` for a candidate name: anything
    :func:`tlcore.tasks.asr.model.resolve_whisper` accepts, optionally with ``@random`` (same architecture,
    tokenizer and generation settings, weights drawn from ``seed``: the control a pretrained model must beat)."""
    from tlcore.models.base import private_rng
    from tlcore.tasks.asr.model import load_whisper, resolve_whisper

    random = name.endswith(RANDOM_SUFFIX)
    source, display = resolve_whisper(name[: -len(RANDOM_SUFFIX)] if random else name)
    try:
        if not random:
            model, processor = load_whisper(source)
            return model, processor, display
        from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration, WhisperProcessor

        with private_rng(seed):
            model = WhisperForConditionalGeneration(WhisperConfig.from_pretrained(source))
        model.generation_config = GenerationConfig.from_pretrained(source)
        model.eval()
        return model, WhisperProcessor.from_pretrained(source), display + RANDOM_SUFFIX
    except (OSError, ValueError) as exc:  # not downloadable offline, or not a Whisper checkpoint
        raise ConfigError(f"cannot load the speech recognizer {name!r} ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'}); use whisper-tiny-en, "
                          "a folder with a Hugging Face Whisper model, or a Whisper model id while online") from None


def _lower_is_better(scores: dict[str, dict[str, tuple[float, float, float]]]) -> list[dict]:
    """:func:`rank_backbones` for error rates: rank on the negated values, report the values themselves."""
    table = rank_backbones({b: {s: (-p, -hi, -lo) for s, (p, lo, hi) in per.items()} for b, per in scores.items()})
    for row in table:
        for s in row["scores"].values():
            s["point"], s["lo"], s["hi"] = -s["point"], -s["hi"], -s["lo"]
    return table


def _rank_asr(target: str, names: list[str], *, seed: int, progress: ProgressFn) -> tuple[dict, dict]:
    from tlcore.tasks.asr.pipeline import MAX_SECONDS
    from tlcore.tasks.asr.metrics import asr_metrics
    from tlcore.tasks.asr.model import SAMPLE_RATE, load_waves, log_mel, set_encoder_window, transcribe, window_positions

    data = load_asr_set(target, "target")
    waves = load_waves(data.paths)
    longest = max(len(w) for w in waves) / SAMPLE_RATE
    positions = window_positions(min(longest, MAX_SECONDS))
    scores: dict[str, dict[str, tuple[float, float, float]]] = {}
    metrics: dict[str, dict] = {}
    for i, name in enumerate(names):
        progress(Progress("rank", i, len(names), f"transcribing with {name}"))
        model, processor, _ = load_recognizer(name, seed=seed)
        set_encoder_window(model, positions)
        hyps = transcribe(model, processor.tokenizer, log_mel(processor.feature_extractor, waves, positions))
        m = asr_metrics(data.texts, hyps, groups=data.groups, seed=seed)
        scores[name] = {"wer": (m["wer"], *m["wer_ci95"]), "cer": (m["cer"], *m["cer_ci95"])}
        metrics[name] = {**m, "examples": [{"name": n, "reference": r, "transcript": h}
                                           for n, r, h in list(zip(data.names, data.texts, hyps))[:5]]}
    return {"modality": "audio", "task": "asr", "target": target, "n": len(data), "groups": sorted(data.groups),
            "lower_is_better": True, "ranking": _lower_is_better(scores), "zero_shot": metrics,
            "scoring": "zero-shot greedy decoding; WER/CER on normalised text with 95% bootstrap intervals over clips"}, scores


# ---------------------------------------------------------------- advice and validation


SCORE_LABELS = {"logme": "LogME", "h_score": "H-score", "knn_accuracy": "k-NN accuracy", "leep": "LEEP", "nce": "NCE",
                "wer": "WER", "cer": "CER"}


def _advice(table: list[dict]) -> str:
    """One line: which candidate to start with, or why the data cannot say (overlapping intervals, or scores that
    favour different candidates)."""
    if len(table) < 2:
        return "Only one candidate: nothing to rank."
    best, second = table[0], table[1]
    favourite: dict[str, list[str]] = {}
    for name in best["scores"]:
        top = min(table, key=lambda row: row["scores"].get(name, {}).get("rank", float("inf")))
        favourite.setdefault(top["backbone"], []).append(SCORE_LABELS.get(name, name))
    if len(favourite) > 1:
        views = "; ".join(f"{', '.join(labels)} favour{'s' * (len(labels) == 1)} {b}" for b, labels in favourite.items())
        return (f"{best['backbone']} ranks first on the mean rank, but the scores disagree on the best backbone "
                f"({views}): fine-tune the top candidates before choosing.")
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
