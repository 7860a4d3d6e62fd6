"""Speech recognition adapted to an accent: fine-tune Whisper on a few transcribed clips of the target speech
and measure word/character error rates before and after (``--task asr``).

"before" is the pretrained Whisper as it is; "after" is the adapted model; both decode the same eval split
greedily, with the same short encoder window (see :mod:`tlcore.tasks.asr.model`). With ``cfg.source`` (a set
in the source accent) both are scored on it too, so forgetting shows. Strategies: ``decoder``, ``full``,
``lora``. The run folder holds ``model/`` (a standard Whisper folder: ``save_pretrained`` + processor),
``report.json``, ``README.md`` and ``checkpoints/`` while training.

    report = run(FinetuneConfig(modality="audio", task="asr", target="demo/target", eval="demo/eval",
                                source="demo/source", strategy="decoder", out="runs/asr"))
    predict("runs/asr", ["clip.wav"])  # [{"path": ..., "transcript": ...}]
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from tlcore.config import FinetuneConfig
from tlcore.data.audio import clip_seconds
from tlcore.data.overlap import overlap_warnings, split_overlaps
from tlcore.data.split import stored_split
from tlcore.errors import ConfigError, DataError
from tlcore.evaluation.policy import alert, transfer_alerts
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.reporting.writer import begin_run
from tlcore.tasks.asr import SPEC
from tlcore.tasks.asr.data import AsrData, load_asr_dataset
from tlcore.tasks.asr.metrics import asr_metrics, changed_utterances, paired_wer_difference, utterance_errors
from tlcore.tasks.asr.model import (
    DEFAULT_LR,
    STRATEGY_HELP,
    encode_targets,
    finalize_strategy,
    load_waves,
    load_whisper,
    log_mel,
    prepare_strategy,
    prompt_ids,
    resolve_whisper,
    set_encoder_window,
    transcribe,
    window_positions,
)
from tlcore.tasks.asr.train import Utterances, encoder_states, train_asr
from tlcore.training.trainer import TrainConfig

MARKER = "asr.json"  # in model/: tells predict (and the CLI) that a run folder holds a speech recognizer
SCRATCH_NOTE = ("no scratch baseline: a speech recognizer trained from random initialisation on a few minutes of "
                "audio transcribes nothing useful, so it would be a strawman, not a comparison")
MAX_SECONDS = 30.0


def _load(path: Optional[str], what: str, cfg: FinetuneConfig) -> Optional[AsrData]:
    if not path:
        return None
    try:
        return load_asr_dataset(path, on_bad_file=cfg.on_bad_file)
    except DataError as exc:
        raise DataError(f"{what} data: {exc}") from None


def hold_out(data: AsrData, fraction: float, *, seed: int = 0, by_group: Optional[str] = None) -> tuple[list[int], list[int]]:
    """(keep, held) indices: whole groups (speakers) are held out when ``by_group`` names a column with >= 2
    values, else single utterances; about ``fraction`` of the utterances are held, at least one and not all."""
    rng = np.random.default_rng(seed)
    n = len(data)
    if n < 2:
        raise DataError(f"{data.origin}: {n} clip(s); at least 2 are needed to hold some out")
    values = data.groups.get(by_group or "", [])
    if by_group and len(set(values)) >= 2:
        order = [sorted(set(values))[i] for i in rng.permutation(len(set(values)))]
        held_groups: set[str] = set()
        for g in order:
            if sum(v in held_groups for v in values) >= fraction * n:
                break
            if len(held_groups) + 1 < len(order):
                held_groups.add(g)
        held = [i for i, v in enumerate(values) if v in held_groups]
    else:
        held = sorted(rng.permutation(n)[:min(n - 1, max(1, round(fraction * n)))].tolist())
    keep = [i for i in range(n) if i not in set(held)]
    return keep, sorted(held)


def _eval_split(target: AsrData, fraction: float) -> tuple[AsrData, AsrData, Path]:
    """Hold out part of the target once (speaker-disjoint when a speaker column exists), stored and reused."""
    keep, held, path = stored_split(f"asr-{target.content_hash()}", fraction,
                                    lambda: hold_out(target, fraction, seed=0, by_group="speaker"))
    return target.subset(keep), target.subset(held), path


def _score(data: AsrData, hyps: list[str], seed: int) -> dict:
    return asr_metrics(data.texts, hyps, groups=data.groups, seed=seed)


def check_config(cfg: FinetuneConfig) -> None:
    """Speech recognition's own rules: transcribed target clips (its strategies are checked from the spec)."""
    if not cfg.target:
        raise ConfigError(SPEC.target_hint)


