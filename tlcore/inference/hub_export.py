"""Hugging Face Hub export of a finished run: a folder ready for ``huggingface_hub.upload_folder``, pushed on request.

    result = export_hf("runs/sentiment")                  # writes runs/sentiment/export/hf/
    result.metadata["model-index"]                        # the card's YAML, as read back by huggingface_hub
    export_hf("runs/sentiment", push="me/sentiment")      # online: also uploads it (a new repo is created private)

The folder holds

* ``model/`` — a copy of the run's model after transfer in ``save_pretrained`` form, with its preprocessing
  (``preprocessing.json`` and the tokenizer / processor / feature extractor files; multi-label: its thresholds;
  speech recognition: a standard Whisper folder);
* ``report.json`` — the run's report as it is (settings, before/after numbers with intervals, baselines, and the eval
  items with their predictions: review it before making the repo public);
* ``README.md`` — the run's model card under a YAML header built with ``huggingface_hub.ModelCardData``: ``license``
  and ``base_model`` from the backbone registry (:class:`~tlcore.models.base.BackboneSpec` ``license`` / ``upstream``;
  a Hugging Face id backbone is its own base model; both are left out when unknown), ``library_name``, ``tags``,
  ``pipeline_tag`` (the task's ``TaskSpec.hub_pipeline``) and a ``model-index`` whose one result (the task on the
  eval split of the run's data set) holds every metric of the task for the model after transfer and for the model
  before it, each named with its 95% interval when the report has one. The card is read back with
  ``ModelCard.load`` and ``metadata_load`` before the folder is kept.

The folder is itself a (smaller) TransferLab run folder — the model before transfer is not included — so
``load_run(snapshot_download(REPO_ID)).predict(...)`` works on what was pushed.

Product rules, as for the ONNX export (:mod:`tlcore.inference.export_folder`): the run's own files are never changed,
an existing export is never overwritten (with ``push``, an existing Hugging Face export *of this run* is pushed as it
is), and a failed export leaves nothing behind. A failed push leaves the written export in place and says so.
"""

from __future__ import annotations

import filecmp
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from huggingface_hub import EvalResult, ModelCard, ModelCardData, create_repo, upload_folder
from huggingface_hub.repocard import metadata_load
from huggingface_hub.utils import validate_repo_id

from tlcore.errors import ConfigError, first_line
from tlcore.inference.export_folder import ExportError, check_location, export_destination, staged_folder
from tlcore.inference.predict import LoadedRun, check_model_folder
from tlcore.models.registry import BACKBONES, RANDOM_SUFFIX
from tlcore.progress import Progress, ProgressFn, no_progress
from tlcore.reporting.model_card import model_card_markdown
from tlcore.tasks import TaskSpec

HF_EXPORT_DIR = Path("export") / "hf"
LIBRARY_NAME = "transferlab"   # the folder loads with TransferLab (load_run), not with one transformers Auto class
#: Data set file suffixes dropped from a data set's name; names this generic get their parent folder's name first.
_DATA_SUFFIXES = {".csv", ".tsv", ".jsonl", ".json", ".txt", ".conll", ".zip"}
_GENERIC_NAMES = {"data", "dataset", "eval", "test", "target", "source", "train", "val", "validation"}

__all__ = ["HF_EXPORT_DIR", "HubExport", "card_data", "default_hf_export_dir", "eval_results", "export_hf", "push_folder"]


@dataclass
class HubExport:
    """A written Hugging Face export: its folder, the card's metadata as ``huggingface_hub`` read it back, and the
    Hub URL it was pushed to (None: not pushed)."""

    folder: Path
    metadata: dict
    url: Optional[str] = None

    def to_dict(self) -> dict:
        return {"folder": str(self.folder), "metadata": self.metadata, "url": self.url}


def default_hf_export_dir(run: str | Path) -> Path:
    """Where ``export_hf(run)`` writes: ``RUN/export/hf``."""
    return Path(run) / HF_EXPORT_DIR


def _backbone_source(report: dict) -> str:
    """What the run was asked to use (a registered name, a folder, a Hub id): the report's ``backbone`` is only the
    display name of a folder."""
    return str((report.get("config") or {}).get("backbone") or report.get("backbone") or "")


