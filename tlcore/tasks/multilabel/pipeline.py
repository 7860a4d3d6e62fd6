"""Multi-label classification, inductive: the task's stages of :func:`tlcore.settings.pipeline.run_stages`.

One validation rule for every model the report compares (before, after, k-NN, the scratch twin): the training
items are split once (seeded) into a *fit* part and a *validation* part (``--val-fraction``, never the eval split).
Every model is fitted on the fit part only, and every model's per-label decision thresholds are chosen on the
validation part (the F1-maximising cut of its own scores, :func:`~tlcore.tasks.multilabel.metrics.choose_thresholds`);
loop models (partial, full, LoRA, the scratch twin) also stop early on it when it holds at least the recipe's
``min_val_items`` items (:mod:`tlcore.recipe`), else they train the whole schedule. With fewer than ``MIN_THRESHOLD_ITEMS`` validation items there is no
validation part: every model fits on all training items and uses its default threshold (0.5 for probabilities, 0 for
the training-free reference). The report's ``training.validation`` says which rule ran, with the sizes.

* before — with ``--source``: the linear probe fitted on the source features (the source model as it stands,
  threshold 0.5); without: the training-free reference, the per-label centroid contrast of the pretrained features.
* after — the linear probe (a sigmoid per label, :func:`~tlcore.tasks.multilabel.model.fit_sigmoid_head`), or for
  partial / full / LoRA that probe as the head (LP-FT) trained on with binary cross-entropy at the strategy's lr;
  its temperature is fitted on the validation part and its thresholds chosen on the calibrated probabilities there
  (:mod:`tlcore.tasks.multilabel.calibrate`; the report's ``calibration`` block).
* baselines — k-NN on the pretrained features (the share of the k nearest fit items carrying each label);
  the random-init twin of the backbone trained with the same items, epochs, batch size and validation rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from tlcore.config import FinetuneConfig
from tlcore.data.overlap import conflicting_labels, content_key, item_kind, overlap_warnings, split_overlaps
from tlcore.errors import ConfigError, DataError
from tlcore.evaluation.errors import BCE_DEFINITION, binary_cross_entropy, loss_block
from tlcore.evaluation.neighbours import knn_shares
from tlcore.evaluation.notices import case_only_warnings, conflict_warnings
from tlcore.models.before import BeforeHead
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone, resolve_backbone_name
from tlcore.models.transfer_model import TransferModel
from tlcore.recipe import setting
from tlcore.strategies import check_backbone, get_strategy
from tlcore.strategies.finetune import prepare_full
from tlcore.tasks.job import Outcome, TaskJob
from tlcore.tasks.multilabel import SPEC
from tlcore.tasks.multilabel.calibrate import METHOD as CALIBRATION_METHOD
from tlcore.tasks.multilabel.calibrate import calibration_block, fit_on_validation
from tlcore.tasks.multilabel.data import MultiLabelData, check_trainable, eval_split, load_multilabel
from tlcore.tasks.multilabel.metrics import (
    choose_thresholds,
    flipped_items,
    multilabel_metrics,
    paired_micro_f1_difference,
)
from tlcore.tasks.multilabel.model import (
    MultiLabelTask,
    centroid_head,
    fit_sigmoid_head,
    model_logits,
    save_thresholds,
    sigmoid,
)
from tlcore.training.trainer import TrainConfig, Trainer

MIN_THRESHOLD_ITEMS = 8    # fewest validation items thresholds are chosen on (else the default thresholds)
SCRATCH_LR = 1e-3          # the random-init twin's lr: classification's scratch lr
KNN_K = 5


def check_config(cfg: FinetuneConfig) -> None:
    """Multi-label's own rules: a labeled target, a backbone that resolves, no per-class cap (an item has several
    labels, so "examples per class" does not say which items to keep)."""
    if not cfg.target:
        raise ConfigError(SPEC.target_hint)
    if cfg.max_per_class is not None:
        raise ConfigError("--max-per-class keeps N examples of each class, but a multi-label item has several labels; "
                          "subsample the target table instead")
    resolve_backbone_name(cfg.backbone, cfg.modality)


@dataclass
class RunData:
    train: MultiLabelData
    eval: MultiLabelData
    source: Optional[MultiLabelData]
    labels: list[str]
    y_train: np.ndarray
    y_eval: np.ndarray
    overlap: dict
    split_file: Optional[Path]
    problems: list[str]
    conflicts: Optional[dict] = None   # identical target items under different label sets (conflicting_labels)


def _load(path: Optional[str], cfg: FinetuneConfig, what: str) -> Optional[MultiLabelData]:
    if not path:
        return None
    try:
        data = load_multilabel(path, on_bad_file=cfg.on_bad_file)
        if data.label_sets is None:
            raise DataError(f"{Path(path).name} has no 'labels' column; give each row its labels as a|b or a JSON list")
        if what != "eval":          # an eval set only needs labels; a training set needs something to learn
            check_trainable(data)
    except DataError as exc:
        raise DataError(f"{what} data: {exc}") from None
    if data.modality != cfg.modality:
        raise DataError(f"{what} data ({Path(path).name}) holds {data.modality} items, but this is a {cfg.modality} run; "
                        f"use --modality {data.modality}")
    return data


def prepare_data(cfg: FinetuneConfig) -> RunData:
    """The sets and splits of a run: the stored eval split, eval duplicates dropped from training, the label set."""
    target = _load(cfg.target, cfg, "target")
    assert target is not None
    source = _load(cfg.source, cfg, "source")
    if cfg.eval:
        eval_data, train, split_file = _load(cfg.eval, cfg, "eval"), target, None
    else:
        train, eval_data, split_file = eval_split(target, cfg.eval_fraction)
    assert eval_data is not None
    kind = item_kind(cfg.modality)
    key_of = {x: content_key(x, kind) for x in target.items}      # each target file is read once
    keep, overlap = split_overlaps(eval_data.items, train.items, train.names, kind=kind, eval_given=bool(cfg.eval),
                                   others={"source": source and source.items},
                                   train_keys=[key_of[x] for x in train.items])
    # over the whole target: a contradiction whose copies the split put on both sides is still one
    conflicts = conflicting_labels(target.items if kind == "text" else target.names,
                                   ["|".join(sorted(s)) or "(no labels)" for s in target.label_sets],  # type: ignore[union-attr]
                                   [key_of[x] for x in target.items])
    train = train.subset(keep)
    check_trainable(train)
    labels = train.vocabulary()
    unseen = sorted(set(eval_data.vocabulary()) - set(labels))
    if unseen:
        raise DataError(f"eval labels {unseen} never occur in the target training data; add training items with them")
    problems = [str(p) for d in (target, source, eval_data) if d is not None for p in d.problems]
    return RunData(train, eval_data, source, labels, train.multi_hot(labels), eval_data.multi_hot(labels), overlap,
                   split_file, problems, conflicts)


def validation_split(n: int, cfg: FinetuneConfig) -> tuple[np.ndarray, np.ndarray, str]:
    """(fit, validation, the rule in words): one seeded split of the training items shared by every model."""
    n_val = int(round(cfg.val_fraction * n))
    if cfg.val_fraction <= 0 or n_val < MIN_THRESHOLD_ITEMS or n - n_val < 2:
        return np.arange(n), np.array([], dtype=np.int64), (
            f"no validation part ({n_val} of {n} training items would be held out; thresholds need "
            f"{MIN_THRESHOLD_ITEMS}): every model fitted on all {n} training items with its default threshold")
    order = np.random.default_rng(cfg.seed).permutation(n)
    fit, val = np.sort(order[n_val:]), np.sort(order[:n_val])
    min_val = setting("min_val_items")
    stop = ("loop models stopped early on it (best epoch kept)" if n_val >= min_val else
            f"loop models trained the whole schedule (early stopping needs {min_val} validation items)")
    return fit, val, (f"every model fitted on the same {len(fit)} training items; per-label thresholds chosen on the "
                      f"other {len(val)} (never the eval split); {stop}")


def _predict(scores_eval: np.ndarray, scores_val: np.ndarray, y_val: np.ndarray, default: float) -> tuple[np.ndarray, np.ndarray]:
    """(eval predictions, thresholds): thresholds chosen on the validation scores, or the default without any."""
    thresholds = choose_thresholds(scores_val, y_val, default) if len(y_val) else np.full(scores_eval.shape[1], default)
    return (scores_eval > thresholds).astype(np.int64), thresholds


def _history(result) -> dict:
    return {"epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
            "history": result.history}


class Job(TaskJob):
    """Multi-label's stages of an inductive run (module docstring), called by
    :func:`tlcore.settings.pipeline.run_stages`."""

    def load(self) -> str:
        cfg = self.cfg
        self.d = d = prepare_data(cfg)
        self.fit, self.val, self.rule = validation_split(len(d.train), cfg)
        self.y_fit, self.y_val = d.y_train[self.fit], d.y_train[self.val]
        with self.ctx.timed("features"):
            self.backbone = build_backbone(cfg.backbone, cfg.modality, pretrained=True)
            self.backbone_name = self.backbone.backbone_name  # type: ignore[attr-defined]
            check_backbone(cfg.strategy, self.backbone)
            sets = {"train": d.train, "eval": d.eval, **({"source": d.source} if d.source is not None else {})}
            self.f = {name: extract_features(self.backbone, ds.dataset(), stage=f"features: {name}",
                                             progress=self.ctx.progress, should_cancel=self.ctx.should_cancel)
                      for name, ds in sets.items()}
        self.ctx.warnings += (overlap_warnings(d.overlap, len(d.eval)) + conflict_warnings(d.conflicts, "label sets")
                              + case_only_warnings(d.labels, "labels"))
        self.ctx.warnings += [f"{len(d.problems)} file(s)/row(s) skipped: see data.problems"] * bool(d.problems)
        return f"{len(d.train)} train / {len(d.eval)} eval items, {len(d.labels)} labels"

    def before(self) -> Outcome:
        """The source model as it stands, or the training-free reference."""
        d, f = self.d, self.f
        if d.source is not None:
            ws, bs, _ = fit_sigmoid_head(f["source"], d.source.multi_hot(d.labels), seed=self.cfg.seed)
            head = BeforeHead(ws, bs, "sigmoid")
            kind = "source-trained model (multi-label linear probe on source features, threshold 0.5)"
            proba = sigmoid(f["eval"] @ ws.numpy().T + bs.numpy())
            pred = (proba > 0.5).astype(np.int64)
            thresholds = np.full(len(d.labels), 0.5)
        else:
            head = centroid_head(f["train"][self.fit], self.y_fit)
            kind = ("training-free reference: per label, cosine to the mean of its positive items minus cosine to "
                    "the mean of its negatives, on the pretrained features (no training)")
            pred, thresholds = _predict(head.scores(f["eval"]), head.scores(f["train"][self.val]), self.y_val, 0.0)
            proba = None        # centroid contrasts, not probabilities: no loss
        self.thresholds = {"before": thresholds}
        self.eval_proba = {"before": proba}     # per-item losses (eval_losses)

        def save_before(folder: Path) -> None:
            head.save(folder, kind=kind)
            save_thresholds(folder, d.labels, thresholds, score=head.score, chosen_on=self._chosen_on())

        self.save_before = save_before
        return Outcome(pred, kind=kind)

    def after(self) -> Outcome:
        cfg, d, f, fit, val = self.cfg, self.d, self.f, self.fit, self.val
        strategy = get_strategy(cfg.strategy)
        w, b, probe_info = fit_sigmoid_head(f["train"][fit], self.y_fit, seed=cfg.seed)
        self.model = model = TransferModel(self.backbone, d.labels, backbone_name=self.backbone_name,
                                           strategy=cfg.strategy)
        with torch.no_grad():
            model.head.weight.copy_(w)
            model.head.bias.copy_(b)
        info: dict = {"linear_probe": probe_info, "validation": self.rule, "fit_size": len(fit), "val_size": len(val)}
        if strategy.uses_loop:
            lr = cfg.lr or self.default_lr()
            tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr, head_lr=lr, patience=cfg.patience,
                               seed=cfg.seed, schedule=setting("schedule"))
            modules = strategy.prepare(model, partial_blocks=cfg.partial_blocks, lora_r=cfg.lora_r, seed=cfg.seed)  # type: ignore[misc]
            groups = (strategy.param_groups(model, lr=lr, head_lr=lr, layer_decay=cfg.layer_decay)
                      if strategy.param_groups else None)
            result = self._train_loop(model, tcfg, modules, groups, stage="train")
            if strategy.finalize:
                strategy.finalize(model)
            for p in model.parameters():
                p.requires_grad_(False)
            info.update(_history(result), lr=lr, schedule=tcfg.schedule)
            self.eval_logits = model_logits(model, d.eval.items)
            val_logits = model_logits(model, [d.train.items[i] for i in val])
        else:
            info.update(epochs_run=0)
            self.eval_logits = f["eval"] @ w.numpy().T + b.numpy()
            val_logits = f["train"][val] @ w.numpy().T + b.numpy()
        self.eval_proba["after"] = sigmoid(self.eval_logits)      # uncalibrated: the per-item losses' (eval_losses)
        # the temperature is fitted on the validation items first, then the thresholds on their calibrated scores
        self.temperature, self.fitted_on = fit_on_validation(val_logits, self.y_val, self.rule)
        t = self.temperature or 1.0
        if self.temperature is not None:
            model.temperature, model.calibration = t, {"method": CALIBRATION_METHOD, "fitted_on": self.fitted_on}
        pred, self.thresholds["after"] = _predict(sigmoid(self.eval_logits, t), sigmoid(val_logits, t), self.y_val, 0.5)
        return Outcome(pred, info)

    def baseline(self, name: str) -> Outcome:
        """k-NN on the pretrained features or the random-init twin, under the same validation rule."""
        cfg, f = self.cfg, self.f
        if name == "knn":
            k = int(min(KNN_K, len(self.fit)))
            shares = [knn_shares(f["train"][self.fit], self.y_fit, x, k) for x in (f["eval"], f["train"][self.val])]
            return Outcome(_predict(*shares, self.y_val, 0.5)[0], extra={"k": k})
        twin = TransferModel(build_backbone(cfg.backbone, cfg.modality, pretrained=False, seed=cfg.seed), self.d.labels,
                             strategy="scratch")
        tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=SCRATCH_LR, head_lr=SCRATCH_LR,
                           patience=cfg.patience, seed=cfg.seed, freeze_bn=False)
        result = self._train_loop(twin, tcfg, prepare_full(twin), None, stage="scratch")
        return Outcome(self._predict_model(twin)[0], {**_history(result), "lr": SCRATCH_LR, "train_size": len(self.fit),
                                                      "val_size": len(self.val)})

    def _train_loop(self, model: TransferModel, tcfg: TrainConfig, modules, groups, *, stage: str):
        d, fit, val = self.d, self.fit, self.val
        use_val = len(val) >= setting("min_val_items")
        task = MultiLabelTask(model, [d.train.items[i] for i in fit], d.y_train[fit],
                              val_items=[d.train.items[i] for i in val] if use_val else (),
                              val_y=d.y_train[val] if use_val else None, batch_size=tcfg.batch_size,
                              precise_bn=not tcfg.freeze_bn, seed=tcfg.seed)
        tcfg.keep_best = use_val
        return Trainer(model, task, tcfg, train_modules=modules, param_groups=groups,
                       checkpoint_dir=self.ctx.checkpoints(stage), stage=stage, progress=self.ctx.progress,
                       should_cancel=self.ctx.should_cancel).fit(resume=self.ctx.resume)

    def _predict_model(self, model: TransferModel) -> tuple[np.ndarray, np.ndarray]:
        return _predict(sigmoid(model_logits(model, self.d.eval.items)),
                        sigmoid(model_logits(model, [self.d.train.items[i] for i in self.val])), self.y_val, 0.5)

    def _chosen_on(self) -> str:
        return "validation part of the training items" if len(self.val) else "default (no validation part)"

    def score(self, pred: np.ndarray) -> dict:
        return multilabel_metrics(self.d.y_eval, pred, self.d.labels, seed=self.cfg.seed)

    def compare(self, after: np.ndarray, other: np.ndarray) -> dict:
        return paired_micro_f1_difference(self.d.y_eval, after, other, seed=self.cfg.seed)

    def report(self, outcomes: dict[str, Outcome]) -> dict:
        cfg, d = self.cfg, self.d
        idx = lambda y: [np.flatnonzero(r).tolist() for r in y]  # noqa: E731 - label indices per item
        return {
            "data": {"train": len(d.train), "val": len(self.val), "eval": len(d.eval), "source": len(d.source or []),
                     "unlabeled": 0, "classes": d.labels, "train_per_class": d.train.label_counts(),
                     "eval_per_class": d.eval.label_counts(),
                     "eval_split_file": str(d.split_file) if d.split_file else None, "problems": d.problems,
                     "eval_overlap": d.overlap, "target": cfg.target, "source_path": cfg.source, "eval_path": cfg.eval},
            "thresholds": {name: dict(zip(d.labels, map(float, t))) for name, t in self.thresholds.items()},
            "flipped": flipped_items(d.y_eval, outcomes["before"].pred, outcomes["after"].pred, d.labels, d.eval.items,
                                     d.eval.names),
            "eval_predictions": {"true": idx(d.y_eval), **{k: idx(o.pred) for k, o in outcomes.items()},
                                 "items": [str(x) for x in d.eval.items], "names": d.eval.names},
            "eval_losses": self._eval_losses(),
            "calibration": calibration_block(before_proba=self.eval_proba["before"], eval_logits=self.eval_logits,
                                             y_eval=d.y_eval, temperature=self.temperature, fitted=self.fitted_on,
                                             seed=cfg.seed, groups=d.eval.groups),
        }

    def _eval_losses(self) -> dict:
        """Per eval item, the mean binary cross-entropy of "after" and (when it scores probabilities) "before": the
        Compare page's top losses (:mod:`tlcore.evaluation.errors`)."""
        before = self.eval_proba["before"]
        return loss_block(BCE_DEFINITION, binary_cross_entropy(self.eval_proba["after"], self.d.y_eval),
                          None if before is None else binary_cross_entropy(before, self.d.y_eval),
                          "the training-free reference scores centroid contrasts, not probabilities")

    def save_model(self, folder: Path) -> None:
        self.model.save_pretrained(folder)
        save_thresholds(folder, self.d.labels, self.thresholds["after"], score="sigmoid", chosen_on=self._chosen_on())
