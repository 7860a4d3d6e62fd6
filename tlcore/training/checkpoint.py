"""Training checkpoints: safetensors weights (last and best), optimizer + scheduler state (and the random
generators' and the fp16 loss scaler's, so a resumed run continues exactly as an uninterrupted one) and a small
JSON, each written to a temporary file and renamed, so a crash leaves the previous checkpoint intact."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
from safetensors.torch import load_file, save_file
from torch import nn


@dataclass
class Resumed:
    """What :func:`load_checkpoint` restored besides the model, optimizer and scheduler state."""

    epoch: int
    best_score: float
    result: dict                  # the saved TrainResult, as a dict
    best_state: Optional[dict]
    numpy_rng: Optional[dict] = None      # the epoch-order generator's state (None in older checkpoints)
    torch_rng: Optional[dict] = None      # {"cpu": ByteTensor, "cuda": [...]}: dropout and other torch draws
    scaler: Optional[dict] = None         # the fp16 GradScaler's state


def rng_state(numpy_rng=None) -> dict:
    """The random state a checkpoint keeps: torch's CPU (and CUDA) generators and the epoch-order generator."""
    torch_rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch_rng["cuda"] = torch.cuda.get_rng_state_all()
    return {"torch": torch_rng, "numpy": numpy_rng.bit_generator.state if numpy_rng is not None else None}


def restore_rng(resumed: Resumed, numpy_rng) -> None:
    """Put back what :func:`rng_state` saved (a checkpoint from before it existed leaves everything as it is)."""
    if resumed.torch_rng:
        torch.set_rng_state(resumed.torch_rng["cpu"])
        if "cuda" in resumed.torch_rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(resumed.torch_rng["cuda"])
    if resumed.numpy_rng is not None and numpy_rng is not None:
        numpy_rng.bit_generator.state = resumed.numpy_rng


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors that training changes: trainable parameters and BatchNorm statistics (what a checkpoint holds)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
            if k in names or "running_" in k or "num_batches_tracked" in k}


def save_checkpoint(folder: Path, model: nn.Module, optimizer, scheduler, best_state: Optional[dict], epoch: int,
                    best_score: float, result, *, rng: Optional[dict] = None, scaler=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(trainable_state(model), str(folder / "last.safetensors.tmp"))
    (folder / "last.safetensors.tmp").replace(folder / "last.safetensors")
    if best_state is not None:
        save_file(best_state, str(folder / "best.safetensors.tmp"))
        (folder / "best.safetensors.tmp").replace(folder / "best.safetensors")
    saved = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    if rng is not None:
        saved["torch_rng"] = rng["torch"]
    if scaler is not None:
        saved["scaler"] = scaler.state_dict()
    torch.save(saved, folder / "optimizer.pt.tmp")
    (folder / "optimizer.pt.tmp").replace(folder / "optimizer.pt")
    state = {"epoch": epoch, "best_score": best_score if math.isfinite(best_score) else None, "result": asdict(result)}
    if rng is not None and rng.get("numpy") is not None:
        state["numpy_rng"] = rng["numpy"]            # JSON keeps the generator's 128-bit integers exactly
    (folder / "state.json.tmp").write_text(json.dumps(state))
    (folder / "state.json.tmp").replace(folder / "state.json")


def load_checkpoint(folder: Optional[Path], model: nn.Module, optimizer, scheduler) -> Optional[Resumed]:
    """Restore the last checkpoint written by :func:`save_checkpoint` into model/optimizer/scheduler, if any."""
    if folder is None or not (folder / "state.json").exists():
        return None
    state = json.loads((folder / "state.json").read_text())
    model.load_state_dict(load_file(str(folder / "last.safetensors")), strict=False)
    saved = torch.load(folder / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    best = load_file(str(folder / "best.safetensors")) if (folder / "best.safetensors").exists() else None
    best_score = state["best_score"] if state["best_score"] is not None else -math.inf
    return Resumed(state["epoch"], best_score, state["result"], best, numpy_rng=state.get("numpy_rng"),
                   torch_rng=saved.get("torch_rng"), scaler=saved.get("scaler"))
