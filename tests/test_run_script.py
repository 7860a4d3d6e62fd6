"""``./run.sh`` serves on this machine only unless told otherwise (local mode has no login)."""

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from postgres_fixture import _free_port

ROOT = Path(__file__).resolve().parents[1]


def _listening(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                out.add(addr)
    return out


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs /proc/net/tcp to see listening sockets")
def test_run_sh_listens_on_localhost_only(tmp_path):
    port = _free_port()
    env = dict(os.environ, TRANSFERLAB_HOME=str(tmp_path))
    proc = subprocess.Popen(["./run.sh", "--server.port", str(port), "--server.headless", "true"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("./run.sh did not answer /_stcore/health within 90 s")
        addrs = _listening(port)
        assert addrs == {"0100007F"}, f"expected 127.0.0.1 only, listening on {addrs}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
