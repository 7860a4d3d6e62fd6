"""Analyze in a real browser: queue a clustering run and a data-efficiency curve on built-in demos (tiny test
backbones), watch them finish, see their plots drawn and the cluster browser; then the Runs page and a share link."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

from tests.browser.conftest import open_page, wait_idle

pytestmark = pytest.mark.browser

CLUSTER_JOB, CURVE_JOB = "tlcore.api:cluster_job", "tlcore.api:curve_job"
PLOT = '[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg'
CHART = '[data-testid="stPlotlyChart"]'


def _choose(page, key: str, starts_with: str) -> None:
    """Pick the option that starts with ``starts_with`` in the selectbox with widget key ``key``."""
    page.locator(f".st-key-{key} button[aria-label='Open']").click()
    page.get_by_role("option", name=re.compile("^" + re.escape(starts_with))).first.click()
    wait_idle(page)


def _type(page, key: str, text: str) -> None:
    """Type into the text or number input with widget key ``key`` and commit it (Enter)."""
    box = page.locator(f".st-key-{key} input")
    box.fill(text)
    box.press("Enter")
    wait_idle(page)


def _charts_drawn(page, n: int) -> None:
    """Exactly ``n`` plotly charts, each drawn (plotly draws after the script has finished)."""
    page.locator(CHART).nth(n - 1).wait_for(timeout=30_000)
    assert page.locator(CHART).count() == n
    for i in range(n):
        page.locator(CHART).nth(i).locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)


def _no_errors(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("Traceback").count() == 0


def test_cluster_a_demo_from_the_page(app_server, page):
    t0 = time.time()
    open_page(page, f"{app_server.url}/analyze?data=demo:digits", "Analyze", timeout=120_000)
    page.get_by_text("eval: 400 image items · labeled (10 classes)").wait_for()
    _choose(page, "an-cl-backbone", "tiny-image")
    _type(page, "an-cl-k", "10")
    page.get_by_role("button", name="Start clustering").click()
    page.locator('[data-testid="stProgress"]').first.wait_for(timeout=120_000)   # live progress: queued, then stages
    page.get_by_role("heading", name="Cluster browser").wait_for(timeout=120_000)
    wait_idle(page)
    _charts_drawn(page, 3)   # scores and the two maps (k was given: no silhouette-per-k chart)
    first = page.locator(".st-key-an-cluster-cluster-pretrained-0")
    first.get_by_text("Cluster 1").first.wait_for()
    first.locator("img").nth(3).wait_for()   # thumbnails of the cluster's central items
    assert page.locator("[class*='st-key-an-cluster-cluster-pretrained-']").count() == 10
    # the cluster browser follows its controls: the raw-input clusters, one cluster at a time
    page.locator(".st-key-an-cluster-side").get_by_text("raw inputs").click()
    wait_idle(page)
    page.locator(".st-key-an-cluster-cluster-raw-0 img").first.wait_for()
    _no_errors(page)
    run = next(r for r in app_server.store().list_runs() if r.job == CLUSTER_JOB)
    assert run.status == "done" and run.config["k"] == 10 and run.config["backbone"] == "tiny-image"
    print(f"clustering in the browser: {time.time() - t0:.1f} s")


def test_curve_on_a_demo_from_the_page(app_server, page):
    t0 = time.time()
    open_page(page, f"{app_server.url}/analyze?data=demo:sentiment", "Analyze", timeout=120_000)
    page.get_by_role("button", name="Start clustering").wait_for()
    page.get_by_role("tab", name="Data-efficiency curve").click()
    page.get_by_role("button", name="Start curve").wait_for()
    wait_idle(page)
    page.get_by_text("target: 40 items, 2 classes").wait_for()
    _choose(page, "an-cv-backbone", "tiny-text")
    _type(page, "an-cv-shots", "1, x")
    page.get_by_text("'x' is not a whole number").wait_for()   # a typing mistake is explained, not run
    _type(page, "an-cv-shots", "1, 2")
    _type(page, "an-cv-seeds", "1")
    _type(page, "an-cv-epochs", "2")
    page.get_by_text("2 point(s) × 1 seed(s) = 2 fine-tuning run(s)").wait_for()
    page.get_by_role("button", name="Start curve").click()
    page.locator('[data-testid="stProgress"]').first.wait_for(timeout=120_000)
    page.get_by_text("How many labels do I need?").wait_for(timeout=150_000)
    wait_idle(page)
    _charts_drawn(page, 1)   # the curve with its bands
    assert page.locator(".st-key-an-curve-curve .js-plotly-plot .scatterlayer .trace").count() >= 3
    _type(page, "an-curve-target", "100")
    page.get_by_text("does not reach 100%").first.wait_for()
    _no_errors(page)
    run = next(r for r in app_server.store().list_runs() if r.job == CURVE_JOB)
    assert run.status == "done" and run.config["shots"] == [1, 2] and run.config["seeds"] == 1
    print(f"curve in the browser: {time.time() - t0:.1f} s")


def test_runs_page_opens_an_analysis_and_a_share_link_shows_it(app_server, browser, page):
    from tlcore.runs import create_share

    store = app_server.store()
    runs = {r.job: r for r in store.list_runs() if r.status == "done"}
    if CURVE_JOB not in runs or CLUSTER_JOB not in runs:
        pytest.skip("needs the runs of the two tests above")
    open_page(page, f"{app_server.url}/runs?run={runs[CURVE_JOB].id}", "Runs")
    page.locator('[data-testid="stDataFrame"] [role="gridcell"]', has_text="data-efficiency curve").first.wait_for(
        state="attached")
    page.get_by_test_id("stButton").get_by_role("button", name="Open").click()
    page.get_by_role("heading", name="Analyze").wait_for()
    page.get_by_text("How many labels do I need?").wait_for()   # the curve tab opened with the run
    page.locator(PLOT).first.wait_for()
    token, _ = create_share(store, runs[CLUSTER_JOB].id, expires_in=timedelta(hours=1))
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    viewer = ctx.new_page()
    viewer.set_default_timeout(60_000)
    viewer.goto(f"{app_server.url}/?share={token}")
    viewer.get_by_role("heading", name="Shared run:").wait_for()
    viewer.get_by_role("heading", name="Cluster browser").wait_for()
    wait_idle(viewer)
    _charts_drawn(viewer, 3)
    viewer.locator(".st-key-shared-cluster-pretrained-0 img").first.wait_for()
    assert viewer.locator('[data-testid="stSidebarNav"]').count() == 0
    assert viewer.get_by_role("button", name="Start clustering").count() == 0
    _no_errors(viewer)
    ctx.close()
