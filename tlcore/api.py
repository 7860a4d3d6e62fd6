"""The public Python API. The CLI and the app call these functions; a notebook can too.

    import tlcore
    result = tlcore.finetune(modality="text", target="data/target", eval="data/eval", strategy="lora", out="runs/x")
    result.after["accuracy"], result.warnings
    tlcore.load_run("runs/x").predict(["a new review"], model="before")

Every function validates its settings first (one :class:`~tlcore.errors.ConfigError` / ``DataError`` that says
what to change), does the heavy work only when called, and returns a dataclass whose ``to_dict()`` is the JSON the
CLI writes (``--json``) and the run folder keeps (``report.json``). The settings are checked by their config class
(:class:`FinetuneConfig`, and :mod:`tlcore.experiments.configs` for the analyses), the one the CLI's flags are
generated from and the app's forms validate through: the three refuse the same things with the same words.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from tlcore.config import FinetuneConfig, check_option
from tlcore.data.exclude import issues_csv
from tlcore.diagnostics.audit import run_audit
from tlcore.diagnostics.diagnose import run_diagnose
from tlcore.diagnostics.rank import run_rank
from tlcore.errors import ConfigError
from tlcore.experiments.configs import (
    MAX_CURVE_RUNS,
    MAX_CURVE_SHOTS,
    AuditConfig,
    ClusterConfig,
    CurveConfig,
    DiagnoseConfig,
    LabelNextConfig,
    RankConfig,
    check_curve_plan,
)
from tlcore.experiments.curve import DEFAULT_SHOTS, data_efficiency_curve, write_curve_run
from tlcore.experiments.label_next import LabelNextResult, run_label_next
from tlcore.experiments.rank_validation import validated_rank
from tlcore.experiments.sweep import SWEEP_STRATEGIES, SweepConfig, run_sweep, sweep_job
from tlcore.inference.error_report import error_report, read_run_report
from tlcore.inference.hub_export import export_hf
from tlcore.inference.onnx_export import export_onnx, load_onnx_model
from tlcore.inference.predict import LoadedRun, load_run
from tlcore.progress import CancelFn, ProgressFn, never_cancel, no_progress
from tlcore.reporting.envelope import complete_analysis
from tlcore.reporting.writer import run_folder_options
from tlcore.settings.inductive import run_finetune
from tlcore.settings.unsupervised import run_clustering, write_clustering_run
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
class AuditResult(_Result):
    """Label issues and data problems of a labeled set: ``issues`` (one row per item and issue: ``set``, ``name``,
    ``item``, ``label``, ``issue``, ``score`` (lower = worse), ``suggested``, ``reason``), ``counts`` per set and kind."""

    task: str = DEFAULT_TASK
    issues: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    def csv(self) -> str:
        """The issues as CSV text (what ``--csv`` writes and ``FinetuneConfig.exclude`` reads back)."""
        return issues_csv(self.issues)


@dataclass
class ClusteringResult(_Result):
    """Clusters of unlabeled data on pretrained features vs on raw inputs (scores vs labels when the data has them)."""

    pretrained: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)


@dataclass
class CurveResult(_Result):
    """Eval accuracy against labeled examples per class, pretrained vs scratch (mean ± std over seeds)."""

    points: list = field(default_factory=list)


@dataclass
class ErrorAnalysisResult(_Result):
    """The error analysis of a finished run on its eval split, as :func:`error_analysis` returns it. ``report`` (what
    ``to_dict()`` and the CLI's ``errors --json`` give) holds ``task``, ``run_dir``, ``top`` and the task's part:
    classification and multi-label ``models`` (per model, "after" and "before": ``errors``, ``error_cells``, the
    ``largest_cells`` of the confusion matrix with their items, ``per_class`` missed / spurious counts),
    ``top_losses`` and ``loss_rose`` (items with their truth, both predictions and both losses); NER ``counts`` of
    entity errors per model and kind and the ``errors`` with their sentences; ASR the ``worst`` utterances and the
    most frequent ``substitutions``, ``deletions`` and ``insertions``. ``summary``: the same in a few lines of text."""

    run_dir: Path = Path()
    task: str = DEFAULT_TASK
    summary: list = field(default_factory=list)


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


def _config(cls: type, config: Any, settings: dict) -> Any:
    """The settings of one call: ``config`` with the keyword ``settings`` that were given (not None) applied, or
    ``cls`` built from them alone. The API's keyword functions check through the same config class (and its
    ``validate``) as the CLI's flags and the app's forms, so all three refuse the same things with the same words."""
    given = {k: str(v) if isinstance(v, Path) else v for k, v in settings.items() if v is not None}
    if config is None:
        return cls.from_dict(given)
    if not isinstance(config, cls):
        raise ConfigError(f"config must be a {cls.__name__}; got {type(config).__name__}")
    return dataclasses.replace(config, **given)


def diagnose(source: Optional[str | Path] = None, target: Optional[str | Path] = None, *, modality: Optional[str] = None,
             task: Optional[str] = None, backbone: Optional[str] = None, seed: Optional[int] = None,
             map_method: Optional[str] = None, config: Optional[DiagnoseConfig] = None,
             progress: Optional[ProgressFn] = None) -> DiagnosisResult:
    """Domain mismatch between a source and a target set before any training (classification, NER or ASR sets).
    Pass the settings as keywords or a :class:`DiagnoseConfig` (keywords given override its fields); unset ones take
    the config's defaults. ``map_method``: projection of the 2-D embedding map, "pca" or "umap"."""
    cfg = _config(DiagnoseConfig, config, {"source": source, "target": target, "modality": modality, "task": task,
                                           "backbone": backbone, "seed": seed, "map_method": map_method}).validate()
    report = run_diagnose(cfg.modality, cfg.source, cfg.target, backbone=cfg.backbone, seed=cfg.seed, task=cfg.task,
                          map_method=cfg.map_method, progress=progress or no_progress)
    settings = {**cfg.to_dict(), "task": report.get("task", cfg.task)}
    return _typed(DiagnosisResult, complete_analysis(report, settings, kind="diagnosis", setting="diagnosis"))


