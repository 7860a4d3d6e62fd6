"""The core claim in one click: Home's image demo shows before/after, then the scratch baseline arrives from its
follow-up job and Compare and Home show pretrained vs scratch, then the next training seed arrives from the seeds
follow-up and Compare shows the spread (real EfficientNet-Lite0, real emoji demo)."""

from __future__ import annotations

import json
import time

import pytest

from tests.browser.conftest import open_page, screenshot, wait_idle

pytestmark = pytest.mark.browser


def test_image_demo_shows_before_after_then_the_scratch_baseline(app_server, page):
    from tlcore.data.demos import DEMOS
    from ui.demos import HOME_DEMOS

    demo = HOME_DEMOS["image"]
    why = DEMOS.get(demo).available()
    if why:
        pytest.skip(why)
    page.set_default_timeout(900_000)
    open_page(page, app_server.url, "TransferLab")
    t0 = time.time()
    page.locator(f".st-key-demo-{demo} button").click()
    page.get_by_text("Accuracy after").first.wait_for()
    t_numbers = time.time() - t0
    run_id = page.url.split("run=")[1].split("&")[0]
    store = app_server.store()
    follow = next(r for r in store.list_runs() if r.config.get("parent_run") == run_id)
    # While the twin trains, the page says so (the follow-up is queued or running, never "not computed").
    if not store.get(follow.id).is_finished:
        page.get_by_text("Scratch baseline (the same network trained from random weights").first.wait_for()
    claim = page.get_by_text("Pretrained vs scratch:").first
    claim.wait_for()
    t_scratch = time.time() - t0
    wait_idle(page)
    screenshot(page, "compare_scratch")
    assert store.get(follow.id).status == "done"
    report = json.loads((store.get(run_id).out / "report.json").read_text())
    after, scratch = report["after"]["accuracy"], report["baselines"]["scratch"]["accuracy"]
    assert f"{100 * after:.1f}% vs {100 * scratch:.1f}%" in claim.inner_text()
    assert "scratch" not in report["baselines_skipped"] and report["amendments"]
    assert page.get_by_text("Baselines not computed").count() == 0 or "scratch" not in \
        page.get_by_text("Baselines not computed").first.inner_text()

    # The seeds follow-up starts after the scratch one; Compare shows the spread as soon as the first seed arrives
    # (the page reruns when the report changes). The rest of the seeds are not waited for: cancelled, to save time.
    seeds = next(r for r in store.list_runs() if r.config.get("completes") == run_id)
    assert seeds.config["parent_run"] == follow.id and seeds.config["seeds"] == 3
    page.get_by_text("Over 2 training seeds").first.wait_for()
    t_seed = time.time() - t0
    store.request_cancel(seeds.id)
    spread = json.loads((store.get(run_id).out / "report.json").read_text())["seeds"]
    assert spread["seeds"] == [0, 1] and sorted(spread["retrained"]) == ["after", "classical", "scratch"]
    # the page reruns once more when the job stops (or, had the cancel come after its last check, when it is done)
    page.get_by_text("The seeds follow-up cancelled").or_(page.get_by_text("Over 3 training seeds")).first.wait_for()
    wait_idle(page)
    screenshot(page, "compare_seeds")

    # Calibration: the reliability diagram (perfect calibration, before, after, after temperature scaling)
    diagram = page.locator(".st-key-cmp-reliability .js-plotly-plot")
    diagram.locator(".scatterlayer .trace").nth(2).wait_for()
    diagram.first.scroll_into_view_if_needed()
    calibration = json.loads((store.get(run_id).out / "report.json").read_text())["calibration"]
    assert page.get_by_text(f"Temperature T = {calibration['temperature']:.3f}").count() >= 1
    screenshot(page, "compare_reliability")

    open_page(page, app_server.url, "TransferLab")
    # Home names the strongest baseline without pretrained weights: the twin or the classical model
    best = max(("scratch", "classical"), key=lambda b: report["baselines"].get(b, {}).get("accuracy", -1.0))
    name = "scratch" if best == "scratch" else report["baselines"]["classical"]["training"]["model"]
    line = (f"pretrained {after:.2f} vs {name} {report['baselines'][best]['accuracy']:.2f} "
            f"with {report['data']['train']} labels")
    page.get_by_text(line).first.wait_for()
    print(f"{demo} demo: click -> numbers {t_numbers:.1f} s, click -> scratch on screen {t_scratch:.1f} s, "
          f"-> second seed on screen {t_seed:.1f} s ({line})")
