"""NER (token classification): loading, sub-word label alignment, conlleval-style scores, the demo, and runs
end to end with the tiny random backbone (the real MiniLM only in the slow test)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from tlcore.config import FinetuneConfig
from tlcore.errors import Cancelled, ConfigError, DataError
from tlcore.settings.inductive import run_finetune
from tlcore.tasks.ner import pipeline as ner
from tlcore.tasks.ner.data import align_labels, encode, load_ner, tag_vocabulary
from tlcore.tasks.ner.metrics import entity_scores, extract_spans, f1_ci, flipped_sentences, paired_f1_difference, sentence_counts


def _jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------- loading

def test_load_jsonl_and_folder(tmp_path):
    _jsonl(tmp_path / "d" / "train.jsonl", [{"tokens": ["Anna", "lives", "in", "New", "York"], "tags": ["B-PER", "O", "O", "B-LOC", "I-LOC"]},
                                            "", {"tokens": ["hi"], "tags": ["O"]}])
    data = load_ner(tmp_path / "d")
    assert data.sentences[0] == ["Anna", "lives", "in", "New", "York"] and data.tags[1] == ["O"]
    assert data.lines == [1, 3] and data.entity_types() == ["LOC", "PER"] and data.entity_counts() == {"LOC": 1, "PER": 1}
    unlabeled = load_ner(_jsonl(tmp_path / "u.jsonl", [{"tokens": ["just", "text"]}]))
    assert unlabeled.tags is None
    with pytest.raises(DataError, match="has no tags"):
        load_ner(tmp_path / "u.jsonl", require_tags=True)


def test_load_conll_docstart_and_last_column(tmp_path):
    (tmp_path / "x.conll").write_text("-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\n"
                                      "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n", encoding="utf-8")
    data = load_ner(tmp_path / "x.conll")
    assert data.sentences == [["EU", "rejects"], ["Peter", "Blackburn"]]
    assert data.tags == [["B-ORG", "O"], ["B-PER", "I-PER"]] and data.lines == [3, 7]


@pytest.mark.parametrize("content, message", [
    ('{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["a", "b", "c"], "tags": ["O", "O"]}\n', "line 2: 3 tokens but 2 tags"),
    ('{"tokens": ["Anna", "x"], "tags": ["PER", "O"]}\n', r"line 1: tag 'PER' of token 1 \('Anna'\) is not a BIO tag"),
    ('{"tokens": ["a"], "tags": ["O"]}\nnot json\n', "line 2: not valid JSON"),
    ('{"tokens": [], "tags": []}\n', "line 1: 'tokens' must be a non-empty list"),
    ('{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["b"]}\n', "line 2: some lines have 'tags'"),
    ("\n\n", "no sentences found"),
])
def test_bad_jsonl_messages(tmp_path, content, message):
    (tmp_path / "bad.jsonl").write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_ner(tmp_path / "bad.jsonl")


def test_bad_conll_and_files(tmp_path):
    (tmp_path / "a.conll").write_text("Anna B-PER\nlives O\nin X-LOC\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 3: tag 'X-LOC'"):
        load_ner(tmp_path / "a.conll")
    (tmp_path / "b.txt").write_bytes(b"Anna B-PER\nM\xfcller I-PER\n")
    with pytest.raises(DataError, match="not UTF-8 text \\(bad byte at line 2\\)"):
        load_ner(tmp_path / "b.txt")
    (tmp_path / "c.conll").write_text("-DOCSTART- O\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no sentences found"):
        load_ner(tmp_path / "c.conll")
    with pytest.raises(DataError, match="exactly one .jsonl / .conll / .txt file"):
        load_ner(tmp_path)
    (tmp_path / "d.csv").write_text("text\n")
    with pytest.raises(DataError, match="unsupported file type '.csv'"):
        load_ner(tmp_path / "d.csv")


# ---------------------------------------------------------------- alignment

def test_align_labels_hand_case():
    tag2id = {t: i for i, t in enumerate(tag_vocabulary(["PER"]))}          # O=0, B-PER=1, I-PER=2
    assert align_labels([None, 0, 1, 1, 2, None], ["B-PER", "I-PER", "O"], tag2id) == [-100, 1, 2, -100, 0, -100]


def test_encode_with_the_real_tokenizer_labels_first_piece_only():
    from transformers import AutoTokenizer

    from tlcore.models.registry import _minilm_dir

    tok = AutoTokenizer.from_pretrained(_minilm_dir())        # the tokenizer tiny-text and minilm-l6 share
    enc = encode(tok, [["Angela", "met", "Nordbank"]], 32)
    pieces = tok.convert_ids_to_tokens(enc.input_ids[0])
    assert pieces[0] == "[CLS]" and len(pieces) > 5              # "Nordbank" is split into several pieces
    labels = align_labels(enc.word_ids[0], ["B-PER", "O", "B-ORG"], {t: i for i, t in enumerate(tag_vocabulary(["ORG", "PER"]))})
    assert [x for x in labels if x != -100] == [3, 0, 1] and enc.first_positions(0) == [1, 2, 3]


# ---------------------------------------------------------------- metrics

@pytest.mark.parametrize("tags, spans", [
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
    (["O", "I-ORG", "I-ORG"], [("ORG", 1, 3)]),                      # I- after O starts an entity
    (["B-PER", "B-PER", "I-PER"], [("PER", 0, 1), ("PER", 1, 3)]),
    (["B-PER", "I-LOC", "I-LOC", "O"], [("PER", 0, 1), ("LOC", 1, 3)]),  # type change starts a new entity
    (["I-PER", "I-PER", "B-PER"], [("PER", 0, 2), ("PER", 2, 3)]),
    (["O", "O"], []),
    ([], []),
])
def test_extract_spans(tags, spans):
    assert extract_spans(tags) == spans


def test_entity_scores_hand_case():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "O", "B-ORG"], ["B-ORG", "O"]]        # partial PER span and LOC-as-ORG are both wrong
    s = entity_scores(gold, pred)
    assert (s["n_gold"], s["n_predicted"], s["n_correct"]) == (3, 3, 1)
    assert s["precision"] == pytest.approx(1 / 3) and s["recall"] == pytest.approx(1 / 3) and s["f1"] == pytest.approx(1 / 3)
    assert s["per_type"]["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert s["per_type"]["LOC"]["support"] == 1 and s["per_type"]["LOC"]["recall"] == 0.0
    assert s["per_type"]["ORG"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert entity_scores(gold, gold)["f1"] == 1.0
    with pytest.raises(ValueError):
        entity_scores(gold, [["O"]] * 2)


def test_bootstrap_and_flipped():
    gold = [["B-PER", "O"], ["B-LOC", "O"], ["O", "B-ORG"], ["B-PER", "I-PER"]] * 5
    good = [list(g) for g in gold]
    bad = [["O", "O"]] * len(gold)
    lo, hi = f1_ci(sentence_counts(gold, good))
    assert lo == hi == 1.0
    d = paired_f1_difference(sentence_counts(gold, good), sentence_counts(gold, bad))
    assert d["difference"] == 1.0 and d["ci95"][0] > 0.9
    assert paired_f1_difference(sentence_counts(gold, good), sentence_counts(gold, good))["ci95"] == [0.0, 0.0]
    words = [["w1", "w2"]] * len(gold)
    flipped = flipped_sentences(words, gold, bad, good, limit=3)
    assert flipped["n_changed"] == len(gold) and flipped["n_fixed"] == len(gold) and len(flipped["sentences"]) == 3
    assert flipped["sentences"][0]["changed_entities"] == 1 and flipped["sentences"][0]["gain"] == 1


# ---------------------------------------------------------------- demo

def test_demo_reproducible_and_shifted(tmp_path):
    from tlcore.data.demos import DEMOS
    from tlcore.data.demos.ner_shift import make_ner_shift

    spec = DEMOS.get("ner-shift")
    assert (spec.modality, spec.task) == ("text", "ner") and spec.available() is None
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        make_ner_shift(tmp_path / name, seed, "small")
    files = ("source", "target", "eval", "unlabeled")
    assert all((tmp_path / "a" / f / "data.jsonl").read_bytes() == (tmp_path / "b" / f / "data.jsonl").read_bytes() for f in files)
    assert (tmp_path / "a" / "eval" / "data.jsonl").read_bytes() != (tmp_path / "c" / "eval" / "data.jsonl").read_bytes()
    source, target = load_ner(tmp_path / "a" / "source"), load_ner(tmp_path / "a" / "target")
    assert len(source) == 24 and len(target) == 12 and len(load_ner(tmp_path / "a" / "eval")) == 16
    assert load_ner(tmp_path / "a" / "unlabeled").tags is None
    assert source.entity_types() == ["LOC", "ORG", "PER"]

    def names(d):
        return {" ".join(d.sentences[i][s:e]).lower() for i, t in enumerate(d.tags) for _, s, e in extract_spans(t)}

    assert not names(source) & names(target)                    # memorising source names does not help
    assert all(w == w.lower() for s in target.sentences for w in s)


def test_demo_through_registry(tmp_path):
    from tlcore.data.demos import make_demo

    out = make_demo("ner-shift", tmp_path / "demo", seed=0, size="small")
    manifest = json.loads((out / "demo.json").read_text())
    assert manifest["task"] == "ner" and manifest["counts"]["eval"]["total"] == 16


# ---------------------------------------------------------------- runs (tiny random backbone)

@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    from tlcore.data.demos.ner_shift import make_ner_shift

    out = tmp_path_factory.mktemp("ner") / "demo"
    make_ner_shift(out, 0, "small")
    return out


def _cfg(demo: Path, out: Path, **kw) -> FinetuneConfig:
    base = dict(task="ner", modality="text", backbone="tiny-text", epochs=2, batch_size=8, target=str(demo / "target"),
                eval=str(demo / "eval"), source=str(demo / "source"), out=str(out), baselines=[])
    return FinetuneConfig(**{**base, **kw})


@pytest.mark.parametrize("strategy", ["linear_probe", "partial", "full", "lora"])
def test_strategy_end_to_end_save_load(small_demo, tmp_path, strategy):
    report = run_finetune(_cfg(small_demo, tmp_path / "run", strategy=strategy, baselines=["scratch"] if strategy == "full" else []))
    assert report["task"] == "ner" and report["strategy"] == strategy and report["modality"] == "text"
    assert report["data"]["tags"] == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert report["data"]["train"] == 12 and report["data"]["eval"] == 16 and report["data"]["source"] == 24
    for block in (report["before"], report["after"]):
        assert 0.0 <= block["entity_f1"] <= 1.0 and set(block) >= {"entity_precision", "entity_recall", "entity_f1_ci95",
                                                                   "per_type", "token_accuracy"}
        lo, hi = block["entity_f1_ci95"]
        assert lo <= block["entity_f1"] + 1e-9 and block["entity_f1"] <= hi + 1e-9
    assert report["before"]["kind"].startswith("source-trained")
    assert ("scratch" in report["baselines"]) == (strategy == "full")
    on_disk = json.loads((tmp_path / "run" / "report.json").read_text())
    assert on_disk["after"]["entity_f1"] == report["after"]["entity_f1"]
    card = (tmp_path / "run" / "README.md").read_text()
    assert "| PER |" in card and "## Per entity type" in card
    model_dir = tmp_path / "run" / "model"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["task"] == "ner" and config["tags"] == report["data"]["tags"] and (model_dir / "tokenizer.json").exists()
    assert not any("lora" in k for k in load_file(str(model_dir / "model.safetensors")))   # LoRA merged
    eval_data = load_ner(small_demo / "eval")
    loaded = ner.load_model(tmp_path / "run")
    assert loaded.predict_tags(encode(loaded.tokenizer, eval_data.sentences, loaded.max_length)) == report["eval_predictions"]["after"]


def test_run_finetune_dispatch_without_source_and_predict(small_demo, tmp_path):
    from tlcore.settings.inductive import run_finetune

    cfg = _cfg(small_demo, tmp_path / "run", strategy="linear_probe", source=None, eval=None, eval_fraction=0.25)
    events = []
    report = run_finetune(cfg, progress=events.append)
    assert report["task"] == "ner" and report["data"]["eval"] == 3 and report["data"]["train"] == 9
    assert report["data"]["eval_split_file"] and Path(report["data"]["eval_split_file"]).exists()
    assert report["before"]["kind"].startswith("linear probe") and report["before"] == {**report["after"], "kind": report["before"]["kind"]}
    assert "comparisons" in report and "before" not in report["comparisons"] and events[-1].stage == "done"
    assert ner.is_ner_run(tmp_path / "run") and not ner.is_ner_run(tmp_path)

    out = ner.predict(tmp_path / "run", ["just saw priya at tesco in leeds lol", "", "Angela  Weber"])
    assert [o["tokens"] for o in out] == [["just", "saw", "priya", "at", "tesco", "in", "leeds", "lol"], [], ["Angela", "Weber"]]
    assert all(len(o["tags"]) == len(o["tokens"]) for o in out) and out[1]["spans"] == []
    for o in out:
        assert [(s["type"], s["start"], s["end"]) for s in o["spans"]] == extract_spans(o["tags"])
    lines = tmp_path / "posts.txt"
    lines.write_text("just saw priya at tesco\nmiss leeds so much\n", encoding="utf-8")
    assert [o["tokens"][-1] for o in ner.predict_input(tmp_path / "run", str(lines))] == ["tesco", "much"]
    from_jsonl = ner.predict_input(tmp_path / "run", str(small_demo / "eval"))
    assert len(from_jsonl) == 16 and from_jsonl[0]["tokens"] == load_ner(small_demo / "eval").sentences[0]


def test_cancel_then_resume(small_demo, tmp_path):
    calls = {"n": 0}

    def cancel_in_second_epoch() -> bool:
        calls["n"] += 1
        return calls["n"] == 7        # 2 feature batches, 3 steps in epoch 1, then epoch 2

    cfg = _cfg(small_demo, tmp_path / "run", strategy="full", epochs=3)
    with pytest.raises(Cancelled):
        run_finetune(cfg, should_cancel=cancel_in_second_epoch)
    # nothing at --out yet: the checkpoints wait in the hidden staging folder next to it
    assert not (tmp_path / "run").exists() and any(tmp_path.glob(".run.partial-*/checkpoints/source/state.json"))
    resumed = run_finetune(cfg, resume=True)
    assert resumed["training"]["source"]["resumed_from_epoch"] == 1 and resumed["training"]["source"]["epochs_run"] == 3
    assert resumed["training"]["after"]["resumed_from_epoch"] == 0 and (tmp_path / "run" / "model" / "model.safetensors").exists()


def test_config_errors(small_demo, tmp_path):
    with pytest.raises(ConfigError, match="use --modality text"):
        run_finetune(_cfg(small_demo, tmp_path / "r", modality="image"))
    with pytest.raises(ConfigError, match="not available for named-entity recognition"):
        run_finetune(_cfg(small_demo, tmp_path / "r", strategy="dann"))
    with pytest.raises(DataError, match="target data: .*no sentences found"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "x.jsonl").write_text("\n")
        run_finetune(_cfg(small_demo, tmp_path / "r", target=str(tmp_path / "empty")))


# ---------------------------------------------------------------- the real backbone

@pytest.mark.slow
def test_real_minilm_transfer_gains_on_the_demo(tmp_path):
    from tlcore.data.demos.ner_shift import make_ner_shift

    make_ner_shift(tmp_path / "demo", 0, "default")
    report = run_finetune(_cfg(tmp_path / "demo", tmp_path / "run", backbone="minilm-l6", strategy="full", epochs=6, batch_size=16,
                          baselines=["scratch"]))
    before, after, scratch = report["before"]["entity_f1"], report["after"]["entity_f1"], report["baselines"]["scratch"]["entity_f1"]
    # measured (seed 0, 10 epochs): before 0.41, after 0.91, scratch 0.76
    assert after > before + 0.3 and after > scratch, (before, after, scratch)
    assert report["comparisons"]["before"]["ci95"][0] > 0 and not any(w.startswith("negative transfer:") for w in report["warnings"])
    assert np.mean([m["f1"] for m in report["after"]["per_type"].values()]) > 0.6
