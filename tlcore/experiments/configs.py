"""The settings of the analyses as typed dataclasses: diagnose, rank, cluster and the data-efficiency curve (the
strategy sweep's :class:`~tlcore.experiments.sweep.SweepConfig` is importable from here too; fine-tuning's is
:class:`~tlcore.config.FinetuneConfig`).

One validator: every config's ``validate`` runs :func:`~tlcore.config.settings_problem` (types, choices, limits and
required settings, declared in the fields' metadata with :func:`~tlcore.config.config_field`), then the rules that
tie fields together, declared by the tasks and the registries (the task takes the modality, the backbone is for the
modality, the data exists). The CLI's subcommands are generated from these fields (``tlcore.cli.parser``), the API's
functions build the same config from their keywords (:mod:`tlcore.api`) and the app's forms validate through it, so
the CLI, the API and the app refuse exactly the same things with the same words.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from tlcore.config import (
    LIMITS,
    MODALITIES,
    TASKS,
    FinetuneConfig,
    check_option,
    config_field,
    settings_from_dict,
    settings_problem,
)
from tlcore.diagnostics.embedding_map import MAP_METHODS
from tlcore.errors import ConfigError
from tlcore.experiments.curve import DEFAULT_SHOTS
from tlcore.experiments.label_next import LABEL_NEXT_STRATEGIES, NEEDS_LABELS
from tlcore.experiments.rank_validation import check_rank_validation
from tlcore.experiments.sweep import SweepConfig
from tlcore.models.registry import resolve_backbone_name
from tlcore.strategies import get_strategy
from tlcore.tasks import get_task

MODALITY_HELP = "Data modality: image, text or audio."
TASK_HELP = ("Task: " + ", ".join(f"{t.name} ({t.description})" for t in map(get_task, TASKS))
             + ". Default: detected from the data.")


def _check_fields(cfg: Any) -> None:
    """The declared rules of every field (:func:`~tlcore.config.settings_problem`), as a ConfigError."""
    problem = settings_problem(cfg)
    if problem:
        raise ConfigError(problem)


def _check_common(cfg: Any, need_out: bool) -> None:
    """The declared field rules, the run folder of a background run, and a backbone that is for the modality."""
    _check_fields(cfg)
    if need_out and not cfg.out:
        raise ConfigError("no run folder given: set out to a new folder")
    resolve_backbone_name(cfg.backbone, cfg.modality)


def _check_path(value: Optional[str], what: str) -> None:
    if value and not Path(value).expanduser().exists():
        raise ConfigError(f"{what} {value} does not exist; check the path (the data may have been moved or deleted)")


def _check_task(task: Optional[str], modality: str) -> None:
    """A task given up front must take the modality (None: detected from the data when the analysis runs)."""
    if task is not None:
        get_task(task).check_modality(modality)


class _Settings:
    """``to_dict`` / ``from_dict`` shared by the analyses' configs; ``WHAT`` names the analysis in messages."""

    WHAT = "an analysis"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict) -> Any:
        return settings_from_dict(cls, data, cls.WHAT)


@dataclass
class DiagnoseConfig(_Settings):
    """How far is the target from the source, before any training (``python -m tlcore diagnose``,
    :func:`tlcore.api.diagnose`, the app's Diagnose page)."""

    WHAT = "a diagnosis"

    modality: str = config_field(None, MODALITY_HELP, choices=MODALITIES, required=True)
    source: str = config_field("", "Source-domain data (folder, .zip or table); labels optional.", required=True)
    target: str = config_field("", "Target-domain data (folder, .zip or table); labels optional.", required=True)
    backbone: Optional[str] = config_field(None, "Backbone whose features are compared; default per modality.")
    task: Optional[str] = config_field(None, TASK_HELP, choices=TASKS)
    seed: int = config_field(0, "Random seed (samples, permutation tests, the map): same seed, same data, same report.",
                             **LIMITS["seed"])
    map_method: str = config_field("pca", "Projection of the 2-D embedding map: pca (linear; distances mean something) "
                                   "or umap (keeps each point's neighbours together).", choices=MAP_METHODS)

    def validate(self) -> "DiagnoseConfig":
        """Refuse settings no diagnosis can use, with a message that says what to change. Returns ``self``."""
        _check_fields(self)
        resolve_backbone_name(self.backbone, self.modality)
        _check_task(self.task, self.modality)
        _check_path(self.source, "the source data")
        _check_path(self.target, "the target data")
        return self


