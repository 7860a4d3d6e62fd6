"""TransferLab engine: transfer learning for image, text and speech on small data sets.

The engine never imports Streamlit; it is usable from notebooks, the CLI (``python -m tlcore``) and the app.
The public API (:mod:`tlcore.api`): ``finetune``, ``sweep``, ``diagnose``, ``rank``, ``audit``, ``cluster``, ``curve``,
``label_next``, ``error_analysis``, ``load_run`` and ``FinetuneConfig``; it is imported on first use, so
``import tlcore`` stays light.
"""

import os

from tlcore.version import __version__

# OpenMP threads (torch's) sleep while they wait instead of spinning. With spinning, a process whose threads share
# the cores with other work (the app, its worker, a browser, a second run) crawls: 400 images through
# efficientnet-lite0 took 19-30 s with two spinning threads on a busy 2-core machine, 4.4-8 s with two passive ones
# (and one thread). Read when torch first loads, so it applies where tlcore is imported first (the CLI, the worker, the
# app); an exported OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_API = ("AuditConfig", "AuditResult", "ClusterConfig", "ClusteringResult", "CurveConfig", "CurveResult", "DiagnoseConfig", "DiagnosisResult",
        "ErrorAnalysisResult", "FinetuneConfig", "LabelNextConfig", "LabelNextResult", "LoadedRun", "RankConfig", "RankResult", "RunResult", "SweepConfig", "audit", "cluster", "cluster_job",
        "curve", "curve_job", "diagnose", "error_analysis", "export_hf", "export_onnx", "finetune", "label_next", "load_onnx_model", "load_run", "rank",
        "sweep", "sweep_job")


def __getattr__(name: str):
    if name in _API:
        from tlcore import api

        return getattr(api, name)
    raise AttributeError(f"module 'tlcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


__all__ = ["__version__", *_API]
