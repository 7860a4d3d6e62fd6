"""Reliability under load: N browser sessions click through every page while M jobs run in the app's worker.

    .venv/bin/python benchmarks/reliability_load.py [--sessions 10] [--jobs 8] [--rounds 3] [--json out.json]

Starts its own ``streamlit run app.py`` (fresh data folder), queues M small fine-tuning runs (tiny text backbone,
full fine-tuning + k-NN and scratch baselines) for the app's background worker, then opens N independent browser
contexts in headless Chromium (Playwright, asyncio) that each visit every page ``--rounds`` times. A page view is
timed from navigation to its heading drawn with no script running; a view that fails to draw, shows a Streamlit
exception box or times out counts as an error. Finally it waits for all jobs to reach a final state.
Prints p50/p95/max page times, errors and the job outcomes (the figures in docs/reliability.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, AppServer  # noqa: E402

PAGES = [("", "TransferLab"), ("data", "Data"), ("diagnose", "Diagnose"), ("finetune", "Fine-tune"),
         ("compare", "Compare"), ("try_it", "Try it"), ("analyze", "Analyze"), ("runs", "Runs"), ("share", "Share")]
IDLE_JS = "() => document.querySelectorAll('[data-testid=\"stStatusWidget\"]').length === 0"


def queue_jobs(server: AppServer, n: int) -> list[str]:
    from benchmarks.reliability_worker_kill import _write_text_set
    from tlcore.config import FinetuneConfig
    from tlcore.runs import ensure_worker, queue

    store = server.store()
    ids = []
    for i in range(n):
        data = _write_text_set(server.home / "load-data" / f"set{i}", n_per_class=60, seed=i)
        cfg = FinetuneConfig(modality="text", backbone="tiny-text", target=str(data), strategy="full", epochs=10,
                             seed=i, baselines=["knn", "scratch"])
        run = store.create_run(cfg, f"load job {i + 1}")
        queue.enqueue(store, run.id)
        ids.append(run.id)
    ensure_worker(store, idle_exit_s=120)    # the same detached worker the app starts for its runs
    store.dispose()
    return ids


async def session(browser, url: str, index: int, rounds: int, timings: list, errors: list) -> None:
    ctx = await browser.new_context(viewport={"width": 1300, "height": 900})
    page = await ctx.new_page()
    page.set_default_timeout(120_000)
    order = PAGES[index % len(PAGES):] + PAGES[:index % len(PAGES)]   # sessions start on different pages
    try:
        for r in range(rounds):
            for path, heading in order:
                t0 = time.perf_counter()
                try:
                    await page.goto(f"{url}/{path}")
                    await page.get_by_role("heading", name=heading).first.wait_for()
                    await page.wait_for_timeout(200)
                    await page.wait_for_function(IDLE_JS)
                    dt = time.perf_counter() - t0
                    if await page.locator('[data-testid="stException"]').count():
                        errors.append({"session": index, "page": path or "home", "error": "exception box"})
                    timings.append({"session": index, "page": path or "home", "round": r, "s": dt})
                except Exception as exc:  # noqa: BLE001 - a page that does not answer is the figure we count
                    errors.append({"session": index, "page": path or "home", "error": f"{type(exc).__name__}: {exc}"[:200]})
    finally:
        await ctx.close()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def drive(url: str, sessions: int, rounds: int) -> tuple[list, list]:
    from playwright.async_api import async_playwright

    timings, errors = [], []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=["--disable-gpu", "--no-first-run", "--disable-extensions"])
        await asyncio.gather(*(session(browser, url, i, rounds, timings, errors) for i in range(sessions)))
        await browser.close()
    return timings, errors


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--job-timeout", type=float, default=1200, help="seconds to wait for the jobs after the sessions")
    ap.add_argument("--json", help="write timings, errors and job outcomes here")
    args = ap.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="tl-load-"))
    server = AppServer(home).start()
    try:
        ids = queue_jobs(server, args.jobs)
        t0 = time.perf_counter()
        timings, errors = asyncio.run(drive(server.url, args.sessions, args.rounds))
        browse_s = time.perf_counter() - t0
        store = server.store()
        deadline = time.time() + args.job_timeout
        while time.time() < deadline:
            runs = [store.get(i) for i in ids]
            if all(r.status in ("done", "failed", "cancelled") for r in runs):
                break
            time.sleep(2)
        runs = [store.get(i) for i in ids]
        jobs_s = time.perf_counter() - t0
        store.dispose()
    finally:
        server.stop()
    secs = [t["s"] for t in timings]
    by_page = {}
    for t in timings:
        by_page.setdefault(t["page"], []).append(t["s"])
    views = len(timings) + len(errors)
    print(f"cpus={os.cpu_count()} sessions={args.sessions} rounds={args.rounds} jobs={args.jobs}")
    print(f"page views: {views}, answered {len(timings)}, errors {len(errors)}; browsing took {browse_s:.0f} s")
    if secs:
        print(f"page time p50 {pct(secs, .5):.2f} s, p95 {pct(secs, .95):.2f} s, max {max(secs):.2f} s")
        for name, vals in sorted(by_page.items()):
            print(f"  {name:9s} n={len(vals):3d} p50 {pct(vals, .5):5.2f} s  p95 {pct(vals, .95):5.2f} s")
    outcome = {s: sum(r.status == s for r in runs) for s in ("done", "failed", "cancelled", "running", "queued")}
    print(f"jobs: {outcome} (all final after {jobs_s:.0f} s)" if outcome["running"] + outcome["queued"] == 0
          else f"jobs: {outcome} — NOT all final after {jobs_s:.0f} s")
    for e in errors[:10]:
        print("  error:", e)
    if args.json:
        Path(args.json).write_text(json.dumps({"timings": timings, "errors": errors, "jobs": outcome,
                                               "browse_s": browse_s, "jobs_s": jobs_s}, indent=2))
    ok = not errors and outcome["done"] == len(ids)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
