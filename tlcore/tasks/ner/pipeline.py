"""Named-entity recognition transfer: one run end to end, and predictions from a finished run folder.

    report = run(FinetuneConfig(task="ner", target="demo/target", eval="demo/eval", source="demo/source", out="runs/ner"))
    predict("runs/ner", ["just saw priya at tesco in leeds"])   # -> [{"tokens", "tags", "spans"}]

* **before** — with ``source``: the model trained on the source domain with the same strategy (linear probe
  first, then the strategy), scored on the target eval set. Without a source a training-free reference means
  nothing for NER, so "before" is the linear probe (frozen pretrained backbone, head trained on the target
  train set); ``report["before"]["kind"]`` says which.
* **after** — the before model further trained on the target train set with the strategy (``linear_probe``,
  ``partial``, ``full`` or ``lora``; LoRA is merged at the end).
* **baselines.scratch** — the backbone's random-init twin, fully trained on the target train set, same epochs.

The run folder holds ``model/`` (config.json with ``architecture: TokenTagger``, ``task: ner``, tags and the
backbone spec; model.safetensors; tokenizer files), ``report.json``, ``README.md`` and ``checkpoints/``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from tlcore.config import FinetuneConfig
from tlcore.data.overlap import overlap_warnings, split_overlaps
from tlcore.errors import ConfigError, DataError
from tlcore.evaluation.policy import transfer_alerts
from tlcore.models.registry import build_backbone, resolve_backbone_name
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.reporting.writer import begin_run
from tlcore.tasks.ner import SPEC
from tlcore.tasks.ner.data import NerData, encode, eval_split_ner, find_ner_file, load_ner, tag_vocabulary
from tlcore.tasks.ner.metrics import (
    extract_spans,
    flipped_sentences,
    ner_metrics,
    paired_f1_difference,
    sentence_counts,
)
from tlcore.tasks.ner.model import TokenTagger, fit_head_on_features, read_tagger_config, train_tagger, word_targets
from tlcore.training.trainer import TrainConfig

NER_STRATEGIES = SPEC.strategies
# Backbone learning rates tuned on the ner-shift demo (tens of sentences, ~10 epochs): higher than the
# classification defaults because token tagging from a fresh head needs more movement in few steps.
NER_LR = {"partial": 3e-4, "full": 1e-4, "lora": 1e-3}
HEAD_LR = 3e-3
SCRATCH_LR = 5e-4
PROBE_STEPS = 300


def _load(path: Optional[str], what: str, *, labeled: bool = True) -> Optional[NerData]:
    if not path:
        return None
    try:
        return load_ner(path, require_tags=labeled)
    except DataError as exc:
        raise DataError(f"{what} data: {exc}") from None


def _val_split(n: int, cfg: FinetuneConfig) -> tuple[list[int], list[int]]:
    """Early-stopping split of the training sentences (never the eval set); none for very small sets."""
    n_val = int(round(cfg.val_fraction * n))
    if cfg.val_fraction <= 0 or n < 8 or n_val < 2:
        return list(range(n)), []
    order = np.random.default_rng(cfg.seed).permutation(n)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


class _Trainer:
    """Trains one TokenTagger on one labeled set with the run's strategy (a stage: source, train or scratch)."""

    def __init__(self, cfg: FinetuneConfig, out: Path, resume: bool, progress: ProgressFn, should_cancel: CancelFn):
        self.cfg, self.out, self.resume, self.progress, self.should_cancel = cfg, out, resume, progress, should_cancel

    def probe(self, model: TokenTagger, data: NerData, stage: str) -> dict:
        """Linear probe: the head trains on cached first-sub-token features of the frozen backbone."""
        assert data.tags is not None
        fit, val = _val_split(len(data), self.cfg)
        self.progress(Progress(f"features: {stage}", 0, 1, f"features of {len(data)} sentences"))
        enc_fit = encode(model.tokenizer, [data.sentences[i] for i in fit], model.max_length)
        x, where = model.word_features(enc_fit, should_cancel=self.should_cancel)
        y = word_targets(where, [data.tags[i] for i in fit], model.tags)
        val_pack = None
        if val:
            enc_val = encode(model.tokenizer, [data.sentences[i] for i in val], model.max_length)
            vx, vwhere = model.word_features(enc_val, should_cancel=self.should_cancel)
            val_pack = (vx, vwhere, enc_val.n_words, [data.tags[i] for i in val])
        info = fit_head_on_features(model.head, x, y, tags=model.tags, val=val_pack, steps=PROBE_STEPS, seed=self.cfg.seed)
        self.progress(Progress(f"features: {stage}", 1, 1, "linear probe fitted"))
        return {**info, "train_size": len(fit), "val_size": len(val)}

    def finetune(self, model: TokenTagger, data: NerData, stage: str, *, strategy: str, lr: float, head_lr: float) -> dict:
        from tlcore.strategies import get_strategy

        assert data.tags is not None
        spec = get_strategy(strategy)
        fit, val = _val_split(len(data), self.cfg)
        enc = encode(model.tokenizer, data.sentences, model.max_length)
        enc_fit, enc_val = _subset_enc(enc, fit), _subset_enc(enc, val)
        labels = model.align(enc_fit, [data.tags[i] for i in fit])
        modules = spec.prepare(model, partial_blocks=self.cfg.partial_blocks, lora_r=self.cfg.lora_r, seed=self.cfg.seed)  # type: ignore[misc]
        tcfg = TrainConfig(epochs=self.cfg.epochs, batch_size=self.cfg.batch_size, lr=lr, head_lr=head_lr,
                           patience=self.cfg.patience, seed=self.cfg.seed)
        result = train_tagger(model, enc_fit, labels, val_enc=enc_val, val_tags=[data.tags[i] for i in val], config=tcfg,
                              train_modules=modules, checkpoint_dir=self.out / "checkpoints" / stage, resume=self.resume,
                              stage=stage, progress=self.progress, should_cancel=self.should_cancel)
        if spec.finalize:
            spec.finalize(model)
        for p in model.parameters():
            p.requires_grad_(False)
        return {"epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "best_val_entity_f1": result.best("val_entity_f1"),
                "stopped_early": result.stopped_early, "resumed_from_epoch": result.resumed_from_epoch, "history": result.history,
                "train_size": len(fit), "val_size": len(val), "lr": lr, "head_lr": head_lr, "seconds": round(result.train_seconds, 2)}


