"""What to label next in a real browser: on the Data page, rank a set's unlabeled split and download the list; the
CSV the browser receives holds the ranked pool items with an empty label column to fill in."""

from __future__ import annotations

import csv
import io
import os

import pytest

from tests.browser.conftest import open_page, screenshot, wait_idle
from tests.conftest import write_text_set
from tests.test_label_next import POOL_TEXTS, _pool_csv

pytestmark = pytest.mark.browser


def test_label_next_list_download(app_server, page, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(app_server.home))   # the set is recorded where the app reads them
    from ui import datasets

    target = write_text_set(tmp_path / "target", n_per_class=6) / "data.csv"
    pool = _pool_csv(tmp_path / "pool.csv", POOL_TEXTS[:12])
    ref = datasets.save_upload_set("text", {"target": str(target), "unlabeled": str(pool)}, name="reviews to label")

    open_page(page, f"{app_server.url}/data?data={ref}", "Data")
    page.get_by_role("heading", name="What to label next").first.wait_for()
    page.get_by_role("button", name="Rank the pool").click()
    download_button = page.get_by_role("button", name="Download the list (CSV)")
    download_button.wait_for(timeout=120_000)
    wait_idle(page)
    page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg').first.wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    with page.expect_download() as info:
        download_button.click()
    download = info.value
    assert download.suggested_filename == "label-next.csv"
    path = download.path()
    assert path is not None and os.path.getsize(path) > 0
    rows = list(csv.DictReader(io.StringIO(open(path, encoding="utf-8").read())))
    assert len(rows) == 12                       # the default budget (20) takes the whole pool of 12
    assert [r["rank"] for r in rows] == [str(i) for i in range(1, 13)]
    assert {r["item"] for r in rows} == set(POOL_TEXTS[:12]) and all(r["label"] == "" for r in rows)
    assert all(r["suggested"] in ("positive", "negative") for r in rows)
    screenshot(page, "data_label_next")
