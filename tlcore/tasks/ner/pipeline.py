"""Named-entity recognition transfer: the task's stages of a run (:class:`Job`), and predictions from a run folder.

    report = tlcore.finetune(task="ner", target="demo/target", eval="demo/eval", source="demo/source", out="runs/ner")
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

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from tlcore.config import FinetuneConfig
from tlcore.data.overlap import conflicting_labels, content_key, overlap_warnings, split_overlaps
from tlcore.errors import ConfigError, DataError
from tlcore.evaluation.notices import case_only_warnings, conflict_warnings
from tlcore.models.registry import build_backbone, resolve_backbone_name
from tlcore.progress import CancelFn, Progress, ProgressFn
from tlcore.strategies import check_backbone, get_strategy
from tlcore.tasks.job import Outcome, TaskJob
from tlcore.tasks.ner import SPEC
from tlcore.tasks.ner.calibrate import METHOD as CALIBRATION_METHOD
from tlcore.tasks.ner.calibrate import calibration_block, fit_on_validation
from tlcore.tasks.ner.data import NerData, encode, eval_split_ner, find_ner_file, load_ner, tag_vocabulary
from tlcore.tasks.ner.metrics import (
    extract_spans,
    flipped_sentences,
    ner_metrics,
    paired_f1_difference,
    sentence_counts,
)
from tlcore.tasks.ner.model import (
    TokenTagger,
    fit_head_on_features,
    read_tagger_config,
    train_tagger,
    word_ids_from,
    word_probabilities,
    word_targets,
)
from tlcore.training.trainer import TrainConfig

NER_STRATEGIES = SPEC.strategies
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


class Job(TaskJob):
    """NER's stages of an inductive run (module docstring), called by :func:`tlcore.settings.pipeline.run_stages`."""

    skipped = {"knn": "k-NN is defined here for whole-item classification, not for tagging tokens"}

    def load(self) -> str:
        cfg = self.cfg
        target = _load(cfg.target, "target")
        self.source = source = _load(cfg.source, "source")
        self.unlabeled = unlabeled = _load(cfg.unlabeled, "unlabeled", labeled=False)
        assert target is not None and target.tags is not None
        self.split_file = None
        if cfg.eval:
            eval_data, train_data = _load(cfg.eval, "eval"), target
        else:
            train_data, eval_data, self.split_file = eval_split_ner(target, cfg.eval_fraction)
        assert eval_data is not None and eval_data.tags is not None and train_data.tags is not None
        keep, self.overlap = split_overlaps(eval_data.sentences, train_data.sentences,
                                            [f"sentence {i + 1}" for i in range(len(train_data))], kind="tokens",
                                            eval_given=bool(cfg.eval),
                                            others={"source": source and source.sentences,
                                                    "unlabeled": unlabeled and unlabeled.sentences})
        self.train, self.eval = train_data.subset(keep), eval_data
        self.types = types = sorted(set(self.train.entity_types()) | set(source.entity_types() if source else []))
        if not types and train_data.entity_types():
            # the training sentences had entities, but every sentence with one also occurs in the eval split
            raise DataError(f"target data: every tagged training sentence also occurs in the eval data "
                            f"({len(train_data) - len(keep)} duplicates of eval sentences were left out of training), "
                            "which leaves no entity to learn from; give training sentences that are not in the eval set")
        if not types:
            raise DataError("target data: no entities tagged (every tag is O); tag some entities with B-TYPE / I-TYPE")
        unseen = sorted(set(eval_data.entity_types()) - set(types))
        if unseen:
            raise DataError(f"eval entity types {unseen} occur neither in the target training data nor in the source "
                            "data; add tagged examples of them to --target")
        if unlabeled is not None:
            self.ctx.notes.append("unlabeled data is not used by NER fine-tuning in this version")
        self.tags = tag_vocabulary(types)
        self.ctx.warnings += overlap_warnings(self.overlap, len(eval_data)) + case_only_warnings(types, "entity types")
        # over the whole target: the same sentence tagged two ways (a split may have put the copies on both sides)
        self.ctx.warnings += conflict_warnings(conflicting_labels(
            [" ".join(s) for s in target.sentences], [" ".join(t) for t in target.tags],
            [content_key(s, "tokens") for s in target.sentences]), "tag sequences")
        self.trainer = _Trainer(cfg, self.ctx.writer.out, self.ctx.resume, self.ctx.progress, self.ctx.should_cancel)
        self.lr = cfg.lr or (self.default_lr() if get_strategy(cfg.strategy).uses_loop else 0.0)   # probe: no backbone
        backbone = build_backbone(cfg.backbone, "text", pretrained=True)
        self.backbone_name = backbone.backbone_name  # type: ignore[attr-defined]
        check_backbone(cfg.strategy, backbone)
        self.model = TokenTagger(backbone, self.tags, backbone_name=self.backbone_name, strategy=cfg.strategy)
        self.eval_enc = encode(self.model.tokenizer, eval_data.sentences, self.model.max_length)
        if self.eval_enc.truncated:
            self.ctx.notes.append(f"{self.eval_enc.truncated} eval sentence(s) are longer than the backbone's "
                                  f"{self.model.max_length} sub-tokens; their cut-off words are predicted O")
        return f"{len(self.train)} train / {len(eval_data)} eval sentences, entity types {', '.join(types)}"

    def before(self) -> Outcome:
        cfg, model, self.training = self.cfg, self.model, {}
        if self.source is not None:
            self.training["source_linear_probe"] = self.trainer.probe(model, self.source, "source")
            if cfg.strategy != "linear_probe":
                self.training["source"] = self.trainer.finetune(model, self.source, "source", strategy=cfg.strategy,
                                                                lr=self.lr, head_lr=max(self.lr, HEAD_LR))
            kind = f"source-trained model ({cfg.strategy} on the source data), not yet trained on the target"
        else:
            self.training["linear_probe"] = self.trainer.probe(model, self.train, "train")
            kind = "linear probe trained on the target train set (frozen pretrained backbone)"
        self.eval_logits = {"before": model.word_logits(self.eval_enc)}   # the calibration block's (calibrate.py)
        pred = self._tags(self.eval_logits["before"])
        self.ctx.writer.save_folder("before", model.save_pretrained)   # Try it runs exactly this model as "before"
        # linear_probe without a source: "after" is this very model, so there is nothing to compare
        return Outcome(pred, kind=kind, comparable=not (cfg.strategy == "linear_probe" and self.source is None))

    def after(self) -> Outcome:
        cfg = self.cfg
        if cfg.strategy != "linear_probe":
            self.training["after"] = self.trainer.finetune(self.model, self.train, "after", strategy=cfg.strategy,
                                                           lr=self.lr, head_lr=max(self.lr, HEAD_LR))
        elif self.source is not None:
            self.training["linear_probe"] = self.trainer.probe(self.model, self.train, "train")
        else:
            self.ctx.notes.append("strategy linear_probe without --source: 'after' is the same model as 'before'")
        self.model.strategy = cfg.strategy
        self.eval_logits["after"] = self.model.word_logits(self.eval_enc)
        return Outcome(self._tags(self.eval_logits["after"]), self.training)

    def _tags(self, word_logits: tuple[np.ndarray, np.ndarray]) -> list[list[str]]:
        """The eval sentences' predicted tags from the model's word logits (as ``predict_tags``, one forward pass)."""
        ids = word_ids_from(word_logits[0].argmax(1), word_logits[1], self.eval_enc.n_words)
        return [[self.model.tags[k] for k in seq] for seq in ids]

    def _calibrate(self) -> dict:
        """The report's ``calibration`` block; fits the temperature on the validation sentences of "after"'s training
        (the same ``_val_split`` its trainer or probe held out) and sets it on the model ``save_model`` saves."""
        cfg, n = self.cfg, len(self.train)
        val = _val_split(n, cfg)[1]
        assert self.train.tags is not None and self.eval.tags is not None
        t, fitted = fit_on_validation(self.model, [self.train.sentences[i] for i in val],
                                      [self.train.tags[i] for i in val],
                                      f"{n} training sentences at --val-fraction {cfg.val_fraction:g}; a validation "
                                      "split needs at least 8 sentences and 2 of them held out")
        if t is not None:
            self.model.temperature, self.model.calibration = t, {"method": CALIBRATION_METHOD, "fitted_on": fitted}
        return calibration_block(logits=self.eval_logits, gold=self.eval.tags, tags=self.model.tags,
                                 n_words=sum(self.eval_enc.n_words), temperature=t, fitted=fitted, seed=cfg.seed)

    def baseline(self, name: str) -> Outcome:
        """The random-init twin, fully trained on the target train set with the same epochs."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        twin = TokenTagger(build_backbone(cfg.backbone, "text", pretrained=False, seed=cfg.seed), self.tags,
                           strategy="scratch")
        info = self.trainer.finetune(twin, self.train, "scratch", strategy="full", lr=SCRATCH_LR,
                                     head_lr=max(SCRATCH_LR, HEAD_LR))
        return Outcome(twin.predict_tags(self.eval_enc), info)

    def score(self, pred: list[list[str]]) -> dict:
        return ner_metrics(self.eval.tags, pred, seed=self.cfg.seed)

    def compare(self, after: list[list[str]], other: list[list[str]]) -> dict:
        gold = self.eval.tags
        return paired_f1_difference(sentence_counts(gold, after), sentence_counts(gold, other), seed=self.cfg.seed)

    def report(self, outcomes: dict[str, Outcome]) -> dict:
        cfg, source, fitted = self.cfg, self.source, self.training.get("after") or self.training.get("linear_probe")
        return {
            "data": {"train": len(self.train), "val": int((fitted or {}).get("val_size", 0)), "eval": len(self.eval),
                     "source": len(source) if source else 0, "unlabeled": len(self.unlabeled) if self.unlabeled else 0,
                     "tags": self.tags, "entity_types": self.types, "classes": self.types,
                     "train_entities": self.train.entity_counts(), "eval_entities": self.eval.entity_counts(),
                     "source_entities": source.entity_counts() if source else {}, "eval_overlap": self.overlap,
                     "eval_split_file": str(self.split_file) if self.split_file else None, "problems": [],
                     "target": cfg.target, "source_path": cfg.source, "eval_path": cfg.eval},
            "flipped": flipped_sentences(self.eval.sentences, self.eval.tags, outcomes["before"].pred,
                                         outcomes["after"].pred),
            "eval_predictions": {"tokens": self.eval.sentences, "gold": self.eval.tags,
                                 **{k: o.pred for k, o in outcomes.items()}},
            "calibration": self._calibrate(),      # also sets the temperature save_model saves
        }

    def save_model(self, folder: Path) -> None:
        self.model.save_pretrained(folder)


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
    """``{"tokens", "tags", "confidences", "spans": [{"type", "start", "end", "text", "confidence"}]}`` per sentence
    (``end`` exclusive, in words). A word's confidence is the probability of its tag, ``softmax(logits / T)`` with the
    run's temperature (calibrated when one was fitted; None for a word cut off by the max length, tagged O); a span's
    is its least confident word's."""
    keep = [i for i, s in enumerate(sentences) if s]
    if not keep:
        return [{"tokens": list(words), "tags": [], "confidences": [], "spans": []} for words in sentences]
    enc = encode(model.tokenizer, [sentences[i] for i in keep], model.max_length)
    probs, where = word_probabilities(model, enc)
    ids = word_ids_from(probs.argmax(1), where, enc.n_words)
    conf: list[list[Optional[float]]] = [[None] * n for n in enc.n_words]
    for p, (i, w) in zip(probs.max(1), where):
        conf[i][w] = round(float(p), 4)
    by_index = dict(zip(keep, zip(ids, conf)))
    out = []
    for i, words in enumerate(sentences):
        seq, confidences = by_index.get(i, ([], []))
        tags = [model.tags[k] for k in seq]
        out.append({"tokens": list(words), "tags": tags, "confidences": confidences,
                    "spans": [{"type": t, "start": s, "end": e, "text": " ".join(words[s:e]),
                               "confidence": min((c for c in confidences[s:e] if c is not None), default=None)}
                              for t, s, e in extract_spans(tags)]})
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
