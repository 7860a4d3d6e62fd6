"""Transductive transfer (domain adaptation) end to end: labeled source + unlabeled target -> adapted model.

"before" is the source-only model (a linear probe on source features); "after" is the adapted model; both are
scored on the labeled target eval set, whose labels are used for nothing else. Hyper-parameters come from the
source validation split (training-domain validation), never from target labels.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np
import torch

from tlcore.config import FinetuneConfig
from tlcore.data.dataset import Dataset
from tlcore.data.loaders import check_trainable, load_dataset
from tlcore.data.overlap import content_keys, item_kind, other_overlaps, overlap_warnings
from tlcore.errors import ConfigError, DataError
from tlcore.evaluation.metrics import classification_metrics, flipped_examples, paired_difference
from tlcore.evaluation.policy import transfer_alerts
from tlcore.models.before import BeforeHead
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone
from tlcore.models.transfer_model import TransferModel
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.reporting.writer import begin_run
from tlcore.strategies import get_strategy
from tlcore.strategies.linear_probe import fit_linear_head


def _load(path: Optional[str], cfg: FinetuneConfig, what: str) -> Optional[Dataset]:
    if not path:
        return None
    try:
        return load_dataset(path, cfg.modality, on_error=cfg.on_bad_file)
    except DataError as exc:
        raise DataError(f"{what} data: {exc}") from None


def _adabn_features(backbone, unlabeled: Dataset, eval_ds: Dataset, batch_size: int = 32) -> tuple[np.ndarray, int]:
    from tlcore.adaptation import adabn, batchnorm_layers

    if not batchnorm_layers(backbone):
        raise ConfigError("AdaBN needs a batch-norm backbone such as efficientnet-lite0; this backbone has none")
    batches = (backbone.preprocess(unlabeled.items[i:i + batch_size]) for i in range(0, len(unlabeled), batch_size))
    n_layers = adabn(backbone, batches)
    backbone.pretrained = False   # modified weights: never share the features cache
    return extract_features(backbone, eval_ds, use_cache=False), n_layers


def run_adaptation(cfg: FinetuneConfig, *, progress: Optional[ProgressFn] = None,
                   should_cancel: Optional[CancelFn] = None) -> dict:
    progress = progress or no_progress
    should_cancel = should_cancel or never_cancel
    strategy = get_strategy(cfg.strategy)
    if not strategy.needs_unlabeled:
        raise ConfigError(f"strategy {cfg.strategy!r} is not a domain-adaptation strategy")
    if not cfg.source or not cfg.unlabeled:
        raise ConfigError(f"{cfg.strategy} adapts a labeled source to unlabeled target data: pass --source and --unlabeled")
    if not cfg.eval and not cfg.target:
        raise ConfigError("pass --eval (labeled target data) so source-only and adapted accuracy can be measured")
    writer = begin_run(cfg)
    timings: dict[str, float] = {}
    progress(Progress("data", 0, 1, "loading data"))
    source = _load(cfg.source, cfg, "source")
    unlabeled = _load(cfg.unlabeled, cfg, "unlabeled")
    eval_ds = _load(cfg.eval or cfg.target, cfg, "eval")
    assert source is not None and unlabeled is not None and eval_ds is not None
    check_trainable(source)
    if eval_ds.labels is None:
        raise DataError("eval data needs labels (they are used only to score before/after)")
    classes = source.classes
    unseen = sorted(set(eval_ds.labels) - set(classes))
    if unseen:
        raise DataError(f"eval classes {unseen} do not occur in the source data; adaptation keeps the source's classes")
    kind = item_kind(cfg.modality)
    overlap = other_overlaps(content_keys(eval_ds.items, kind), {"source": source.items, "unlabeled": unlabeled.items}, kind)
    ys = np.array([classes.index(c) for c in source.labels])  # type: ignore[union-attr]
    ye = np.array([classes.index(c) for c in eval_ds.labels])

    t0 = time.time()
    backbone = build_backbone(cfg.backbone, cfg.modality)
    name = backbone.backbone_name  # type: ignore[attr-defined]
    fs = extract_features(backbone, source, stage="features: source", progress=progress, should_cancel=should_cancel)
    fu = extract_features(backbone, unlabeled, stage="features: unlabeled", progress=progress, should_cancel=should_cancel)
    fe = extract_features(backbone, eval_ds, stage="features: eval", progress=progress, should_cancel=should_cancel)
    timings["features"] = time.time() - t0

    w0, b0, probe = fit_linear_head(fs, ys, len(classes), seed=cfg.seed)
    before_head = BeforeHead(w0, b0, "softmax")
    pred_before = before_head.scores(fe).argmax(1)

    progress(Progress("adapt", 0, 1, f"adapting with {cfg.strategy}"))
    t0 = time.time()
    info: dict = {"source_probe": probe}
    head_hidden = 0
    if cfg.strategy == "coral":
        from tlcore.adaptation import coral_align

        w, b, _ = fit_linear_head(coral_align(fs, fu), ys, len(classes), seed=cfg.seed)
        head_state = {"weight": w, "bias": b}
        pred_after = (torch.from_numpy(fe) @ w.T + b).argmax(1).numpy()
    elif cfg.strategy == "self_training":
        from tlcore.adaptation import self_train

        w, b, st = self_train(fs, ys, fu, len(classes), seed=cfg.seed)
        w, b = torch.as_tensor(w, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)
        head_state, info["self_training"] = {"weight": w, "bias": b}, st
        pred_after = (torch.from_numpy(fe) @ w.T + b).argmax(1).numpy()
    elif cfg.strategy == "adabn":
        fe_adapted, n_layers = _adabn_features(backbone, unlabeled, eval_ds)
        head_state, info["adabn_layers"] = {"weight": w0, "bias": b0}, n_layers
        pred_after = (torch.from_numpy(fe_adapted) @ w0.T + b0).argmax(1).numpy()
    else:
        from tlcore.adaptation import select_trade_off

        result, grid = select_trade_off(fs, ys, fu, len(classes), method=strategy.alignment, seed=cfg.seed)
        head_hidden = result.head[0].out_features
        head_state = result.head.state_dict()
        info["adapter"] = {"source_val_accuracy": result.source_val_accuracy, "hyper": result.hyper,
                           "trade_off_scores": {str(k): v for k, v in grid.items()}, "history": result.history}
        with torch.no_grad():
            pred_after = result.head(torch.from_numpy(fe)).argmax(1).numpy()
    model = TransferModel(backbone, classes, backbone_name=name, strategy=cfg.strategy, head_hidden=head_hidden)
    model.head.load_state_dict(head_state)
    if cfg.adapt_backbone:
        from tlcore.adaptation.backbone import adapt_backbone

        # End to end: the head restarts from the source probe; the trade-off is the one chosen on frozen features.
        model = TransferModel(backbone, classes, backbone_name=name, strategy=cfg.strategy)
        model.head.load_state_dict({"weight": w0, "bias": b0})
        trade_off = info["adapter"]["hyper"]["trade_off"]
        lr = cfg.lr or get_strategy("full").default_lr
        trained = adapt_backbone(model, source.items, ys, unlabeled.items, method=strategy.alignment,
                                 trade_off=trade_off, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr, seed=cfg.seed,
                                 checkpoint_dir=writer.checkpoints("adapt"), progress=progress, should_cancel=should_cancel)
        backbone.pretrained = False   # modified weights: never share the features cache
        info["backbone"] = {"adapted": True, "trade_off": trade_off, "lr": lr, "epochs_run": trained.epochs_run,
                            "history": trained.history}
        pred_after = model.predict_proba(eval_ds.items, batch_size=64).argmax(1)
    timings["adapt"] = time.time() - t0
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=min(5, len(ys)), metric="cosine").fit(fs, ys).predict(fe)
    before = classification_metrics(ye, pred_before, classes, seed=cfg.seed)
    after = classification_metrics(ye, pred_after, classes, seed=cfg.seed)
    comparisons = {"source-only": paired_difference(ye, pred_after, pred_before, seed=cfg.seed)}
    report = {
        "modality": cfg.modality, "task": cfg.task,
        "backbone": name, "strategy": cfg.strategy, "seed": cfg.seed,
        "data": {"train": len(source), "source": len(source), "eval": len(eval_ds), "unlabeled": len(unlabeled),
                 "classes": classes, "eval_per_class": eval_ds.class_counts(),
                 "problems": [str(p) for d in (source, unlabeled, eval_ds) for p in d.problems],
                 "eval_overlap": overlap},
        "before": {**before, "kind": "source-only model (linear probe on source features)"},
        "after": after,
        "baselines": {"knn": {**classification_metrics(ye, knn, classes, seed=cfg.seed), "note": "k-NN on source features"}},
        "comparisons": comparisons,
        "warnings": transfer_alerts(comparisons, metric="accuracy") + overlap_warnings(overlap, len(eval_ds)),
        "flipped": flipped_examples(ye, pred_before, pred_after, classes, eval_ds.items, eval_ds.names),
        "eval_predictions": {"true": ye.tolist(), "before": pred_before.tolist(), "after": np.asarray(pred_after).tolist(),
                             "knn": knn.tolist(), "items": [str(x) for x in eval_ds.items], "names": eval_ds.names},
        "training": info,
        "notes": ["target labels were used only to score before/after; hyper-parameters come from source validation"],
        "timings_s": timings,
    }
    report = writer.finish(report, setting="transductive", save_model=model.save_pretrained,
                           save_before=lambda folder: before_head.save(folder, kind=report["before"]["kind"]),
                           skipped={"scratch": "training from scratch needs target labels; this setting has none"})
    progress(Progress("done", 1, 1, f"adapted accuracy {after['accuracy']:.3f} (source-only {before['accuracy']:.3f})"))
    return report