@dataclass
class RankConfig(_Settings):
    """Which backbone will transfer best to the labeled target, without fine-tuning (``python -m tlcore rank``,
    :func:`tlcore.api.rank`, the app's Diagnose page); optionally validated by fine-tuning every candidate."""

    WHAT = "a backbone ranking"

    modality: str = config_field(None, MODALITY_HELP, choices=MODALITIES, required=True)
    target: str = config_field("", "Labeled target data (folder, .zip or table) the candidates are scored on.",
                               required=True)
    backbones: list = config_field([], "Candidate backbones (registry names, Hugging Face ids or model folders); "
                                   "default: the task's candidates, every registered backbone of the modality and "
                                   "its @random twin (speech recognition: the bundled Whisper and its twin).")
    task: Optional[str] = config_field(None, TASK_HELP, choices=TASKS)
    seed: int = config_field(0, "Random seed (subsamples of the intervals, the validation's runs).", **LIMITS["seed"])
    # ``validate`` would shadow the method of the same name: the field is validate_ranking, the flag --validate
    validate_ranking: bool = config_field(False, "Also fine-tune every candidate (linear probe) and report Kendall's "
                                          "tau between each score and the accuracy it reached (classification "
                                          "only; slow).", flag="validate")
    eval: Optional[str] = config_field(None, "Labeled eval data for the validation's fine-tuned accuracies (else a "
                                       "split of the target).")

    def validate(self) -> "RankConfig":
        """Refuse settings no ranking can use, with a message that says what to change. Returns ``self``."""
        _check_fields(self)
        names = self.backbones
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"backbones must be a list of backbone names; got {names!r}")
        if len(set(names)) != len(names):
            raise ConfigError("backbones: name each candidate once")
        for name in names:
            resolve_backbone_name(name, self.modality)
        _check_task(self.task, self.modality)
        if self.validate_ranking and self.task is not None:
            check_rank_validation(self.task)
        if self.eval and not self.validate_ranking:
            raise ConfigError("eval scores the fine-tuned candidates of the validation: turn validate on, or leave "
                              "eval out")
        _check_path(self.target, "the target data")
        _check_path(self.eval, "the eval data")
        return self


@dataclass
class AuditConfig(_Settings):
    """Label issues and data problems of a labeled set, before training (``python -m tlcore audit``,
    :func:`tlcore.api.audit`, the Data page's "Audit labels"): likely mislabeled items, duplicates, outliers."""

    WHAT = "a label audit"

    modality: str = config_field(None, MODALITY_HELP, choices=MODALITIES, required=True)
    target: str = config_field("", "Labeled target data (folder, .zip or table) whose labels are checked.",
                               required=True)
    eval: Optional[str] = config_field(None, "Labeled eval data: training items identical or nearly identical to an "
                                       "eval item are flagged (the eval set itself is not audited or changed).")
    source: Optional[str] = config_field(None, "Labeled source-domain data, audited too (optional).")
    backbone: Optional[str] = config_field(None, "Backbone whose pretrained features the probes and the duplicate and "
                                           "outlier checks use; default per modality.")
    task: Optional[str] = config_field(None, TASK_HELP, choices=TASKS)
    seed: int = config_field(0, "Random seed (the cross-validation folds): same seed, same data, same report.",
                             **LIMITS["seed"])

    def validate(self) -> "AuditConfig":
        """Refuse settings no audit can use, with a message that says what to change. Returns ``self``."""
        _check_fields(self)
        resolve_backbone_name(self.backbone, self.modality)
        _check_task(self.task, self.modality)
        _check_path(self.target, "the target data")
        _check_path(self.eval, "the eval data")
        _check_path(self.source, "the source data")
        return self


@dataclass
class ClusterConfig(_Settings):
    """One clustering analysis (unsupervised transfer): cluster ``data`` on the backbone's features and on raw
    inputs; labels, when the data has them, only score the clusters. ``out`` is the run folder of a background run
    (the app's); ``python -m tlcore cluster`` and :func:`tlcore.api.cluster` write no folder."""

    WHAT = "a clustering run"

    modality: str = config_field(None, MODALITY_HELP, choices=MODALITIES, required=True)
    data: str = config_field("", "Data to cluster (folder, .zip or table). Labels, if it has any, are used only to score "
                             "the clusters (NMI/ARI), never to form them.", required=True)
    out: str = config_field("", "Run folder to write (report.json, clusters.json, examples/).")
    backbone: Optional[str] = config_field(None, "Backbone whose features are clustered; default per modality.")
    k: Optional[int] = config_field(None, "Number of clusters (at most the number of items); unset = chosen by the "
                                    "silhouette between 2 and 12.", **LIMITS["k"])
    seed: int = config_field(0, "Random seed (PCA, k-means, sampling): same seed, same data, same clusters.",
                             **LIMITS["seed"])
    max_items: int = config_field(5000, "Cluster at most this many items (a seeded random sample of larger sets).",
                                  **LIMITS["max_items"])
    on_bad_file: str = config_field("skip", "What to do with unreadable files: skip (counted in the report) or refuse.",
                                    choices=("skip", "refuse"))

    def validate(self, *, need_out: bool = True) -> "ClusterConfig":
        """Refuse settings no clustering run can use, with a message that says what to change. Returns ``self``."""
        _check_common(self, need_out)
        _check_path(self.data, "the data")
        return self


