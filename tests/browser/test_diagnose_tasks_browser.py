"""Diagnose in a real browser on the NER and ASR demos (tiny test backbones): the task-specific section appears."""

from __future__ import annotations

import pytest

from tests.browser.conftest import open_page, wait_idle

pytestmark = pytest.mark.browser


def _choose(page, key: str, option: str) -> None:
    """Pick ``option`` in the selectbox with widget key ``key``."""
    page.locator(f".st-key-{key} button[aria-label='Open']").click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)


def _clear(page, key: str) -> None:
    """Remove every chosen value of the multiselect with widget key ``key``."""
    remove = page.locator(f".st-key-{key} button[aria-label^='Remove ']")
    for _ in range(10):  # one at a time, each after the rerun of the previous one has finished
        wait_idle(page)
        if not remove.count():
            return
        remove.first.click()
        page.wait_for_timeout(300)
    raise AssertionError(f"could not clear the multiselect {key}")


@pytest.mark.parametrize("demo, encoder, section, detail", [
    ("ner-shift", "tiny-text", "Entities: source vs target", "target entity mentions unseen in the source"),
    ("accent-asr", "tiny-audio", "Transcripts: source vs target", "target word OOV rate"),
], ids=["ner-shift", "accent-asr"])
def test_diagnose_task_demo_in_browser(app_server, page, demo, encoder, section, detail):
    from tlcore.data.demos import DEMOS

    why = DEMOS.get(demo).available()
    if why:
        pytest.skip(why)
    open_page(page, f"{app_server.url}/diagnose?data=demo:{demo}", "Diagnose", timeout=120_000)
    _choose(page, "dx-backbone", encoder)
    _clear(page, "dx-candidates")  # no ranking: the candidates would be the real pretrained models
    page.get_by_role("button", name="Run diagnosis").click()
    page.get_by_role("heading", name=section).wait_for(timeout=180_000)
    wait_idle(page, 180_000)
    page.get_by_text(detail).first.wait_for()
    page.get_by_text("Pick at least one backbone to rank").wait_for()
    assert page.locator('[data-testid="stAlertContentError"], [data-testid="stAlertContentWarning"], '
                        '[data-testid="stAlertContentSuccess"]').count() >= 1  # the verdict, in its color
    assert page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg').count() >= 3  # scores, map, drift
    assert page.get_by_text("Traceback").count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0
