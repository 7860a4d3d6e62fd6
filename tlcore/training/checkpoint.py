"""Training checkpoints: safetensors weights (last and best), optimizer + scheduler state and a small JSON,
each written to a temporary file and renamed, so a crash leaves the previous checkpoint intact."""

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


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors that training changes: trainable parameters and BatchNorm statistics (what a checkpoint holds)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
            if k in names or "running_" in k or "num_batches_tracked" in k}


def save_checkpoint(folder: Path, model: nn.Module, optimizer, scheduler, best_state: Optional[dict], epoch: int,
                    best_score: float, result) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(trainable_state(model), str(folder / "last.safetensors.tmp"))
    (folder / "last.safetensors.tmp").replace(folder / "last.safetensors")
    if best_state is not None:
        save_file(best_state, str(folder / "best.safetensors.tmp"))
        (folder / "best.safetensors.tmp").replace(folder / "best.safetensors")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, folder / "optimizer.pt.tmp")
    (folder / "optimizer.pt.tmp").replace(folder / "optimizer.pt")
    state = {"epoch": epoch, "best_score": best_score if math.isfinite(best_score) else None, "result": asdict(result)}
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
    return Resumed(state["epoch"], best_score, state["result"], best)
