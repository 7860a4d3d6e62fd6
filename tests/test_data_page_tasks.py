"""The Data page's upload flow for named-entity (.jsonl, CoNLL .txt, .zip) and speech-recognition (.zip of clips
with metadata.csv) sets: preview, problems, the stored upload set, and errors instead of tracebacks (AppTest)."""

from __future__ import annotations

import io
import json
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120

NER_ROWS = [
    (["Angela", "Weber", "flew", "to", "Berlin"], ["B-PER", "I-PER", "O", "O", "B-LOC"]),
    (["Acme", "Corp", "hired", "Omar"], ["B-ORG", "I-ORG", "O", "B-PER"]),
    (["nothing", "here"], ["O", "O"]),
]


def upload_page(task: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data-mode").set_value("Upload my data").run()
    at.selectbox(key="upload-task").set_value(task).run()
    no_exceptions(at)
    return at


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def stored_set(at: AppTest, app_home) -> dict:
    """The upload set the page's URL names (``?data=upload:<id>``)."""
    ref = at.query_params["data"]
    ref = ref[0] if isinstance(ref, list) else ref
    assert ref.startswith("upload:")
    return json.loads((app_home.path / "uploads" / "sets" / f"{ref.removeprefix('upload:')}.json").read_text())


def ner_jsonl(rows=NER_ROWS) -> bytes:
    return "".join(json.dumps({"tokens": t, "tags": g}) + "\n" for t, g in rows).encode()


def conll(rows=NER_ROWS) -> bytes:
    blocks = ["-DOCSTART- O\n"] + ["".join(f"{w} NNP {t}\n" for w, t in zip(tokens, tags)) for tokens, tags in rows]
    return "\n".join(blocks).encode()


def wav(seconds: float = 0.4, freq: float = 300.0, sr: int = 16000) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16).tobytes())
    return buf.getvalue()


def clips_zip(rows: list[tuple[str, str, str]], files: dict[str, bytes], top: str = "clips",
              header: str = "file_name,transcription,speaker") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{top}/metadata.csv", header + "\n"
                    + "".join(f"{f},{t},{s}\n" for f, t, s in rows))
        for name, data in files.items():
            zf.writestr(f"{top}/{name}", data)
    return buf.getvalue()


# ---------------------------------------------------------------- NER

@pytest.mark.parametrize("name, body", [("train.jsonl", ner_jsonl()), ("train.txt", conll()), ("train.conll", conll())])
def test_ner_upload_previews_sentences_with_tags(app_home, name, body):
    at = upload_page("ner")
    assert set(at.file_uploader(key="upload-target").proto.type) == {".jsonl", ".conll", ".txt", ".zip"}
    at.file_uploader(key="upload-target").upload(name, body, "application/octet-stream").run()
    no_exceptions(at)
    assert not at.error
    heads = [m.value for m in at.markdown if m.value.startswith("**target**")]
    assert heads == ["**target**: 3 sentences, 4 entities of 3 types"]
    marked = [m.value for m in at.markdown if "<mark" in m.value and "Weber" in m.value]
    assert marked and "Angela Weber <sub" in marked[0] and ">PER</sub>" in marked[0] and ">LOC</sub>" in marked[0]
    assert any("nothing here" in m.value for m in at.markdown)   # a sentence without entities is shown too
    legend = [m.value for m in at.markdown if "Entity types:" in m.value]
    assert legend and ">PER</mark>" in legend[0] and "gold" not in legend[0]   # no predictions on the Data page
    assert stored_set(at, app_home)["task"] == "ner" and stored_set(at, app_home)["modality"] == "text"
    assert [b for b in at.button if b.label == "Fine-tune on this data"]
    assert [b for b in at.button if b.label == "Diagnose this data"]   # Diagnose compares sets of every task


def test_ner_upload_zip_of_a_folder(app_home):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("corpus/train.jsonl", ner_jsonl())
    at = upload_page("ner")
    at.file_uploader(key="upload-target").upload("corpus.zip", buf.getvalue(), "application/zip").run()
    no_exceptions(at)
    assert any(m.value.startswith("**target**: 3 sentences") for m in at.markdown)


