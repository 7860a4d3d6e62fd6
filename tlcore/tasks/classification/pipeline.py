"""Classification, inductive: the task's stages of :func:`tlcore.settings.pipeline.run_stages` (:class:`Job`).

"before" is the source-trained model (a linear probe on source features) when a source set is given, else the
training-free nearest-class-mean classifier on the pretrained features; "after" is the model the strategy
produced. Both, and the baselines (random-init twin trained with the same budget; k-NN on pretrained features),
are scored on the same eval split.

The loop strategies (partial, full, lora) are LP-FT (Kumar et al., "Fine-Tuning can Distort Pretrained Features
and Underperform Out-of-Distribution", ICLR 2022): the head starts as the linear probe fitted on the cached
features, then head and backbone train together at the strategy's small lr (the head too: a large head lr would
undo the probe and drag the features after it), partial/full with layer-wise lr decay, warm-up + cosine decay,
and image batches augmented (``cfg.augment``): the recipe of :mod:`tlcore.recipe`, each setting chosen on development
data. The probe is scored on the eval split as well; when the
fine-tuned model does not beat it beyond the paired 95% interval, the report's notes recommend the probe.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from tlcore.config import FinetuneConfig
from tlcore.data.dataset import Dataset
from tlcore.data.exclude import exclude_training_items, read_exclusions
from tlcore.data.loaders import check_trainable, load_dataset
from tlcore.data.overlap import conflicting_labels, content_key, item_kind, overlap_warnings, split_overlaps
from tlcore.data.split import cap_per_class, eval_split
from tlcore.errors import ConfigError, DataError
from tlcore.evaluation.calibration import softmax
from tlcore.evaluation.errors import CE_DEFINITION, cross_entropy, loss_block
from tlcore.evaluation.metrics import (
    classification_metrics,
    flipped_examples,
    paired_difference,
    seeded_paired_difference,
)
from tlcore.evaluation.neighbours import knn_vote
from tlcore.evaluation.notices import conflict_warnings
from tlcore.models.batches import can_augment
from tlcore.models.before import BeforeHead, nearest_class_mean
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone, resolve_backbone_name
from tlcore.models.transfer_model import TransferModel
from tlcore.progress import Progress
from tlcore.recipe import setting
from tlcore.strategies import STRATEGIES, check_backbone, get_strategy
from tlcore.strategies.defaults import PROVENANCE as DEFAULT_LR_PROVENANCE
from tlcore.strategies.linear_probe import fit_linear_head
from tlcore.tasks.classification.calibrate import calibrate_run
from tlcore.tasks.classification.classical import NAMES as CLASSICAL_NAMES
from tlcore.tasks.classification.classical import classical_predictions
from tlcore.tasks.classification.notices import (
    class_warnings,
    group_warnings,
    probe_recommendation,
)
from tlcore.tasks.classification.scratch import accuracy_of, loop_validation, scratch_twin
from tlcore.tasks.classification.train import train_classifier
from tlcore.tasks.classification.tune import tune_lr, tuning_split
from tlcore.tasks.job import Outcome, RunContext, TaskJob
from tlcore.training.trainer import TrainConfig

# LP-FT: the head starts from the linear probe and trains at the backbone's (top block's) lr times this. It was
# max(lr, 1e-3): 5-20x the backbone's, which moves the probe's decision boundary first and the features after it.
FT_HEAD_LR_FACTOR = 1.0
PROBE_TUNING = "C chosen by k-fold cross-validation of the training items (every run; --tune adds nothing to it)"
#: ``FinetuneConfig.exclude`` (training items left out, e.g. those the label audit flagged) is applied by this task.
EXCLUDES_ITEMS = True


def _load(path: Optional[str], cfg: FinetuneConfig, what: str, labeled: bool) -> Optional[Dataset]:
    if not path:
        return None
    try:
        ds = load_dataset(path, cfg.modality, on_error=cfg.on_bad_file)
    except DataError as exc:
        raise DataError(f"{what} data: {exc}") from None
    if labeled and what == "eval" and ds.labels is None:
        raise DataError(f"eval data: {path} has no labels; eval data needs label folders or a 'label' column")
    if labeled and what != "eval":
        try:
            check_trainable(ds)
        except DataError as exc:
            raise DataError(f"{what} data: {exc}") from None
    return ds


@dataclass
class RunData:
    """The data of one classification run: the loaded sets, the training and eval splits, class indices."""

    target: Dataset
    source: Optional[Dataset]
    unlabeled: Optional[Dataset]
    train: Dataset
    eval: Dataset
    classes: list[str]
    y_train: np.ndarray
    y_eval: np.ndarray
    overlap: dict
    split_file: Optional[Path]
    problems: list[str]
    conflicts: Optional[dict] = None   # identical target items under different labels (conflicting_labels)
    excluded: Optional[dict] = None    # training items left out by cfg.exclude, and why (exclude_training_items)


def prepare_data(cfg: FinetuneConfig) -> RunData:
    """Load the sets and make the splits exactly as a run does (the stored eval split, duplicates of eval items
    dropped from training, the per-class cap), so a later job (the scratch follow-up) scores on the same items."""
    target = _load(cfg.target, cfg, "target", labeled=True)
    assert target is not None
    source = _load(cfg.source, cfg, "source", labeled=True)
    unlabeled = _load(cfg.unlabeled, cfg, "unlabeled", labeled=False)
    if cfg.eval:
        eval_ds = _load(cfg.eval, cfg, "eval", labeled=True)
        train_ds, split_file = target, None
    else:
        train_ds, eval_ds, split_file = eval_split(target, cfg.eval_fraction)
    assert eval_ds is not None and eval_ds.labels is not None and train_ds.labels is not None
    kind = item_kind(cfg.modality)
    key_of = {x: content_key(x, kind) for x in target.items}      # each target file is read once
    keep, overlap = split_overlaps(eval_ds.items, train_ds.items, train_ds.names, kind=kind,
                                   eval_given=bool(cfg.eval), others={"source": source and source.items,
                                                                      "unlabeled": unlabeled and unlabeled.items},
                                   train_keys=[key_of[x] for x in train_ds.items])
    train_ds = train_ds.subset(keep)
    excluded = None
    if cfg.exclude:     # training items only: the eval split (held out or given) stays exactly as it is
        train_ds, excluded = exclude_training_items(train_ds, cfg.exclude, held_out=() if cfg.eval else eval_ds.names)
        if len(set(train_ds.labels or [])) < 2:
            raise DataError(f"--exclude {cfg.exclude} leaves {len(train_ds)} training item(s) with fewer than two "
                            "classes: exclude fewer items")
    train_ds = cap_per_class(train_ds, cfg.max_per_class, seed=cfg.seed)
    # over the whole target: a contradiction whose copies the split put on both sides is still one
    shown = target.items if kind == "text" else target.names or target.items     # texts, or files by their names
    conflicts = conflicting_labels(shown, target.labels, [key_of[x] for x in target.items])
    classes = sorted(set(train_ds.labels))
    unseen = sorted(set(eval_ds.labels) - set(classes))
    if unseen:
        raise DataError(f"eval classes {unseen} do not occur in the target training data; add examples of them to --target")
    problems = [str(p) for d in (target, source, eval_ds, unlabeled) if d is not None for p in d.problems]
    return RunData(target, source, unlabeled, train_ds, eval_ds, classes, _indices(train_ds.labels, classes),
                   _indices(eval_ds.labels, classes), overlap, split_file, problems, conflicts, excluded)


def _indices(labels: list[str], classes: list[str]) -> np.ndarray:
    pos = {c: i for i, c in enumerate(classes)}
    return np.array([pos[y] for y in labels], dtype=np.int64)


def check_config(cfg: FinetuneConfig) -> None:
    """Classification's own rules: the strategy is registered, --adapt-backbone goes with an alignment method,
    adaptation has its source + unlabeled sets, everything else a labeled target; the backbone resolves."""
    strategy = get_strategy(cfg.strategy)
    if cfg.adapt_backbone and not strategy.alignment:
        aligned = [n for n in STRATEGIES.names() if STRATEGIES.get(n).alignment]
        raise ConfigError(f"--adapt-backbone trains the backbone with an alignment loss: use it with "
                          f"{', '.join(aligned[:-1])} or {aligned[-1]} (not {cfg.strategy!r})")
    if strategy.needs_unlabeled and cfg.tune:
        raise ConfigError(f"--tune searches the learning rate of networks trained on target labels; {cfg.strategy} "
                          "has none and chooses its trade-off on source validation already: drop --tune")
    if strategy.needs_unlabeled:
        if not cfg.source or not cfg.unlabeled:
            raise ConfigError(f"{cfg.strategy} adapts a labeled source to unlabeled target data: pass --source and --unlabeled")
        if not cfg.eval and not cfg.target:
            raise ConfigError("pass --eval (labeled target data) so source-only and adapted accuracy can be measured")
    elif not cfg.target:
        adaptation = ", ".join(n for n in STRATEGIES.names() if STRATEGIES.get(n).needs_unlabeled)
        raise ConfigError("pass --target with labeled target data (a few examples per class); with only a labeled "
                          f"--source and --unlabeled target, pick an adaptation strategy ({adaptation}); with no labels "
                          "at all use `python -m tlcore cluster`")
    if cfg.exclude:
        read_exclusions(cfg.exclude)    # the file exists and has a 'name' column
    resolve_backbone_name(cfg.backbone, cfg.modality)


class Job(TaskJob):
    """Classification's stages of an inductive run (module docstring); :func:`tlcore.settings.pipeline.run_stages`
    calls them in order."""

    seeded_baselines = ("scratch", "classical")

    def load(self) -> str:
        cfg = self.cfg
        self.d = d = prepare_data(cfg)
        with self.ctx.timed("features"):       # the cached pretrained features: before, k-NN, the probe
            self.backbone = build_backbone(cfg.backbone, cfg.modality, pretrained=True)
            self.backbone_name = self.backbone.backbone_name  # type: ignore[attr-defined]
            check_backbone(cfg.strategy, self.backbone)
            sets = {"train": d.train, "eval": d.eval, **({"source": d.source} if d.source is not None else {})}
            self.f = {name: extract_features(self.backbone, ds, stage=f"features: {name}", progress=self.ctx.progress,
                                             should_cancel=self.ctx.should_cancel) for name, ds in sets.items()}
        self.ctx.warnings += (overlap_warnings(d.overlap, len(d.eval)) + conflict_warnings(d.conflicts)
                              + group_warnings(d.train, d.eval) + class_warnings(d.classes))
        self.ctx.warnings += [f"{len(d.problems)} file(s)/row(s) skipped: see data.problems"] * bool(d.problems)
        if d.excluded is not None:
            x = d.excluded
            kept = f"; {x['kept_in_eval']} listed item(s) are in the eval split and stay there" if x["kept_in_eval"] else ""
            self.ctx.warnings.append(f"{x['removed']} training item(s) left out as listed in {x['file']} (--exclude; the "
                                     f"eval split is unchanged{kept}): see data.excluded for which and why")
        return f"{len(d.train)} train / {len(d.eval)} eval items, {len(d.classes)} classes"

    def before(self) -> Outcome:
        d, f, n = self.d, self.f, len(self.d.classes)
        kind = "nearest class mean of the pretrained features, fitted on the target's training labels (no fine-tuning)"
        head = None
        if d.source is not None:
            keep = np.array([y in d.classes for y in d.source.labels or []])
            if keep.sum() and len(set(np.array(d.source.labels)[keep])) >= 2:
                ys = _indices([y for y, k in zip(d.source.labels, keep) if k], d.classes)  # type: ignore[arg-type]
                w, b, _ = fit_linear_head(f["source"][keep], ys, n, seed=self.cfg.seed)
                head, kind = BeforeHead(w, b, "softmax"), "source-trained model (linear probe on source features)"
                if set(d.source.labels) != set(d.classes):  # type: ignore[arg-type]
                    kind += "; source classes not in the target are ignored"
            else:
                kind += " (source has no classes in common with the target)"
        self.before_head = head or nearest_class_mean(f["train"], d.y_train, n)
        self.save_before = lambda folder: self.before_head.save(folder, kind=kind)
        return Outcome(self.before_head.scores(f["eval"]).argmax(1), kind=kind)

    def after(self) -> Outcome:
        cfg, d, f = self.cfg, self.d, self.f
        strategy = get_strategy(cfg.strategy)
        w, b, probe_info = fit_linear_head(f["train"], d.y_train, len(d.classes), seed=cfg.seed)
        self.eval_logits = (torch.from_numpy(f["eval"]) @ w.T + b).numpy()    # after's, until fine-tuning replaces it
        pred_probe = self.eval_logits.argmax(1)
        info: dict = {"linear_probe": probe_info}
        if not strategy.uses_loop:
            self.model = TransferModel(self.backbone, d.classes, backbone_name=self.backbone_name, strategy=cfg.strategy)
            _set_head(self.model, w, b)
            return Outcome(pred_probe, {**info, "epochs_run": 0, "train_size": len(d.train), "val_size": 0,
                                        "tuning": PROBE_TUNING})
        fit_idx, val_idx, info["early_stopping"] = loop_validation(d.train.labels, cfg, d.train.groups)
        self.val_idx = val_idx          # the temperature's fitting items (calibrate.py)
        lr = cfg.lr or self.default_lr()
        if cfg.tune:
            t_fit, t_val, rule = tuning_split(d.train.labels, d.train.groups, val_idx, fit_idx, cfg.seed)

            def trial(lr: float, n: int) -> float:      # a fresh copy of the pretrained weights each trial
                fresh = build_backbone(cfg.backbone, cfg.modality, pretrained=True)
                model, _ = self._fine_tune(fresh, t_fit, t_val, lr, stage=f"tune-after-{n}")
                return accuracy_of(d.y_train[t_val], model.predict_proba([d.train.items[i] for i in t_val]).argmax(1))

            lr, info["tuning"] = tune_lr(trial, lr, cfg.tune, seed=cfg.seed, rule=rule)
        else:
            info["tuning"] = "not tuned: lr " + ("given (--lr)" if cfg.lr else DEFAULT_LR_PROVENANCE)
        self.model, more = self._fine_tune(self.backbone, fit_idx, val_idx, lr, stage="after",
                                           probe=None if len(val_idx) else (w, b, probe_info))
        info.update(more)
        self.eval_logits = self.model.predict_logits(d.eval.items, batch_size=64)
        pred_after = self.eval_logits.argmax(1)
        # The probe this run started from, scored on the same eval items: did fine-tuning earn its cost?
        probe_vs = self.compare(pred_after, pred_probe)
        info.update(linear_probe_eval_accuracy=accuracy_of(d.y_eval, pred_probe), linear_probe_comparison=probe_vs)
        note = probe_recommendation(cfg.strategy, accuracy_of(d.y_eval, pred_after), accuracy_of(d.y_eval, pred_probe),
                                    probe_vs)
        self.ctx.notes += [note] if note else []
        return Outcome(pred_after, info)

    def _fine_tune(self, backbone, fit_idx: np.ndarray, val_idx: np.ndarray, lr: float, *, stage: str,
                   probe: Optional[tuple] = None) -> tuple[TransferModel, dict]:
        """LP-FT with the run's strategy on the training items ``fit_idx`` (early stopping on ``val_idx`` when
        given): the head starts as the probe fitted on the fit items' features (``probe``: that fit, when the caller
        has it already); (the model, what it records)."""
        cfg, d, strategy = self.cfg, self.d, get_strategy(self.cfg.strategy)
        model = TransferModel(backbone, d.classes, backbone_name=self.backbone_name, strategy=cfg.strategy)
        # the head starts from a probe that has not seen the early-stopping items: a probe fitted on them scores
        # ~100% there, and early stopping would then stop on a validation split that cannot tell
        head_info = None
        if setting("head_init") == "probe":
            w, b, head_info = probe or fit_linear_head(self.f["train"][fit_idx], d.y_train[fit_idx], len(d.classes),
                                                       seed=cfg.seed)
            _set_head(model, w, b)
        tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr, head_lr=lr * FT_HEAD_LR_FACTOR,
                           patience=cfg.patience, seed=cfg.seed, schedule=setting("schedule"), keep_best=bool(len(val_idx)))
        modules = strategy.prepare(model, partial_blocks=cfg.partial_blocks, lora_r=cfg.lora_r, seed=cfg.seed)  # type: ignore[misc]
        groups = (strategy.param_groups(model, lr=tcfg.lr, head_lr=tcfg.head_lr, layer_decay=cfg.layer_decay)
                  if strategy.param_groups else None)
        augmented = can_augment(backbone)
        augment, flip = (cfg.augment, cfg.augment_flip) if augmented else ("none", False)
        result = train_classifier(
            model, [d.train.items[i] for i in fit_idx], d.y_train[fit_idx],
            val_items=[d.train.items[i] for i in val_idx], val_y=d.y_train[val_idx], config=tcfg,
            train_modules=modules, checkpoint_dir=self.ctx.checkpoints(stage), resume=self.ctx.resume,
            stage="train" if stage == "after" else stage, progress=self.ctx.progress,
            should_cancel=self.ctx.should_cancel, augment=augment, augment_flip=flip, param_groups=groups)
        if strategy.finalize:
            strategy.finalize(model)
        for p in model.parameters():
            p.requires_grad_(False)
        # best_epoch: the epoch whose weights the model has (the last one when there was nothing to select on)
        info = dict(epochs_run=result.epochs_run, history=result.history,
                    best_epoch=result.best_epoch if tcfg.keep_best else result.epochs_run,
                    best_val_accuracy=result.best("val_accuracy"), stopped_early=result.stopped_early,
                    resumed_from_epoch=result.resumed_from_epoch, train_size=len(fit_idx), val_size=len(val_idx),
                    lr=tcfg.lr, head_lr=tcfg.head_lr, schedule=tcfg.schedule,
                    layer_decay=cfg.layer_decay if groups else None, augment=augment, augment_flip=flip)
        if len(val_idx) and head_info is not None:
            info["head_init"] = head_info
        if not augmented and cfg.modality != "image" and (cfg.augment != "none" or cfg.augment_flip):
            info["augment_ignored"] = f"{cfg.modality} inputs are not augmented (image fine-tuning only)"
        return model, info

    def baseline(self, name: str) -> Outcome:
        cfg, d, f = self.cfg, self.d, self.f
        if name == "knn":
            k = int(min(5, len(d.y_train)))
            return Outcome(knn_vote(f["train"], d.y_train, f["eval"], k, len(d.classes)), extra={"k": k})
        if name == "classical":
            self.ctx.progress(Progress("classical", 0, 1, f"classical baseline: {CLASSICAL_NAMES[cfg.modality]}"))
            return Outcome(*classical_predictions(cfg.modality, d.train.items, d.y_train, d.eval.items, seed=cfg.seed))
        return Outcome(*scratch_twin(cfg, d.train, d.y_train, d.eval.items, d.classes, self.ctx.writer.out, self.ctx.resume,
                                 self.ctx.progress, self.ctx.should_cancel, stage="scratch" + self.ctx.suffix))

    def reseeded(self, ctx: RunContext) -> Job:
        again = copy.copy(self)
        again.ctx, again.cfg = ctx, ctx.cfg
        # the pretrained weights again: a strategy that trains the backbone changed the first seed's copy in place
        again.backbone = build_backbone(ctx.cfg.backbone, ctx.cfg.modality, pretrained=True)
        return again

    def compare_seeds(self, afters: list[np.ndarray], others: list[np.ndarray]) -> dict:
        return seeded_paired_difference(self.d.y_eval, afters, others, seed=self.cfg.seed, groups=self.d.eval.groups)

    def score(self, pred: np.ndarray) -> dict:
        return classification_metrics(self.d.y_eval, pred, self.d.classes, seed=self.cfg.seed, groups=self.d.eval.groups)

    def compare(self, after: np.ndarray, other: np.ndarray) -> dict:
        return paired_difference(self.d.y_eval, after, other, seed=self.cfg.seed, groups=self.d.eval.groups)

    def report(self, outcomes: dict[str, Outcome]) -> dict:
        cfg, d = self.cfg, self.d
        preds = {name: np.asarray(o.pred) for name, o in outcomes.items()}
        return {
            "data": {"train": len(d.train), "val": int(outcomes["after"].info.get("val_size", 0)), "eval": len(d.eval),
                     "source": len(d.source) if d.source else 0, "unlabeled": len(d.unlabeled) if d.unlabeled else 0,
                     "classes": d.classes, "train_per_class": d.train.class_counts(),
                     "eval_per_class": d.eval.class_counts(),
                     "eval_split_file": str(d.split_file) if d.split_file else None, "problems": d.problems,
                     "eval_overlap": d.overlap, "target": cfg.target, "source_path": cfg.source, "eval_path": cfg.eval,
                     "groups": {name: len(set(ds.groups)) if ds.groups is not None else None
                                for name, ds in (("train", d.train), ("eval", d.eval))},
                     **({"excluded": d.excluded} if d.excluded is not None else {})},
            "flipped": flipped_examples(d.y_eval, preds["before"], preds["after"], d.classes, d.eval.items,
                                        d.eval.names),
            "eval_predictions": {"true": d.y_eval.tolist(), **{k: v.tolist() for k, v in preds.items()},
                                 "items": [str(x) for x in d.eval.items], "names": d.eval.names,
                                 **({"groups": d.eval.groups} if d.eval.groups is not None else {})},
            "eval_losses": self._eval_losses(),
            "calibration": calibrate_run(self, outcomes),      # also sets the temperature save_model saves
        }

    def _eval_losses(self) -> dict:
        """Per eval item, the cross-entropy of "after" and (when it scores probabilities) "before": the Compare
        page's top losses (:mod:`tlcore.evaluation.errors`)."""
        y, head = self.d.y_eval, self.before_head
        before = cross_entropy(head.scores(self.f["eval"]), y) if head.score == "softmax" else None
        return loss_block(CE_DEFINITION, cross_entropy(softmax(self.eval_logits), y), before,
                          "the before model (nearest class mean) scores cosine similarities, not probabilities")

    def save_model(self, folder: Path) -> None:
        self.model.save_pretrained(folder)


def _set_head(model: TransferModel, w: torch.Tensor, b: torch.Tensor) -> None:
    with torch.no_grad():
        model.head.weight.copy_(w)
        model.head.bias.copy_(b)