def _subset_enc(enc, idx):
    from tlcore.tasks.ner.data import Encoded

    return Encoded([enc.input_ids[i] for i in idx], [enc.word_ids[i] for i in idx], [enc.n_words[i] for i in idx])


def check_config(cfg: FinetuneConfig) -> None:
    """NER's own rules: a tagged target set, and a text backbone that resolves."""
    if not cfg.target:
        raise ConfigError(SPEC.target_hint)
    resolve_backbone_name(cfg.backbone, cfg.modality)


def run(cfg: FinetuneConfig, *, progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
        resume: bool = False) -> dict:
    """Run one NER transfer experiment; write the run folder ``cfg.out``; return the report (also report.json)."""
    progress = progress or no_progress
    should_cancel = should_cancel or never_cancel
    writer = begin_run(cfg, resume=resume)   # --out is checked and staged there
    out = writer.out
    timings: dict[str, float] = {}
    notes: list[str] = []
    torch.manual_seed(cfg.seed)

    # ---- data
    t0 = time.time()
    progress(Progress("data", 0, 1, "loading data"))
    target = _load(cfg.target, "target")
    source = _load(cfg.source, "source")
    unlabeled = _load(cfg.unlabeled, "unlabeled", labeled=False)
    assert target is not None and target.tags is not None
    split_file = None
    if cfg.eval:
        eval_data = _load(cfg.eval, "eval")
        train_data = target
    else:
        train_data, eval_data, split_file = eval_split_ner(target, cfg.eval_fraction)
    assert eval_data is not None and eval_data.tags is not None and train_data.tags is not None
    keep, overlap = split_overlaps(eval_data.sentences, train_data.sentences,
                                   [f"sentence {i + 1}" for i in range(len(train_data))], kind="tokens",
                                   eval_given=bool(cfg.eval), others={"source": source and source.sentences,
                                                                      "unlabeled": unlabeled and unlabeled.sentences})
    before_dedup = train_data
    train_data = train_data.subset(keep)
    types = sorted(set(train_data.entity_types()) | set(source.entity_types() if source else []))
    if not types and before_dedup.entity_types():
        # the training sentences had entities, but every sentence with one also occurs in the eval split
        dropped = len(before_dedup) - len(keep)
        raise DataError(f"target data: every tagged training sentence also occurs in the eval data ({dropped} duplicates "
                        "of eval sentences were left out of training), which leaves no entity to learn from; give "
                        "training sentences that are not in the eval set")
    if not types:
        raise DataError("target data: no entities tagged (every tag is O); tag some entities with B-TYPE / I-TYPE")
    unseen = sorted(set(eval_data.entity_types()) - set(types))
    if unseen:
        raise DataError(f"eval entity types {unseen} occur neither in the target training data nor in the source data; "
                        "add tagged examples of them to --target")
    if unlabeled is not None:
        notes.append("unlabeled data is not used by NER fine-tuning in this version")
    tags = tag_vocabulary(types)
    timings["data"] = time.time() - t0
    progress(Progress("data", 1, 1, f"{len(train_data)} train / {len(eval_data)} eval sentences, entity types {', '.join(types)}"))

    trainer = _Trainer(cfg, out, resume, progress, should_cancel)
    lr = cfg.lr or NER_LR.get(cfg.strategy, 0.0)
    head_lr = max(lr, HEAD_LR)
    backbone = build_backbone(cfg.backbone, "text", pretrained=True)
    backbone_name = backbone.backbone_name  # type: ignore[attr-defined]
    model = TokenTagger(backbone, tags, backbone_name=backbone_name, strategy=cfg.strategy)
    eval_enc = encode(model.tokenizer, eval_data.sentences, model.max_length)
    training: dict = {}

    # ---- before
    t0 = time.time()
    if source is not None:
        training["source_linear_probe"] = trainer.probe(model, source, "source")
        if cfg.strategy != "linear_probe":
            training["source"] = trainer.finetune(model, source, "source", strategy=cfg.strategy, lr=lr, head_lr=head_lr)
        before_kind = f"source-trained model ({cfg.strategy} on the source data), not yet trained on the target"
        timings["source"] = time.time() - t0
    else:
        training["linear_probe"] = trainer.probe(model, train_data, "train")
        before_kind = "linear probe trained on the target train set (frozen pretrained backbone)"
        timings["features"] = time.time() - t0
    progress(Progress("before", 0, 1, "scoring the model before transfer"))
    pred_before = model.predict_tags(eval_enc)
    writer.save_folder("before", model.save_pretrained)   # Try it runs exactly this model as "before"

    # ---- after
    t0 = time.time()
    if cfg.strategy == "linear_probe":
        if source is not None:
            training["linear_probe"] = trainer.probe(model, train_data, "train")
        else:
            notes.append("strategy linear_probe without --source: 'after' is the same model as 'before'")
    else:
        training["after"] = trainer.finetune(model, train_data, "after", strategy=cfg.strategy, lr=lr, head_lr=head_lr)
    progress(Progress("eval", 0, 1, "scoring the transferred model"))
    pred_after = model.predict_tags(eval_enc)
    timings["train"] = time.time() - t0

    # ---- baselines
    baselines: dict[str, dict] = {}
    baseline_preds: dict[str, list[list[str]]] = {}
    if "scratch" in cfg.baselines:
        t0 = time.time()
        torch.manual_seed(cfg.seed)
        twin = TokenTagger(build_backbone(cfg.backbone, "text", pretrained=False, seed=cfg.seed), tags, strategy="scratch")
        info = trainer.finetune(twin, train_data, "scratch", strategy="full", lr=SCRATCH_LR, head_lr=max(SCRATCH_LR, HEAD_LR))
        baseline_preds["scratch"] = twin.predict_tags(eval_enc)
        baselines["scratch"] = {**ner_metrics(eval_data.tags, baseline_preds["scratch"], seed=cfg.seed), "training": info}
        timings["scratch"] = time.time() - t0
        del twin

    # ---- report
    t0 = time.time()
    gold = eval_data.tags
    before = ner_metrics(gold, pred_before, seed=cfg.seed)
    after = ner_metrics(gold, pred_after, seed=cfg.seed)
    counts_after = sentence_counts(gold, pred_after)
    comparisons = {}
    if not (cfg.strategy == "linear_probe" and source is None):
        comparisons["before"] = paired_f1_difference(counts_after, sentence_counts(gold, pred_before), seed=cfg.seed)
    for name, pred in baseline_preds.items():
        comparisons[name] = paired_f1_difference(counts_after, sentence_counts(gold, pred), seed=cfg.seed)
    timings["eval"] = time.time() - t0
    if eval_enc.truncated:
        notes.append(f"{eval_enc.truncated} eval sentence(s) are longer than the backbone's {model.max_length} sub-tokens; "
                     "their cut-off words are predicted O")
    report = {
        "modality": "text", "task": "ner", "backbone": backbone_name, "strategy": cfg.strategy, "seed": cfg.seed,
        "data": {"train": len(train_data), "val": int((training.get("after") or training.get("linear_probe") or {}).get("val_size", 0)),
                 "eval": len(eval_data), "source": len(source) if source else 0,
                 "unlabeled": len(unlabeled) if unlabeled else 0, "tags": tags, "entity_types": types, "classes": types,
                 "train_entities": train_data.entity_counts(), "eval_entities": eval_data.entity_counts(),
                 "source_entities": source.entity_counts() if source else {}, "eval_overlap": overlap,
                 "eval_split_file": str(split_file) if split_file else None, "problems": [],
                 "target": cfg.target, "source_path": cfg.source, "eval_path": cfg.eval},
        "before": {**before, "kind": before_kind},
        "after": after,
        "baselines": baselines,
        "comparisons": comparisons,
        "warnings": transfer_alerts(comparisons, metric="entity F1") + overlap_warnings(overlap, len(eval_data)),
        "notes": notes,
        "flipped": flipped_sentences(eval_data.sentences, gold, pred_before, pred_after),
        "eval_predictions": {"tokens": eval_data.sentences, "gold": gold, "before": pred_before, "after": pred_after,
                             **baseline_preds},
        "training": training,
        "timings_s": timings,
    }
    progress(Progress("save", 0, 1, "saving the model"))
    model.strategy = cfg.strategy
    report = writer.finish(report, setting="inductive", save_model=model.save_pretrained,
                           skipped={"knn": "k-NN is defined here for whole-item classification, not for tagging tokens"})
    progress(Progress("done", 1, 1, f"after entity F1 {after['entity_f1']:.3f} (before {before['entity_f1']:.3f})"))
    return report


