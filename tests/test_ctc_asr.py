"""CTC speech recognition (``--task asr`` with an encoder + CTC head): a tiny wav2vec2 recognizer of a synthetic "tone
alphabet" adapted to a shifted accent — the WER falls; the CLI, the API, predict, the before/after models Try it loads,
the Hub export, the refused strategies, and the batching and targets of the CTC path.

The tone alphabet: each letter of "abcdefgh" is an 80 ms tone (600 Hz + 450 Hz per letter), a space 80 ms of silence.
The tiny model (hidden size 32, 2 layers, a 3-layer conv stack with 20 ms frames) is "pretrained" in the fixture for
150 steps on frame labels of the source accent, so it transcribes that accent; the target accent shifts every tone
up by 225 Hz (half-way between two letters), which it misreads until it is fine-tuned with CTC on target clips. The
eval phrases are not in the training set: the model must map tones to letters, not remember clips.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import make_tiny_wav2vec2
from safetensors.torch import load_file
from streamlit.testing.v1 import AppTest
from test_try_it import register, try_it
from transformers import (
    AutoModelForCTC,
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2Processor,
)

import tlcore
from tlcore.cli import main
from tlcore.config import FinetuneConfig
from tlcore.errors import ConfigError
from tlcore.inference import hub_export as hx
from tlcore.inference import onnx_export as ox
from tlcore.tasks.asr.ctc import CtcClips, ctc_targets, greedy_transcripts, load_ctc
from tlcore.tasks.asr.kinds import local_kind
from tlcore.tasks.asr.pipeline import default_strategy
from tlcore.tasks.asr.whisper import WhisperRecognizer

LETTERS = "abcdefgh"
RATE, TONE_S = 16_000, 0.08
TARGET_SHIFT = 225.0


def tone_clip(text: str, shift: float, rng: np.random.Generator) -> np.ndarray:
    """``text`` in the tone alphabet (module docstring), 50 ms of silence at each end, a little noise."""
    n, t = int(TONE_S * RATE), np.arange(int(TONE_S * RATE)) / RATE
    parts = [np.zeros(800)]
    for ch in text:
        parts.append(np.zeros(n) if ch == " " else
                     0.3 * np.sin(2 * np.pi * (600 + 450 * LETTERS.index(ch) + shift) * t + rng.uniform(0, 2 * np.pi)))
    wave = np.concatenate(parts + [np.zeros(800)])
    return (wave + 0.005 * rng.standard_normal(len(wave))).astype(np.float32)


def phrases(n: int, seed: int) -> list[str]:
    """``n`` two-word phrases of 2-4 letters, no letter twice in a row (a repeat needs a blank between)."""
    rng, out = np.random.default_rng(seed), []
    for _ in range(n):
        words = []
        for _ in range(2):
            word = ""
            while len(word) < rng.integers(2, 5):
                c = LETTERS[rng.integers(len(LETTERS))]
                word += c if not word or word[-1] != c else ""
            words.append(word)
        out.append(" ".join(words))
    return out


def write_tone_set(folder: Path, texts: list[str], shift: float, seed: int) -> Path:
    """An ASR folder (``metadata.csv`` + wavs) of ``texts`` spoken in the accent ``shift``."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    rows = ["file_name,transcription,speaker"]
    for i, text in enumerate(texts):
        sf.write(folder / f"t{i}.wav", tone_clip(text, shift, rng), RATE, subtype="PCM_16")
        rows.append(f"t{i}.wav,{text},s{i % 2}")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return folder


