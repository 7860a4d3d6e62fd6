"""P1 and P2 training benchmarks (not a test: prints ratios measured in one run on this machine).

P1: linear_probe with cached features vs the HF ``Trainer`` training the same frozen backbone's head for 10 epochs
    (same backbone, pooling, data): wall-time ratio and both eval accuracies. Goal: >= 10x at equal accuracy.
P2: full fine-tuning with TransferLab's loop vs the plain HF ``Trainer`` on the same model and data:
    samples/s and peak RSS, each measured in a fresh subprocess. Goal: >= 1.0x throughput, RSS <= 1.2x.

Usage: .venv/bin/python benchmarks/bench_training.py [--epochs 10] [--p2-samples 160]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _data():
    from tlcore.data.demos import demo_dir
    from tlcore.data.loaders import load_dataset

    d = demo_dir("sentiment")
    return load_dataset(d / "source", "text"), load_dataset(d / "eval", "text")


class _HFWrap:
    """Adapts a TransferModel to the Trainer's (inputs -> {'loss','logits'}) convention."""

    @staticmethod
    def make(model):
        from torch import nn

        class Wrapped(nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = model

            def forward(self, input_ids, attention_mask, labels=None, token_type_ids=None):
                logits = self.inner(input_ids=input_ids, attention_mask=attention_mask)
                loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
                return {"loss": loss, "logits": logits}

        return Wrapped()


def _hf_train(model, train, classes, *, epochs: int, lr: float, batch: int):
    import torch
    from transformers import Trainer, TrainingArguments

    tok = model.backbone.tokenizer
    enc = tok(train.items, truncation=True, max_length=128)
    labels = [classes.index(y) for y in train.labels]
    rows = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "labels": labels[i]} for i in range(len(labels))]

    def collate(batch_rows):
        padded = tok.pad([{k: r[k] for k in ("input_ids", "attention_mask")} for r in batch_rows], return_tensors="pt")
        return {**padded, "labels": torch.tensor([r["labels"] for r in batch_rows])}

    with tempfile.TemporaryDirectory() as out:
        # weight_decay as in TransferLab's loop (HF's default is 0), so both apply the same update rule.
        args = TrainingArguments(output_dir=out, num_train_epochs=epochs, per_device_train_batch_size=batch, learning_rate=lr,
                                 weight_decay=0.01,
                                 save_strategy="no", report_to=[], logging_strategy="no", use_cpu=True, seed=0,
                                 dataloader_num_workers=0, disable_tqdm=True, remove_unused_columns=False)
        trainer = Trainer(model=_HFWrap.make(model), args=args, train_dataset=rows, data_collator=collate)
        trainer.train()


def p1(epochs: int) -> dict:
    import numpy as np
    import torch

    from tlcore.models.features import extract_features
    from tlcore.models.registry import build_backbone
    from tlcore.models.transfer_model import TransferModel
    from tlcore.strategies.base import freeze
    from tlcore.strategies.linear_probe import fit_linear_head

    train, ev = _data()
    classes = sorted(set(train.labels))
    y = np.array([classes.index(c) for c in train.labels])
    ye = np.array([classes.index(c) for c in ev.labels])
    backbone = build_backbone("minilm-l6", "text")
    t0 = time.perf_counter()
    ftr = extract_features(backbone, train, use_cache=False)
    fev = extract_features(backbone, ev, use_cache=False)
    t_feat = time.perf_counter() - t0
    t0 = time.perf_counter()
    w, b, _ = fit_linear_head(ftr, y, len(classes))
    t_head = time.perf_counter() - t0
    acc_lp = float(((torch.from_numpy(fev) @ w.T + b).argmax(1).numpy() == ye).mean())

    model = TransferModel(build_backbone("minilm-l6", "text"), classes)
    freeze(model.backbone)
    t0 = time.perf_counter()
    _hf_train(model, train, classes, epochs=epochs, lr=1e-3, batch=16)
    t_hf = time.perf_counter() - t0
    acc_hf = float((np.array([classes.index(p) for p in model.predict(ev.items)]) == ye).mean())
    return {"n_train": len(train), "n_eval": len(ev), "epochs_hf": epochs,
            "linear_probe_s_cold": t_feat + t_head, "linear_probe_s_cached": t_head, "hf_trainer_s": t_hf,
            "ratio_cold": t_hf / (t_feat + t_head), "ratio_cached": t_hf / t_head,
            "accuracy_linear_probe": acc_lp, "accuracy_hf_trainer": acc_hf}