def base_model_and_license(report: dict) -> tuple[Optional[str], Optional[str]]:
    """The card's ``base_model`` and ``license`` (None: unknown, left out). A registered backbone answers from its
    registry entry; a Hugging Face id is its own base model (its license is on its own card, not known offline);
    a local folder has neither. A random-init twin (``@random``) keeps the license of the files it carries
    (tokenizer / processor) but has no base model: no pretrained weights went into it."""
    name = _backbone_source(report)
    pretrained = not name.endswith(RANDOM_SUFFIX)
    name = name.removesuffix(RANDOM_SUFFIX)
    if name in BACKBONES:
        spec = BACKBONES.get(name)
        return (spec.upstream or None) if pretrained else None, spec.license or None
    if pretrained and name.count("/") == 1 and not Path(name).exists():
        try:
            validate_repo_id(name)
            return name, None
        except ValueError:
            pass
    return None, None


def dataset_name(report: dict) -> str:
    """The evaluated data set's name, from its path: the eval set given, else the target the eval split came from
    (``reviews.csv`` -> "reviews"; a folder named ``eval`` in ``shop-reviews/`` -> "shop-reviews/eval")."""
    data, config = report.get("data") or {}, report.get("config") or {}
    where = data.get("eval_path") or config.get("eval") or data.get("target") or config.get("target")
    if not where:
        return "unnamed"
    path = Path(str(where).rstrip("/\\"))
    name = path.stem if path.suffix.lower() in _DATA_SUFFIXES else path.name
    return f"{path.parent.name}/{name}" if name.lower() in _GENERIC_NAMES and path.parent.name else name


def _number(value) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def eval_results(report: dict, spec: TaskSpec, modality: str) -> list[EvalResult]:
    """One ``EvalResult`` per metric of the task and evaluated model (after transfer, then before it), all on the
    eval split of the run's data set; the 95% interval, when the report has one, is in the metric's name."""
    task_type = spec.hub_pipeline.format(modality=modality)
    results = []
    for block, when in (("after", "after transfer"), ("before", "before transfer")):
        numbers = report.get(block) or {}
        for metric in spec.metrics:
            value = _number(numbers.get(metric.key))
            if value is None:
                continue
            ci = numbers.get(f"{metric.key}_ci95")
            interval = (f"; 95% CI {ci[0]:.3f} to {ci[1]:.3f}"
                        if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_number(x) is not None for x in ci) else "")
            results.append(EvalResult(
                task_type=task_type, task_name=spec.title, dataset_type="custom", dataset_name=dataset_name(report),
                dataset_split="eval", metric_type=metric.key, metric_value=value,
                metric_name=f"{metric.card_label or metric.label} ({when}{interval})"))
    return results


def card_data(report: dict, spec: TaskSpec, *, model_name: str) -> ModelCardData:
    """The model card's YAML metadata (module docstring)."""
    modality = report.get("modality") or spec.fixed_modality or ""
    base_model, license_id = base_model_and_license(report)
    results = eval_results(report, spec, modality)
    return ModelCardData(
        license=license_id, base_model=base_model, library_name=LIBRARY_NAME,
        tags=[t for t in ("transferlab", spec.name, report.get("strategy"), modality) if t],
        pipeline_tag=spec.hub_pipeline.format(modality=modality),
        model_name=model_name if results else None, eval_results=results or None)


def _folder_section(repo_id: Optional[str]) -> list[str]:
    return ["", "## This folder (Hugging Face Hub export)", "",
            "- `model/`: the model after transfer in `save_pretrained` form, with its preprocessing "
            "(`model/preprocessing.json` and the tokenizer / processor files beside it); the model before transfer is "
            "not included.",
            "- `report.json`: the run's full report: settings, the numbers above with their intervals, the baselines, "
            "and the eval items with each model's predictions.",
            "- The folder is a TransferLab run folder:", "", "```python",
            "from huggingface_hub import snapshot_download", "from tlcore import load_run",
            f"run = load_run(snapshot_download('{repo_id or 'USER/REPO'}'))", "run.predict([...])", "```", ""]


def _write_card(folder: Path, report: dict, spec: TaskSpec, card_text: str, *, model_name: str,
                repo_id: Optional[str]) -> dict:
    """Write ``folder/README.md`` (YAML header + card) and read it back with ``huggingface_hub``: the metadata as
    read, or ExportError when it does not read back as written."""
    data = card_data(report, spec, model_name=model_name)
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{card_text.rstrip()}\n" + "\n".join(_folder_section(repo_id)))
    path = folder / "README.md"
    card.save(path)
    try:
        loaded, metadata = ModelCard.load(path), metadata_load(path)
    except ValueError as exc:
        raise ExportError(f"the model card's YAML metadata does not read back: {first_line(exc)}") from exc
    if metadata != data.to_dict() or len(loaded.data.eval_results or []) != len(data.eval_results or []):
        raise ExportError("the model card's YAML metadata does not read back as written; nothing was exported")
    return metadata