def rank(target: Optional[str | Path] = None, *, modality: Optional[str] = None,
         backbones: Optional[Sequence[str]] = None, task: Optional[str] = None, seed: Optional[int] = None,
         validate: Optional[bool] = None, eval: Optional[str | Path] = None, config: Optional[RankConfig] = None,
         progress: Optional[ProgressFn] = None) -> RankResult:
    """Which backbone will transfer best to the labeled target, without fine-tuning; ``validate`` also fine-tunes
    every candidate and correlates each score with the accuracy reached. Settings as keywords or a
    :class:`RankConfig` (its ``validate_ranking`` is the keyword ``validate``); unset ones take its defaults."""
    cfg = _config(RankConfig, config, {"target": target, "modality": modality, "task": task, "seed": seed,
                                       "backbones": None if backbones is None else list(backbones),
                                       "validate_ranking": validate, "eval": eval}).validate()
    names = list(cfg.backbones) or None
    if cfg.validate_ranking:
        report = validated_rank(cfg.modality, cfg.target, eval_path=cfg.eval, backbones=names, seed=cfg.seed,
                                task=cfg.task, progress=progress or no_progress)
    else:
        report = run_rank(cfg.modality, cfg.target, backbones=names, seed=cfg.seed, task=cfg.task,
                          progress=progress or no_progress)
    return _typed(RankResult, report)


def audit(target: Optional[str | Path] = None, *, modality: Optional[str] = None, eval: Optional[str | Path] = None,
          source: Optional[str | Path] = None, backbone: Optional[str] = None, task: Optional[str] = None,
          seed: Optional[int] = None, config: Optional[AuditConfig] = None,
          progress: Optional[ProgressFn] = None) -> AuditResult:
    """Likely mislabeled items (with the suggested label), exact and near-duplicates (also under conflicting labels
    and across train/eval) and outliers of a labeled target (and source) set: cleanlab on out-of-fold probabilities of
    linear probes on the pretrained features (:mod:`tlcore.diagnostics.audit`). Classification only. Settings as
    keywords or an :class:`AuditConfig`; ``result.csv()`` is the exclusion file a run takes (``exclude``)."""
    cfg = _config(AuditConfig, config, {"target": target, "modality": modality, "eval": eval, "source": source,
                                        "backbone": backbone, "task": task, "seed": seed}).validate()
    report = run_audit(cfg.modality, cfg.target, eval=cfg.eval, source=cfg.source, backbone=cfg.backbone,
                       task=cfg.task, seed=cfg.seed, progress=progress or no_progress)
    settings = {**cfg.to_dict(), "task": report.get("task", cfg.task)}
    return _typed(AuditResult, complete_analysis(report, settings, kind="audit", setting="audit"))