def p2_child(which: str, n: int, epochs: int) -> None:
    import numpy as np

    from tlcore.models.registry import build_backbone
    from tlcore.models.transfer_model import TransferModel
    from tlcore.strategies.finetune import prepare_full
    from tlcore.tasks.classification.train import train_classifier
    from tlcore.training.trainer import TrainConfig

    train, _ = _data()
    train = train.subset(list(range(n)))
    classes = sorted(set(train.labels))
    model = TransferModel(build_backbone("minilm-l6", "text"), classes)
    modules = prepare_full(model)
    from transformers import Trainer, TrainingArguments  # noqa: F401  (imported before the clock starts, for both)

    t0, c0 = time.perf_counter(), time.process_time()
    if which == "ours":
        y = np.array([classes.index(c) for c in train.labels])
        train_classifier(model, train.items, y, config=TrainConfig(epochs=epochs, batch_size=16, lr=5e-5, head_lr=5e-5, warmup_frac=0.0),
                         train_modules=modules)
    else:
        _hf_train(model, train, classes, epochs=epochs, lr=5e-5, batch=16)
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"samples_per_s": n * epochs / seconds, "seconds": seconds, "peak_rss_mb": rss_mb,
                      "cpu_s": time.process_time() - c0}))


def p2(n: int, epochs: int, rounds: int = 2) -> dict:
    """Alternate the two sides over ``rounds`` (load from other processes then hits both alike) and report every
    round; the ratios use the medians over rounds, and CPU seconds (steadier than wall time on a shared machine)."""
    import statistics

    import torch

    runs: dict[str, list[dict]] = {"ours": [], "hf": []}
    for which in ("ours", "hf") * rounds:
        res = subprocess.run([sys.executable, __file__, "--p2-child", which, "--p2-samples", str(n), "--p2-epochs", str(epochs),
                              "--threads", str(torch.get_num_threads())],
                             capture_output=True, text=True, check=True)
        runs[which].append(json.loads(res.stdout.strip().splitlines()[-1]))

    def median(which: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[which])

    return {"rounds": runs,
            "throughput_ratio": median("ours", "samples_per_s") / median("hf", "samples_per_s"),
            "cpu_time_ratio": median("hf", "cpu_s") / median("ours", "cpu_s"),
            "rss_ratio": median("ours", "peak_rss_mb") / median("hf", "peak_rss_mb")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--p2-samples", type=int, default=160)
    ap.add_argument("--p2-epochs", type=int, default=2)
    ap.add_argument("--p2-child")
    ap.add_argument("--only", choices=("p1", "p2"))
    ap.add_argument("--rounds", type=int, default=3, help="P2 rounds per side, alternating")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both sides (1: robust on a shared machine)")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    if a.p2_child:
        p2_child(a.p2_child, a.p2_samples, a.p2_epochs)
        return
    print(f"# machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    if a.only in (None, "p1"):
        r = p1(a.epochs)
        print("P1 linear_probe (cached features) vs HF Trainer, frozen minilm-l6, sentiment source -> eval")
        print(json.dumps(r, indent=2))
        print(f"P1 ratio (HF Trainer time / linear_probe time): cold cache {r['ratio_cold']:.1f}x, warm cache {r['ratio_cached']:.0f}x; "
              f"accuracy {r['accuracy_linear_probe']:.3f} vs {r['accuracy_hf_trainer']:.3f}")
    if a.only in (None, "p2"):
        r = p2(a.p2_samples, a.p2_epochs, a.rounds)
        print("P2 full fine-tuning, minilm-l6, our loop vs HF Trainer")
        print(json.dumps(r, indent=2))
        for i, (ours, hf) in enumerate(zip(r["rounds"]["ours"], r["rounds"]["hf"]), 1):
            print(f"P2 round {i}: ours {ours['samples_per_s']:.2f} samples/s, {ours['cpu_s']:.2f} CPU s, {ours['peak_rss_mb']:.0f} MB"
                  f" | HF {hf['samples_per_s']:.2f} samples/s, {hf['cpu_s']:.2f} CPU s, {hf['peak_rss_mb']:.0f} MB")
        print(f"P2 median throughput ratio (ours / HF) {r['throughput_ratio']:.2f}x; CPU-time ratio (HF / ours) "
              f"{r['cpu_time_ratio']:.2f}x; median peak RSS ratio {r['rss_ratio']:.2f}x")


if __name__ == "__main__":
    main()
