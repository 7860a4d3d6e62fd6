"""Real-browser fixtures: a Streamlit server on a free port with its own data folder, and Debian's Chromium.

Recipe in /work/shared/BROWSER.md. Tests skip (with the reason) when /usr/bin/chromium or playwright is missing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "docs" / "screenshots"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: real-browser test (Playwright + Debian Chromium)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test leaves a screenshot of its page (path in the report) to see what the user saw."""
    rep = yield
    page = getattr(item, "funcargs", {}).get("page")
    if rep.when == "call" and rep.failed and page is not None:
        try:
            folder = item.config._tmp_path_factory.getbasetemp() / "browser-failures"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{item.name.replace('/', '_')[:120]}.png"
            page.screenshot(path=str(path), full_page=True)
            rep.sections.append(("browser screenshot", str(path)))
            # CI keeps only the terminal: what the page said, and the end of the app server's log.
            rep.sections.append(("page text", page.locator("body").inner_text(timeout=10_000)[-3000:]))
        except Exception as exc:  # noqa: BLE001 - the screenshot is a help, the failure is the result
            rep.sections.append(("browser screenshot", f"could not take one: {exc}"))
        server = item.funcargs.get("app_server")
        if server is not None and server.log.exists():
            rep.sections.append(("app server log (end)", server.log.read_text(errors="replace")[-3000:]))
    return rep


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """One ``streamlit run app.py`` process with its own TRANSFERLAB_HOME; stopped (and its worker) on close."""

    def __init__(self, home: Path, extra_args: tuple[str, ...] = ()):
        self.home = home
        self.extra_args = tuple(extra_args)   # e.g. ("--secrets.files", path): login against a test provider
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "streamlit.log"
        self.env = dict(os.environ, TRANSFERLAB_HOME=str(home), PYTHONPATH=str(ROOT))
        self.env.pop("TRANSFERLAB_DB_URL", None)
        self.proc = None

    def start(self) -> "AppServer":
        self.home.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address",
               "127.0.0.1", "--server.port", str(self.port), "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", *self.extra_args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not become healthy:\n{self.log.read_text()}")

    def store(self):
        os.environ["TRANSFERLAB_HOME"] = str(self.home)
        from tlcore.runs import RunStore

        return RunStore(f"sqlite:///{self.home / 'app' / 'runs.db'}", artifacts_root=self.home / "app" / "runs")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # the background worker the app started (detached, holds the lock file): stop it by its own pid
        lock = self.home / "app" / "runs.worker.lock"
        try:
            pid = int(lock.read_text().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium fonts-dejavu-core")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright==1.65.2)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--disable-gpu", "--no-first-run", "--disable-extensions"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def app_server(tmp_path_factory, browser):
    server = AppServer(tmp_path_factory.mktemp("tlhome")).start()
    yield server
    server.stop()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has drawn the app and no script is running."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stStatusWidget\"]').length === 0", timeout=timeout)


def open_page(page, url: str, heading: str, timeout: float = 60_000) -> None:
    page.goto(url)
    page.get_by_role("heading", name=heading).first.wait_for(timeout=timeout)
    wait_idle(page, timeout)


def screenshot(page, name: str) -> Path:
    """Full-page screenshot: Streamlit scrolls inside stMain, so grow the viewport to its scrollHeight first."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    width = page.viewport_size["width"] if page.viewport_size else 1400
    page.set_viewport_size({"width": width, "height": max(600, min(int(height) + 40, 8000))})
    page.wait_for_timeout(600)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": width, "height": 1000})
    return path
