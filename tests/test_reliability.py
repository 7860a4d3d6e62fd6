"""The reliability campaign's checks (docs/reliability.md): each line of the figures table has its script in
benchmarks/ and, in a shorter form, a test here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_hostile_share_links_open_nothing(db_url, tmp_path):
    from tlcore.runs import RunStore

    store = RunStore(db_url, artifacts_root=tmp_path / "runs")
    rows = _bench("reliability_share_links").campaign(store)
    hostile, controls = rows[:-2], rows[-2:]
    assert len(hostile) >= 15
    assert [r for r in hostile if r["outcome"] != "refused" or r["reads"]] == []
    assert all(r["message"] for r in hostile)          # each says why
    assert [(r["outcome"], r["reads"]) for r in controls] == [("opened its own run", 1)] * 2


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["training", "checkpoint write", "report write"])
def test_a_worker_killed_mid_run_loses_nothing(mode, tmp_path):
    """SIGKILL the real worker process at a kill point; a second worker resumes the run to a readable report."""
    r = _bench("reliability_worker_kill").trial(mode, tmp_path, seed=3)
    assert r["killed"], f"the worker was not killed at {mode!r} (the run finished first): {r}"
    assert r["stuck"] == [] and r["final"] == "done" and r["report_ok"] and r["attempts"] == 2, r


@pytest.mark.parametrize("scenario", ["finetune_on_full_disk", "finetune_disk_fills_mid_run", "finetune_on_read_only",
                                      "overwrite_on_full_disk", "worker_on_full_disk", "database_on_full_disk"])
def test_a_full_disk_or_read_only_folder_gives_one_clear_line_and_corrupts_nothing(scenario, tmp_path):
    faults = _bench("reliability_faults")
    try:
        r = getattr(faults, scenario)(tmp_path)
    except faults.CannotMount as exc:
        pytest.skip(str(exc))
    assert r["ok"], r
