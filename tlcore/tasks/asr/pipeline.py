"""Speech recognition adapted to an accent: fine-tune Whisper on a few transcribed clips of the target speech
and measure word/character error rates before and after (``--task asr``).

"before" is the pretrained Whisper as it is; "after" is the adapted model; both decode the same eval split
greedily, with the same short encoder window (see :mod:`tlcore.tasks.asr.model`). With ``cfg.source`` (a set
in the source accent) both are scored on it too, so forgetting shows. Strategies: ``decoder``, ``full``,
``lora``. The run folder holds ``model/`` (a standard Whisper folder: ``save_pretrained`` + processor),
``report.json``, ``README.md`` and ``checkpoints/`` while training.

    report = tlcore.finetune(modality="audio", task="asr", target="demo/target", eval="demo/eval",
                             source="demo/source", strategy="decoder", out="runs/asr")
    predict("runs/asr", ["clip.wav"])  # [{"path": ..., "transcript": ...}]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tlcore.config import FinetuneConfig
from tlcore.data.audio import clip_seconds
from tlcore.data.overlap import overlap_warnings, split_overlaps
from tlcore.data.split import stored_split
from tlcore.errors import ConfigError, DataError
from tlcore.evaluation.policy import alert
from tlcore.progress import Progress
from tlcore.tasks.asr import SPEC
from tlcore.tasks.asr.data import AsrData, load_asr_dataset
from tlcore.tasks.asr.metrics import asr_metrics, changed_utterances, paired_wer_difference, utterance_errors
from tlcore.tasks.asr.model import (
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
from tlcore.tasks.job import Outcome, TaskJob
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


class Job(TaskJob):
    """Speech recognition's stages of an inductive run (module docstring), called by
    :func:`tlcore.settings.pipeline.run_stages`."""

    skipped = {"scratch": SCRATCH_NOTE, "knn": "k-NN is not defined for speech recognition"}

    def load(self) -> str:
        cfg = self.cfg
        target = _load(cfg.target, "target", cfg)
        assert target is not None
        self.source = source = _load(cfg.source, "source", cfg)
        self.split_file = None
        if cfg.eval:
            eval_data, train_data = _load(cfg.eval, "eval", cfg), target
        else:
            train_data, eval_data, self.split_file = _eval_split(target, cfg.eval_fraction)
        assert eval_data is not None
        keep, self.overlap = split_overlaps(eval_data.paths, train_data.paths, train_data.names, kind="file",
                                            eval_given=bool(cfg.eval), others={"source": source and source.paths})
        self.train, self.eval = train_data.subset(keep), eval_data
        fit_idx, val_idx = (list(range(len(self.train))), [])
        if cfg.val_fraction > 0 and len(self.train) >= 8:
            fit_idx, val_idx = hold_out(self.train, cfg.val_fraction, seed=cfg.seed)
        self.fit, self.val = self.train.subset(fit_idx), self.train.subset(val_idx)
        self.problems = [str(p) for d in (target, source, eval_data) if d is not None for p in d.problems]
        self.longest = max(max(clip_seconds(d.paths)) for d in (self.train, eval_data, source) if d is not None)
        if self.longest > MAX_SECONDS:
            self.ctx.warnings.append(f"clips longer than {MAX_SECONDS:.0f} s are cut to {MAX_SECONDS:.0f} s "
                                     f"(longest: {self.longest:.1f} s)")
        self.ctx.warnings += overlap_warnings(self.overlap, len(eval_data))
        self.ctx.warnings += [f"{len(self.problems)} file(s)/row(s) skipped: see data.problems"] * bool(self.problems)
        self.positions = window_positions(min(self.longest, MAX_SECONDS))
        folder, self.backbone_name = resolve_whisper(cfg.backbone)
        self.model, self.processor = load_whisper(folder)
        set_encoder_window(self.model, self.positions)
        fe = self.processor.feature_extractor
        self.feats = {name: log_mel(fe, load_waves(d.paths), self.positions)
                      for name, d in (("fit", self.fit), ("val", self.val), ("eval", eval_data), ("source", source))
                      if d is not None}
        return f"{len(self.fit)} train / {len(self.val)} val / {len(eval_data)} eval clips"

    def _transcribe(self, name: str) -> Optional[list[str]]:
        if name not in self.feats:
            return None
        return transcribe(self.model, self.processor.tokenizer, self.feats[name], should_cancel=self.ctx.should_cancel)

    def before(self) -> Outcome:
        self.source_before = self._transcribe("source")
        return Outcome(self._transcribe("eval"), kind="the pretrained Whisper as it is (greedy decoding, English)")

    def after(self) -> Outcome:
        cfg, model, tok = self.cfg, self.model, self.processor.tokenizer
        prepared = prepare_strategy(model, cfg.strategy, lora_r=cfg.lora_r, seed=cfg.seed)
        trainable = int(sum(p.numel() for p in prepared.model.parameters() if p.requires_grad))
        prompt = prompt_ids(tok, model.generation_config)
        eot = int(model.generation_config.eos_token_id)

        def utterances(name: str, data: AsrData) -> Utterances:
            x = encoder_states(model, self.feats[name]) if prepared.frozen_encoder else self.feats[name]
            return Utterances(x, encode_targets(tok, data.texts, prompt), encoded=prepared.frozen_encoder, prompt=prompt,
                              eot=eot)

        lr = cfg.lr or self.default_lr()
        tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr, patience=cfg.patience, seed=cfg.seed,
                           freeze_bn=False)
        result = train_asr(prepared.model, utterances("fit", self.fit),
                           utterances("val", self.val) if len(self.val) else None, config=tcfg,
                           train_modules=prepared.train_modules, checkpoint_dir=self.ctx.checkpoints("after"),
                           resume=self.ctx.resume, stage="train", progress=self.ctx.progress,
                           should_cancel=self.ctx.should_cancel)
        self.model = finalize_strategy(prepared, cfg.strategy)
        self.ctx.progress(Progress("eval", 0, 1, "transcribing with the adapted model"))
        self.source_after = self._transcribe("source")
        return Outcome(self._transcribe("eval"), {
            "epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "best_val_loss": result.best("val_loss"),
            "history": result.history, "stopped_early": result.stopped_early,
            "resumed_from_epoch": result.resumed_from_epoch, "lr": lr, "batch_size": cfg.batch_size,
            "strategy_help": STRATEGY_HELP[cfg.strategy], "trainable_params": trainable})

    def baseline(self, name: str) -> Outcome:
        raise ConfigError(f"speech recognition has no {name} baseline: {self.skipped.get(name, 'not defined')}")

    def score(self, pred: list[str]) -> dict:
        return _score(self.eval, pred, self.cfg.seed)

    def compare(self, after: list[str], other: list[str]) -> dict:
        texts = self.eval.texts
        return paired_wer_difference(utterance_errors(texts, other), utterance_errors(texts, after), seed=self.cfg.seed)

    def report(self, outcomes: dict[str, Outcome]) -> dict:
        cfg, source, eval_data = self.cfg, self.source, self.eval
        source_eval = None
        if source is not None:
            s_before = utterance_errors(source.texts, self.source_before)
            s_after = utterance_errors(source.texts, self.source_after)
            source_eval = {"before": _score(source, self.source_before, cfg.seed),
                           "after": _score(source, self.source_after, cfg.seed),
                           "comparison": paired_wer_difference(s_before, s_after, seed=cfg.seed)}
            self.ctx.warnings += _forgetting_warnings(source_eval["comparison"])
        speakers = {name: sorted(set(d.groups["speaker"])) for name, d in (("train", self.train), ("eval", eval_data))
                    if "speaker" in d.groups}
        before, after = outcomes["before"].pred, outcomes["after"].pred
        return {
            "data": {"train": len(self.train), "val": len(self.val), "eval": len(eval_data),
                     "source": len(source) if source else 0, "speakers": speakers, "eval_overlap": self.overlap,
                     "groups": sorted(eval_data.groups), "problems": self.problems,
                     "eval_split_file": str(self.split_file) if self.split_file else None,
                     "target": cfg.target, "source_path": cfg.source, "eval_path": cfg.eval},
            "source_eval": source_eval,
            "flipped": {"changed": changed_utterances(eval_data.names, eval_data.texts, before, after)},
            "eval_predictions": {"names": eval_data.names, "reference": eval_data.texts, "before": before,
                                 "after": after},
            "scoring": "WER/CER on normalised text: lower case, numbers as words, punctuation removed "
                       "(tlcore.tasks.asr.metrics)",
            "window": {"encoder_positions": self.positions, "seconds": self.positions / 50,
                       "longest_clip_s": round(self.longest, 3)},
        }

    def save_model(self, folder: Path) -> None:
        set_encoder_window(self.model, None)  # back to Whisper's 30 s table: model/ is a standard folder
        self.model.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        (folder / MARKER).write_text(json.dumps({"task": "asr", "backbone": self.backbone_name,
                                                 "strategy": self.cfg.strategy}))


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