def run(cfg: FinetuneConfig, *, progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
        resume: bool = False) -> dict:
    """One speech recognition transfer run; writes ``cfg.out`` (model/, report.json, README.md); returns the report."""
    progress = progress or no_progress
    should_cancel = should_cancel or never_cancel
    writer = begin_run(cfg, resume=resume)   # --out is checked and staged there
    timings: dict[str, float] = {}
    torch.manual_seed(cfg.seed)

    # ---- data
    t0 = time.time()
    progress(Progress("data", 0, 1, "loading data"))
    target = _load(cfg.target, "target", cfg)
    assert target is not None
    source = _load(cfg.source, "source", cfg)
    if cfg.eval:
        eval_data, train_data, split_file = _load(cfg.eval, "eval", cfg), target, None
    else:
        train_data, eval_data, split_file = _eval_split(target, cfg.eval_fraction)
    assert eval_data is not None
    keep, overlap = split_overlaps(eval_data.paths, train_data.paths, train_data.names, kind="file",
                                   eval_given=bool(cfg.eval), others={"source": source and source.paths})
    train_data = train_data.subset(keep)
    fit_idx, val_idx = (list(range(len(train_data))), [])
    if cfg.val_fraction > 0 and len(train_data) >= 8:
        fit_idx, val_idx = hold_out(train_data, cfg.val_fraction, seed=cfg.seed)
    fit_data, val_data = train_data.subset(fit_idx), train_data.subset(val_idx)
    problems = [str(p) for d in (target, source, eval_data) if d is not None for p in d.problems]
    all_sets = [d for d in (train_data, eval_data, source) if d is not None]
    longest = max(max(clip_seconds(d.paths)) for d in all_sets)
    warnings: list[str] = []
    if longest > MAX_SECONDS:
        warnings.append(f"clips longer than {MAX_SECONDS:.0f} s are cut to {MAX_SECONDS:.0f} s (longest: {longest:.1f} s)")
    positions = window_positions(min(longest, MAX_SECONDS))
    progress(Progress("data", 1, 1, f"{len(fit_data)} train / {len(val_data)} val / {len(eval_data)} eval clips"))

    # ---- model and inputs
    folder, backbone_name = resolve_whisper(cfg.backbone)
    model, processor = load_whisper(folder)
    set_encoder_window(model, positions)
    fe, tok = processor.feature_extractor, processor.tokenizer
    feats = {name: log_mel(fe, load_waves(d.paths), positions)
             for name, d in (("fit", fit_data), ("val", val_data), ("eval", eval_data), ("source", source)) if d is not None}
    timings["data"] = time.time() - t0

    # ---- before
    t0 = time.time()
    progress(Progress("before", 0, 1, "transcribing with the pretrained model"))

    def transcripts(model) -> tuple[list[str], Optional[list[str]]]:
        """The model's transcripts of the eval set and of the source set (when given)."""
        return tuple(transcribe(model, tok, feats[name], should_cancel=should_cancel) if name in feats else None
                     for name in ("eval", "source"))  # type: ignore[return-value]

    before_eval, before_source = transcripts(model)
    timings["before"] = time.time() - t0

    # ---- adapt
    t0 = time.time()
    prepared = prepare_strategy(model, cfg.strategy, lora_r=cfg.lora_r, seed=cfg.seed)
    trainable = int(sum(p.numel() for p in prepared.model.parameters() if p.requires_grad))
    prompt = prompt_ids(tok, model.generation_config)
    eot = int(model.generation_config.eos_token_id)

    def utterances(name: str, data: AsrData) -> Utterances:
        x = encoder_states(model, feats[name]) if prepared.frozen_encoder else feats[name]
        return Utterances(x, encode_targets(tok, data.texts, prompt), encoded=prepared.frozen_encoder, prompt=prompt, eot=eot)

    lr = cfg.lr or DEFAULT_LR[cfg.strategy]
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr, patience=cfg.patience, seed=cfg.seed, freeze_bn=False)
    result = train_asr(prepared.model, utterances("fit", fit_data), utterances("val", val_data) if len(val_data) else None,
                       config=tcfg, train_modules=prepared.train_modules, checkpoint_dir=writer.checkpoints("after"),
                       resume=resume, stage="train", progress=progress, should_cancel=should_cancel)
    model = finalize_strategy(prepared, cfg.strategy)
    timings["train"] = time.time() - t0

    # ---- after
    t0 = time.time()
    progress(Progress("eval", 0, 1, "transcribing with the adapted model"))
    after_eval, after_source = transcripts(model)
    timings["after"] = time.time() - t0

    # ---- report
    before, after = _score(eval_data, before_eval, cfg.seed), _score(eval_data, after_eval, cfg.seed)
    e_before, e_after = utterance_errors(eval_data.texts, before_eval), utterance_errors(eval_data.texts, after_eval)
    comparison = paired_wer_difference(e_before, e_after, seed=cfg.seed)
    warnings += transfer_alerts({"before": comparison}, metric="WER", higher_is_better=False)
    warnings += overlap_warnings(overlap, len(eval_data))
    source_eval = None
    if source is not None:
        s_before, s_after = utterance_errors(source.texts, before_source), utterance_errors(source.texts, after_source)
        source_eval = {"before": _score(source, before_source, cfg.seed), "after": _score(source, after_source, cfg.seed),
                       "comparison": paired_wer_difference(s_before, s_after, seed=cfg.seed)}
        warnings += _forgetting_warnings(source_eval["comparison"])
    if problems:
        warnings.append(f"{len(problems)} file(s)/row(s) skipped: see data.problems")
    speakers = {name: sorted(set(d.groups["speaker"])) for name, d in (("train", train_data), ("eval", eval_data))
                if "speaker" in d.groups}
    report = {
        "modality": "audio", "task": "asr", "backbone": backbone_name, "strategy": cfg.strategy, "seed": cfg.seed,
        "data": {"train": len(train_data), "val": len(val_data), "eval": len(eval_data), "source": len(source) if source else 0,
                 "speakers": speakers, "eval_overlap": overlap, "groups": sorted(eval_data.groups), "problems": problems,
                 "eval_split_file": str(split_file) if split_file else None,
                 "target": cfg.target, "source_path": cfg.source, "eval_path": cfg.eval},
        "before": {**before, "kind": "the pretrained Whisper as it is (greedy decoding, English)"},
        "after": after,
        "baselines": {},
        "comparisons": {"before": comparison},
        "source_eval": source_eval,
        "warnings": warnings,
        "flipped": {"changed": changed_utterances(eval_data.names, eval_data.texts, before_eval, after_eval)},
        "eval_predictions": {"names": eval_data.names, "reference": eval_data.texts, "before": before_eval, "after": after_eval},
        "training": {"epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "best_val_loss": result.best("val_loss"),
                     "history": result.history, "stopped_early": result.stopped_early,
                     "resumed_from_epoch": result.resumed_from_epoch, "lr": lr, "batch_size": cfg.batch_size,
                     "strategy_help": STRATEGY_HELP[cfg.strategy],
                     "trainable_params": trainable},
        "scoring": "WER/CER on normalised text: lower case, numbers as words, punctuation removed (tlcore.tasks.asr.metrics)",
        "window": {"encoder_positions": positions, "seconds": positions / 50, "longest_clip_s": round(longest, 3)},
        "timings_s": timings,
    }
    progress(Progress("save", 0, 1, "saving the model"))

    def save_model(folder: Path) -> None:
        set_encoder_window(model, None)  # back to Whisper's 30 s table: model/ is a standard folder
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        (folder / MARKER).write_text(json.dumps({"task": "asr", "backbone": backbone_name, "strategy": cfg.strategy}))

    report = writer.finish(report, setting="inductive", save_model=save_model,
                           skipped={"scratch": SCRATCH_NOTE, "knn": "k-NN is not defined for speech recognition"})
    progress(Progress("done", 1, 1, f"WER {after['wer']:.3f} after (before {before['wer']:.3f})"))
    return report