# ---------------------------------------------------------------- prediction

def _model_dir(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    return run_dir / "model" if (run_dir / "model").is_dir() else run_dir


def is_ner_run(run_dir: str | Path) -> bool:
    """True when ``run_dir`` (a run folder or its ``model/``) holds a saved NER model."""
    return read_tagger_config(_model_dir(run_dir)) is not None


def load_model(run_dir: str | Path) -> TokenTagger:
    return TokenTagger.from_pretrained(_model_dir(run_dir))


def predict_tokens(model: TokenTagger, sentences: list[list[str]]) -> list[dict]:
    """``{"tokens", "tags", "spans": [{"type", "start", "end", "text"}]}`` per sentence (``end`` exclusive, in words)."""
    keep = [i for i, s in enumerate(sentences) if s]
    tags_by_index = dict(zip(keep, model.predict_tags(encode(model.tokenizer, [sentences[i] for i in keep], model.max_length))
                             if keep else []))
    out = []
    for i, words in enumerate(sentences):
        tags = tags_by_index.get(i, [])
        out.append({"tokens": list(words), "tags": tags,
                    "spans": [{"type": t, "start": s, "end": e, "text": " ".join(words[s:e])} for t, s, e in extract_spans(tags)]})
    return out


def predict(run_dir: str | Path, texts: list[str], *, model: Optional[TokenTagger] = None) -> list[dict]:
    """Tag whitespace-tokenized texts with a finished run's model; one dict per text (see :func:`predict_tokens`)."""
    model = model or load_model(run_dir)
    return [{"text": t, **r} for t, r in zip(texts, predict_tokens(model, [t.split() for t in texts]))]


def predict_input(run_dir: str | Path, value: str, *, model=None) -> list[dict]:
    """For the CLI: ``value`` is a text, a .jsonl / .conll file or folder (tokens; tags ignored) or a plain .txt
    (one sentence per line, unless it is in CoNLL form)."""
    path = Path(value)
    if not path.exists():
        return predict(run_dir, [value], model=model)
    try:
        data = load_ner(path)
    except DataError:
        file = find_ner_file(path) if path.is_dir() else path
        if file.suffix.lower() != ".txt":
            raise
        texts = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        return predict(run_dir, texts, model=model)
    if path.is_file() and path.suffix.lower() == ".txt" and data.tags is None:   # one token per line is unlikely: plain text
        texts = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if any(len(t.split()) > 1 for t in texts):
            return predict(run_dir, texts, model=model)
    model = model or load_model(run_dir)
    return [{"text": " ".join(s), **r} for s, r in zip(data.sentences, predict_tokens(model, data.sentences))]
