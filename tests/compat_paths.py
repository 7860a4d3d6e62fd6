"""The compatibility matrix's checks: one model family (a tiny ``save_pretrained`` folder from :mod:`tiny_hf`) through
every path a user takes with a backbone they bring — the linear probe, partial, full and LoRA fine-tuning, the scratch
twin, domain adaptation of the whole backbone (``--adapt-backbone``), NER (text families), ``predict``, Try it's
loader and the ONNX export with its parity check.

:func:`check_family` returns one :class:`Cell` per path: ``ok``, ``refused`` (the engine declined before any work,
with its one-line reason) or ``fails`` (anything else: a traceback, a wrong result). The test
(``tests/test_compat_matrix.py``) asserts the cells; ``benchmarks/compat_matrix.py`` writes them to
``docs/compat_matrix.json`` for the README's table. Both run these same functions, so they agree.

Everything is as small as a run can be (2 classes x 6 items, one epoch) and each run does several checks at once:
the linear-probe run trains the scratch twin, the LoRA run is the one predict, Try it and ONNX use.
"""

from __future__ import annotations

import json
import time
import wave
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from conftest import write_image_set
from safetensors.torch import load_file
from tiny_hf import Family
from transformers import AutoTokenizer

import tlcore
from tlcore.adaptation import trainer as adaptation_trainer
from tlcore.errors import ConfigError
from tlcore.models.registry import build_backbone
from ui import try_it

#: The matrix's columns, in order.
PATHS = ("linear_probe", "partial", "full", "lora", "scratch", "adapt_backbone", "ner", "predict", "try_it", "onnx")
#: Paths that only some modalities have (the others show "—").
ONLY = {"ner": ("text",)}
RUN = dict(epochs=1, batch_size=4, seed=0, eval_fraction=0.34)


@dataclass
class Cell:
    status: str            # "ok", "refused", "fails" or "n/a"
    detail: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- tiny data sets (2 classes x 6 items)

def write_texts(folder: Path, seed: int = 0, n: int = 6) -> Path:
    rng = np.random.default_rng(seed)
    words = {"pos": ["great", "wonderful", "excellent", "lovely"], "neg": ["awful", "terrible", "horrible", "dreadful"]}
    rows = ["text,label"] + [f"the film was {v[rng.integers(4)]} number {i + 10 * seed},{label}"
                             for label, v in words.items() for i in range(n)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.csv").write_text("\n".join(rows) + "\n")
    return folder


def write_images(folder: Path, seed: int = 0, n: int = 6) -> Path:
    return write_image_set(folder, n_per_class=n, seed=seed, side=24)


def write_clips(folder: Path, seed: int = 0, n: int = 6) -> Path:
    """Low and high tones of different lengths (0.3-0.5 s; some at 22.05 kHz): every batch pads to its own length."""
    rng = np.random.default_rng(seed)
    for label, base in (("low", 220.0), ("high", 1400.0)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            sr = 22050 if i % 3 == 2 else 16000
            t = np.arange(int(sr * rng.uniform(0.3, 0.5))) / sr
            data = (0.3 * np.sin(2 * np.pi * base * (1 + 0.1 * rng.random()) * t) * 32767).astype(np.int16)
            with wave.open(str(folder / label / f"{label}_{i}.wav"), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(sr)
                w.writeframes(data.tobytes())
    return folder


WRITERS: dict[str, Callable[..., Path]] = {"text": write_texts, "image": write_images, "audio": write_clips}


def write_ner(folder: Path) -> Path:
    """Twelve tagged sentences (PER, LOC, ORG), one JSON object per line."""
    people, cities, orgs = ["Anna", "Bob", "Omar", "Lena"], ["Paris", "Berlin", "Rome"], ["Acme", "Tesco"]
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "ner.jsonl", "w", encoding="utf-8") as f:
        for i in range(12):
            tokens = [people[i % 4], "flew", "to", cities[i % 3], "for", orgs[i % 2], "today" if i % 2 else "again"]
            f.write(json.dumps({"tokens": tokens, "tags": ["B-PER", "O", "O", "B-LOC", "O", "B-ORG", "O"]}) + "\n")
    return folder


def inputs_of(data: Path, modality: str, k: int = 3) -> list:
    """``k`` raw items of a written set, as predict takes them (texts, or file paths)."""
    if modality == "text":
        return [line.rsplit(",", 1)[0] for line in (data / "data.csv").read_text().splitlines()[1:1 + k]]
    return [str(p) for p in sorted(data.rglob("*.*"))[:k]]


# ---------------------------------------------------------------- the checks

@contextmanager
def short_adapter_training(steps: int = 30) -> Iterator[None]:
    """Train the frozen-feature adapters that choose DANN's trade-off for ``steps`` steps, not 600: they see features
    only, whatever the family (``tests/test_transductive.py`` covers them); the backbone's own training is unchanged."""
    before = adaptation_trainer.MIN_STEPS
    adaptation_trainer.MIN_STEPS = steps
    try:
        yield
    finally:
        adaptation_trainer.MIN_STEPS = before


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "model.safetensors"))


