"""The public Python API. The CLI and the app call these functions; a notebook can too.

    import tlcore
    result = tlcore.finetune(modality="text", target="data/target", eval="data/eval", strategy="lora", out="runs/x")
    result.after["accuracy"], result.warnings
    tlcore.load_run("runs/x").predict(["a new review"], model="before")

Every function validates its settings first (one :class:`~tlcore.errors.ConfigError` / ``DataError`` that says
what to change), does the heavy work only when called, and returns a dataclass whose ``to_dict()`` is the JSON the
CLI writes (``--json``) and the run folder keeps (``report.json``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from tlcore.config import LIMITS, MODALITIES, FinetuneConfig, check_option, config_field, settings_from_dict, settings_problem
from tlcore.diagnostics.diagnose import run_diagnose
from tlcore.diagnostics.rank import run_rank
from tlcore.errors import ConfigError
from tlcore.experiments.curve import DEFAULT_SHOTS, data_efficiency_curve, write_curve_run
from tlcore.experiments.rank_validation import validated_rank
from tlcore.experiments.sweep import SWEEP_STRATEGIES, SweepConfig, run_sweep, sweep_job
from tlcore.inference.onnx_export import export_onnx, load_onnx_model
from tlcore.inference.predict import LoadedRun, load_run
from tlcore.models.registry import resolve_backbone_name
from tlcore.progress import CancelFn, ProgressFn, never_cancel, no_progress
from tlcore.reporting.envelope import complete_analysis
from tlcore.reporting.writer import run_folder_options
from tlcore.settings.inductive import run_finetune
from tlcore.settings.unsupervised import run_clustering, write_clustering_run
from tlcore.strategies import get_strategy
from tlcore.tasks import DEFAULT_TASK


@dataclass
class _Result:
    report: dict = field(repr=False)

    def to_dict(self) -> dict:
        """The JSON report (what ``--json`` writes)."""
        return self.report


@dataclass
class RunResult(_Result):
    """A finished fine-tuning / adaptation run; ``report`` is its report.json (DESIGN.md contract)."""

    run_dir: Path = Path()
    task: str = DEFAULT_TASK
    setting: str = "inductive"
    backbone: str = ""
    strategy: str = ""
    before: dict = field(default_factory=dict, repr=False)
    after: dict = field(default_factory=dict, repr=False)
    baselines: dict = field(default_factory=dict, repr=False)
    baselines_skipped: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)

    @classmethod
    def from_report(cls, run_dir: str | Path, report: dict) -> "RunResult":
        return _typed(cls, report, run_dir=Path(run_dir))

    def load(self) -> LoadedRun:
        """The run folder with its before/after models, for predictions."""
        return load_run(self.run_dir)


@dataclass
class DiagnosisResult(_Result):
    """How far the target is from the source: ``verdict`` first (severity, summary, recommendation)."""

    task: str = DEFAULT_TASK
    verdict: dict = field(default_factory=dict)


@dataclass
class RankResult(_Result):
    """Backbones ranked by transferability scores on the labeled target (best first)."""

    task: str = DEFAULT_TASK
    ranking: list = field(default_factory=list)
    advice: str = ""


@dataclass
class ClusteringResult(_Result):
    """Clusters of unlabeled data on pretrained features vs on raw inputs (scores vs labels when the data has them)."""

    pretrained: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)


@dataclass
class CurveResult(_Result):
    """Eval accuracy against labeled examples per class, pretrained vs scratch (mean ± std over seeds)."""

    points: list = field(default_factory=list)


def _typed(cls: type, report: dict, **fixed: Any) -> Any:
    """``cls`` with its typed fields taken from the report (``fixed`` ones given here)."""
    keys = {f.name for f in dataclasses.fields(cls)} - {"report"} - set(fixed)
    return cls(report=report, **fixed, **{k: report[k] for k in keys if k in report})


def finetune(config: Optional[FinetuneConfig] = None, *, progress: Optional[ProgressFn] = None,
             should_cancel: Optional[CancelFn] = None, resume: bool = False, overwrite: bool = False,
             **settings: Any) -> RunResult:
    """Run one transfer experiment (inductive, or transductive with an adaptation strategy) and write its run
    folder. Pass a :class:`FinetuneConfig` or its fields as keywords (``modality``, ``target``, ``out``, ...).

    The run folder ``out`` is never overwritten: one that holds a run (or anything else) is refused unless ``resume``
    (continue an unfinished run from its checkpoints) or ``overwrite`` (replace a finished run once this one
    completes). The run is written to a hidden sibling folder and renamed into place when complete
    (:class:`tlcore.reporting.writer.RunWriter`), so a failed run leaves nothing at ``out``."""
    cfg = config if config is not None else FinetuneConfig.from_dict(settings)
    if config is not None and settings:
        cfg = dataclasses.replace(config, **settings)
    cfg.validate()
    report = run_finetune(cfg, progress=progress, should_cancel=should_cancel, resume=resume, overwrite=overwrite)
    return RunResult.from_report(cfg.out, report)


def finetune_job(config: FinetuneConfig, *, progress: Optional[ProgressFn] = None,
                 should_cancel: Optional[CancelFn] = None, resume: bool = False) -> dict:
    """:func:`finetune` as the app's background worker calls it (``RunStore`` job path): returns the report.

    The store gives every run its own folder, so a fresh attempt there (a failed or cancelled run queued again)
    replaces what the earlier attempt left; a finished report is still never replaced. A failed run's checkpoints
    are dropped (the app starts it over); a cancelled one keeps them (a run that yielded the queue resumes)."""
    config.validate()
    return run_finetune(config, progress=progress, should_cancel=should_cancel, resume=resume,
                        overwrite=_fresh_attempt(config.out, resume), keep_failed=False)


def _fresh_attempt(out: str, resume: bool) -> bool:
    """May a worker job replace its folder's leftovers? Yes for a fresh attempt, never over a finished report."""
    return not resume and not (Path(out) / "report.json").exists()


