"""Speech recognition before training: the mismatch report of two sets of transcribed clips (acoustic mismatch,
speaking rate, out-of-vocabulary words), and candidate recognizers (Whisper or CTC models) ranked by their zero-shot
error rates."""

from __future__ import annotations

from typing import Optional

import numpy as np
from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration, WhisperProcessor

from tlcore.data.audio import clip_seconds, load_audio
from tlcore.data.dataset import Dataset
from tlcore.diagnostics import DEFINITIONS as SHARED_DEFINITIONS
from tlcore.diagnostics import compare_embeddings, embedding_map, mismatch_verdict, property_drift
from tlcore.diagnostics.diagnose import embed_pair, item_properties, report_head, require_items
from tlcore.diagnostics.rank import lower_is_better
from tlcore.diagnostics.task_shift import transcript_properties, transcript_vocabulary
from tlcore.diagnostics.task_verdict import recommend_asr, task_verdict
from tlcore.errors import ConfigError, DataError
from tlcore.models.base import private_rng
from tlcore.models.registry import RANDOM_SUFFIX
from tlcore.progress import Progress, ProgressFn
from tlcore.tasks.asr import SPEC
from tlcore.tasks.asr.data import load_asr_dataset
from tlcore.tasks.asr.kinds import kind_of
from tlcore.tasks.asr.metrics import asr_metrics
from tlcore.tasks.asr.model import DEFAULT_BACKBONE, SAMPLE_RATE, load_waves, resolve_backbone
from tlcore.tasks.asr.recognizer import Recognizer
from tlcore.tasks.asr.whisper import WhisperRecognizer

#: One-line definitions of speech recognition's own measures, shown next to the numbers like ``DEFINITIONS``.
DEFINITIONS_ASR = {
    "oov_words": "Share of the target's running transcript words (normalised as for WER scoring) that never "
    "occur in the source transcripts.",
    "utterance_length": "Words per clip and words per second of audio (speaking rate), tested for drift with "
    "the other per-clip properties.",
}


def load_asr_set(path: str, role: str):
    """``AsrData`` of one set (unusable rows are skipped and listed in ``problems``)."""
    try:
        data = load_asr_dataset(path, on_bad_file="skip")
    except DataError as exc:
        raise DataError(f"{role} data: {exc}") from None
    require_items(len(data), role, "transcribed clips")
    return data


def candidates(modality: str) -> list[str]:
    """The bundled Whisper and its random-init twin (the speech recognisers ``rank`` decodes with)."""
    return [DEFAULT_BACKBONE, DEFAULT_BACKBONE + RANDOM_SUFFIX]


def diagnose(modality: str, source: str, target: str, *, backbone: Optional[str], seed: int, n_permutations: int,
             progress: ProgressFn, map_method: str = "pca") -> dict:
    """Clips embedded like classification audio; audio properties plus words per clip and speaking rate drift;
    the out-of-vocabulary rate of the target transcripts w.r.t. the source transcripts."""
    sa, sb = load_asr_set(source, "source"), load_asr_set(target, "target")
    a = Dataset("audio", list(sa.paths), origin=sa.origin, names=list(sa.names))
    b = Dataset("audio", list(sb.paths), origin=sb.origin, names=list(sb.names))
    bb, fa, fb = embed_pair("audio", a, b, backbone, progress)
    progress(Progress("mismatch", 0, 1, "MMD, domain classifier, Fréchet, CORAL"))
    mismatch = compare_embeddings(fa, fb, seed=seed, n_permutations=n_permutations, include_map=False)
    group = next((g for g in ("accent", "speaker") if g in sa.groups and g in sb.groups), None)
    mismatch.map = embedding_map(fa, fb, labels_a=sa.groups.get(group) if group else None,
                                 labels_b=sb.groups.get(group) if group else None, seed=seed, method=map_method)
    progress(Progress("drift", 0, 1, "per-property two-sample tests"))
    length_a = transcript_properties(sa.texts, clip_seconds(sa.paths))
    length_b = transcript_properties(sb.texts, clip_seconds(sb.paths))
    drift = property_drift({**item_properties(a, None, seed), **length_a}, {**item_properties(b, None, seed), **length_b})
    vocabulary = transcript_vocabulary(sa.texts, sb.texts)
    verdict = task_verdict(mismatch_verdict(mismatch, drift, n_target_labels=len(sb)), recommend_asr,
                           n_target_labels=len(sb), vocabulary=vocabulary)
    return {
        **report_head("audio", SPEC.name, bb, seed),
        "data": {"source": len(sa), "target": len(sb), "source_path": source, "target_path": target,
                 "source_classes": [], "target_classes": [], "map_label": group, "unit": "clips",
                 "source_groups": {g: sorted(set(v)) for g, v in sa.groups.items()},
                 "target_groups": {g: sorted(set(v)) for g, v in sb.groups.items()},
                 "problems": [str(p) for p in sa.problems + sb.problems]},
        "verdict": verdict.to_dict(),
        "mismatch": mismatch.to_dict(),
        "drift": drift.to_dict(),
        "definitions": {**SHARED_DEFINITIONS, **DEFINITIONS_ASR},
        "asr": {"vocabulary": vocabulary.to_dict(),
                "utterance_length": {name: {"source": float(np.mean(length_a[name])), "target": float(np.mean(length_b[name]))}
                                     for name in length_a}},
    }