def _pretrained(folder: Path, modality: str) -> dict[str, torch.Tensor]:
    return {f"backbone.{k}": v for k, v in build_backbone(str(folder), modality).state_dict().items()}


def _changed(after: dict, before: dict, prefix: str) -> bool:
    keys = [k for k in before if k.startswith(prefix) and before[k].dtype.is_floating_point]
    assert keys, f"no weights under {prefix}"
    return any(not torch.equal(after[k], before[k]) for k in keys)


def _block_prefixes(folder: Path, modality: str) -> list[str]:
    """The weight-name prefix of each backbone block, bottom to top (what ``partial`` unfreezes from the top)."""
    backbone = build_backbone(str(folder), modality)
    names = {id(m): n for n, m in backbone.named_modules()}
    return [f"backbone.{names[id(b)]}." for b in backbone.blocks()]


class FamilyCheck:
    """The runs of one family, in a work folder; each ``check_<path>`` raises on failure and returns a detail."""

    def __init__(self, family: Family, folder: Path, work: Path):
        self.family, self.modality, self.folder, self.work = family, family.modality, Path(folder), Path(work)
        self.data = WRITERS[self.modality](self.work / "data", 0)
        self.runs: dict[str, dict] = {}

    def finetune(self, strategy: str, **settings) -> dict:
        out = self.work / "runs" / strategy
        report = tlcore.finetune(modality=self.modality, target=str(self.data), backbone=str(self.folder),
                                 strategy=strategy, out=str(out), **{**RUN, "baselines": [], **settings}).report
        self.runs[strategy] = report
        return report

    def check_linear_probe(self) -> str:
        report = self.finetune("linear_probe", baselines=["scratch"])
        return f"accuracy {report['after']['accuracy']:.2f}"

    def check_scratch(self) -> str:
        if "linear_probe" not in self.runs:     # the probe's run trains the scratch twin
            self.check_linear_probe()
        scratch = self.runs["linear_probe"]["baselines"]["scratch"]
        assert scratch["training"]["epochs_run"] == 1, scratch
        return f"accuracy {scratch['accuracy']:.2f}"

    def check_partial(self) -> str:
        self.finetune("partial", partial_blocks=1)
        blocks = _block_prefixes(self.folder, self.modality)
        assert blocks[-1] == f"backbone.net.{self.family.top_block}.", f"the top block found is {blocks[-1]}"
        after, before = _weights(self.work / "runs" / "partial"), _pretrained(self.folder, self.modality)
        assert _changed(after, before, blocks[-1]), "partial did not train the top block"
        assert not _changed(after, before, blocks[0]), "partial trained the bottom block"
        return f"top 1 of {len(blocks)} blocks trained"

    def check_full(self) -> str:
        self.finetune("full")
        after, before = _weights(self.work / "runs" / "full"), _pretrained(self.folder, self.modality)
        blocks = _block_prefixes(self.folder, self.modality)
        assert _changed(after, before, blocks[0]) and _changed(after, before, blocks[-1]), "full left a block as it was"
        return "every block trained"

    def check_lora(self) -> str:
        self.finetune("lora")
        after, before = _weights(self.work / "runs" / "lora"), _pretrained(self.folder, self.modality)
        assert not any("lora_" in k for k in after), "the LoRA update was not merged"
        assert set(after) == set(before) | {k for k in after if k.startswith("head.")}, "the merged model's weights differ"
        assert _changed(after, before, "backbone."), "LoRA changed no backbone weight"
        return "merged into the backbone"

    def check_adapt_backbone(self) -> str:
        source = WRITERS[self.modality](self.work / "source", 1)
        unlabeled = WRITERS[self.modality](self.work / "unlabeled", 2)
        with short_adapter_training():
            report = tlcore.finetune(modality=self.modality, source=str(source), unlabeled=str(unlabeled),
                                     eval=str(self.data), backbone=str(self.folder), strategy="dann", adapt_backbone=True,
                                     out=str(self.work / "runs" / "dann"), epochs=1, batch_size=4, seed=0).report
        info = report["training"]["backbone"]
        assert info["adapted"] and info["epochs_run"] == 1, info
        return f"dann end to end, accuracy {report['after']['accuracy']:.2f}"

    def check_ner(self) -> str:
        out = self.work / "runs" / "ner"
        report = tlcore.finetune(task="ner", modality="text", target=str(write_ner(self.work / "ner")),
                                 backbone=str(self.folder), strategy="lora", out=str(out), epochs=1, batch_size=4,
                                 seed=0, eval_fraction=0.34, baselines=[]).report
        sentence = "anna flew to rome for acme today"
        row = tlcore.load_run(out).predict([sentence])[0]
        assert len(row["tags"]) == len(row["tokens"]) == 7, row
        tokenizer = AutoTokenizer.from_pretrained(out / "model")   # the saved tagger's: words read as in running text
        words = tokenizer([sentence.split()], is_split_into_words=True, add_special_tokens=False)["input_ids"][0]
        assert words == tokenizer(sentence, add_special_tokens=False)["input_ids"], "words tokenized unlike the sentence"
        return f"entity F1 {report['after']['entity_f1']:.2f}"

    def _served(self) -> Path:
        if "lora" not in self.runs:
            self.check_lora()
        return self.work / "runs" / "lora"

    def check_predict(self) -> str:
        run = self._served()
        report = self.runs["lora"]
        preds, classes = report["eval_predictions"], report["data"]["classes"]
        loaded = tlcore.load_run(run)
        rows = loaded.predict(preds["items"])
        assert [r["prediction"] for r in rows] == [classes[i] for i in preds["after"]], (rows, preds)
        if self.family.batch_invariant:      # each item alone scores as it does in a batch of items of other lengths
            model, items = loaded.after_model, preds["items"]
            together = model.predict_proba(items)
            alone = np.concatenate([model.predict_proba([item]) for item in items])
            np.testing.assert_allclose(alone, together, atol=1e-4)
        return f"{len(rows)} eval items as scored"

    def check_try_it(self) -> str:
        run, items = self._served(), inputs_of(self.data, self.modality)
        shown = try_it.compare(try_it.loaded_run(run), items)
        assert shown.before is not None and len(shown.before) == len(shown.after) == len(items), shown
        assert shown.after == tlcore.load_run(run).predict(items), "Try it shows other predictions than predict"
        return "before and after"

    def check_onnx(self) -> str:
        run = self._served()
        result = tlcore.export_onnx(run)
        parity = result.parity["parity"]
        assert parity["passed"], parity
        items = inputs_of(self.data, self.modality)
        loaded = tlcore.load_run(run)
        torch_rows, onnx_rows = loaded.predict(items), loaded.predict(items, backend="onnx")
        assert [r["prediction"] for r in torch_rows] == [r["prediction"] for r in onnx_rows]
        return f"max |Δ logit| {parity['max_abs_diff']:.1e}"


def check_family(family: Family, folder: Path, work: Path, paths: tuple[str, ...] = PATHS,
                 log: Optional[Callable[[str], None]] = None) -> dict[str, Cell]:
    """Every path of ``paths`` for one family: path -> :class:`Cell` (module docstring)."""
    check = FamilyCheck(family, folder, work)
    cells: dict[str, Cell] = {}
    for path in paths:
        if family.modality not in ONLY.get(path, (family.modality,)):
            cells[path] = Cell("n/a")
            continue
        t0 = time.time()
        try:
            cells[path] = Cell("ok", getattr(check, f"check_{path}")())
        except ConfigError as exc:
            cells[path] = Cell("refused", str(exc))
        except Exception as exc:  # noqa: BLE001 - the matrix records every failure as a "fails" cell
            cells[path] = Cell("fails", f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
        cells[path].seconds = round(time.time() - t0, 2)
        cells[path].detail = cells[path].detail.replace(str(folder), family.name)   # no temporary paths in the matrix
        if log:
            log(f"{family.name} {path}: {cells[path].status} {cells[path].detail} ({cells[path].seconds:.1f} s)")
    return cells
