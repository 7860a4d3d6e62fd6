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

from tlcore.config import FinetuneConfig
from tlcore.inference.predict import LoadedRun, load_run
from tlcore.progress import CancelFn, ProgressFn


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
    task: str = "classify"
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

    task: str = "classify"
    verdict: dict = field(default_factory=dict)


@dataclass
class RankResult(_Result):
    """Backbones ranked by transferability scores on the labeled target (best first)."""

    task: str = "classify"
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
             should_cancel: Optional[CancelFn] = None, resume: bool = False, **settings: Any) -> RunResult:
    """Run one transfer experiment (inductive, or transductive with an adaptation strategy) and write its run
    folder. Pass a :class:`FinetuneConfig` or its fields as keywords (``modality``, ``target``, ``out``, ...)."""
    from tlcore.settings.inductive import run_finetune

    cfg = config if config is not None else FinetuneConfig.from_dict(settings)
    if config is not None and settings:
        cfg = dataclasses.replace(config, **settings)
    cfg.validate()
    report = run_finetune(cfg, progress=progress, should_cancel=should_cancel, resume=resume)
    return RunResult.from_report(cfg.out, report)


def finetune_job(config: FinetuneConfig, *, progress: Optional[ProgressFn] = None,
                 should_cancel: Optional[CancelFn] = None, resume: bool = False) -> dict:
    """:func:`finetune` as the app's background worker calls it (``RunStore`` job path): returns the report."""
    return finetune(config, progress=progress, should_cancel=should_cancel, resume=resume).to_dict()


def diagnose(source: str | Path, target: str | Path, *, modality: str, task: Optional[str] = None,
             backbone: Optional[str] = None, seed: int = 0, progress: Optional[ProgressFn] = None) -> DiagnosisResult:
    """Domain mismatch between a source and a target set before any training (classification, NER or ASR sets)."""
    from tlcore.diagnostics.diagnose import run_diagnose

    kwargs = {"progress": progress} if progress else {}
    report = run_diagnose(modality, str(source), str(target), backbone=backbone, seed=seed, task=task, **kwargs)
    return _typed(DiagnosisResult, report)


def rank(target: str | Path, *, modality: str, backbones: Optional[Sequence[str]] = None, task: Optional[str] = None,
         seed: int = 0, validate: bool = False, eval: Optional[str | Path] = None,
         progress: Optional[ProgressFn] = None) -> RankResult:
    """Which backbone will transfer best to the labeled target, without fine-tuning (optionally validated)."""
    from tlcore.diagnostics.rank import run_rank

    kwargs = {"progress": progress} if progress else {}
    report = run_rank(modality, str(target), backbones=list(backbones) if backbones else None, seed=seed,
                      validate=validate, validate_eval=str(eval) if eval else None, task=task, **kwargs)
    return _typed(RankResult, report)


def cluster(data: str | Path, *, modality: str, backbone: Optional[str] = None, k: Optional[int] = None, seed: int = 0,
            progress: Optional[ProgressFn] = None) -> ClusteringResult:
    """Unsupervised transfer: cluster data with no labels on pretrained features, against raw inputs."""
    from tlcore.settings.unsupervised import run_clustering

    kwargs = {"progress": progress} if progress else {}
    return _typed(ClusteringResult, run_clustering(modality, str(data), backbone=backbone, k=k, seed=seed, **kwargs))


def curve(config: Optional[FinetuneConfig] = None, *, shots: Optional[Sequence[int]] = None, seeds: Sequence[int] = (0, 1, 2),
          scratch: bool = True, progress: Optional[ProgressFn] = None, **settings: Any) -> CurveResult:
    """Data-efficiency curve: accuracy per labeled examples per class (0 = all), pretrained vs scratch."""
    from tlcore.experiments.curve import DEFAULT_SHOTS, data_efficiency_curve

    cfg = config if config is not None else FinetuneConfig.from_dict(settings)
    cfg.validate(need_out=False)
    kwargs = {"progress": progress} if progress else {}
    return _typed(CurveResult, data_efficiency_curve(cfg, shots=shots or DEFAULT_SHOTS, seeds=seeds, scratch=scratch, **kwargs))


__all__ = ["ClusteringResult", "CurveResult", "DiagnosisResult", "FinetuneConfig", "LoadedRun", "RankResult",
           "RunResult", "cluster", "curve", "diagnose", "finetune", "load_run", "rank"]