def diagnose(source: str | Path, target: str | Path, *, modality: str, task: Optional[str] = None,
             backbone: Optional[str] = None, seed: int = 0, map_method: str = "pca",
             progress: Optional[ProgressFn] = None) -> DiagnosisResult:
    """Domain mismatch between a source and a target set before any training (classification, NER or ASR sets).
    ``map_method``: projection of the 2-D embedding map, "pca" or "umap"."""
    check_option("seed", seed)
    kwargs = {"progress": progress} if progress else {}
    report = run_diagnose(modality, str(source), str(target), backbone=backbone, seed=seed, task=task,
                          map_method=map_method, **kwargs)
    config = {"modality": modality, "source": str(source), "target": str(target), "task": report.get("task", task),
              "backbone": backbone, "seed": seed, "map_method": map_method}
    return _typed(DiagnosisResult, complete_analysis(report, config, kind="diagnosis", setting="diagnosis"))


def rank(target: str | Path, *, modality: str, backbones: Optional[Sequence[str]] = None, task: Optional[str] = None,
         seed: int = 0, validate: bool = False, eval: Optional[str | Path] = None,
         progress: Optional[ProgressFn] = None) -> RankResult:
    """Which backbone will transfer best to the labeled target, without fine-tuning (optionally validated)."""
    check_option("seed", seed)
    kwargs = {"progress": progress} if progress else {}
    names = list(backbones) if backbones else None
    if validate:
        report = validated_rank(modality, str(target), eval_path=str(eval) if eval else None, backbones=names,
                                seed=seed, task=task, **kwargs)
    else:
        report = run_rank(modality, str(target), backbones=names, seed=seed, task=task, **kwargs)
    return _typed(RankResult, report)


def cluster(data: str | Path, *, modality: str, backbone: Optional[str] = None, k: Optional[int] = None, seed: int = 0,
            progress: Optional[ProgressFn] = None) -> ClusteringResult:
    """Unsupervised transfer: cluster data with no labels on pretrained features, against raw inputs."""
    check_option("k", k)
    check_option("seed", seed)
    kwargs = {"progress": progress} if progress else {}
    return _typed(ClusteringResult, run_clustering(modality, str(data), backbone=backbone, k=k, seed=seed, **kwargs))


