"""Multi-label classification, inductive: data -> features -> before -> transfer -> baselines -> report.

One validation rule for every model the report compares (before, after, k-NN, the scratch twin): the training
items are split once (seeded) into a *fit* part and a *validation* part (``--val-fraction``, never the eval split).
Every model is fitted on the fit part only, and every model's per-label decision thresholds are chosen on the
validation part (the F1-maximising cut of its own scores, :func:`~tlcore.tasks.multilabel.metrics.choose_thresholds`);
loop models (partial, full, LoRA, the scratch twin) also stop early on it when it holds at least ``MIN_VAL_ITEMS``
items, else they train the whole schedule. With fewer than ``MIN_THRESHOLD_ITEMS`` validation items there is no
validation part: every model fits on all training items and uses its default threshold (0.5 for probabilities, 0 for
the training-free reference). The report's ``training.validation`` says which rule ran, with the sizes.

* before — with ``--source``: the linear probe fitted on the source features (the source model as it stands,
  threshold 0.5); without: the training-free reference, the per-label centroid contrast of the pretrained features.
* after — the linear probe (a sigmoid per label, :func:`~tlcore.tasks.multilabel.model.fit_sigmoid_head`), or for
  partial / full / LoRA that probe as the head (LP-FT) trained on with binary cross-entropy at the strategy's lr.
* baselines — k-NN on the pretrained features (the share of the k nearest fit items carrying each label);
  the random-init twin of the backbone trained with the same items, epochs, batch size and validation rule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from tlcore.config import MIN_VAL_ITEMS, FinetuneConfig
from tlcore.data.overlap import item_kind, overlap_warnings, split_overlaps
from tlcore.errors import ConfigError, DataError
from tlcore.evaluation.neighbours import knn_shares
from tlcore.evaluation.policy import transfer_alerts
from tlcore.models.before import BeforeHead
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone, resolve_backbone_name
from tlcore.models.transfer_model import TransferModel
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.reporting.writer import begin_run
from tlcore.strategies import get_strategy
from tlcore.strategies.finetune import prepare_full
from tlcore.tasks.multilabel import SPEC
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
METRIC = "micro-F1"


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
    keep, overlap = split_overlaps(eval_data.items, train.items, train.names, kind=item_kind(cfg.modality),
                                   eval_given=bool(cfg.eval), others={"source": source and source.items})
    train = train.subset(keep)
    check_trainable(train)
    labels = train.vocabulary()
    unseen = sorted(set(eval_data.vocabulary()) - set(labels))
    if unseen:
        raise DataError(f"eval labels {unseen} never occur in the target training data; add training items with them")
    problems = [str(p) for d in (target, source, eval_data) if d is not None for p in d.problems]
    return RunData(train, eval_data, source, labels, train.multi_hot(labels), eval_data.multi_hot(labels), overlap,
                   split_file, problems)


def validation_split(n: int, cfg: FinetuneConfig) -> tuple[np.ndarray, np.ndarray, str]:
    """(fit, validation, the rule in words): one seeded split of the training items shared by every model."""
    n_val = int(round(cfg.val_fraction * n))
    if cfg.val_fraction <= 0 or n_val < MIN_THRESHOLD_ITEMS or n - n_val < 2:
        return np.arange(n), np.array([], dtype=np.int64), (
            f"no validation part ({n_val} of {n} training items would be held out; thresholds need "
            f"{MIN_THRESHOLD_ITEMS}): every model fitted on all {n} training items with its default threshold")
    order = np.random.default_rng(cfg.seed).permutation(n)
    fit, val = np.sort(order[n_val:]), np.sort(order[:n_val])
    stop = ("loop models stopped early on it (best epoch kept)" if n_val >= MIN_VAL_ITEMS else
            f"loop models trained the whole schedule (early stopping needs {MIN_VAL_ITEMS} validation items)")
    return fit, val, (f"every model fitted on the same {len(fit)} training items; per-label thresholds chosen on the "
                      f"other {len(val)} (never the eval split); {stop}")


def _predict(scores_eval: np.ndarray, scores_val: np.ndarray, y_val: np.ndarray, default: float) -> tuple[np.ndarray, np.ndarray]:
    """(eval predictions, thresholds): thresholds chosen on the validation scores, or the default without any."""
    thresholds = choose_thresholds(scores_val, y_val, default) if len(y_val) else np.full(scores_eval.shape[1], default)
    return (scores_eval > thresholds).astype(np.int64), thresholds


def _train_loop(model: TransferModel, d: RunData, fit: np.ndarray, val: np.ndarray, tcfg: TrainConfig, modules,
                groups, *, stage: str, checkpoint_dir: Path, resume: bool, progress: ProgressFn,
                should_cancel: CancelFn):
    use_val = len(val) >= MIN_VAL_ITEMS
    task = MultiLabelTask(model, [d.train.items[i] for i in fit], d.y_train[fit],
                          val_items=[d.train.items[i] for i in val] if use_val else (),
                          val_y=d.y_train[val] if use_val else None, batch_size=tcfg.batch_size,
                          precise_bn=not tcfg.freeze_bn, seed=tcfg.seed)
    tcfg.keep_best = use_val
    return Trainer(model, task, tcfg, train_modules=modules, param_groups=groups, checkpoint_dir=checkpoint_dir,
                   stage=stage, progress=progress, should_cancel=should_cancel).fit(resume=resume)


def _history(result) -> dict:
    return {"epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
            "history": result.history}


def run(cfg: FinetuneConfig, *, progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
        resume: bool = False) -> dict:
    """One inductive multi-label run (called by :func:`tlcore.settings.inductive.run_finetune`)."""
    progress, should_cancel = progress or no_progress, should_cancel or never_cancel
    writer = begin_run(cfg, resume=resume)
    strategy, timings = get_strategy(cfg.strategy), {}
    torch.manual_seed(cfg.seed)
    progress(Progress("data", 0, 1, "loading data"))
    d = prepare_data(cfg)
    fit, val, rule = validation_split(len(d.train), cfg)
    y_fit, y_val = d.y_train[fit], d.y_train[val]
    progress(Progress("data", 1, 1, f"{len(d.train)} train / {len(d.eval)} eval items, {len(d.labels)} labels"))

    t0 = time.time()
    backbone = build_backbone(cfg.backbone, cfg.modality, pretrained=True)
    name = backbone.backbone_name  # type: ignore[attr-defined]
    f_train = extract_features(backbone, d.train.dataset(), stage="features: train", progress=progress,
                               should_cancel=should_cancel)
    f_eval = extract_features(backbone, d.eval.dataset(), stage="features: eval", progress=progress,
                              should_cancel=should_cancel)
    timings["features"] = time.time() - t0

    # ---- before: the source model as it stands, or the training-free reference
    if d.source is not None:
        f_source = extract_features(backbone, d.source.dataset(), stage="features: source", progress=progress)
        ws, bs, _ = fit_sigmoid_head(f_source, d.source.multi_hot(d.labels), seed=cfg.seed)
        before_head = BeforeHead(ws, bs, "sigmoid")
        before_kind = "source-trained model (multi-label linear probe on source features, threshold 0.5)"
        pred_before = (sigmoid(f_eval @ ws.numpy().T + bs.numpy()) > 0.5).astype(np.int64)
        before_thresholds = np.full(len(d.labels), 0.5)
    else:
        before_head = centroid_head(f_train[fit], y_fit)
        before_kind = ("training-free reference: per label, cosine to the mean of its positive items minus cosine to "
                       "the mean of its negatives, on the pretrained features (no training)")
        pred_before, before_thresholds = _predict(before_head.scores(f_eval), before_head.scores(f_train[val]), y_val, 0.0)

    # ---- after
    t0 = time.time()
    w, b, probe_info = fit_sigmoid_head(f_train[fit], y_fit, seed=cfg.seed)
    model = TransferModel(backbone, d.labels, backbone_name=name, strategy=cfg.strategy)
    with torch.no_grad():
        model.head.weight.copy_(w)
        model.head.bias.copy_(b)
    training: dict = {"linear_probe": probe_info, "validation": rule, "fit_size": len(fit), "val_size": len(val)}
    if strategy.uses_loop:
        lr = cfg.lr or strategy.lr_for(cfg.modality)
        tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr, head_lr=lr, patience=cfg.patience,
                           seed=cfg.seed, schedule="warmup_cosine")
        modules = strategy.prepare(model, partial_blocks=cfg.partial_blocks, lora_r=cfg.lora_r, seed=cfg.seed)  # type: ignore[misc]
        groups = (strategy.param_groups(model, lr=lr, head_lr=lr, layer_decay=cfg.layer_decay)
                  if strategy.param_groups else None)
        result = _train_loop(model, d, fit, val, tcfg, modules, groups, stage="train",
                             checkpoint_dir=writer.checkpoints("after"), resume=resume, progress=progress,
                             should_cancel=should_cancel)
        if strategy.finalize:
            strategy.finalize(model)
        for p in model.parameters():
            p.requires_grad_(False)
        training.update(_history(result), lr=lr, schedule=tcfg.schedule)
        progress(Progress("eval", 0, 1, "scoring the transferred model"))
        after_val = sigmoid(model_logits(model, [d.train.items[i] for i in val]))
        after_eval = sigmoid(model_logits(model, d.eval.items))
    else:
        after_val, after_eval = sigmoid(f_train[val] @ w.numpy().T + b.numpy()), sigmoid(f_eval @ w.numpy().T + b.numpy())
        training.update(epochs_run=0)
    pred_after, thresholds = _predict(after_eval, after_val, y_val, 0.5)
    timings["train"] = time.time() - t0

    # ---- baselines, under the same validation rule
    baseline_preds: dict[str, np.ndarray] = {}
    baselines: dict[str, dict] = {}
    if "knn" in cfg.baselines:
        k = int(min(KNN_K, len(fit)))
        baseline_preds["knn"], _ = _predict(knn_shares(f_train[fit], y_fit, f_eval, k),
                                            knn_shares(f_train[fit], y_fit, f_train[val], k), y_val, 0.5)
    if "scratch" in cfg.baselines:
        t0 = time.time()
        twin = TransferModel(build_backbone(cfg.backbone, cfg.modality, pretrained=False, seed=cfg.seed), d.labels,
                             strategy="scratch")
        tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=SCRATCH_LR, head_lr=SCRATCH_LR,
                           patience=cfg.patience, seed=cfg.seed, freeze_bn=False)
        result = _train_loop(twin, d, fit, val, tcfg, prepare_full(twin), None, stage="scratch",
                             checkpoint_dir=writer.checkpoints("scratch"), resume=resume, progress=progress,
                             should_cancel=should_cancel)
        baseline_preds["scratch"], _ = _predict(sigmoid(model_logits(twin, d.eval.items)),
                                                sigmoid(model_logits(twin, [d.train.items[i] for i in val])), y_val, 0.5)
        scratch_info = {**_history(result), "lr": SCRATCH_LR, "train_size": len(fit), "val_size": len(val)}
        timings["scratch"] = time.time() - t0
    for key, pred in baseline_preds.items():
        baselines[key] = multilabel_metrics(d.y_eval, pred, d.labels, seed=cfg.seed)
    if "scratch" in baselines:
        baselines["scratch"]["training"] = scratch_info
    if "knn" in baselines:
        baselines["knn"]["k"] = int(min(KNN_K, len(fit)))

    # ---- evaluation and report
    before = multilabel_metrics(d.y_eval, pred_before, d.labels, seed=cfg.seed)
    after = multilabel_metrics(d.y_eval, pred_after, d.labels, seed=cfg.seed)
    comparisons = {ref: paired_micro_f1_difference(d.y_eval, pred_after, pred, seed=cfg.seed)
                   for ref, pred in [("before", pred_before), *[(k, v) for k, v in baseline_preds.items() if k == "scratch"]]}
    warnings = transfer_alerts(comparisons, metric=METRIC) + overlap_warnings(d.overlap, len(d.eval))
    warnings += [f"{len(d.problems)} file(s)/row(s) skipped: see data.problems"] * bool(d.problems)
    idx = lambda y: [np.flatnonzero(r).tolist() for r in y]  # noqa: E731 - label indices per item
    report = {
        "modality": cfg.modality, "task": SPEC.name, "backbone": name, "strategy": cfg.strategy, "seed": cfg.seed,
        "data": {"train": len(d.train), "val": len(val), "eval": len(d.eval), "source": len(d.source or []),
                 "unlabeled": 0, "classes": d.labels, "train_per_class": d.train.label_counts(),
                 "eval_per_class": d.eval.label_counts(), "eval_split_file": str(d.split_file) if d.split_file else None,
                 "problems": d.problems, "eval_overlap": d.overlap, "target": cfg.target, "source_path": cfg.source,
                 "eval_path": cfg.eval},
        "before": {**before, "kind": before_kind}, "after": after, "baselines": baselines, "comparisons": comparisons,
        "warnings": warnings, "notes": [],
        "thresholds": {"after": dict(zip(d.labels, map(float, thresholds))),
                       "before": dict(zip(d.labels, map(float, before_thresholds)))},
        "flipped": flipped_items(d.y_eval, pred_before, pred_after, d.labels, d.eval.items, d.eval.names),
        "eval_predictions": {"true": idx(d.y_eval), "before": idx(pred_before), "after": idx(pred_after),
                             **{k: idx(v) for k, v in baseline_preds.items()},
                             "items": [str(x) for x in d.eval.items], "names": d.eval.names},
        "training": training, "timings_s": timings,
    }
    chosen = "validation part of the training items" if len(val) else "default (no validation part)"

    def save_after(folder: Path) -> None:
        model.save_pretrained(folder)
        save_thresholds(folder, d.labels, thresholds, score="sigmoid", chosen_on=chosen)

    def save_before(folder: Path) -> None:
        before_head.save(folder, kind=before_kind)
        save_thresholds(folder, d.labels, before_thresholds, score=before_head.score, chosen_on=chosen)

    progress(Progress("save", 0, 1, "saving the model"))
    report = writer.finish(report, setting="inductive", save_model=save_after, save_before=save_before)
    progress(Progress("done", 1, 1, f"after micro-F1 {after['micro_f1']:.3f} (before {before['micro_f1']:.3f})"))
    return report