MAX_CURVE_SHOTS = 12
MAX_CURVE_RUNS = 60


def check_curve_plan(shots: Any, seeds: Any) -> None:
    """Refuse a curve no one can wait for or that makes no sense: shots are whole numbers 0 (all)..100000, at most
    ``MAX_CURVE_SHOTS`` distinct values, ``seeds`` within its limits and at most ``MAX_CURVE_RUNS`` runs in all.
    The CLI's ``curve``, the API's ``curve`` and the app's curve form all check through here."""
    check_option("seeds", seeds)
    if not isinstance(shots, (list, tuple)) or not shots:
        raise ConfigError("shots must list labeled examples per class, e.g. [1, 2, 5, 10, 0] (0 = all)")
    lo, hi = LIMITS["shots"]["min"], LIMITS["shots"]["max"]
    bad = [s for s in shots if isinstance(s, bool) or not isinstance(s, int) or not lo <= s <= hi]
    if bad:
        raise ConfigError(f"shots must be whole numbers from {lo} (all) to {hi}; got {bad[0]!r}")
    distinct = len(set(shots))
    if distinct > MAX_CURVE_SHOTS:
        raise ConfigError(f"at most {MAX_CURVE_SHOTS} shot values per curve; got {distinct}")
    if distinct * seeds > MAX_CURVE_RUNS:
        raise ConfigError(f"{distinct} shot values × {seeds} seeds = {distinct * seeds} fine-tuning runs; at "
                          f"most {MAX_CURVE_RUNS}: use fewer shot values or seeds")


@dataclass
class CurveConfig(_Settings):
    """One data-efficiency curve as a background run: fine-tune at each number of labeled examples per class
    (``shots``, 0 = all) and seed, pretrained vs scratch, all scored on the same eval split."""

    WHAT = "a data-efficiency curve"

    modality: str = config_field("text", MODALITY_HELP, choices=MODALITIES)
    target: str = config_field("", "Labeled target data; the curve trains on subsets of it. Part is held out for eval "
                               "unless eval is given.")
    out: str = config_field("", "Run folder to write (report.json).")
    eval: Optional[str] = config_field(None, "Labeled held-out target data every point is scored on.")
    backbone: Optional[str] = config_field(None, "Backbone name; default per modality.")
    strategy: str = config_field("linear_probe", "Transfer strategy at every point: linear_probe, partial, full or "
                                 "lora.")
    epochs: int = config_field(10, "Training epochs per point (upper bound; early stopping may end sooner).",
                               **LIMITS["epochs"])
    eval_fraction: float = config_field(0.3, "Share of the target held out for evaluation when no eval set is given.",
                                        **LIMITS["eval_fraction"])
    shots: list = config_field(list(DEFAULT_SHOTS), "Labeled examples per class to try (0 or all = every labeled example).",
                               item_min=LIMITS["shots"]["min"], item_max=LIMITS["shots"]["max"])
    seeds: int = config_field(3, "Seeds per point: each draws other labeled examples (the band shows how much that "
                              "matters).", **LIMITS["seeds"])
    scratch: bool = config_field(True, "Also train the random-init twin of the backbone (same budget) at every point.")
    on_bad_file: str = config_field("skip", "What to do with unreadable files: skip or refuse.",
                                    choices=("skip", "refuse"))

    @staticmethod
    def parse_shots(text: str) -> list:
        """``"1, 2, 5, all"`` -> ``[1, 2, 5, 0]`` (``all`` = 0 = every labeled example). Raises ``ConfigError``."""
        shots = []
        for part in str(text).replace(";", ",").split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part == "all":
                shots.append(0)
            elif part.isdigit():
                shots.append(int(part))
            else:
                raise ConfigError(f"shots: {part!r} is not a whole number; write e.g. 1, 2, 5, 10, all "
                                  "(all or 0 = every labeled example)")
        if not shots:
            raise ConfigError("shots: give at least one number of labeled examples per class, e.g. 1, 2, 5, 10, all")
        return shots

    def shot_list(self) -> list:
        """The shots in measuring order: ascending, duplicates dropped, 0 (all) last."""
        return sorted(set(self.shots), key=lambda s: (s == 0, s))

    def finetune_config(self) -> FinetuneConfig:
        """The fine-tuning settings every point starts from (``out``, ``seed`` and ``max_per_class`` set per point)."""
        return FinetuneConfig(modality=self.modality, target=self.target, eval=self.eval, backbone=self.backbone,
                              strategy=self.strategy, epochs=self.epochs, eval_fraction=self.eval_fraction,
                              on_bad_file=self.on_bad_file, baselines=["scratch"] if self.scratch else [])

    def validate(self, *, need_out: bool = True) -> "CurveConfig":
        """Refuse settings no curve can use, with a message that says what to change. Returns ``self``."""
        _check_common(self, need_out)
        check_curve_plan(self.shots, self.seeds)
        if not self.target:
            raise ConfigError("no labeled target data given: the curve trains on labeled examples, so pick a data "
                              "set with a labeled target split")
        _check_path(self.target, "the target data")
        _check_path(self.eval, "the eval data")
        if get_strategy(self.strategy).needs_unlabeled:
            raise ConfigError(f"strategy {self.strategy!r} adapts to unlabeled data; the curve trains on labeled "
                              "examples: pick linear_probe, partial, full or lora")
        self.finetune_config().validate(need_out=False)
        return self


