"""Speech recognition adapted to an accent: fine-tune a speech recognizer on a few transcribed clips of the target
speech and measure word/character error rates before and after (``--task asr``).

The recognizer is Whisper (the bundled tiny.en, a Whisper folder or hub id) or an encoder with a CTC head (a
wav2vec2-style folder or hub id saved with its processor); its kind is read from the model's config
(:mod:`tlcore.tasks.asr.kinds`) and does what is specific to it (:mod:`~tlcore.tasks.asr.whisper`,
:mod:`~tlcore.tasks.asr.ctc`); this job does the rest once for both: data, splits, the same metrics, comparisons and
report. "before" is the pretrained recognizer as it is; "after" is the adapted model; both decode the same eval split
greedily. With ``cfg.source`` (a set in the source accent) both are scored on it too, so forgetting shows.
Strategies: ``decoder`` (Whisper only), ``full``, ``lora``. The run folder holds ``model/`` (a standard
``save_pretrained`` folder of the model and its processor), ``report.json``, ``README.md`` and ``checkpoints/`` while
training.

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
from tlcore.data.audio import clip_seconds, load_audio
from tlcore.data.overlap import overlap_warnings, split_overlaps
from tlcore.data.split import stored_split
from tlcore.errors import ConfigError, DataError
from tlcore.evaluation.policy import alert
from tlcore.progress import Progress
from tlcore.tasks.asr import SPEC
from tlcore.tasks.asr.data import AsrData, load_asr_dataset
from tlcore.tasks.asr.kinds import check_strategy, kind_of, loaded_recognizer, local_kind, recognizer_for
from tlcore.tasks.asr.metrics import asr_metrics, changed_utterances, paired_wer_difference, utterance_errors
from tlcore.tasks.asr.model import DEFAULT_BACKBONE, resolve_backbone
from tlcore.tasks.asr.recognizer import MAX_SECONDS
from tlcore.tasks.job import Outcome, TaskJob
from tlcore.training.trainer import TrainConfig

MARKER = "asr.json"  # in model/: tells predict (and the CLI) that a run folder holds a speech recognizer
SCRATCH_NOTE = ("no scratch baseline: a speech recognizer trained from random initialisation on a few minutes of "
                "audio transcribes nothing useful, so it would be a strawman, not a comparison")


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
    """Speech recognition's own rules: transcribed target clips, and a strategy the recognizer's kind can train when
    the kind is known without the network (the bundled Whisper, a local folder; a hub id is checked when the run
    starts, before any data or weights load)."""
    if not cfg.target:
        raise ConfigError(SPEC.target_hint)
    kind = local_kind(cfg.backbone)
    if kind is not None:
        check_strategy(kind, cfg.strategy, str(cfg.backbone or DEFAULT_BACKBONE))


def default_strategy(backbone: Optional[str]) -> str:
    """The strategy a run takes when none is given (the CLI): the first of the backbone's kind (Whisper: decoder,
    CTC: full) when it is known without the network, else the task's default."""
    try:
        kind = local_kind(backbone)
    except ConfigError:       # the config's validation refuses it, in the same words
        kind = None
    return kind.strategies[0] if kind else SPEC.default_strategy


class Job(TaskJob):
    """Speech recognition's stages of an inductive run (module docstring), called by
    :func:`tlcore.settings.pipeline.run_stages`."""

    skipped = {"scratch": SCRATCH_NOTE, "knn": "k-NN is not defined for speech recognition"}

    def load(self) -> str:
        cfg = self.cfg
        source_path, self.backbone_name = resolve_backbone(cfg.backbone)
        self.kind = kind_of(source_path, self.backbone_name)     # the config only: a wrong strategy costs nothing
        check_strategy(self.kind, cfg.strategy, self.backbone_name)
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
        self.recognizer = self.kind.load(source_path)
        sets = {"fit": self.fit, "val": self.val, "eval": eval_data, "source": source}
        self.recognizer.prepare({name: d for name, d in sets.items() if d is not None}, self.longest)
        return f"{len(self.fit)} train / {len(self.val)} val / {len(eval_data)} eval clips"

    def default_lr(self) -> float:
        """The recognizer kind's default learning rate for the strategy (Whisper's are the task's)."""
        return self.kind.lrs.get(self.cfg.strategy) or super().default_lr()

    def _transcribe(self, name: str) -> Optional[list[str]]:
        if name not in self.recognizer.sets:
            return None
        return self.recognizer.transcribe(name, should_cancel=self.ctx.should_cancel)

    def before(self) -> Outcome:
        self.source_before = self._transcribe("source")
        return Outcome(self._transcribe("eval"), kind=self.recognizer.before_kind)

    def after(self) -> Outcome:
        cfg = self.cfg
        lr = cfg.lr or self.default_lr()
        tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr, patience=cfg.patience, seed=cfg.seed,
                           freeze_bn=False)
        result, info = self.recognizer.train(self.ctx, tcfg)
        self.ctx.progress(Progress("eval", 0, 1, "transcribing with the adapted model"))
        self.source_after = self._transcribe("source")
        return Outcome(self._transcribe("eval"), {
            "epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "best_val_loss": result.best("val_loss"),
            "history": result.history, "stopped_early": result.stopped_early,
            "resumed_from_epoch": result.resumed_from_epoch, "lr": lr, "batch_size": cfg.batch_size, **info})

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
            "recognizer": self.kind.kind,
            "calibration": {"skipped": CALIBRATION_SKIPPED},
            **self.recognizer.report(),
        }

    def save_model(self, folder: Path) -> None:
        self.recognizer.save(folder)
        (folder / MARKER).write_text(json.dumps({"task": "asr", "backbone": self.backbone_name,
                                                 "strategy": self.cfg.strategy, "recognizer": self.kind.kind}))


#: Why an ASR report has no calibration block (issue 19): what it scores is a transcript, not a class.
CALIBRATION_SKIPPED = ("speech recognition is scored by word and character error rates of whole transcripts, "
                       "decoded one token at a time: there is no single probability per utterance of being right "
                       "to calibrate, so no expected calibration error is measured and no temperature is fitted")


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
    """``(model, processor)`` of an ASR run folder (a Whisper or a CTC model, as its config says)."""
    folder = model_dir(run_dir)
    if not is_asr_run(run_dir):
        raise ConfigError(f"{run_dir} is not a speech recognition run folder (no model/{MARKER})")
    recognizer, _ = recognizer_for(str(folder))
    return recognizer.model, recognizer.processor


def predict(run_dir: str | Path, audio_paths: Sequence[str | Path], *, model=None, batch_size: int = 16) -> list[dict]:
    """Transcribe audio files with the run's adapted recognizer (``model``: its ``(model, processor)`` when already
    loaded): ``[{"input", "path", "transcript", "seconds", "truncated"}]`` in input order (``input`` is the file name).
    Clips longer than 30 s are cut to their first 30 s."""
    recognizer = loaded_recognizer(*(model if model is not None else load_model(run_dir)))
    paths = [str(p) for p in audio_paths]
    if not paths:
        return []
    rate = recognizer.sample_rate
    waves = [load_audio(p, rate) for p in paths]
    seconds = [len(w) / rate for w in waves]
    texts = recognizer.transcribe_waves(waves, batch_size=batch_size)
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