def load_recognizer(name: str, *, seed: int = 0) -> tuple[Recognizer, str]:
    """The speech recognizer of a candidate name and its display name: anything
    :func:`tlcore.tasks.asr.model.resolve_backbone` accepts (a Whisper or a CTC model), or a Whisper's ``@random``
    twin (same architecture, tokenizer and generation settings, weights drawn from ``seed``: the control a
    pretrained model must beat)."""
    random = name.endswith(RANDOM_SUFFIX)
    source, display = resolve_backbone(name[: -len(RANDOM_SUFFIX)] if random else name)
    try:
        kind = kind_of(source, display)
        if not random:
            return kind.load(source), display
        if kind is not WhisperRecognizer:
            raise ConfigError(f"{name}: a random-init twin is built for Whisper models only; rank {display} itself")
        with private_rng(seed):
            model = WhisperForConditionalGeneration(WhisperConfig.from_pretrained(source))
        model.generation_config = GenerationConfig.from_pretrained(source)
        model.eval()
        return WhisperRecognizer(model, WhisperProcessor.from_pretrained(source)), display + RANDOM_SUFFIX
    except (OSError, ValueError) as exc:  # not downloadable offline, or a damaged checkpoint
        raise ConfigError(f"cannot load the speech recognizer {name!r} ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'}); use whisper-tiny-en, "
                          "a folder with a Whisper or CTC model, or a model id of either while online") from None


def rank(modality: str, target: str, names: list[str], *, seed: int, n_boot: int, progress: ProgressFn) -> tuple[dict, dict]:
    """The zero-shot WER and CER of each candidate recognizer (Whisper or CTC) on the target (lower is better), with
    a bootstrap interval over clips: a decoder's error rate needs no training, feature scores do not fit sequence
    outputs."""
    data = load_asr_set(target, "target")
    waves = {SAMPLE_RATE: load_waves(data.paths)}
    scores: dict[str, dict[str, tuple[float, float, float]]] = {}
    metrics: dict[str, dict] = {}
    for i, name in enumerate(names):
        progress(Progress("rank", i, len(names), f"transcribing with {name}"))
        recognizer, _ = load_recognizer(name, seed=seed)
        rate = recognizer.sample_rate
        if rate not in waves:
            waves[rate] = [load_audio(p, rate) for p in data.paths]
        hyps = recognizer.transcribe_waves(waves[rate])
        m = asr_metrics(data.texts, hyps, groups=data.groups, seed=seed)
        scores[name] = {"wer": (m["wer"], *m["wer_ci95"]), "cer": (m["cer"], *m["cer_ci95"])}
        metrics[name] = {**m, "examples": [{"name": n, "reference": r, "transcript": h}
                                           for n, r, h in list(zip(data.names, data.texts, hyps))[:5]]}
    return {"modality": "audio", "task": SPEC.name, "target": target, "n": len(data), "groups": sorted(data.groups),
            "lower_is_better": True, "ranking": lower_is_better(scores), "zero_shot": metrics,
            "scoring": "zero-shot greedy decoding; WER/CER on normalised text with 95% bootstrap intervals over clips"}, scores