def _is_export_of(folder: Path, run_dir: Path) -> bool:
    """Does ``folder`` hold a Hugging Face export of the run (its report.json is the run's, model card and model)?"""
    return ((folder / "README.md").is_file() and (folder / "model" / "config.json").is_file()
            and (folder / "report.json").is_file()
            and filecmp.cmp(folder / "report.json", run_dir / "report.json", shallow=False))


def _refusal(run: LoadedRun) -> Optional[str]:
    """Why the run has nothing to export to the Hub (None: it has)."""
    if not (run.path / "model" / "config.json").is_file():
        kind = run.report.get("kind")
        what = f"it is a {kind} analysis, which saves no model" if kind else "no model/config.json"
        return f"the run holds no model ({what}); export a fine-tuning run"
    if not isinstance(run.report.get("after"), dict):
        return "the run has no report.json with its numbers after transfer (the model card's results); wait for it to finish"
    return None


def export_hf(run: str | Path, out: Optional[str | Path] = None, *, push: Optional[str] = None,
              progress: ProgressFn = no_progress) -> HubExport:
    """Write the run's Hugging Face export to ``out`` (default ``RUN/export/hf``) and, given ``push`` (a Hub repo id,
    ``USER/NAME``), upload it (module docstring). Raises ``ConfigError`` for a run without a model, a bad repo id or
    an existing folder, ``ExportError`` when the card does not read back or the push fails."""
    loaded = LoadedRun(run)
    why = _refusal(loaded)
    if why:
        raise ConfigError(f"{loaded.path}: cannot export for the Hugging Face Hub — {why}")
    if push is not None:
        try:
            validate_repo_id(push)
        except ValueError as exc:
            raise ConfigError(f"--push {push!r} is not a Hugging Face repo id (USER/NAME): {first_line(exc)}") from None
    default = default_hf_export_dir(loaded.path)
    dest = check_location(loaded.path, Path(out) if out else default, default)
    steps = 3 if push else 2
    if push and _is_export_of(dest, loaded.path):    # written before (a push that failed?): push it as it is
        metadata = metadata_load(dest / "README.md") or {}
    else:
        dest = export_destination(loaded.path, out, default)
        check_model_folder(loaded.path, loaded.path / "model")   # a damaged model is refused, not published
        card_text = ((loaded.path / "README.md").read_text(encoding="utf-8") if (loaded.path / "README.md").is_file()
                     else model_card_markdown(loaded.report))
        with staged_folder(dest) as tmp:
            progress(Progress("export", 0, steps, "copying the model and its preprocessing"))
            shutil.copytree(loaded.path / "model", tmp / "model")
            shutil.copy2(loaded.path / "report.json", tmp / "report.json")
            progress(Progress("export", 1, steps, "writing the model card"))
            metadata = _write_card(tmp, loaded.report, loaded.spec, card_text,
                                   model_name=(push or loaded.path.resolve().name).split("/")[-1], repo_id=push)
    url = None
    if push:
        progress(Progress("export", 2, steps, f"pushing to the Hugging Face Hub as {push}"))
        url = push_folder(dest, push)
    progress(Progress("export", steps, steps, "done"))
    return HubExport(dest, metadata, url)


def push_folder(folder: Path, repo_id: str) -> str:
    """Upload ``folder`` to the Hub model repo ``repo_id`` (created private when it does not exist yet: the folder
    holds the eval items, make it public on the Hub once checked); its URL. Needs a network connection and a login
    (``hf auth login`` or ``HF_TOKEN``); any failure is one ExportError line."""
    try:
        repo = create_repo(repo_id, exist_ok=True, private=True)
        upload_folder(repo_id=repo.repo_id, folder_path=folder, commit_message="TransferLab export")
    except Exception as exc:  # noqa: BLE001 - network, login and Hub errors come from several libraries; one line
        raise ExportError(f"could not push {folder} to the Hugging Face Hub as {repo_id} ({first_line(exc)}); the "
                          "export is written there — once online and logged in (`hf auth login`), run the same "
                          "command again to push it") from exc
    return str(repo)