@pytest.mark.parametrize("name, body, message", [
    ("bad.jsonl", ner_jsonl([(["Anna", "lives"], ["B-PER", "X-LOC"])]), "bad.jsonl line 1: tag 'X-LOC' of token 2"),
    ("bad.jsonl", b'{"tokens": ["a", "b"], "tags": ["O"]}\n', "2 tokens but 1 tags"),
    ("bad.txt", b"Anna B-PER\nlives\n", "bad.txt line 2"),
    ("notes.txt", b"", "no sentences found"),
])
def test_ner_upload_problems_are_named_not_tracebacks(app_home, name, body, message):
    at = upload_page("ner")
    at.file_uploader(key="upload-target").upload(name, body, "text/plain").run()
    no_exceptions(at)
    assert any(e.value.startswith("target: ") and message in e.value for e in at.error), [e.value for e in at.error]
    assert not [b for b in at.button if b.label == "Fine-tune on this data"]


def test_ner_upload_source_and_eval_splits(app_home):
    at = upload_page("ner")
    at.file_uploader(key="upload-target").upload("target.jsonl", ner_jsonl(), "application/json").run()
    at.file_uploader(key="upload-eval").upload("eval.txt", conll(NER_ROWS[:2]), "text/plain").run()
    no_exceptions(at)
    heads = [m.value for m in at.markdown if m.value.startswith("**")]
    assert "**target**: 3 sentences, 4 entities of 3 types" in heads
    assert "**eval**: 2 sentences, 4 entities of 3 types" in heads
    assert set(stored_set(at, app_home)["splits"]) == {"target", "eval"}


# ---------------------------------------------------------------- ASR

def test_asr_upload_zip_previews_clips_with_transcripts_and_lists_problems(app_home):
    rows = [("a.wav", "turn it on", "s1"), ("b.wav", "call home", "s2"), ("c.wav", "open the door", "s1"),
            ("missing.wav", "lights off", "s2"), ("empty.wav", "stop", "s1"), ("d.wav", "", "s2")]
    files = {"a.wav": wav(), "b.wav": wav(0.5, 400), "c.wav": wav(0.3, 500), "empty.wav": b"", "d.wav": wav()}
    at = upload_page("asr")
    assert at.file_uploader(key="upload-target").proto.type == [".zip"]
    at.file_uploader(key="upload-target").upload("clips.zip", clips_zip(rows, files), "application/zip").run()
    no_exceptions(at)
    assert not at.error
    heads = [m.value for m in at.markdown if m.value.startswith("**target**")]
    assert heads == ["**target**: 3 transcribed clips · 2 speaker(s), 3 unusable row(s) skipped"]
    problems = [df.value for df in at.dataframe if "problem" in df.value.columns]
    assert problems and problems[0]["problem"].tolist() == ["audio file not found", "empty audio file (0 bytes)",
                                                            "empty transcription in column 'transcription'"]
    assert "missing.wav" in problems[0]["file / row"].iloc[0]
    assert len(at.get("audio")) == 3
    assert [c.value for c in at.caption if c.value.startswith("“")] == ["“turn it on”", "“call home”", "“open the door”"]
    meta = stored_set(at, app_home)
    assert meta["task"] == "asr" and meta["modality"] == "audio"
    assert [b for b in at.button if b.label == "Fine-tune on this data"]


@pytest.mark.parametrize("body, message", [
    (b"not a zip", "not a readable .zip"),
    (clips_zip([("a.wav", "hello", "s1")], {"a.wav": wav()}, header="clip,transcription,speaker"), "no audio file column"),
    (clips_zip([("gone.wav", "hello", "s1")], {}), "no usable rows"),
])
def test_asr_upload_errors_are_named_not_tracebacks(app_home, body, message):
    at = upload_page("asr")
    at.file_uploader(key="upload-target").upload("clips.zip", body, "application/zip").run()
    no_exceptions(at)
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert not [b for b in at.button if b.label == "Fine-tune on this data"]


def test_upload_types_follow_the_task(app_home):
    from ui.datasets import upload_types

    assert set(upload_types("ner")) == {"jsonl", "conll", "txt", "zip"}
    assert upload_types("asr") == ["zip"]
    assert set(upload_types("classify")) == {"zip", "csv", "tsv", "jsonl"}
    at = upload_page("classify")
    assert set(at.file_uploader(key="upload-target").proto.type) == {".zip", ".csv", ".tsv", ".jsonl"}
