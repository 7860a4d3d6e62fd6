"""The fitted model every strategy produces: a backbone plus a linear head over its pooled features.

Saved in ``save_pretrained`` form: ``config.json`` (classes, backbone spec, strategy), ``model.safetensors``
(all weights, LoRA merged), ``preprocessing.json`` (the backbone's preprocessing config, read back on loading),
the backbone's processor / tokenizer / feature extractor files and, when a temperature was fitted,
``calibration.json`` (``{"temperature": T, ...}``; :mod:`tlcore.evaluation.calibration`). A folder without it (saved
before calibration existed, or with nothing to fit it on) loads with T = 1: the probabilities as trained.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tlcore.device import autocast_for, module_device, to_device
from tlcore.errors import ConfigError
from tlcore.models.base import PREPROCESSING_FILE, Backbone
from tlcore.models.registry import rebuild_backbone
from tlcore.version import __version__

CALIBRATION_FILE = "calibration.json"


class TransferModel(nn.Module):
    def __init__(self, backbone: Backbone, classes: Sequence[str], *, backbone_name: str = "", strategy: str = "",
                 head_hidden: int = 0):
        super().__init__()
        self.backbone = backbone
        self.classes = list(classes)
        self.head_hidden = head_hidden
        if head_hidden:   # an MLP bottleneck head (domain adaptation adapters)
            self.head: nn.Module = nn.Sequential(nn.Linear(backbone.feature_dim, head_hidden), nn.ReLU(),
                                                 nn.Linear(head_hidden, len(self.classes)))
        else:
            self.head = nn.Linear(backbone.feature_dim, len(self.classes))
        self.backbone_name = backbone_name or getattr(backbone, "backbone_name", "")
        self.strategy = strategy
        # temperature scaling: predict_proba gives softmax(logits / T). A plain attribute, not a buffer, so the
        # weights file (and every folder saved before it) keeps its keys; saved in calibration.json.
        self.temperature = 1.0
        self.calibration: dict | None = None   # how T was fitted (written to calibration.json with it)

    @property
    def modality(self) -> str:
        return self.backbone.modality

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(**batch))

    @torch.no_grad()
    def predict_logits(self, items: Sequence[Any], *, batch_size: int = 32) -> np.ndarray:
        """Logits (n, classes) for raw items (paths / texts / (wave, sr) pairs), before any temperature."""
        was_training = self.training
        self.eval()
        out, device = [], module_device(self)
        for start in range(0, len(items), batch_size):
            batch = to_device(self.backbone.preprocess(items[start:start + batch_size]), device)
            with autocast_for(self):
                out.append(self(**batch).float().cpu().numpy())
        self.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), dtype=np.float32)

    def predict_proba(self, items: Sequence[Any], *, batch_size: int = 32) -> np.ndarray:
        """Class probabilities (n, classes) for raw items: ``softmax(logits / temperature)``. The temperature (1 unless
        one was fitted) rescales the confidences only: the argmax, so every prediction and the accuracy, is the same
        for any T > 0."""
        logits = torch.from_numpy(self.predict_logits(items, batch_size=batch_size))
        return torch.softmax(logits / self.temperature, dim=-1).numpy()

    def predict(self, items: Sequence[Any], *, batch_size: int = 32) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(items, batch_size=batch_size).argmax(1)]

    def save_pretrained(self, folder: str | Path) -> Path:
        folder = save_model_folder(self, self.backbone, folder, {
            "architecture": "TransferModel", "modality": self.modality, "backbone": self.backbone_name,
            "classes": self.classes, "strategy": self.strategy, "feature_dim": self.backbone.feature_dim,
            "head_hidden": self.head_hidden})
        if self.calibration is not None or self.temperature != 1.0:
            (folder / CALIBRATION_FILE).write_text(json.dumps(
                {**(self.calibration or {}), "temperature": float(self.temperature)}, indent=2))
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "TransferModel":
        folder = Path(folder)
        if not (folder / "config.json").exists() or not (folder / "model.safetensors").exists():
            raise ConfigError(f"{folder} is not a saved TransferLab model (needs config.json and model.safetensors)")
        config = json.loads((folder / "config.json").read_text())
        backbone = load_backbone_from_folder(folder, config["backbone_spec"])
        model = cls(backbone, config["classes"], backbone_name=config["backbone"], strategy=config.get("strategy", ""),
                    head_hidden=config.get("head_hidden", 0))
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        model.temperature, model.calibration = read_calibration(folder)
        model.eval()
        return model


def read_calibration(folder: Path) -> tuple[float, dict | None]:
    """(temperature, what calibration.json says) of a model folder; (1.0, None) for a folder without the file."""
    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return 1.0, None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        temperature = float(info["temperature"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{path} is not readable calibration ({{\"temperature\": T}}); restore it from the run, or "
                          "delete it to use the uncalibrated probabilities") from None
    if not temperature > 0:
        raise ConfigError(f"{path}: temperature {temperature} must be > 0; delete the file to use T = 1")
    return temperature, info


def save_model_folder(model: nn.Module, backbone: Backbone, folder: str | Path, config: dict) -> Path:
    """Write ``folder`` in save_pretrained form: the backbone's processor files, ``preprocessing.json`` (the backbone's
    preprocessing config), ``config.json`` (``config`` plus the backbone spec) and ``model.safetensors`` (all
    weights). Shared by every TransferLab model type."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = backbone.save_backbone(folder)
    (folder / PREPROCESSING_FILE).write_text(json.dumps(backbone.preprocessing(), indent=2))
    config = {"tlcore_version": __version__, **config, "backbone_spec": spec}
    # config.json may already hold the backbone's HF config; keep it under its own name.
    if (folder / "config.json").exists():
        (folder / "config.json").replace(folder / "backbone_config.json")
        spec["config_file"] = "backbone_config.json"
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt", "tlcore": __version__})
    return folder


def read_preprocessing(folder: Path) -> dict | None:
    """The backbone's preprocessing config saved in a model folder; None for a folder saved before it was."""
    path = Path(folder) / PREPROCESSING_FILE
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict):
        raise ConfigError(f"{path} is not a readable JSON object; restore it from the run or save the model again")
    return config


def load_backbone_from_folder(folder: Path, spec: dict) -> Backbone:
    """Rebuild the backbone architecture + preprocessing saved by :func:`save_model_folder` (weights come after):
    ``preprocessing.json`` when the folder has one, else (an older folder) ``spec`` and the processor files."""
    preprocessing = read_preprocessing(folder)
    if spec.get("config_file"):
        with tempfile.TemporaryDirectory(prefix="tlcore-model-") as tmp:
            return rebuild_backbone(_hf_view(folder, spec["config_file"], Path(tmp)), spec, preprocessing)
    return rebuild_backbone(folder, spec, preprocessing)


def _hf_view(folder: Path, config_file: str, view: Path) -> Path:
    """Fill ``view`` so the backbone's HF config is called config.json again (HF loaders insist)."""
    for f in folder.iterdir():
        if f.is_file() and f.name not in ("config.json", "model.safetensors"):
            shutil.copy(f, view / f.name)
    shutil.copy(folder / config_file, view / "config.json")
    return view
