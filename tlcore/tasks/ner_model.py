"""The token tagger (backbone + linear head over every sub-token's hidden state) and its training.

* :class:`TokenTagger` — ``head(backbone.net(...).last_hidden_state)``: logits (B, T, n_tags); a word's tag is
  read at its first sub-token. Saved in ``save_pretrained`` form like :class:`TransferModel`.
* :func:`fit_head_on_features` — the linear probe: frozen backbone, head trained on cached word features.
* :func:`train_tagger` — a compact loop with the features of ``tlcore.training.loop``: AdamW (head / body
  learning rates), warm-up + linear decay, early stopping on a validation split of the training data (entity
  F1), safetensors checkpoints every epoch, resume, cancellation and ``Progress`` events.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from tlcore.errors import Cancelled, ConfigError
from tlcore.models.transfer_model import load_backbone_from_folder, save_model_folder
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.tasks.ner_data import IGNORE, Encoded, align_labels
from tlcore.tasks.ner_metrics import entity_scores
from tlcore.training.loop import (
    TrainConfig,
    TrainResult,
    _save_checkpoint,
    _trainable_state,
    load_checkpoint,
    warmup_linear_schedule,
)

ARCHITECTURE = "TokenTagger"


class TokenTagger(nn.Module):
    def __init__(self, backbone: nn.Module, tags: Sequence[str], *, backbone_name: str = "", strategy: str = ""):
        super().__init__()
        self.backbone = backbone
        self.tags = list(tags)
        self.head = nn.Linear(backbone.feature_dim, len(self.tags))
        self.backbone_name = backbone_name or getattr(backbone, "backbone_name", "")
        self.strategy = strategy

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
    def predict_ids(self, enc: Encoded, *, batch_size: int = 32) -> list[list[int]]:
        """Tag ids per word; words cut off by the max length get ``O`` (id 0)."""
        was_training = self.training
        self.eval()
        out: list[list[int]] = []
        for start in range(0, len(enc), batch_size):
            idx = list(range(start, min(start + batch_size, len(enc))))
            batch, _ = self.collate(enc, idx)
            best = self(**batch).argmax(-1)
            for row, i in enumerate(idx):
                words = [0] * enc.n_words[i]
                for pos in enc.first_positions(i):
                    words[enc.word_ids[i][pos]] = int(best[row, pos])
                out.append(words)
        self.train(was_training)
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
        return save_model_folder(self, self.backbone, folder, {
            "architecture": ARCHITECTURE, "task": "ner", "modality": "text", "backbone": self.backbone_name,
            "tags": self.tags, "entity_types": sorted({t[2:] for t in self.tags if t != "O"}),
            "strategy": self.strategy, "feature_dim": self.backbone.feature_dim, **(extra or {})})

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "TokenTagger":
        folder = Path(folder)
        config = read_tagger_config(folder)
        if config is None:
            raise ConfigError(f"{folder} is not a saved TransferLab NER model (needs config.json with task 'ner' and model.safetensors)")
        backbone = load_backbone_from_folder(folder, config["backbone_spec"])
        model = cls(backbone, config["tags"], backbone_name=config.get("backbone", ""), strategy=config.get("strategy", ""))
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        model.eval()
        return model


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


def fit_head_on_features(head: nn.Linear, x: np.ndarray, y: np.ndarray, *, tags: Sequence[str],
                         val: Optional[tuple[np.ndarray, np.ndarray, Sequence[int], Sequence[Sequence[str]]]] = None,
                         steps: int = 300, lr: float = 1e-2, weight_decay: float = 1e-2, seed: int = 0,
                         check_every: int = 25) -> dict:
    """Train ``head`` in place by full-batch AdamW on cached word features (the frozen-backbone linear probe).

    ``val`` = (features, (sentence, word) index, words per sentence, gold tags): the step count with the best
    validation entity F1 is kept (loss breaks ties). The head's current weights are the starting point
    (so a source-trained head can be fine-tuned on the target).
    """
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).long()
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    best_state, best_score, best_step, history = None, -math.inf, 0, []
    for step in range(1, steps + 1):
        loss = nn.functional.cross_entropy(head(xt), yt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if val is not None and (step % check_every == 0 or step == steps):
            vx, vwhere, vn, vgold = val
            with torch.no_grad():
                logits = head(torch.from_numpy(vx).float())
            f1 = entity_scores(vgold, _words_to_tags(logits.argmax(1).numpy(), vwhere, vn, tags))["f1"]
            score = f1 - 1e-3 * float(nn.functional.cross_entropy(logits, torch.from_numpy(_gold_ids(vwhere, vgold, tags))))
            history.append({"step": step, "train_loss": loss.item(), "val_entity_f1": f1})
            if score > best_score:
                best_score, best_step = score, step
                best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
    if best_state is not None:
        head.load_state_dict(best_state)
    return {"steps": steps, "best_step": best_step or steps, "lr": lr, "history": history,
            "final_train_loss": loss.item() if steps else None}


def _gold_ids(where: np.ndarray, gold: Sequence[Sequence[str]], tags: Sequence[str]) -> np.ndarray:
    tag2id = {t: i for i, t in enumerate(tags)}
    return np.array([tag2id.get(gold[i][w], 0) for i, w in where], dtype=np.int64)


def word_targets(where: np.ndarray, gold: Sequence[Sequence[str]], tags: Sequence[str]) -> np.ndarray:
    """Tag ids for the rows of :meth:`TokenTagger.word_features`."""
    return _gold_ids(where, gold, tags)


# ---------------------------------------------------------------- the fine-tuning loop

def train_tagger(model: TokenTagger, enc: Encoded, labels: Sequence[Sequence[int]], *, val_enc: Optional[Encoded] = None,
                 val_tags: Sequence[Sequence[str]] = (), config: TrainConfig, train_modules: Sequence[nn.Module] = (),
                 checkpoint_dir: Optional[Path] = None, resume: bool = False, stage: str = "train",
                 progress: ProgressFn = no_progress, should_cancel: CancelFn = never_cancel) -> TrainResult:
    """Train the parameters of ``model`` with ``requires_grad`` (``model.head`` at ``head_lr``); keep the epoch with
    the best validation entity F1 (``TrainResult.best_val_accuracy`` holds that F1)."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    head_params = [p for p in model.head.parameters() if p.requires_grad]
    head_ids = {id(p) for p in head_params}
    body_params = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [{"params": head_params, "lr": config.head_lr}] + ([{"params": body_params, "lr": config.lr}] if body_params else [])
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(enc) / config.batch_size))
    total = steps_per_epoch * config.epochs
    scheduler = warmup_linear_schedule(optimizer, total, config.warmup_frac)
    result, best_state, best_score, start_epoch = TrainResult(0, 0, None), None, -math.inf, 0
    resumed = load_checkpoint(checkpoint_dir, model, optimizer, scheduler) if resume else None
    if resumed is not None:
        start_epoch, best_score, best_state = resumed.epoch, resumed.best_score, resumed.best_state
        result = TrainResult(**{**resumed.result, "resumed_from_epoch": start_epoch})
        if result.stopped_early:      # finished before the crash: nothing left to train
            start_epoch = config.epochs
        rng = np.random.default_rng([config.seed, start_epoch])
    bad_epochs = result.epochs_run - result.best_epoch if result.history else 0
    has_val = val_enc is not None and len(val_enc) > 0
    t0 = time.time()
    for epoch in range(start_epoch, config.epochs):
        model.eval()
        for module in train_modules:
            module.train()
        order = rng.permutation(len(enc))
        loss_sum, seen, ep_t0 = 0.0, 0, time.time()
        for step in range(steps_per_epoch):
            if should_cancel():
                raise Cancelled(f"cancelled in epoch {epoch + 1}")
            idx = order[step * config.batch_size:(step + 1) * config.batch_size].tolist()
            if not idx:
                continue
            batch, y = model.collate(enc, idx, labels)
            logits = model(**batch)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], config.grad_clip)
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
            done = epoch * steps_per_epoch + step + 1
            per_step = (time.time() - t0) / max(done - start_epoch * steps_per_epoch, 1)
            progress(Progress(stage, done, total, f"epoch {epoch + 1}/{config.epochs}",
                              metrics={"epoch": epoch + 1, "batch_loss": round(loss.item(), 4)}, eta_s=per_step * (total - done)))
        row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1), "seconds": round(time.time() - ep_t0, 2)}
        if has_val:
            assert val_enc is not None
            row["val_entity_f1"] = entity_scores(val_tags, model.predict_tags(val_enc, batch_size=2 * config.batch_size))["f1"]
            score = row["val_entity_f1"] - 1e-3 * row["train_loss"]   # F1 first; the loss breaks ties
        else:
            score = -row["train_loss"]
        result.history.append(row)
        result.epochs_run = epoch + 1
        if score > best_score + 1e-4:
            best_score, result.best_epoch, bad_epochs = score, epoch + 1, 0
            result.best_val_accuracy = row.get("val_entity_f1")
            best_state = _trainable_state(model)
        else:
            bad_epochs += 1
        if has_val and bad_epochs >= config.patience:
            result.stopped_early = True
        progress(Progress(stage, (epoch + 1) * steps_per_epoch, total, f"epoch {epoch + 1} done", metrics=row))
        if checkpoint_dir is not None:
            _save_checkpoint(checkpoint_dir, model, optimizer, scheduler, best_state, epoch + 1, best_score, result)
        if result.stopped_early:
            break
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    result.train_seconds = time.time() - t0
    model.eval()
    return result
