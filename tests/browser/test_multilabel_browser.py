"""A multi-label run in a real browser (made here through the engine, put into the app's run store): Compare shows
its micro-F1 before and after with the per-label view, and Try it shows the label set ``load_run(...).predict``
gives for the same text."""

from __future__ import annotations

import pytest

import tlcore
from tests.browser.conftest import open_page, screenshot, wait_idle
from tests.test_multilabel import write_reviews
from tests.test_try_it import register

pytestmark = pytest.mark.browser

TEXT = "the courier was late and the staff were rude"


def test_multilabel_run_on_compare_and_try_it(app_server, page, tmp_path):
    target = write_reviews(tmp_path / "target.csv", n=80)
    result = tlcore.finetune(modality="text", task="multilabel", target=str(target), backbone="tiny-text",
                             out=str(tmp_path / "run"), baselines=["knn"])
    run = register(result.run_dir, "multilabel · linear_probe · tiny-text", store=app_server.store())

    open_page(page, f"{app_server.url}/compare?run={run.id}", "Compare")
    page.get_by_text("Micro-F1 after").first.wait_for(timeout=120_000)
    wait_idle(page)
    page.get_by_text("multi-label classification").first.wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "compare_multilabel")

    open_page(page, f"{app_server.url}/try_it?run={run.id}", "Try it")
    page.locator(".st-key-try-text textarea").fill(TEXT)
    page.keyboard.press("Control+Enter")
    (want,) = tlcore.load_run(result.run_dir).predict([TEXT])
    page.get_by_text("Prediction after").first.wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_text(want["prediction"]).first.wait_for(timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "try_it_multilabel")