def curve(config: Optional[FinetuneConfig] = None, *, shots: Optional[Sequence[int]] = None, seeds: Sequence[int] = (0, 1, 2),
          scratch: bool = True, progress: Optional[ProgressFn] = None, **settings: Any) -> CurveResult:
    """Data-efficiency curve: accuracy per labeled examples per class (0 = all), pretrained vs scratch."""
    cfg = config if config is not None else FinetuneConfig.from_dict(settings)
    cfg.validate(need_out=False)
    seeds = list(seeds)
    for s in seeds:
        check_option("seed", s)
    check_curve_plan(list(shots or DEFAULT_SHOTS), len(seeds))
    kwargs = {"progress": progress} if progress else {}
    return _typed(CurveResult, data_efficiency_curve(cfg, shots=shots or DEFAULT_SHOTS, seeds=seeds, scratch=scratch, **kwargs))


def sweep(config: Optional[FinetuneConfig] = None, *, out: str | Path, strategies: Sequence[str] = SWEEP_STRATEGIES,
          progress: Optional[ProgressFn] = None, **settings: Any) -> dict:
    """Which strategy? Every strategy of ``strategies`` on the same data, split, budget and seed, the baselines once,
    one table and a recommendation (:mod:`tlcore.experiments.sweep`); writes ``out`` and returns its report."""
    cfg = config if config is not None else FinetuneConfig.from_dict(settings)
    return run_sweep(cfg, out, strategies=list(strategies), progress=progress or no_progress)


# ------------------------------------------------------------------ clustering and the curve as background runs
# The app's worker runs a job with the settings class it declares (``job.config_class``): the store validates the
# stored dict with ``from_dict``, the worker hands the job ``from_dict(stored)``; the job writes ``out/report.json``.

def _check_common(cfg: Any, need_out: bool) -> None:
    problem = settings_problem(cfg)
    if problem:
        raise ConfigError(problem)
    if need_out and not cfg.out:
        raise ConfigError("no run folder given: set out to a new folder")
    resolve_backbone_name(cfg.backbone, cfg.modality)


def _check_path(value: Optional[str], what: str) -> None:
    if value and not Path(value).expanduser().exists():
        raise ConfigError(f"{what} {value} does not exist; pick a data set again (it may have been moved or deleted)")


@dataclass
class ClusterConfig:
    """One clustering analysis (unsupervised transfer) as a background run: cluster ``data`` on the backbone's
    features and on raw inputs; labels, when the data has them, only score the clusters. ``out`` is the run folder."""

    modality: str = config_field("image", "Data modality: image, text or audio.", choices=MODALITIES)
    data: str = config_field("", "Data to cluster (folder, .zip or table). Labels, if it has any, are used only to score the "
                       "clusters (NMI/ARI), never to form them.")
    out: str = config_field("", "Run folder to write (report.json, clusters.json, examples/).")
    backbone: Optional[str] = config_field(None, "Backbone whose features are clustered; default per modality.")
    k: Optional[int] = config_field(None, "Number of clusters (at most the number of items); empty = chosen by the silhouette "
                          "between 2 and 12.", **LIMITS["k"])
    seed: int = config_field(0, "Random seed (PCA, k-means, sampling): same seed, same data, same clusters.", **LIMITS["seed"])
    max_items: int = config_field(5000, "Cluster at most this many items (a seeded random sample of larger sets).",
                        **LIMITS["max_items"])
    on_bad_file: str = config_field("skip", "What to do with unreadable files: skip (counted in the report) or refuse.",
                          choices=("skip", "refuse"))

    def validate(self, *, need_out: bool = True) -> "ClusterConfig":
        """Refuse settings no clustering run can use, with a message that says what to change. Returns ``self``."""
        _check_common(self, need_out)
        if not self.data:
            raise ConfigError("no data given: pick the data set to cluster (a folder, .zip or table)")
        _check_path(self.data, "the data")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ClusterConfig":
        return settings_from_dict(cls, data, "a clustering run")


MAX_CURVE_SHOTS = 12
MAX_CURVE_RUNS = 60