def cluster(data: Optional[str | Path] = None, *, modality: Optional[str] = None, backbone: Optional[str] = None,
            k: Optional[int] = None, seed: Optional[int] = None, max_items: Optional[int] = None,
            on_bad_file: Optional[str] = None, config: Optional[ClusterConfig] = None,
            progress: Optional[ProgressFn] = None) -> ClusteringResult:
    """Unsupervised transfer: cluster data with no labels on pretrained features, against raw inputs. Settings as
    keywords or a :class:`ClusterConfig` (its ``out`` is not used: nothing is written); unset ones take its
    defaults (``k`` unset: chosen by the silhouette)."""
    cfg = _config(ClusterConfig, config, {"data": data, "modality": modality, "backbone": backbone, "k": k,
                                          "seed": seed, "max_items": max_items, "on_bad_file": on_bad_file})
    cfg.validate(need_out=False)
    return _typed(ClusteringResult, run_clustering(cfg.modality, cfg.data, backbone=cfg.backbone, k=cfg.k,
                                                   seed=cfg.seed, max_items=cfg.max_items,
                                                   on_bad_file=cfg.on_bad_file, progress=progress or no_progress))


def label_next(pool: Optional[str | Path] = None, *, modality: Optional[str] = None,
               target: Optional[str | Path] = None, eval: Optional[str | Path] = None, budget: Optional[int] = None,
               strategy: Optional[str] = None, backbone: Optional[str] = None, curve: Optional[str | Path] = None,
               seed: Optional[int] = None, eval_fraction: Optional[float] = None, on_bad_file: Optional[str] = None,
               task: Optional[str] = None, config: Optional[LabelNextConfig] = None,
               progress: Optional[ProgressFn] = None) -> LabelNextResult:
    """Which unlabeled items of ``pool`` to label next: ``budget`` items ranked by ``strategy`` (default TypiClust) on
    the pretrained features, each with the probe's suggested label when a labeled ``target`` is given, and the
    projected accuracy with N more labels (a band fitted to a data-efficiency curve; ``projection_missing`` says
    why there is none). Classification and multi-label sets (``task``: detected from the target, else the pool;
    multi-label suggests label sets and projects micro-F1). Settings as keywords or a :class:`LabelNextConfig`;
    ``result.to_dict()`` is the JSON report and :func:`tlcore.experiments.label_next.ranked_csv` the list to fill in."""
    cfg = _config(LabelNextConfig, config, {"pool": pool, "modality": modality, "target": target, "eval": eval,
                                            "budget": budget, "strategy": strategy, "backbone": backbone,
                                            "curve": curve, "seed": seed, "eval_fraction": eval_fraction,
                                            "on_bad_file": on_bad_file, "task": task}).validate()
    return run_label_next(cfg.modality, cfg.pool, target=cfg.target, eval=cfg.eval, backbone=cfg.backbone,
                          strategy=cfg.strategy, budget=cfg.budget, seed=cfg.seed, eval_fraction=cfg.eval_fraction,
                          curve=cfg.curve, on_bad_file=cfg.on_bad_file, task=cfg.task, progress=progress or no_progress)


def error_analysis(run_dir: str | Path, *, top: Optional[int] = 10) -> ErrorAnalysisResult:
    """The error analysis of the finished fine-tuning run in ``run_dir`` (what Compare's "Errors" shows), from its
    report's per-item eval predictions: classification and multi-label the largest confusion cells with their items
    and the items of highest loss after transfer and of most risen loss; NER entity errors by kind (missed, spurious,
    wrong type, wrong boundary) with their sentences; ASR the worst utterances and the most frequent word
    substitutions. ``top``: entries kept per ranked list, 1 to 1000 (None: all; counts are always whole). Loads no
    model. DataError (one line) for a folder without a finished run, or a run saved before per-item predictions were
    stored."""
    check_option("top_k", top, flag="top")
    top = None if top is None else int(top)
    report = read_run_report(run_dir)
    data, lines = error_report(report, top=top)
    return ErrorAnalysisResult(report={"run_dir": str(run_dir), **data}, run_dir=Path(run_dir), task=data["task"],
                               summary=lines)


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


__all__ = ["MAX_CURVE_RUNS", "MAX_CURVE_SHOTS", "AuditConfig", "AuditResult", "ClusterConfig", "ClusteringResult",
           "CurveConfig", "CurveResult", "DiagnoseConfig", "DiagnosisResult", "ErrorAnalysisResult", "FinetuneConfig", "LabelNextConfig", "LabelNextResult", "LoadedRun", "RankConfig", "RankResult", "RunResult",
           "SweepConfig", "audit", "check_curve_plan", "cluster", "cluster_job", "curve", "curve_job", "diagnose",
           "error_analysis", "export_hf", "export_onnx", "finetune", "label_next", "load_onnx_model", "load_run", "rank", "sweep", "sweep_job"]
