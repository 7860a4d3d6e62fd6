"""The token tagger (backbone + linear head over every sub-token's hidden state) and its training.

* :class:`TokenTagger` — ``head(backbone.net(...).last_hidden_state)``: logits (B, T, n_tags); a word's tag is
  read at its first sub-token. Saved in ``save_pretrained`` form like :class:`TransferModel`, with the temperature
  of its tag probabilities, ``softmax(logits / T)``, in ``calibration.json`` when one was fitted
  (:mod:`tlcore.tasks.ner.calibrate`; T = 1 without it).
* :func:`fit_head_on_features` — the linear probe: frozen backbone, head trained on cached word features.
* :func:`train_tagger` — fine-tuning with the one trainer (:mod:`tlcore.training.trainer`); the tagging task
  supplies the token cross-entropy and the validation entity F1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from tlcore.device import module_device, to_device
from tlcore.errors import Cancelled, ConfigError
from tlcore.evaluation.calibration import softmax
from tlcore.models.transfer_model import CALIBRATION_FILE, load_backbone_from_folder, read_calibration, save_model_folder
from tlcore.progress import CancelFn, ProgressFn, never_cancel, no_progress
from tlcore.tasks.ner.data import IGNORE, Encoded, align_labels
from tlcore.tasks.ner.metrics import entity_scores
from tlcore.training.trainer import TrainConfig, Trainer, TrainResult

ARCHITECTURE = "TokenTagger"


class TokenTagger(nn.Module):
    def __init__(self, backbone: nn.Module, tags: Sequence[str], *, backbone_name: str = "", strategy: str = ""):
        super().__init__()
        backbone.read_split_words()     # the tagger tokenizes sentences given as words
        self.backbone = backbone
        self.tags = list(tags)
        self.head = nn.Linear(backbone.feature_dim, len(self.tags))
        self.backbone_name = backbone_name or getattr(backbone, "backbone_name", "")
        self.strategy = strategy
        # temperature scaling of the tag probabilities (a plain attribute, saved in calibration.json as
        # TransferModel's): the tags, argmax of the logits, are the same at any T
        self.temperature = 1.0
        self.calibration: Optional[dict] = None

    @property
    def tokenizer(self):
        return self.backbone.tokenizer

    @property
    def max_length(self) -> int:
        return int(getattr(self.backbone, "max_length", 128))

    def hidden(self, **batch: torch.Tensor) -> torch.Tensor:
        return self.backbone.net(**batch).last_hidden_state

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:   # (B, T, n_tags)
        return self.head(self.hidden(**batch))

    # ------------------------------------------------------------ batches

    def collate(self, enc: Encoded, idx: Sequence[int], labels: Optional[Sequence[Sequence[int]]] = None
                ) -> tuple[dict[str, torch.Tensor], Optional[torch.Tensor]]:
        """Pad the chosen sentences into a batch (and their aligned label ids, padded with -100)."""
        width = max(len(enc.input_ids[i]) for i in idx)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        y = torch.full((len(idx), width), IGNORE, dtype=torch.long) if labels is not None else None
        for row, i in enumerate(idx):
            n = len(enc.input_ids[i])
            ids[row, :n] = torch.tensor(enc.input_ids[i])
            mask[row, :n] = 1
            if y is not None and labels is not None:
                y[row, :n] = torch.tensor(labels[i])
        batch = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in getattr(self.tokenizer, "model_input_names", ()):
            batch["token_type_ids"] = torch.zeros_like(ids)
        return batch, y

    def align(self, enc: Encoded, tags: Sequence[Sequence[str]]) -> list[list[int]]:
        tag2id = {t: i for i, t in enumerate(self.tags)}
        return [align_labels(enc.word_ids[i], tags[i], tag2id) for i in range(len(enc))]

    # ------------------------------------------------------------ prediction

    @torch.no_grad()
    def word_logits(self, enc: Encoded, *, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Logits at each word's first sub-token: (n_words, n_tags) and their (n_words, 2) (sentence, word) index;
        words cut off by the max length (or with no sub-token) have no row."""
        was_training = self.training
        self.eval()
        device = module_device(self)            # a model loaded for predict on a GPU runs there
        out = word_logits_of(lambda batch: self(**to_device(batch, device)).float().cpu().numpy(), self.collate, enc,
                             len(self.tags), batch_size=batch_size)
        self.train(was_training)
        return out

    def predict_ids(self, enc: Encoded, *, batch_size: int = 32) -> list[list[int]]:
        """Tag ids per word; words cut off by the max length get ``O`` (id 0)."""
        logits, where = self.word_logits(enc, batch_size=batch_size)
        return word_ids_from(logits.argmax(1), where, enc.n_words)

    @staticmethod
    def read_words(enc: Encoded, idx: Sequence[int], logits: torch.Tensor) -> list[list[int]]:
        """Tag id per word of the batch ``idx`` from its (B, T, n_tags) logits, read at each word's first sub-token."""
        best = logits.argmax(-1)
        out = []
        for row, i in enumerate(idx):
            words = [0] * enc.n_words[i]
            for pos in enc.first_positions(i):
                words[enc.word_ids[i][pos]] = int(best[row, pos])
            out.append(words)
        return out

    def predict_tags(self, enc: Encoded, *, batch_size: int = 32) -> list[list[str]]:
        return [[self.tags[k] for k in seq] for seq in self.predict_ids(enc, batch_size=batch_size)]

    @torch.no_grad()
    def word_features(self, enc: Encoded, *, batch_size: int = 32, should_cancel: CancelFn = never_cancel
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Hidden state at each word's first sub-token: (n_words, d) features and (n_words, 2) (sentence, word) index."""
        self.eval()
        feats, where = [], []
        for start in range(0, len(enc), batch_size):
            if should_cancel():
                raise Cancelled("cancelled while extracting features")
            idx = list(range(start, min(start + batch_size, len(enc))))
            batch, _ = self.collate(enc, idx)
            hidden = self.hidden(**batch)
            for row, i in enumerate(idx):
                pos = enc.first_positions(i)
                feats.append(hidden[row, pos].float().numpy())
                where += [(i, enc.word_ids[i][p]) for p in pos]
        d = self.backbone.feature_dim
        return (np.concatenate(feats) if feats else np.zeros((0, d), np.float32)), np.array(where, dtype=np.int64).reshape(-1, 2)

    # ------------------------------------------------------------ save / load

    def save_pretrained(self, folder: str | Path, *, extra: Optional[dict] = None) -> Path:
        folder = save_model_folder(self, self.backbone, folder, {
            "architecture": ARCHITECTURE, "task": "ner", "modality": "text", "backbone": self.backbone_name,
            "tags": self.tags, "entity_types": sorted({t[2:] for t in self.tags if t != "O"}),
            "strategy": self.strategy, "feature_dim": self.backbone.feature_dim, **(extra or {})})
        if self.calibration is not None or self.temperature != 1.0:
            (folder / CALIBRATION_FILE).write_text(json.dumps(
                {**(self.calibration or {}), "temperature": float(self.temperature)}, indent=2))
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "TokenTagger":
        folder = Path(folder)
        config = read_tagger_config(folder)
        if config is None:
            raise ConfigError(f"{folder} is not a saved TransferLab NER model (needs config.json with task 'ner' and model.safetensors)")
        backbone = load_backbone_from_folder(folder, config["backbone_spec"])
        model = cls(backbone, config["tags"], backbone_name=config.get("backbone", ""), strategy=config.get("strategy", ""))
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        model.temperature, model.calibration = read_calibration(folder)
        model.eval()
        return model


def word_logits_of(logits_fn: Callable[[dict], np.ndarray], collate: Callable, enc: Encoded, n_tags: int, *,
                   batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`TokenTagger.word_logits` of any tagger backend: ``collate(enc, idx)`` builds a batch, ``logits_fn``
    gives its (B, T, n_tags) logits as numpy (the torch model's, or an ONNX export's)."""
    rows, where = [], []
    for start in range(0, len(enc), batch_size):
        idx = list(range(start, min(start + batch_size, len(enc))))
        logits = logits_fn(collate(enc, idx)[0])
        for row, i in enumerate(idx):
            pos = enc.first_positions(i)
            rows.append(np.asarray(logits[row, pos], dtype=np.float32).reshape(-1, n_tags))
            where += [(i, enc.word_ids[i][p]) for p in pos]
    return (np.concatenate(rows) if rows else np.zeros((0, n_tags), np.float32),
            np.array(where, dtype=np.int64).reshape(-1, 2))


def word_ids_from(ids: np.ndarray, where: np.ndarray, n_words: Sequence[int]) -> list[list[int]]:
    """Per sentence, the tag id of each word from (rows,) ``ids`` at (rows, 2) ``where``; words without a row are
    ``O`` (id 0)."""
    seqs = [[0] * n for n in n_words]
    for k, (i, w) in zip(ids, where):
        seqs[i][w] = int(k)
    return seqs


def word_probabilities(tagger, enc: Encoded, *, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(n_words, n_tags) calibrated tag probabilities ``softmax(logits / T)`` of the words :meth:`TokenTagger.
    word_logits` reads, and their (sentence, word) index, for a :class:`TokenTagger` or its ONNX export (both carry
    the run's ``temperature``)."""
    logits, where = tagger.word_logits(enc, batch_size=batch_size)
    return softmax(logits, float(getattr(tagger, "temperature", 1.0))), where


def read_tagger_config(folder: str | Path) -> Optional[dict]:
    """The saved model's config when ``folder`` holds a TransferLab NER model, else None."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(config, dict) and config.get("architecture") == ARCHITECTURE and (folder / "model.safetensors").exists()
    return config if ok else None


# ---------------------------------------------------------------- linear probe on cached features

def _words_to_tags(pred: np.ndarray, where: np.ndarray, n_words: Sequence[int], tags: Sequence[str]) -> list[list[str]]:
    seqs = [["O"] * n for n in n_words]
    for k, (i, w) in zip(pred, where):
        seqs[i][w] = tags[k]
    return seqs


def word_targets(where: np.ndarray, gold: Sequence[Sequence[str]], tags: Sequence[str]) -> np.ndarray:
    """Tag ids for the rows of :meth:`TokenTagger.word_features` (unknown tags count as ``O``, id 0)."""
    tag2id = {t: i for i, t in enumerate(tags)}
    return np.array([tag2id.get(gold[i][w], 0) for i, w in where], dtype=np.int64)


class _WordFeatureTask:
    """The probe as a trainer task: full-batch cross-entropy of the head on cached word features; validation
    entity F1 on the held-out sentences (the loss breaks ties)."""

    def __init__(self, head: nn.Linear, x: np.ndarray, y: np.ndarray, tags: Sequence[str], val) -> None:
        self.head, self.tags, self.val = head, list(tags), val
        self.x, self.y = torch.from_numpy(x).float(), torch.from_numpy(y).long()

    def __len__(self) -> int:
        return len(self.y)

    def loss(self, idx: Sequence[int], state) -> tuple[torch.Tensor, float]:
        dev = module_device(self.head)
        return (nn.functional.cross_entropy(self.head(self.x[idx].to(dev)).float(), self.y[idx].to(dev)),
                float(len(idx)))

    @torch.no_grad()
    def validate(self) -> Optional[dict]:
        if self.val is None:
            return None
        vx, vwhere, vn, vgold = self.val
        logits = self.head(torch.from_numpy(vx).float().to(module_device(self.head))).float().cpu()
        f1 = entity_scores(vgold, _words_to_tags(logits.argmax(1).numpy(), vwhere, vn, self.tags))["f1"]
        loss = float(nn.functional.cross_entropy(logits, torch.from_numpy(word_targets(vwhere, vgold, self.tags))))
        return {"score": f1 - 1e-3 * loss, "val_entity_f1": f1}


def fit_head_on_features(head: nn.Linear, x: np.ndarray, y: np.ndarray, *, tags: Sequence[str],
                         val: Optional[tuple[np.ndarray, np.ndarray, Sequence[int], Sequence[Sequence[str]]]] = None,
                         steps: int = 300, lr: float = 1e-2, weight_decay: float = 1e-2, seed: int = 0,
                         check_every: int = 25) -> dict:
    """Train ``head`` in place by full-batch AdamW on cached word features (the frozen-backbone linear probe).

    ``val`` = (features, (sentence, word) index, words per sentence, gold tags): the step count with the best
    validation entity F1 is kept (loss breaks ties). The head's current weights are the starting point
    (so a source-trained head can be fine-tuned on the target).
    """
    config = TrainConfig(epochs=steps, batch_size=max(len(y), 1), lr=lr, head_lr=lr, weight_decay=weight_decay,
                         patience=None, seed=seed, grad_clip=None, schedule="constant", validate_every=check_every,
                         keep_best=val is not None)
    result = Trainer(head, _WordFeatureTask(head, x, y, tags, val), config, train_modules=[head], stage="probe").fit()
    head.cpu()              # a linear head on word features: callers score numpy features with it
    history = [{"step": r["epoch"], "train_loss": r["train_loss"], "val_entity_f1": r["val_entity_f1"]}
               for r in result.history if "val_entity_f1" in r]
    return {"steps": steps, "best_step": result.best_epoch if val is not None else steps, "lr": lr, "history": history,
            "final_train_loss": result.history[-1]["train_loss"] if result.history else None}


# ---------------------------------------------------------------- fine-tuning

class TagTask:
    """Token tagging as a trainer task: cross-entropy over first sub-tokens (others are -100); validation score =
    entity F1 on the held-out sentences − 10⁻³ · their token loss (F1 first)."""

    def __init__(self, model: TokenTagger, enc: Encoded, labels: Sequence[Sequence[int]], *,
                 val_enc: Optional[Encoded] = None, val_tags: Sequence[Sequence[str]] = (), batch_size: int = 16):
        self.model, self.enc, self.labels, self.batch_size = model, enc, labels, batch_size
        self.val_enc, self.val_tags = val_enc, list(val_tags)
        self.val_labels = model.align(val_enc, self.val_tags) if val_enc is not None and len(val_enc) else None

    def __len__(self) -> int:
        return len(self.enc)

    def _loss(self, enc: Encoded, idx: Sequence[int], labels) -> tuple[torch.Tensor, torch.Tensor]:
        batch, y = to_device(self.model.collate(enc, idx, labels), module_device(self.model))
        logits = self.model(**batch).float()
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE), logits

    def loss(self, idx: Sequence[int], state) -> tuple[torch.Tensor, float]:
        return self._loss(self.enc, idx, self.labels)[0], float(len(idx))

    @torch.no_grad()
    def validate(self) -> Optional[dict]:
        if self.val_labels is None or self.val_enc is None:
            return None
        self.model.eval()
        enc, bs = self.val_enc, 2 * self.batch_size
        preds, loss_sum = [], 0.0
        for start in range(0, len(enc), bs):
            idx = list(range(start, min(start + bs, len(enc))))
            loss, logits = self._loss(enc, idx, self.val_labels)
            loss_sum += loss.item() * len(idx)
            preds += [[self.model.tags[k] for k in seq] for seq in self.model.read_words(enc, idx, logits.cpu())]
        f1 = entity_scores(self.val_tags, preds)["f1"]
        return {"score": f1 - 1e-3 * loss_sum / len(enc), "val_entity_f1": f1}


def train_tagger(model: TokenTagger, enc: Encoded, labels: Sequence[Sequence[int]], *, val_enc: Optional[Encoded] = None,
                 val_tags: Sequence[Sequence[str]] = (), config: TrainConfig, train_modules: Sequence[nn.Module] = (),
                 checkpoint_dir: Optional[Path] = None, resume: bool = False, stage: str = "train",
                 progress: ProgressFn = no_progress, should_cancel: CancelFn = never_cancel) -> TrainResult:
    """Train the parameters of ``model`` with ``requires_grad`` (``model.head`` at ``head_lr``) with the one trainer;
    keep the epoch with the best validation entity F1 (``TrainResult.best_val_score``)."""
    task = TagTask(model, enc, labels, val_enc=val_enc, val_tags=val_tags, batch_size=config.batch_size)
    return Trainer(model, task, config, train_modules=train_modules, checkpoint_dir=checkpoint_dir, stage=stage,
                   progress=progress, should_cancel=should_cancel).fit(resume=resume)