def check_curve_plan(shots: Any, seeds: Any) -> None:
    """Refuse a curve no one can wait for or that makes no sense: shots are whole numbers 0 (all)..100000, at most
    ``MAX_CURVE_SHOTS`` distinct values, ``seeds`` within its limits and at most ``MAX_CURVE_RUNS`` runs in all.
    The CLI's ``curve``, the API's :func:`curve` and the app's curve form all check through here."""
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
class CurveConfig:
    """One data-efficiency curve as a background run: fine-tune at each number of labeled examples per class
    (``shots``, 0 = all) and seed, pretrained vs scratch, all scored on the same eval split."""

    modality: str = config_field("text", "Data modality: image, text or audio.", choices=MODALITIES)
    target: str = config_field("", "Labeled target data; the curve trains on subsets of it. Part is held out for eval unless "
                         "eval is given.")
    out: str = config_field("", "Run folder to write (report.json).")
    eval: Optional[str] = config_field(None, "Labeled held-out target data every point is scored on.")
    backbone: Optional[str] = config_field(None, "Backbone name; default per modality.")
    strategy: str = config_field("linear_probe", "Transfer strategy at every point: linear_probe, partial, full or lora.")
    epochs: int = config_field(10, "Training epochs per point (upper bound; early stopping may end sooner).", **LIMITS["epochs"])
    eval_fraction: float = config_field(0.3, "Share of the target held out for evaluation when no eval set is given.",
                              **LIMITS["eval_fraction"])
    shots: list = config_field(list(DEFAULT_SHOTS), "Labeled examples per class to try (0 = all of them).",
                     item_min=LIMITS["shots"]["min"], item_max=LIMITS["shots"]["max"])
    seeds: int = config_field(3, "Seeds per point: each draws other labeled examples (the band shows how much that matters).",
                    **LIMITS["seeds"])
    scratch: bool = config_field(True, "Also train the random-init twin of the backbone (same budget) at every point.")
    on_bad_file: str = config_field("skip", "What to do with unreadable files: skip or refuse.", choices=("skip", "refuse"))

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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "CurveConfig":
        return settings_from_dict(cls, data, "a data-efficiency curve")


def cluster_job(config: ClusterConfig, *, progress: Optional[ProgressFn] = None,
                should_cancel: Optional[CancelFn] = None, resume: bool = False) -> dict:
    """A clustering analysis as the app's background worker runs it: writes ``report.json``, ``clusters.json`` and
    ``examples/`` into ``config.out`` and returns the report. ``resume`` starts over (features are cached)."""
    config.validate()
    with run_folder_options(overwrite=_fresh_attempt(config.out, False), keep_failed=False):
        return write_clustering_run(config.to_dict(), progress=progress or no_progress,
                                    should_cancel=should_cancel or never_cancel)


def curve_job(config: CurveConfig, *, progress: Optional[ProgressFn] = None,
              should_cancel: Optional[CancelFn] = None, resume: bool = False) -> dict:
    """A data-efficiency curve as the app's background worker runs it: writes ``report.json`` into ``config.out`` and
    returns it. ``resume`` continues an attempt that was cancelled, yielded or lost its worker: the (shots, seed)
    runs it finished are not run again."""
    config.validate()
    with run_folder_options(resume=resume, overwrite=_fresh_attempt(config.out, resume), keep_failed=False):
        return write_curve_run(config.finetune_config(), config.to_dict(), shots=config.shot_list(),
                               seeds=list(range(config.seeds)), scratch=config.scratch,
                               progress=progress or no_progress, should_cancel=should_cancel or never_cancel)


cluster_job.config_class = ClusterConfig   # type: ignore[attr-defined]
curve_job.config_class = CurveConfig       # type: ignore[attr-defined]


__all__ = ["ClusterConfig", "ClusteringResult", "CurveConfig", "CurveResult", "DiagnosisResult", "FinetuneConfig",
           "LoadedRun", "RankResult", "RunResult", "SweepConfig", "cluster", "cluster_job", "curve", "curve_job",
           "diagnose", "export_onnx", "finetune", "load_onnx_model", "load_run", "rank", "sweep", "sweep_job"]
