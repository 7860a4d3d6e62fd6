"""Error analysis in a real browser (issue 19 part 1): on Compare, picking a cell of an image run's confusion matrix
shows that cell's eval images, with the predictions before and after side by side."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import open_page, screenshot, wait_idle
from tests.test_try_it import register
from tlcore.config import FinetuneConfig

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
PlaywrightTimeout, expect = sync_api.TimeoutError, sync_api.expect

CLASSES = ["cat", "dog", "fox"]
#            true  before after   (item i is CLASSES[true]_i.png)
ITEMS = [(0, 0, 0), (0, 1, 1), (0, 1, 1), (1, 1, 1), (1, 1, 0), (2, 2, 2), (2, 0, 2), (2, 2, 1)]


def _run_folder(folder, images) -> None:
    """A finished image-classification run folder (config.json, report.json) whose eval items are ``images``."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(FinetuneConfig(modality="image", target=str(images.parent),
                                                                  backbone="tiny-image", strategy="linear_probe",
                                                                  out=str(folder)).to_dict()))
    true, before, after = (list(col) for col in zip(*ITEMS))
    n = len(ITEMS)

    def block(pred: list[int]) -> dict:
        acc = float(np.mean(np.equal(true, pred)))
        confusion = np.zeros((3, 3), int)
        np.add.at(confusion, (true, pred), 1)
        return {"accuracy": acc, "macro_f1": acc, "accuracy_ci95": [0.0, 1.0], "confusion": confusion.tolist(),
                "per_class": {c: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": true.count(i)}
                              for i, c in enumerate(CLASSES)}}

    names = [f"{CLASSES[t]}_{i}.png" for i, (t, _, _) in enumerate(ITEMS)]
    report = {"modality": "image", "task": "classify", "backbone": "tiny-image", "strategy": "linear_probe", "seed": 0,
              "data": {"train": 12, "eval": n, "classes": CLASSES},
              "before": {**block(before), "kind": "source-trained model"}, "after": block(after), "baselines": {},
              "comparisons": {}, "warnings": [], "notes": [], "flipped": {"fixed": [], "broken": []},
              "eval_predictions": {"true": true, "before": before, "after": after, "names": names,
                                   "items": [str(images / name) for name in names]},
              "eval_losses": {"definition": "cross-entropy", "before": [0.1 * (i + 1) for i in range(n)],
                              "after": [0.2 * (n - i) for i in range(n)]}}
    (folder / "report.json").write_text(json.dumps(report))
    return names


def _open(page, selectbox) -> None:
    """Open a selectbox's list; clicked again if the first click landed while the page was still laying out
    (plotly draws its charts after the script has finished, and the section below them moves)."""
    for _ in range(3):
        selectbox.locator("button[aria-label='Open']").click()
        try:
            page.get_by_role("option").first.wait_for(timeout=5_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError("the selectbox's options never opened")


def test_confusion_cell_opens_its_items(app_server, page, tmp_path):
    images = tmp_path / "eval"
    images.mkdir()
    for i, (t, _, _) in enumerate(ITEMS):
        color = [(200, 60, 60), (60, 200, 60), (60, 60, 200)][t]
        Image.new("RGB", (24, 24), color).save(images / f"{CLASSES[t]}_{i}.png")
    _run_folder(tmp_path / "run", images)
    run = register(tmp_path / "run", "image errors", store=app_server.store())

    open_page(page, f"{app_server.url}/compare?run={run.id}", "Compare")
    page.get_by_text("Errors, item by item").first.wait_for(timeout=120_000)
    wait_idle(page)
    cell = page.locator(".st-key-cmp-err-cell-after")
    section = page.locator('[data-testid="stTabs"]').filter(has_text="Confusion cells").first
    panel = section.get_by_role("tabpanel").first
    panel.get_by_text("cat_1.png").first.wait_for()
    expect(panel.locator('[data-testid="stImage"] img')).to_have_count(2)       # the two images of that cell
    assert panel.get_by_text("cat_2.png").count() == 1 and panel.get_by_text("dog_4.png").count() == 0

    _open(page, cell)
    options = page.get_by_role("option").all_inner_texts()
    assert options[:2] == ["cat → dog (2)", "dog → cat (1)"], options     # the errors first, largest first
    page.get_by_role("option", name=re.compile(r"^dog → cat \(1\)")).first.click()
    wait_idle(page)
    panel.get_by_text("dog_4.png").first.wait_for()
    expect(panel.get_by_text("cat_1.png")).to_have_count(0)
    expect(panel.locator('[data-testid="stImage"] img')).to_have_count(1)
    text = panel.inner_text()
    assert re.search(r"before\s+dog", text) and re.search(r"after\s+cat", text), text   # before and after side by side
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "compare_errors_cell")
