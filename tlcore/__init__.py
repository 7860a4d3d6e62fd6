"""TransferLab engine: transfer learning for image, text and speech on small data sets.

The engine never imports Streamlit; it is usable from notebooks, the CLI (``python -m tlcore``) and the app.
The public API (:mod:`tlcore.api`): ``finetune``, ``sweep``, ``diagnose``, ``rank``, ``cluster``, ``curve``, ``load_run``
and ``FinetuneConfig``; it is imported on first use, so ``import tlcore`` stays light.
"""

from tlcore.version import __version__

_API = ("ClusterConfig", "ClusteringResult", "CurveConfig", "CurveResult", "DiagnoseConfig", "DiagnosisResult",
        "FinetuneConfig", "LoadedRun", "RankConfig", "RankResult", "RunResult", "SweepConfig", "cluster", "cluster_job",
        "curve", "curve_job", "diagnose", "export_hf", "export_onnx", "finetune", "load_onnx_model", "load_run", "rank",
        "sweep", "sweep_job")


def __getattr__(name: str):
    if name in _API:
        from tlcore import api

        return getattr(api, name)
    raise AttributeError(f"module 'tlcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


__all__ = ["__version__", *_API]