@dataclass
class LabelNextConfig(_Settings):
    """Which unlabeled items to label next (``python -m tlcore label-next``, :func:`tlcore.api.label_next`, the app's
    Data page): rank ``budget`` items of ``pool`` and project the accuracy more labels would bring
    (:mod:`tlcore.experiments.label_next`)."""

    WHAT = "a label-next ranking"

    modality: str = config_field(None, MODALITY_HELP, choices=MODALITIES, required=True)
    pool: str = config_field("", "Unlabeled data to choose from (folder, .zip or table), e.g. the set's unlabeled split; "
                             "at most 20,000 items.", required=True)
    target: Optional[str] = config_field(None, "Labeled target data you already have (optional): the margin "
                                         "strategies' probe is trained on it, and the projection's curve is measured "
                                         "on it. Part is held out for eval unless eval is given.")
    eval: Optional[str] = config_field(None, "Labeled held-out data the projection's curve is scored on (else a split "
                                       "of the target).")
    budget: int = config_field(20, "How many items to rank (the labels you can afford next).", **LIMITS["budget"])
    strategy: str = config_field("typiclust", "typiclust (default; suits a label or a few per class, needs no labels), "
                                 "margin_kcenter, margin, kcenter or random (the margin strategies need a labeled "
                                 "target: classification's margin, multi-label's smallest per-label margin).",
                                 choices=LABEL_NEXT_STRATEGIES)
    backbone: Optional[str] = config_field(None, "Backbone whose pretrained features are compared; default per "
                                           "modality.")
    task: Optional[str] = config_field(None, TASK_HELP + " Detected from the labeled target (else the pool) when not "
                                       "given; classification and multi-label sets.", choices=TASKS)
    curve: Optional[str] = config_field(None, "A data-efficiency curve run (folder or report.json) to fit the "
                                        "projection to; else a linear-probe curve is measured on the target.")
    seed: int = config_field(0, "Random seed (k-means, the curve's subsets, the bootstrap).", **LIMITS["seed"])
    eval_fraction: float = config_field(0.3, "Share of the target held out for the projection's eval when no eval "
                                        "set is given.", **LIMITS["eval_fraction"])
    on_bad_file: str = config_field("skip", "What to do with unreadable files: skip or refuse.",
                                    choices=("skip", "refuse"))

    def validate(self) -> "LabelNextConfig":
        """Refuse settings no ranking can use, with a message that says what to change. Returns ``self``."""
        _check_fields(self)
        resolve_backbone_name(self.backbone, self.modality)
        _check_task(self.task, self.modality)
        if self.strategy in NEEDS_LABELS and not self.target:
            raise ConfigError(f"strategy {self.strategy} reads a classifier's uncertainty: give a labeled target "
                              "(two classes or more; for multi-label, two labels or more), or use typiclust")
        if self.eval and not self.target:
            raise ConfigError("eval scores the projection's curve, which is measured on the labeled target: give "
                              "target too, or leave eval out")
        _check_path(self.pool, "the pool")
        _check_path(self.target, "the target data")
        _check_path(self.eval, "the eval data")
        _check_path(self.curve, "the curve run")
        return self


__all__ = ["MAX_CURVE_RUNS", "MAX_CURVE_SHOTS", "AuditConfig", "ClusterConfig", "CurveConfig", "DiagnoseConfig", "LabelNextConfig",
           "RankConfig", "SweepConfig", "check_curve_plan"]