def make_tiny_ctc(folder: Path, *, pretrain_steps: int = 150) -> Path:
    """A tiny ``Wav2Vec2ForCTC`` with a character vocabulary (a-z, ', | and <pad>/<unk>; <pad> is the CTC blank)
    saved with its ``Wav2Vec2Processor``; trained for ``pretrain_steps`` on frame labels of the source accent."""
    folder.mkdir(parents=True)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{c: i + 3 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz'")}}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), unk_token="<unk>", pad_token="<pad>",
                                     word_delimiter_token="|")
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=RATE, padding_value=0.0, do_normalize=True,
                                  return_attention_mask=True)
    config = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, conv_dim=(32, 32, 32), conv_stride=(10, 8, 4), conv_kernel=(20, 8, 4),
                            num_feat_extract_layers=3, feat_extract_norm="layer", num_conv_pos_embeddings=4,
                            num_conv_pos_embedding_groups=2, pad_token_id=0, mask_time_prob=0.0, layerdrop=0.0,
                            hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
                            final_dropout=0.0)
    rng = np.random.default_rng(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Wav2Vec2ForCTC(config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        for step in range(pretrain_steps):
            texts = phrases(4, 1000 + step)
            waves = [tone_clip(t, 0.0, rng) for t in texts]
            inputs = fe(waves, sampling_rate=RATE, padding=True, return_tensors="pt")
            logits = model(**inputs).logits
            # each frame's label: the letter (or "|" for a space, blank for the edges) under the frame's samples
            per_sample = [np.array([0] * 800 + [v for ch in t for v in [2 if ch == " " else 3 + LETTERS.index(ch)]
                                                * int(TONE_S * RATE)] + [0] * 800) for t in texts]
            frames = logits.shape[1]
            labels = torch.stack([torch.as_tensor(s[np.minimum(np.arange(frames) * 320 + 160, len(s) - 1)])
                                  for s in per_sample])
            valid = torch.stack([torch.arange(frames) * 320 < len(s) for s in per_sample])
            loss = torch.nn.functional.cross_entropy(logits[valid], labels[valid])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.save_pretrained(folder)
    Wav2Vec2Processor(feature_extractor=fe, tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", autouse=True)
def one_thread_module():
    """One torch thread for the whole module, its module fixtures (the training runs) included: small models run
    several times faster on one thread when the machine's cores are busy (``conftest.one_thread`` is per test)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_ctc(tmp_path_factory) -> Path:
    return make_tiny_ctc(tmp_path_factory.mktemp("tiny_ctc") / "tiny-ctc")


@pytest.fixture(scope="module")
def tone_sets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tones")
    return {"target": write_tone_set(root / "target", phrases(16, 1), TARGET_SHIFT, 1),
            "eval": write_tone_set(root / "eval", phrases(6, 2), TARGET_SHIFT, 2),
            "source": write_tone_set(root / "source", phrases(4, 3), 0.0, 3)}


@pytest.fixture(scope="module")
def cli_run(tiny_ctc, tone_sets, tmp_path_factory) -> tuple[Path, dict]:
    """The CLI run every later test reads: no --strategy (a CTC backbone's default: full), 20 epochs."""
    out = tmp_path_factory.mktemp("ctc_cli") / "run"
    code = main(["finetune", "--task", "asr", "--modality", "audio", "--backbone", str(tiny_ctc),
                 "--target", str(tone_sets["target"]), "--eval", str(tone_sets["eval"]),
                 "--source", str(tone_sets["source"]), "--epochs", "20", "--batch-size", "4", "--lr", "3e-3",
                 "--val-fraction", "0", "--out", str(out), "--json", str(out.parent / "report.json"), "--quiet"])
    assert code == 0
    return out, json.loads((out.parent / "report.json").read_text())


# ---------------------------------------------------------------- it trains

def test_cli_fine_tune_lowers_wer_and_cer_on_the_shifted_accent(cli_run, tiny_ctc) -> None:
    out, report = cli_run
    before, after = report["before"], report["after"]
    print(f"CTC tone accent: WER {before['wer']:.3f} -> {after['wer']:.3f}, CER {before['cer']:.3f} -> "
          f"{after['cer']:.3f}")
    assert report["task"] == "asr" and report["recognizer"] == "ctc" and report["strategy"] == "full"
    assert before["wer"] >= 0.8 and before["cer"] >= 0.3           # the source-accent model misreads the target
    assert after["wer"] <= 0.5 and after["cer"] <= 0.2 and after["wer"] < before["wer"] - 0.5
    # the same report keys, metrics code and paired comparison as a Whisper run
    for block in (before, after, report["source_eval"]["before"], report["source_eval"]["after"]):
        assert {"wer", "cer", "wer_ci95", "cer_ci95", "n", "runaway", "per_group"} <= set(block)
    assert report["comparisons"]["before"]["difference"] == pytest.approx(after["wer"] - before["wer"])
    assert report["comparisons"]["before"]["ci95"][1] < 0
    assert report["before"]["kind"].startswith("the pretrained CTC model")
    assert report["source_eval"]["before"]["wer"] <= 0.2           # the pretrained model reads its own accent
    training = report["training"]
    assert "feature encoder" in training["frozen"] and training["epochs_run"] == 20 and training["lr"] == 3e-3
    assert training["dropped_characters"] == [] and report["ctc"]["vocabulary_size"] == 30
    assert report["eval_predictions"]["after"] and "| before |" in (out / "README.md").read_text()


def test_saved_model_is_a_standard_folder_with_the_feature_encoder_unchanged(cli_run, tiny_ctc) -> None:
    out, _ = cli_run
    saved, original = load_file(str(out / "model" / "model.safetensors")), load_file(str(tiny_ctc / "model.safetensors"))
    assert set(saved) == set(original)
    conv = [k for k in saved if "feature_extractor" in k]
    assert conv and all(torch.equal(saved[k], original[k]) for k in conv)
    assert not torch.equal(saved["lm_head.weight"], original["lm_head.weight"])
    assert not torch.equal(saved["wav2vec2.encoder.layers.0.attention.q_proj.weight"],
                           original["wav2vec2.encoder.layers.0.attention.q_proj.weight"])
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["ctc_loss_reduction"] == json.loads((tiny_ctc / "config.json").read_text())["ctc_loss_reduction"]
    assert Wav2Vec2ForCTC.from_pretrained(out / "model").config.hidden_size == 32
    assert Wav2Vec2Processor.from_pretrained(out / "model").tokenizer.word_delimiter_token == "|"
    assert json.loads((out / "model" / "asr.json").read_text())["recognizer"] == "ctc"


def test_predict_and_the_before_after_models_try_it_loads(cli_run, tone_sets, capsys) -> None:
    out, report = cli_run
    clips = sorted(str(p) for p in tone_sets["eval"].glob("*.wav"))
    run = tlcore.load_run(out)                    # what Try it loads (ui.try_it.loaded_run)
    after = run.predict(clips, model="after")
    before = run.predict(clips, model="before")
    assert [r["transcript"] for r in after] == report["eval_predictions"]["after"]
    assert [r["transcript"] for r in before] == report["eval_predictions"]["before"]
    assert after[0]["seconds"] > 0.5 and not after[0]["truncated"]
    assert main(["predict", "--run", str(out), "--input", str(tone_sets["eval"])]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["transcript"] for r in rows] == report["eval_predictions"]["after"]
    assert [r["reference"] for r in rows] == report["eval_predictions"]["reference"]


def test_try_it_page_shows_the_before_and_after_transcripts(app_home, cli_run, tone_sets) -> None:
    from ui import try_it as ti

    out, report = cli_run
    at = try_it(register(out, "ctc run", copy=True).id)
    at.file_uploader(key="try-audio").upload("t0.wav", (tone_sets["eval"] / "t0.wav").read_bytes(), "audio/wav").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [m.value for m in at.markdown if m.value.startswith('<div style="border')]
    want = ti.transcript_diff_html(report["eval_predictions"]["before"][0], report["eval_predictions"]["after"][0])
    assert shown == list(want)
    assert any(m.value.startswith("**Before**: the pretrained CTC model") for m in at.markdown)


def test_hub_export_copies_the_ctc_folder_and_onnx_refuses_with_the_reason(cli_run, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(cli_run[0], run)
    assert "CTC model" in ox.refusal(run) and "speech recognition runs are not exported" in ox.refusal(run)
    result = hx.export_hf(run)
    assert AutoModelForCTC.from_pretrained(result.folder / "model").config.vocab_size == 30
    card = (result.folder / "README.md").read_text()
    assert "automatic-speech-recognition" in card and "CTC model" in card


# ---------------------------------------------------------------- the API, LoRA, refusals

def test_api_lora_trains_the_adapters_and_the_head_and_merges_them(tiny_ctc, tone_sets, tmp_path) -> None:
    report = tlcore.finetune(modality="audio", task="asr", backbone=str(tiny_ctc), strategy="lora",
                             target=str(tone_sets["target"]), eval=str(tone_sets["eval"]), epochs=3, batch_size=4,
                             val_fraction=0.3, out=str(tmp_path / "run")).report
    assert report["strategy"] == "lora" and report["recognizer"] == "ctc" and report["data"]["val"] > 0
    assert report["training"]["best_val_loss"] is not None and report["training"]["lr"] == 1e-3   # CTC's lora default
    full = sum(v.numel() for v in load_file(str(tiny_ctc / "model.safetensors")).values())
    assert 0 < report["training"]["trainable_params"] < full / 2
    saved, original = load_file(str(tmp_path / "run" / "model" / "model.safetensors")), load_file(
        str(tiny_ctc / "model.safetensors"))
    assert set(saved) == set(original)       # LoRA merged: the plain model's weight names
    assert not torch.equal(saved["lm_head.weight"], original["lm_head.weight"])
    assert torch.equal(saved["wav2vec2.encoder.layers.0.attention.k_proj.weight"],
                       original["wav2vec2.encoder.layers.0.attention.k_proj.weight"])
    assert not torch.equal(saved["wav2vec2.encoder.layers.0.attention.v_proj.weight"],
                           original["wav2vec2.encoder.layers.0.attention.v_proj.weight"])


def test_a_strategy_a_ctc_model_cannot_train_is_refused_in_one_line(tiny_ctc, tone_sets, tmp_path, capsys) -> None:
    cfg = FinetuneConfig(modality="audio", task="asr", backbone=str(tiny_ctc), strategy="decoder",
                         target=str(tone_sets["target"]), out=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match="strategy 'decoder' is not available") as refused:
        cfg.validate()
    assert "no decoder" in str(refused.value) and "--strategy full or lora" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert main(["finetune", "--task", "asr", "--modality", "audio", "--backbone", str(tiny_ctc), "--strategy",
                 "decoder", "--target", str(tone_sets["target"]), "--out", str(tmp_path / "run")]) == 2
    assert "no decoder" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_a_speech_encoder_without_a_ctc_head_is_refused_before_any_work(tone_sets, tmp_path) -> None:
    encoder = make_tiny_wav2vec2(tmp_path / "w2v-no-head")
    cfg = FinetuneConfig(modality="audio", task="asr", backbone=str(encoder), strategy="full",
                         target=str(tone_sets["target"]), out=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match="Wav2Vec2Model: speech recognition takes a Whisper model or an encoder "
                                          "with a CTC head"):
        cfg.validate()


def test_the_backbone_decides_the_kind_and_the_default_strategy(tiny_ctc, tmp_path) -> None:
    assert local_kind(None) is WhisperRecognizer and local_kind("whisper-tiny-en") is WhisperRecognizer
    assert local_kind("someone/some-model") is None          # a hub id: AutoConfig decides when the run starts
    assert default_strategy("whisper-tiny-en") == "decoder" and default_strategy(str(tiny_ctc)) == "full"
    assert default_strategy("someone/some-model") == "decoder"
    (tmp_path / "empty").mkdir()
    assert default_strategy(str(tmp_path / "empty")) == "decoder"    # validation says what is wrong with it


def test_fine_tune_page_takes_a_ctc_folder_typed_as_the_backbone(app_home, tiny_ctc, tone_sets) -> None:
    from tlcore.runs import RunStore
    from tlcore.runs.worker import Worker, WorkerOptions
    from ui.datasets import save_upload_set

    ref = save_upload_set("audio", {"target": str(tone_sets["target"]), "eval": str(tone_sets["eval"])}, "tones",
                          task="asr")
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.query_params["data"] = ref
    at.run()
    at.switch_page("pages/finetune.py").run()
    assert not at.exception and at.radio(key="ft-task").value == "asr"
    at.selectbox(key="ft-backbone-asr").set_value("other").run()
    assert "CTC head" in at.text_input(key="ft-backbone-other-asr").help
    at.text_input(key="ft-backbone-other-asr").input(str(tiny_ctc)).run()
    at.number_input(key="ft-epochs").set_value(1).run()
    assert at.selectbox(key="ft-strategy-asr").value == "full"       # a CTC model's default, not Whisper's decoder
    start = lambda: [b for b in at.button if "Start" in b.label][0].click().run()   # noqa: E731
    at.selectbox(key="ft-strategy-asr").set_value("decoder").run()
    start()                                                  # decoder on a CTC model: refused, nothing queued
    assert any("no decoder" in e.value for e in at.error) and not RunStore().list_runs()
    at.selectbox(key="ft-strategy-asr").set_value("full").run()
    start()
    assert not at.exception
    (run,) = RunStore().list_runs()
    assert run.config["backbone"] == str(tiny_ctc) and run.config["strategy"] == "full" and run.status == "queued"
    assert Worker(RunStore(), WorkerOptions(once=True)).run() == 1
    done = RunStore().get(run.id)
    assert done.status == "done", done.error
    report = json.loads((RunStore().run_folder(done) / "report.json").read_text())
    assert report["recognizer"] == "ctc"
    at.query_params["run"] = run.id                          # Compare shows it like a Whisper run
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    labels = {m.label: m.value for m in at.metric}
    assert labels["WER before"] == f"{100 * report['before']['wer']:.1f}%"
    assert labels["WER after"] == f"{100 * report['after']['wer']:.1f}%"


def test_rank_scores_a_ctc_model_zero_shot_and_refuses_its_random_twin(tiny_ctc, tone_sets, cli_run) -> None:
    from tlcore.diagnostics.rank import run_rank

    adapted = str(cli_run[0] / "model")
    report = run_rank("audio", str(tone_sets["eval"]), backbones=[str(tiny_ctc), adapted], task="asr")
    zero_shot = report["zero_shot"]
    assert zero_shot[str(tiny_ctc)]["wer"] == pytest.approx(cli_run[1]["before"]["wer"])
    assert zero_shot[adapted]["wer"] == pytest.approx(cli_run[1]["after"]["wer"])
    assert report["ranking"][0]["backbone"] == adapted
    with pytest.raises(ConfigError, match="random-init twin is built for Whisper models only"):
        run_rank("audio", str(tone_sets["eval"]), backbones=[f"{tiny_ctc}@random"], task="asr")


# ---------------------------------------------------------------- batching and targets

def test_batches_are_padded_per_batch_and_padding_is_never_decoded(tiny_ctc) -> None:
    model, processor = load_ctc(tiny_ctc)
    rng = np.random.default_rng(4)
    texts = ["ab", "cadb hag", "fe"]
    waves = [tone_clip(t, 0.0, rng) for t in texts]
    clips = CtcClips(processor.feature_extractor, waves, ctc_targets(processor.tokenizer, texts)[0])
    batch = clips.batch([0, 1, 2])
    assert batch["input_values"].shape == (3, max(len(w) for w in waves))
    assert batch["attention_mask"].sum(1).tolist() == [len(w) for w in waves]
    assert (batch["labels"][0, 2:] == -100).all() and (batch["labels"][1] != -100).all()
    assert clips.batch([0, 2])["input_values"].shape[1] == max(len(waves[0]), len(waves[2]))  # its own longest
    together = greedy_transcripts(model, processor, waves, batch_size=3)
    alone = [greedy_transcripts(model, processor, [w])[0] for w in waves]
    assert together == alone and together == texts        # the pretrained model reads the source accent


def test_targets_are_the_scoring_form_in_the_vocabularys_case(tiny_ctc, tmp_path) -> None:
    _, processor = load_ctc(tiny_ctc)
    tok = processor.tokenizer
    ids, dropped = ctc_targets(tok, ["Turn it ON at 7!", "naïve café"])
    assert tok.decode(ids[0], group_tokens=False) == "turn it on at seven"
    assert dropped == ["é", "ï"] and tok.decode(ids[1], group_tokens=False) == "nave caf"
    upper = {"<pad>": 0, "<unk>": 1, "|": 2, **{c: i + 3 for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}}
    (tmp_path / "vocab.json").write_text(json.dumps(upper))
    tok_upper = Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"), word_delimiter_token="|")
    ids, dropped = ctc_targets(tok_upper, ["call home"])
    assert tok_upper.decode(ids[0], group_tokens=False) == "CALL HOME" and dropped == []
