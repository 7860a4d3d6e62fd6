"""App benchmark in a real browser: seconds from the Home demo click to before/after numbers on screen, per
modality (linear probe, default backbones), then to the scratch baseline (the follow-up job) on screen, and render
times of every page.

    .venv/bin/python benchmarks/bench_app.py [--modalities text,image,audio] [--home DIR]

Starts its own `streamlit run app.py` with a fresh data folder (so demo data, features and models are cold:
a first-time user's wait), drives Debian's Chromium with Playwright, prints one line per measurement.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, AppServer, open_page, wait_idle  # noqa: E402
from ui.demos import HOME_DEMOS as DEMOS  # noqa: E402  (the demo each Home card runs)

PAGES = [("", "TransferLab"), ("data", "Data"), ("diagnose", "Diagnose"), ("finetune", "Fine-tune"),
         ("compare", "Compare"), ("try_it", "Try it"), ("analyze", "Analyze"), ("runs", "Runs"), ("share", "Share")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modalities", default="text,image,audio")
    ap.add_argument("--home", help="data folder to use (default: a fresh temporary one)")
    ap.add_argument("--no-scratch", action="store_true", help="do not wait for the scratch-baseline follow-ups")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="tl-bench-"))
    server = AppServer(home).start()
    print(f"cpus={os.cpu_count()} home={home}")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--disable-gpu", "--no-first-run", "--disable-extensions"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(900_000)
            for modality in [m.strip() for m in args.modalities.split(",") if m.strip()]:
                demo = DEMOS[modality]
                open_page(page, server.url, "TransferLab")
                t0 = time.perf_counter()
                page.locator(f".st-key-demo-{demo} button").click()
                page.get_by_text("in progress").first.wait_for()
                t_progress = time.perf_counter() - t0
                page.get_by_text("Accuracy after").first.wait_for()
                t_numbers = time.perf_counter() - t0
                values = page.locator('[data-testid="stMetricValue"]').all_inner_texts()[:2]
                print(f"demo {modality:5s} ({demo}): click->progress {t_progress:5.1f} s, click->before/after numbers "
                      f"{t_numbers:6.1f} s  (before {values[0]}, after {values[1]})", flush=True)
                if not args.no_scratch:
                    claim = page.get_by_text("Pretrained vs scratch:").first
                    claim.wait_for()
                    print(f"demo {modality:5s} ({demo}): click->scratch baseline on screen {time.perf_counter() - t0:6.1f} s"
                          f"  ({claim.inner_text().splitlines()[0][:160]})", flush=True)
                wait_idle(page)
            run_id = page.url.split("run=")[1].split("&")[0] if "run=" in page.url else ""
            for path, heading in PAGES:
                url = f"{server.url}/{path}" + (f"?run={run_id}" if path in ("compare", "try_it", "share") and run_id else "")
                times = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    open_page(page, url, heading)
                    times.append(time.perf_counter() - t0)
                print(f"page {path or 'home':9s}: render {min(times):5.2f} s (best of 3; median {sorted(times)[1]:5.2f} s)",
                      flush=True)
            browser.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
