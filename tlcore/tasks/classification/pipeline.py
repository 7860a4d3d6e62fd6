"""Classification, inductive: data -> features -> before -> transfer -> baselines -> report + run folder.

"before" is the source-trained model (a linear probe on source features) when a source set is given, else the
training-free nearest-class-mean classifier on the pretrained features; "after" is the model the strategy
produced. Both, and the baselines (random-init twin trained with the same budget; k-NN on pretrained features),
are scored on the same eval split.

The loop strategies (partial, full, lora) are LP-FT (Kumar et al., "Fine-Tuning can Distort Pretrained Features
and Underperform Out-of-Distribution", ICLR 2022): the head starts as the linear probe fitted on the cached
features, then head and backbone train together at the strategy's small lr (the head too: a large head lr would
undo the probe and drag the features after it), partial/full with layer-wise lr decay, warm-up + cosine decay,
and image batches augmented (``cfg.augment``). The probe is scored on the eval split as well; when the
fine-tuned model does not beat it beyond the paired 95% interval, the report's notes recommend the probe.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from tlcore.config import MIN_VAL_ITEMS, NO_PRETRAINING, FinetuneConfig
from tlcore.data.dataset import Dataset
from tlcore.data.loaders import check_trainable, load_dataset
from tlcore.data.overlap import conflicting_labels, content_key, item_kind, overlap_warnings, split_overlaps
from tlcore.data.split import cap_per_class, eval_split, stratified_split
from tlcore.device import current as current_runtime
from tlcore.errors import ConfigError, DataError
from tlcore.evaluation.metrics import classification_metrics, flipped_examples, paired_difference
from tlcore.evaluation.neighbours import knn_vote
from tlcore.evaluation.policy import alert, transfer_alerts
from tlcore.models.before import BeforeHead, nearest_class_mean
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone, resolve_backbone_name
from tlcore.models.transfer_model import TransferModel
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.reporting.writer import begin_run
from tlcore.strategies import STRATEGIES, get_strategy
from tlcore.strategies.linear_probe import fit_linear_head
from tlcore.tasks.classification.classical import NAMES as CLASSICAL_NAMES
from tlcore.tasks.classification.classical import classical_predictions
from tlcore.tasks.classification.train import can_augment, train_classifier
from tlcore.training.trainer import TrainConfig

log = logging.getLogger(__name__)
SCRATCH_LR = 1e-3
# LP-FT: the head starts from the linear probe and trains at the backbone's (top block's) lr times this. It was
# max(lr, 1e-3): 5-20x the backbone's, which moves the probe's decision boundary first and the features after it.
FT_HEAD_LR_FACTOR = 1.0
FT_SCHEDULE = "warmup_cosine"
# Early stopping of the loop strategies needs at least this many validation items (else: the whole schedule).
FT_MIN_VAL_ITEMS = MIN_VAL_ITEMS


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
    conflicts: Optional[dict] = None   # identical training items under different labels (conflicting_labels)


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
    key_of = {x: content_key(x, kind) for x in train_ds.items}      # each training file is read once
    keep, overlap = split_overlaps(eval_ds.items, train_ds.items, train_ds.names, kind=kind,
                                   eval_given=bool(cfg.eval), others={"source": source and source.items,
                                                                      "unlabeled": unlabeled and unlabeled.items},
                                   train_keys=[key_of[x] for x in train_ds.items])
    train_ds = train_ds.subset(keep)
    train_ds = cap_per_class(train_ds, cfg.max_per_class, seed=cfg.seed)
    conflicts = conflicting_labels(train_ds.items, train_ds.labels, [key_of[x] for x in train_ds.items])
    classes = sorted(set(train_ds.labels))
    unseen = sorted(set(eval_ds.labels) - set(classes))
    if unseen:
        raise DataError(f"eval classes {unseen} do not occur in the target training data; add examples of them to --target")
    problems = [str(p) for d in (target, source, eval_ds, unlabeled) if d is not None for p in d.problems]
    return RunData(target, source, unlabeled, train_ds, eval_ds, classes, _indices(train_ds.labels, classes),
                   _indices(eval_ds.labels, classes), overlap, split_file, problems, conflicts)


def _indices(labels: list[str], classes: list[str]) -> np.ndarray:
    pos = {c: i for i, c in enumerate(classes)}
    return np.array([pos[y] for y in labels], dtype=np.int64)


def _knn(train_f: np.ndarray, train_y: np.ndarray, eval_f: np.ndarray, n_classes: int) -> np.ndarray:
    return knn_vote(train_f, train_y, eval_f, int(min(5, len(train_y))), n_classes)




def check_config(cfg: FinetuneConfig) -> None:
    """Classification's own rules: the strategy is registered, --adapt-backbone goes with an alignment method,
    adaptation has its source + unlabeled sets, everything else a labeled target; the backbone resolves."""
    strategy = get_strategy(cfg.strategy)
    if cfg.adapt_backbone and not strategy.alignment:
        aligned = [n for n in STRATEGIES.names() if STRATEGIES.get(n).alignment]
        raise ConfigError(f"--adapt-backbone trains the backbone with an alignment loss: use it with "
                          f"{', '.join(aligned[:-1])} or {aligned[-1]} (not {cfg.strategy!r})")
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
    resolve_backbone_name(cfg.backbone, cfg.modality)


def run(cfg: FinetuneConfig, *, progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
        resume: bool = False) -> dict:
    """One inductive classification run (called by :func:`tlcore.settings.inductive.run_finetune`)."""
    progress = progress or no_progress
    should_cancel = should_cancel or never_cancel
    writer = begin_run(cfg)
    out, strategy = writer.out, get_strategy(cfg.strategy)
    timings: dict[str, float] = {}
    torch.manual_seed(cfg.seed)

    # ---- data
    progress(Progress("data", 0, 1, "loading data"))
    d = prepare_data(cfg)
    source, unlabeled, train_ds, eval_ds, classes = d.source, d.unlabeled, d.train, d.eval, d.classes
    y_train, y_eval, overlap, split_file, problems = d.y_train, d.y_eval, d.overlap, d.split_file, d.problems
    progress(Progress("data", 1, 1, f"{len(train_ds)} train / {len(eval_ds)} eval items, {len(classes)} classes"))

    # ---- pretrained features (cached): before, k-NN, linear probe
    t0 = time.time()
    backbone = build_backbone(cfg.backbone, cfg.modality, pretrained=True)
    backbone_name = backbone.backbone_name  # type: ignore[attr-defined]
    f_train = extract_features(backbone, train_ds, stage="features: train", progress=progress, should_cancel=should_cancel)
    f_eval = extract_features(backbone, eval_ds, stage="features: eval", progress=progress, should_cancel=should_cancel)
    f_source = None
    if source is not None:
        f_source = extract_features(backbone, source, stage="features: source", progress=progress, should_cancel=should_cancel)
    timings["features"] = time.time() - t0

    # ---- before
    progress(Progress("before", 0, 1, "scoring the model before transfer"))
    before_kind = "nearest class mean of the pretrained features, fitted on the target's training labels (no fine-tuning)"
    if source is not None and f_source is not None:
        keep = np.array([y in classes for y in source.labels or []])
        if keep.sum() and len(set(np.array(source.labels)[keep])) >= 2:
            ys = _indices([y for y, k in zip(source.labels, keep) if k], classes)  # type: ignore[arg-type]
            w, b, _ = fit_linear_head(f_source[keep], ys, len(classes), seed=cfg.seed)
            before_head = BeforeHead(w, b, "softmax")
            before_kind = "source-trained model (linear probe on source features)"
            if set(source.labels) != set(classes):  # type: ignore[arg-type]
                before_kind += "; source classes not in the target are ignored"
        else:
            before_head = nearest_class_mean(f_train, y_train, len(classes))
            before_kind += " (source has no classes in common with the target)"
    else:
        before_head = nearest_class_mean(f_train, y_train, len(classes))
    pred_before = before_head.scores(f_eval).argmax(1)

    # ---- after
    t0 = time.time()
    model = TransferModel(backbone, classes, backbone_name=backbone_name, strategy=cfg.strategy)
    w, b, probe_info = fit_linear_head(f_train, y_train, len(classes), seed=cfg.seed)
    with torch.no_grad():
        model.head.weight.copy_(w)
        model.head.bias.copy_(b)
    train_info: dict = {"linear_probe": probe_info}
    notes: list[str] = []
    if strategy.uses_loop:
        fit_idx, val_idx, train_info["early_stopping"] = loop_validation(train_ds.labels, cfg)
        if len(val_idx):
            # LP-FT's head starts from a probe that has not seen the early-stopping items: a probe fitted on them
            # scores ~100% there, and early stopping would then stop on a validation split that cannot tell.
            w_fit, b_fit, train_info["head_init"] = fit_linear_head(f_train[fit_idx], y_train[fit_idx], len(classes),
                                                                    seed=cfg.seed)
            with torch.no_grad():
                model.head.weight.copy_(w_fit)
                model.head.bias.copy_(b_fit)
        lr = cfg.lr or strategy.lr_for(cfg.modality)
        tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr, head_lr=lr * FT_HEAD_LR_FACTOR,
                           patience=cfg.patience, seed=cfg.seed, schedule=FT_SCHEDULE, keep_best=bool(len(val_idx)))
        train_modules = strategy.prepare(model, partial_blocks=cfg.partial_blocks, lora_r=cfg.lora_r, seed=cfg.seed)  # type: ignore[misc]
        groups = (strategy.param_groups(model, lr=tcfg.lr, head_lr=tcfg.head_lr, layer_decay=cfg.layer_decay)
                  if strategy.param_groups else None)
        augmented = can_augment(backbone)
        augment, flip = (cfg.augment, cfg.augment_flip) if augmented else ("none", False)
        result = train_classifier(
            model, [train_ds.items[i] for i in fit_idx], y_train[fit_idx],
            val_items=[train_ds.items[i] for i in val_idx], val_y=y_train[val_idx], config=tcfg,
            train_modules=train_modules, checkpoint_dir=writer.checkpoints("after"), resume=resume,
            stage="train", progress=progress, should_cancel=should_cancel, augment=augment, augment_flip=flip,
            param_groups=groups)
        if strategy.finalize:
            strategy.finalize(model)
        for p in model.parameters():
            p.requires_grad_(False)
        # best_epoch: the epoch whose weights the model has (the last one when there was nothing to select on)
        train_info.update(epochs_run=result.epochs_run, history=result.history,
                          best_epoch=result.best_epoch if tcfg.keep_best else result.epochs_run,
                          best_val_accuracy=result.best("val_accuracy"), stopped_early=result.stopped_early,
                          resumed_from_epoch=result.resumed_from_epoch, train_size=len(fit_idx), val_size=len(val_idx),
                          lr=tcfg.lr, head_lr=tcfg.head_lr, schedule=tcfg.schedule,
                          layer_decay=cfg.layer_decay if groups else None, augment=augment, augment_flip=flip)
        if not augmented and cfg.modality != "image" and (cfg.augment != "none" or cfg.augment_flip):
            train_info["augment_ignored"] = f"{cfg.modality} inputs are not augmented (image fine-tuning only)"
        progress(Progress("eval", 0, 1, "scoring the transferred model"))
        pred_after = model.predict_proba(eval_ds.items, batch_size=64).argmax(1)
        # The probe this run started from, scored on the same eval items: did fine-tuning earn its cost?
        pred_probe = (torch.from_numpy(f_eval) @ w.T + b).argmax(1).numpy()
        probe_vs = paired_difference(y_eval, pred_after, pred_probe, seed=cfg.seed)
        train_info.update(linear_probe_eval_accuracy=float((pred_probe == y_eval).mean()) if len(y_eval) else 0.0,
                          linear_probe_comparison=probe_vs)
        note = probe_recommendation(cfg.strategy, float((pred_after == y_eval).mean()) if len(y_eval) else 0.0,
                                    train_info["linear_probe_eval_accuracy"], probe_vs)
        notes += [note] if note else []
    else:
        pred_after = (torch.from_numpy(f_eval) @ w.T + b).argmax(1).numpy()
        train_info.update(epochs_run=0, train_size=len(train_ds), val_size=0)
    timings["train"] = time.time() - t0

    # ---- baselines
    baselines: dict[str, dict] = {}
    baseline_preds: dict[str, np.ndarray] = {}
    if "knn" in cfg.baselines:
        baseline_preds["knn"] = _knn(f_train, y_train, f_eval, len(classes))
    baseline_info: dict[str, dict] = {}
    if "classical" in cfg.baselines:
        t0 = time.time()
        progress(Progress("classical", 0, 1, f"classical baseline: {CLASSICAL_NAMES[cfg.modality]}"))
        baseline_preds["classical"], baseline_info["classical"] = classical_predictions(
            cfg.modality, train_ds.items, y_train, eval_ds.items, seed=cfg.seed)
        timings["classical"] = time.time() - t0
    if "scratch" in cfg.baselines:
        t0 = time.time()
        baseline_preds["scratch"], baseline_info["scratch"] = _scratch(
            cfg, train_ds, y_train, eval_ds.items, classes, out, resume, progress, should_cancel)
        timings["scratch"] = time.time() - t0
    for name, pred in baseline_preds.items():
        baselines[name] = classification_metrics(y_eval, pred, classes, seed=cfg.seed)
    for name, info in baseline_info.items():
        baselines[name]["training"] = info
    if "knn" in baselines:
        baselines["knn"]["k"] = int(min(5, len(y_train)))

    # ---- report
    t0 = time.time()
    before = classification_metrics(y_eval, pred_before, classes, seed=cfg.seed)
    after = classification_metrics(y_eval, pred_after, classes, seed=cfg.seed)
    comparisons = {"before": paired_difference(y_eval, pred_after, pred_before, seed=cfg.seed)}
    for name in NO_PRETRAINING:       # transfer is measured against what needs no pretrained weights
        if name in baseline_preds:
            comparisons[name] = paired_difference(y_eval, pred_after, baseline_preds[name], seed=cfg.seed)
    timings["eval"] = time.time() - t0
    warnings = transfer_alerts(comparisons, metric="accuracy") + overlap_warnings(overlap, len(eval_ds))
    clash = d.conflicts
    if clash:
        shown = "; ".join(f"{item!r}: {', '.join(labs)}" for item, labs in clash["examples"])
        warnings.append(alert("conflicting_labels", f"{clash['items']} training item(s) appear under two or more labels "
                              f"({clash['rows']} rows, e.g. {shown}); they train as contradictions — relabel or remove "
                              "them if they are mistakes"))
    warnings += [f"{len(problems)} file(s)/row(s) skipped: see data.problems"] * bool(problems)
    report = {
        "modality": cfg.modality, "task": cfg.task, "backbone": backbone_name, "strategy": cfg.strategy, "seed": cfg.seed,
        "data": {"train": len(train_ds), "val": int(train_info.get("val_size", 0)), "eval": len(eval_ds),
                 "source": len(source) if source else 0, "unlabeled": len(unlabeled) if unlabeled else 0,
                 "classes": classes, "train_per_class": train_ds.class_counts(), "eval_per_class": eval_ds.class_counts(),
                 "eval_split_file": str(split_file) if split_file else None, "problems": problems,
                 "eval_overlap": overlap, "target": cfg.target, "source_path": cfg.source, "eval_path": cfg.eval},
        "before": {**before, "kind": before_kind},
        "after": after,
        "baselines": baselines,
        "comparisons": comparisons,
        "warnings": warnings,
        "notes": notes,
        "flipped": flipped_examples(y_eval, pred_before, pred_after, classes, eval_ds.items, eval_ds.names),
        "eval_predictions": {"true": y_eval.tolist(), "before": np.asarray(pred_before).tolist(),
                             "after": np.asarray(pred_after).tolist(),
                             **{k: np.asarray(v).tolist() for k, v in baseline_preds.items()},
                             "items": [str(x) for x in eval_ds.items], "names": eval_ds.names},
        "training": train_info,
        "timings_s": timings,
    }
    progress(Progress("save", 0, 1, "saving the model"))
    report = writer.finish(report, setting="inductive", save_model=model.save_pretrained,
                           save_before=lambda folder: before_head.save(folder, kind=before_kind))
    progress(Progress("done", 1, 1, f"after accuracy {after['accuracy']:.3f} (before {before['accuracy']:.3f})"))
    return report


def probe_recommendation(strategy: str, after_accuracy: float, probe_accuracy: float, comparison: dict) -> Optional[str]:
    """A note recommending the linear probe when the fine-tuned model does not beat it beyond the 95% interval of
    the paired difference on the same eval items (``comparison`` = ``paired_difference(after, probe)``); None when
    fine-tuning won clearly. Driven only by the numbers of the run."""
    lo, hi = comparison["ci95"]
    if lo > 0:
        return None
    gain = 100 * comparison["difference"]
    if hi < 0:
        verdict, why = "is worse than", "fine-tuning lost accuracy that the frozen pretrained features had"
    else:
        verdict, why = ("is not clearly better than", "fine-tuning has not shown that it earns its extra cost (more "
                        "labeled eval data would narrow the interval)")
    return (f"linear probe recommended: the {strategy} fine-tuned model ({after_accuracy:.3f} accuracy) {verdict} the "
            f"linear probe on the same pretrained features ({probe_accuracy:.3f}) on the same eval items (difference "
            f"{gain:+.1f} points, 95% CI {100 * lo:+.1f} to {100 * hi:+.1f}); on this data {why}. Use strategy "
            "linear_probe: features computed once, no backbone to train or store")


def loop_validation(labels: list[str], cfg: FinetuneConfig) -> tuple[np.ndarray, np.ndarray, str]:
    """The one validation rule of every network trained in a loop (partial, full, LoRA and the scratch twin):
    (fit indices, validation indices, the rule in words).

    A stratified ``val_fraction`` of the *training* items (never the eval split) is held out for early stopping when
    it holds at least ``FT_MIN_VAL_ITEMS`` items. Below that, epochs differ by a few points while the accuracy of n
    validation items has a 95% interval of about ±100/sqrt(n) points (±22 for 20 items), so stopping on it picks an
    epoch at random (measured on the image demos: 1-4 points lost against the end of the schedule): the model then
    trains the whole schedule on every training item and keeps the last epoch."""
    counts: dict[str, int] = {}
    for y in labels:
        counts[y] = counts.get(y, 0) + 1
    everything = np.arange(len(labels))
    if cfg.val_fraction <= 0 or min(counts.values()) < 4:
        return everything, np.array([], dtype=np.int64), (
            f"off: no validation split (val_fraction {cfg.val_fraction:g}, smallest class {min(counts.values())} "
            f"items); trained the whole schedule on all {len(labels)} training items and kept the last epoch")
    keep, held = stratified_split(labels, cfg.val_fraction, seed=cfg.seed)
    if len(held) < FT_MIN_VAL_ITEMS:
        return everything, np.array([], dtype=np.int64), (
            f"off: {len(held)} validation items cannot tell epochs apart (needs {FT_MIN_VAL_ITEMS}); trained the "
            f"whole schedule on all {len(labels)} training items and kept the last epoch")
    return np.array(keep), np.array(held), (
        f"on: {len(keep)} training items fitted, {len(held)} held out of them (never eval) to keep the best epoch "
        f"(patience {cfg.patience})")


def _scratch(cfg: FinetuneConfig, train_ds: Dataset, y_train: np.ndarray, eval_items: list, classes: list[str], out: Path,
             resume: bool, progress: ProgressFn, should_cancel: CancelFn) -> tuple[np.ndarray, dict]:
    """The random-init twin of the backbone, trained on the same training items under the same validation rule
    (:func:`loop_validation`), epochs and batch size as the fine-tuned model; its learning rate is a fixed default
    (``SCRATCH_LR``, not tuned on this data)."""
    from tlcore.strategies.finetune import prepare_full

    torch.manual_seed(cfg.seed)
    twin = build_backbone(cfg.backbone, cfg.modality, pretrained=False, seed=cfg.seed)
    model = TransferModel(twin, classes, strategy="scratch")
    modules = prepare_full(model)
    fit_idx, val_idx, rule = loop_validation(train_ds.labels, cfg)  # type: ignore[arg-type]
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=SCRATCH_LR, head_lr=SCRATCH_LR,
                       patience=cfg.patience, seed=cfg.seed, freeze_bn=False, keep_best=bool(len(val_idx)))
    result = train_classifier(model, [train_ds.items[i] for i in fit_idx], y_train[fit_idx],
                              val_items=[train_ds.items[i] for i in val_idx], val_y=y_train[val_idx], config=tcfg,
                              train_modules=modules, checkpoint_dir=out / "checkpoints" / "scratch", resume=resume,
                              stage="scratch", progress=progress, should_cancel=should_cancel)
    progress(Progress("scratch", 1, 1, "scoring the scratch baseline"))
    runtime = current_runtime().describe()     # where the twin ran (a follow-up job sets the run's own runtime)
    return model.predict_proba(eval_items, batch_size=64).argmax(1), {
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch if tcfg.keep_best else result.epochs_run,
        "stopped_early": result.stopped_early, "train_size": len(fit_idx), "val_size": len(val_idx),
        "early_stopping": rule, "lr": SCRATCH_LR, "tuned": f"lr fixed at {SCRATCH_LR:g} (a default, not tuned)",
        "device": runtime["device"], "precision": runtime["precision"], "history": result.history}
