"""The label audit in a real browser: on the Data page, audit a target set with two planted label flips; the table
of issues is drawn with the item, reason, score and suggested label, and the CSV downloads."""

from __future__ import annotations

import csv
import io
import os

import pytest

from tests.browser.conftest import open_page, screenshot, wait_idle
from tests.test_audit import _flipped_text_set

pytestmark = pytest.mark.browser


def test_audit_table_on_the_data_page(app_server, page, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(app_server.home))   # the set is recorded where the app reads them
    from ui import datasets

    folder, flipped = _flipped_text_set(tmp_path / "target")
    ref = datasets.save_upload_set("text", {"target": str(folder / "data.csv")}, name="reviews to audit")

    open_page(page, f"{app_server.url}/data?data={ref}", "Data")
    page.get_by_role("heading", name="Audit labels").first.wait_for()
    page.get_by_role("button", name="Audit labels").click()
    download_button = page.get_by_role("button", name="Download the issues (CSV)")
    download_button.wait_for(timeout=120_000)
    wait_idle(page)
    table = page.locator('[data-testid="stDataFrame"]').filter(has_text="reason").first
    table.wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("items flagged").count() >= 1
    with page.expect_download() as info:
        download_button.click()
    path = info.value.path()
    assert path is not None and os.path.getsize(path) > 0
    rows = list(csv.DictReader(io.StringIO(open(path, encoding="utf-8").read())))
    mislabeled = {r["name"]: r for r in rows if r["issue"] == "label"}
    assert set(flipped) & set(mislabeled)                     # a planted flip, found with the real text backbone
    assert all(r["suggested"] and r["suggested"] != r["label"] and r["reason"] for r in mislabeled.values())
    screenshot(page, "data_audit")
