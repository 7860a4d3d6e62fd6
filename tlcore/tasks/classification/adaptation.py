"""Classification, transductive (domain adaptation): the task's stages of the transductive pipeline.

"before" is the source-only model (a linear probe on source features); "after" is the adapted model (the
strategy's registered ``adapt`` on frozen features, or with ``--adapt-backbone`` the whole backbone trained with the
method's alignment loss); both are scored on the labeled target eval set, whose labels are used for nothing else.
Baselines trained on the same labeled source: k-NN on the pretrained source features and the classical model
without pretrained weights. Hyper-parameters come from the source validation split, never from target labels.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import numpy as np

from tlcore.adaptation.backbone import adapt_backbone
from tlcore.data.dataset import Dataset
from tlcore.data.loaders import check_trainable, load_dataset
from tlcore.data.overlap import content_keys, item_kind, other_overlaps, overlap_warnings
from tlcore.errors import DataError
from tlcore.evaluation.calibration import softmax
from tlcore.evaluation.errors import CE_DEFINITION, cross_entropy, loss_block
from tlcore.evaluation.metrics import (
    classification_metrics,
    flipped_examples,
    paired_difference,
    seeded_paired_difference,
)
from tlcore.evaluation.neighbours import knn_vote
from tlcore.models.before import BeforeHead
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone
from tlcore.models.transfer_model import TransferModel
from tlcore.progress import Progress
from tlcore.strategies import check_backbone, get_strategy
from tlcore.strategies.adaptation import AdaptInput
from tlcore.strategies.linear_probe import fit_linear_head
from tlcore.tasks.classification.classical import classical_predictions
from tlcore.tasks.job import Outcome, RunContext, TaskJob

BEFORE_KIND = "source-only model (linear probe on source features)"


class Job(TaskJob):
    """Domain adaptation's stages (module docstring), called by :func:`tlcore.settings.pipeline.run_stages`."""

    skipped = {"scratch": "training from scratch needs target labels; this setting has none"}
    seeded_baselines = ("classical",)

    def _load(self, path: Optional[str], what: str) -> Dataset:
        try:
            return load_dataset(path, self.cfg.modality, on_error=self.cfg.on_bad_file)  # type: ignore[arg-type]
        except DataError as exc:
            raise DataError(f"{what} data: {exc}") from None

    def load(self) -> str:
        cfg = self.cfg
        self.source, self.unlabeled = self._load(cfg.source, "source"), self._load(cfg.unlabeled, "unlabeled")
        self.eval = self._load(cfg.eval or cfg.target, "eval")
        check_trainable(self.source)
        if self.eval.labels is None:
            raise DataError("eval data needs labels (they are used only to score before/after)")
        self.classes = classes = self.source.classes
        unseen = sorted(set(self.eval.labels) - set(classes))
        if unseen:
            raise DataError(f"eval classes {unseen} do not occur in the source data; adaptation keeps the source's classes")
        kind = item_kind(cfg.modality)
        self.overlap = other_overlaps(content_keys(self.eval.items, kind),
                                      {"source": self.source.items, "unlabeled": self.unlabeled.items}, kind)
        self.ctx.warnings += overlap_warnings(self.overlap, len(self.eval))
        self.ys = np.array([classes.index(c) for c in self.source.labels])  # type: ignore[union-attr]
        self.ye = np.array([classes.index(c) for c in self.eval.labels])
        with self.ctx.timed("features"):
            self.backbone = build_backbone(cfg.backbone, cfg.modality)
            self.backbone_name = self.backbone.backbone_name  # type: ignore[attr-defined]
            check_backbone(cfg.strategy, self.backbone)     # a strategy this backbone cannot do: refused before work
            self.f = {name: extract_features(self.backbone, ds, stage=f"features: {name}", progress=self.ctx.progress,
                                             should_cancel=self.ctx.should_cancel)
                      for name, ds in (("source", self.source), ("unlabeled", self.unlabeled), ("eval", self.eval))}
        self.ctx.notes.append("target labels were used only to score before/after; hyper-parameters come from source "
                              "validation")
        return (f"{len(self.source)} labeled source / {len(self.unlabeled)} unlabeled target / {len(self.eval)} eval "
                f"items, {len(classes)} classes")

    def before(self) -> Outcome:
        self.w0, self.b0, self.probe_info = fit_linear_head(self.f["source"], self.ys, len(self.classes),
                                                            seed=self.cfg.seed)
        head = BeforeHead(self.w0, self.b0, "softmax")
        self.save_before = lambda folder: head.save(folder, kind=BEFORE_KIND)
        self.before_proba = head.scores(self.f["eval"])        # softmax: the per-item losses (eval_losses)
        return Outcome(self.before_proba.argmax(1), kind=BEFORE_KIND)

    def after(self) -> Outcome:
        cfg, f = self.cfg, self.f
        strategy = get_strategy(cfg.strategy)
        self.ctx.progress(Progress("adapt", 0, 1, f"adapting with {cfg.strategy}"))
        adapted = strategy.adapt(AdaptInput(f["source"], self.ys, f["unlabeled"], f["eval"], len(self.classes),
                                            (self.w0, self.b0), seed=cfg.seed, backbone=self.backbone,
                                            unlabeled_set=self.unlabeled, eval_set=self.eval))
        info = {"source_probe": self.probe_info, **adapted.info}
        self.model = TransferModel(self.backbone, self.classes, backbone_name=self.backbone_name, strategy=cfg.strategy,
                                   head_hidden=adapted.head_hidden)
        self.model.head.load_state_dict(adapted.head_state)
        self.eval_logits = adapted.eval_scores
        if not cfg.adapt_backbone:
            return Outcome(adapted.eval_scores.argmax(1), info)
        # End to end: the head restarts from the source probe; the trade-off is the one chosen on frozen features.
        self.model = TransferModel(self.backbone, self.classes, backbone_name=self.backbone_name, strategy=cfg.strategy)
        self.model.head.load_state_dict({"weight": self.w0, "bias": self.b0})
        trade_off = info["adapter"]["hyper"]["trade_off"]
        lr = cfg.lr or get_strategy("full").default_lr
        trained = adapt_backbone(self.model, self.source.items, self.ys, self.unlabeled.items, method=strategy.alignment,
                                 trade_off=trade_off, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr, seed=cfg.seed,
                                 checkpoint_dir=self.ctx.checkpoints("adapt"), progress=self.ctx.progress,
                                 should_cancel=self.ctx.should_cancel)
        self.backbone.pretrained = False   # modified weights: never share the features cache
        info["backbone"] = {"adapted": True, "trade_off": trade_off, "lr": lr, "epochs_run": trained.epochs_run,
                            "history": trained.history}
        self.eval_logits = self.model.predict_logits(self.eval.items, batch_size=64)
        return Outcome(self.eval_logits.argmax(1), info)

    def baseline(self, name: str) -> Outcome:
        """k-NN on the pretrained source features, or the classical model trained on the source labels."""
        if name == "knn":
            k = int(min(5, len(self.ys)))
            return Outcome(knn_vote(self.f["source"], self.ys, self.f["eval"], k, len(self.classes)),
                           extra={"k": k, "note": "k-NN on source features"})
        pred, info = classical_predictions(self.cfg.modality, self.source.items, self.ys, self.eval.items,
                                           seed=self.cfg.seed)
        return Outcome(pred, {**info, "trained_on": "the labeled source (no target labels in this setting)"})

    def reseeded(self, ctx: RunContext) -> Job:
        again = copy.copy(self)
        again.ctx, again.cfg = ctx, ctx.cfg
        again.backbone = build_backbone(ctx.cfg.backbone, ctx.cfg.modality)   # AdaBN and --adapt-backbone change it
        again.before()           # the source probe of this seed, which "after" starts from
        return again

    def compare_seeds(self, afters: list[np.ndarray], others: list[np.ndarray]) -> dict:
        return seeded_paired_difference(self.ye, afters, others, seed=self.cfg.seed, groups=self.eval.groups)

    def score(self, pred: np.ndarray) -> dict:
        return classification_metrics(self.ye, pred, self.classes, seed=self.cfg.seed, groups=self.eval.groups)

    def compare(self, after: np.ndarray, other: np.ndarray) -> dict:
        return paired_difference(self.ye, after, other, seed=self.cfg.seed, groups=self.eval.groups)

    def report(self, outcomes: dict[str, Outcome]) -> dict:
        preds = {name: np.asarray(o.pred) for name, o in outcomes.items()}
        problems = [str(p) for d in (self.source, self.unlabeled, self.eval) for p in d.problems]
        return {
            "data": {"train": len(self.source), "source": len(self.source), "eval": len(self.eval),
                     "unlabeled": len(self.unlabeled), "classes": self.classes, "eval_per_class": self.eval.class_counts(),
                     "problems": problems, "eval_overlap": self.overlap},
            "flipped": flipped_examples(self.ye, preds["before"], preds["after"], self.classes, self.eval.items,
                                        self.eval.names),
            "eval_predictions": {"true": self.ye.tolist(), **{k: v.tolist() for k, v in preds.items()},
                                 "items": [str(x) for x in self.eval.items], "names": self.eval.names},
            "eval_losses": loss_block(CE_DEFINITION, cross_entropy(softmax(self.eval_logits), self.ye),
                                      cross_entropy(self.before_proba, self.ye)),
        }

    def save_model(self, folder: Path) -> None:
        self.model.save_pretrained(folder)
