"""The classification "before" model: a head on the *pretrained* backbone's features, saved with the run so
Try it and ``load_run(...).predict(..., model="before")`` use exactly the model the report scored.

* with a labeled source set: the source-trained linear probe (softmax probabilities);
* without one: the nearest class mean fitted on the target's training labels — a training-free reference whose
  scores are cosine similarities to each class mean (no probability: there is no temperature to pick).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file


@dataclass
class BeforeHead:
    weight: torch.Tensor          # (classes, feature_dim)
    bias: torch.Tensor            # (classes,)
    score: str                    # "softmax" (probabilities) or "cosine" (similarity to the class mean)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """(n, classes) scores for (n, feature_dim) pretrained features; argmax is the prediction."""
        x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        if self.score == "cosine":
            x = x / (x.norm(dim=1, keepdim=True) + 1e-8)
        logits = x @ self.weight.T + self.bias
        return (torch.softmax(logits, 1) if self.score == "softmax" else logits).numpy()

    def save(self, folder: Path, *, kind: str) -> None:
        save_file({"weight": self.weight.contiguous(), "bias": self.bias.contiguous()}, str(folder / "head.safetensors"))
        (folder / "before.json").write_text(json.dumps({"score": self.score, "kind": kind}))

    @classmethod
    def load(cls, folder: Path) -> "BeforeHead":
        meta = json.loads((folder / "before.json").read_text())
        tensors = load_file(str(folder / "head.safetensors"))
        return cls(tensors["weight"], tensors["bias"], meta["score"])


def nearest_class_mean(train_f: np.ndarray, train_y: np.ndarray, n_classes: int) -> BeforeHead:
    """Unit-length class means as a cosine head; a class without training items can never be predicted."""
    d = train_f.shape[1]
    unit = train_f / (np.linalg.norm(train_f, axis=1, keepdims=True) + 1e-8)
    weight = np.zeros((n_classes, d), np.float32)
    bias = np.zeros(n_classes, np.float32)
    for c in range(n_classes):
        if (train_y == c).any():
            m = unit[train_y == c].mean(0)
            weight[c] = m / (np.linalg.norm(m) + 1e-8)
        else:
            bias[c] = -1e9
    return BeforeHead(torch.from_numpy(weight), torch.from_numpy(bias), "cosine")
