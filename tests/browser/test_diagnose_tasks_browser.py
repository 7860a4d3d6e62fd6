"""Diagnose in a real browser on the NER and ASR demos (tiny test backbones): the task-specific section appears."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

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
    page.locator(f".st-key-{key}").wait_for()
    for _ in range(20):  # one at a time, each after the rerun of the previous one has finished
        wait_idle(page)
        if not remove.count():
            # empty twice, a second apart: not a moment of a rerun that redraws the widget (busy machine)
            page.wait_for_timeout(1000)
            wait_idle(page)
            if not remove.count():
                return
            continue
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
    expect(page.locator(".st-key-dx-candidates button[aria-label^='Remove ']")).to_have_count(0)
    page.get_by_role("button", name="Run diagnosis").click()
    page.get_by_role("heading", name=section).wait_for(timeout=180_000)
    wait_idle(page, 180_000)
    page.get_by_text(detail).first.wait_for()
    page.get_by_text("Pick at least one backbone to rank").wait_for(timeout=120_000)
    assert page.locator('[data-testid="stAlertContentError"], [data-testid="stAlertContentWarning"], '
                        '[data-testid="stAlertContentSuccess"]').count() >= 1  # the verdict, in its color
    charts = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg')
    charts.nth(2).wait_for(state="attached", timeout=60_000)   # Plotly draws after the script ends (slow when loaded)
    assert charts.count() >= 3  # scores, map, drift
    assert page.get_by_text("Traceback").count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0


def _table_cell(page, text: str) -> None:
    """Wait for a dataframe cell holding ``text`` (in the DOM: the grid draws the visible cells on a canvas)."""
    page.locator('[data-testid="stDataFrame"] [role="gridcell"]', has_text=text).first.wait_for(state="attached",
                                                                                           timeout=180_000)


def test_rank_ner_and_asr_in_browser(app_server, page, tiny_whisper):
    """The ranking half of Diagnose for both tasks: NER on word features of the real minilm-l6 and its random twin,
    ASR by the zero-shot error rate of a (tiny) Whisper folder typed into the page."""
    from tlcore.data.demos import DEMOS

    for demo in ("ner-shift", "accent-asr"):
        if DEMOS.get(demo).available():
            pytest.skip(DEMOS.get(demo).available())
    open_page(page, f"{app_server.url}/diagnose?data=demo:ner-shift", "Diagnose", timeout=120_000)
    _choose(page, "dx-backbone", "tiny-text")
    page.get_by_role("button", name="Run diagnosis").click()
    page.get_by_role("heading", name="Which backbone? Ranking without fine-tuning").wait_for(timeout=240_000)
    wait_idle(page, 240_000)
    _table_cell(page, "minilm-l6@random")      # a row of the ranking table (dataframes draw cells on a canvas)
    page.get_by_text("NER: scores on word features").first.wait_for()

    open_page(page, f"{app_server.url}/diagnose?data=demo:accent-asr", "Diagnose", timeout=120_000)
    _choose(page, "dx-backbone", "tiny-audio")
    _clear(page, "dx-candidates")
    page.locator(".st-key-dx-extra input").fill(str(tiny_whisper))
    page.locator(".st-key-dx-extra input").press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Run diagnosis").click()
    page.get_by_role("heading", name="Which speech recognizer? Zero-shot error rates").wait_for(timeout=240_000)
    wait_idle(page, 240_000)
    _table_cell(page, str(tiny_whisper))
    assert page.get_by_text("Traceback").count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0


def test_diagnose_map_switches_to_umap_in_browser(app_server, page):
    open_page(page, f"{app_server.url}/diagnose?data=demo:sentiment", "Diagnose", timeout=120_000)
    _choose(page, "dx-backbone", "tiny-text")
    _clear(page, "dx-candidates")
    page.get_by_role("button", name="Run diagnosis").click()
    page.get_by_text("Embedding map (PCA of pretrained features)").wait_for(timeout=180_000)
    wait_idle(page, 180_000)
    page.locator(".st-key-dx-projection").get_by_text("UMAP").click()
    page.get_by_text("Embedding map (UMAP of pretrained features)").wait_for(timeout=180_000)
    wait_idle(page, 180_000)
    chart = page.locator('[data-testid="stPlotlyChart"]', has_text="UMAP of pretrained features")
    assert chart.locator(".js-plotly-plot .main-svg").count() >= 1
    assert chart.locator(".legendtext", has_text="target").count() == 1  # coloured by domain, as with PCA
    assert page.locator('[data-testid="stException"]').count() == 0
