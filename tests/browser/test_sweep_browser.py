"""The "Which strategy?" sweep in a real browser: queued from the Analyze page on the built-in sentiment demo (tiny
test backbone), it runs in the background worker, then shows the recommendation, the chart and the table of every
strategy and baseline; a share link shows the same."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

from tests.browser.conftest import open_page, screenshot, wait_idle

pytestmark = pytest.mark.browser

SWEEP_JOB = "tlcore.api:sweep_job"


def _no_errors(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("Traceback").count() == 0


def test_the_sweep_runs_from_the_analyze_page_and_is_shared(app_server, browser, page):
    from tlcore.runs import create_share

    t0 = time.time()
    open_page(page, f"{app_server.url}/analyze?data=demo:sentiment&tab=sweep", "Analyze", timeout=120_000)
    page.get_by_role("button", name="Start the sweep").wait_for()       # the link's tab opened
    wait_idle(page)
    page.locator(".st-key-an-sw-backbone button[aria-label='Open']").click()
    page.get_by_role("option", name=re.compile("^tiny-text")).first.click()
    wait_idle(page)
    box = page.locator(".st-key-an-sw-epochs input")
    box.fill("1")
    box.press("Enter")
    wait_idle(page)
    page.get_by_text("4 fine-tuning run(s) on the same split").wait_for()
    page.get_by_role("button", name="Start the sweep").click()
    page.locator('[data-testid="stProgress"]').first.wait_for(timeout=30_000)
    page.locator('[data-testid="stAlertContainer"]', has_text=re.compile("Use [a-z_]+: |no pretrained strategy beats")).first.wait_for(
        timeout=240_000)
    wait_idle(page)
    table = page.locator('[data-testid="stDataFrame"]').first
    for name in ("linear_probe", "lora", "partial", "full", "TF-IDF + logistic regression"):
        table.locator('[role="gridcell"]', has_text=name).first.wait_for(state="attached")
    page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg').first.wait_for(timeout=30_000)
    _no_errors(page)
    screenshot(page, "analyze_sweep")
    run = next(r for r in app_server.store().list_runs() if r.job == SWEEP_JOB)
    assert run.status == "done" and run.config["epochs"] == 1 and run.config["backbone"] == "tiny-text"
    print(f"sweep in the browser: {time.time() - t0:.1f} s")

    token, _ = create_share(app_server.store(), run.id, expires_in=timedelta(hours=1))
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    viewer = ctx.new_page()
    viewer.set_default_timeout(60_000)
    viewer.goto(f"{app_server.url}/?share={token}")
    viewer.get_by_role("heading", name="Shared run:").wait_for()
    viewer.locator('[data-testid="stDataFrame"] [role="gridcell"]', has_text="lora").first.wait_for(state="attached")
    assert viewer.get_by_role("button", name="Start the sweep").count() == 0
    _no_errors(viewer)
    ctx.close()