def _forgetting_warnings(d: dict) -> list[dict]:
    lo, hi = d["ci95"]
    if lo > 0:
        return [alert("forgetting", f"forgetting: WER on the source accent rose by {100 * d['difference']:.1f} points "
                      f"(95% CI {100 * lo:.1f} to {100 * hi:.1f})", against="source accent",
                      difference=float(d["difference"]), ci95=[float(lo), float(hi)])]
    return []


# ---------------------------------------------------------------- prediction

def model_dir(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    return run_dir / "model" if (run_dir / "model").is_dir() else run_dir


def is_asr_run(run_dir: str | Path) -> bool:
    """True when ``run_dir`` (or its ``model/``) was written by an ASR run."""
    return (model_dir(run_dir) / MARKER).is_file()


def load_model(run_dir: str | Path):
    """``(model, processor)`` of an ASR run folder."""
    folder = model_dir(run_dir)
    if not is_asr_run(run_dir):
        raise ConfigError(f"{run_dir} is not a speech recognition run folder (no model/{MARKER})")
    return load_whisper(folder)


def predict(run_dir: str | Path, audio_paths: Sequence[str | Path], *, model=None, batch_size: int = 16) -> list[dict]:
    """Transcribe audio files with the run's adapted Whisper: ``[{"input", "path", "transcript", "seconds",
    "truncated"}]`` in input order (``input`` is the file name).
    Clips longer than 30 s are cut to their first 30 s."""
    whisper, processor = model if model is not None else load_model(run_dir)
    paths = [str(p) for p in audio_paths]
    if not paths:
        return []
    waves = load_waves(paths)
    seconds = [len(w) / 16000 for w in waves]
    positions = window_positions(min(max(seconds), MAX_SECONDS))
    set_encoder_window(whisper, positions)
    try:
        texts = transcribe(whisper, processor.tokenizer, log_mel(processor.feature_extractor, waves, positions),
                           batch_size=batch_size)
    finally:
        set_encoder_window(whisper, None)
    return [{"input": Path(p).name, "path": p, "transcript": t, "seconds": round(s, 3), "truncated": s > MAX_SECONDS}
            for p, t, s in zip(paths, texts, seconds)]


def predict_input(run_dir: str | Path, value: str | Path, *, model=None) -> list[dict]:
    """``predict`` for a CLI ``--input``: an audio file, a folder of audio files (recursively), or a metadata.csv /
    ASR folder (then each row also gets its ``reference`` transcript)."""
    from tlcore.tasks.asr.data import AUDIO_EXT

    path = Path(value).expanduser()
    if not path.exists():
        raise DataError(f"{value}: no such file or folder")
    if path.is_file() and path.suffix.lower() in AUDIO_EXT:
        return predict(run_dir, [path], model=model)
    if path.suffix.lower() == ".csv" or (path.is_dir() and any(path.glob("*.csv"))):
        data = load_asr_dataset(path)
        rows = predict(run_dir, data.paths, model=model)
        return [{**r, "reference": ref} for r, ref in zip(rows, data.texts)]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXT)
        if not files:
            raise DataError(f"{path}: no audio files ({', '.join(sorted(AUDIO_EXT))})")
        return predict(run_dir, files, model=model)
    raise DataError(f"{path.name}: not an audio file ({', '.join(sorted(AUDIO_EXT))}), folder or .csv")
