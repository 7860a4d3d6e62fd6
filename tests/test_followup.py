"""The scratch baseline as a follow-up job (one-click demos), and the diagnosis summary every run with a source gets."""

from __future__ import annotations

import json

import pytest

from tests.conftest import write_text_set
from tlcore.api import finetune
from tlcore.config import FinetuneConfig
from tlcore.errors import DataError
from tlcore.runs import RunStore, queue
from tlcore.runs.followup import SCRATCH_JOB, ScratchFollowupConfig, scratch_job
from tlcore.runs.worker import Worker, WorkerOptions

FAST = dict(poll_s=0.05, heartbeat_s=0.2, progress_interval_s=0.5, cancel_check_s=0.1, once=True)


def _settings(tmp_path, **kw) -> dict:
    data = write_text_set(tmp_path / "data", n_per_class=14)
    return dict(modality="text", backbone="tiny-text", target=str(data), epochs=2, seed=3, **kw)


def _followup(store: RunStore, parent) -> object:
    return store.create_run({"parent_out": str(parent.out), "parent_run": parent.id, "modality": "text"},
                            "scratch follow-up", owner=parent.owner, job=SCRATCH_JOB)


def test_followup_adds_the_same_scratch_baseline_a_full_run_computes(tmp_path, one_thread):
    store = RunStore.open(f"sqlite:///{tmp_path / 'runs.db'}")
    settings = _settings(tmp_path)
    parent = store.create_run(FinetuneConfig(**settings, baselines=["knn"]), "fast run")
    store.enqueue(parent.id)
    follow = _followup(store, parent)
    # Not submitted until the run it follows is done.
    assert queue.release_followups(store) == [] and store.get(follow.id).queued_at is None

    w = Worker(store, WorkerOptions(**FAST))
    assert w.run_once() == "done"  # the parent
    before = json.loads((parent.out / "report.json").read_text())
    assert "scratch" not in before["baselines"] and "scratch" in before["baselines_skipped"]
    assert w.run_once() == "done"  # the follow-up, released by the worker's poll
    assert store.get(follow.id).metrics["scratch_accuracy"] == pytest.approx(
        json.loads((parent.out / "report.json").read_text())["baselines"]["scratch"]["accuracy"])

    amended = json.loads((parent.out / "report.json").read_text())
    assert set(before) <= set(amended)
    assert "scratch" not in amended["baselines_skipped"]
    assert amended["amendments"][0]["added"].startswith("baselines.scratch")
    assert len(amended["eval_predictions"]["scratch"]) == len(amended["eval_predictions"]["true"])
    assert amended["after"] == before["after"] and amended["before"] == before["before"]
    assert "scratch" in (parent.out / "README.md").read_text()

    # The same run with scratch computed in the run itself gives the same baseline and comparison.
    direct = finetune(FinetuneConfig(**settings, baselines=["knn", "scratch"], out=str(tmp_path / "direct"))).to_dict()
    assert amended["baselines"]["scratch"]["accuracy"] == direct["baselines"]["scratch"]["accuracy"]
    assert amended["eval_predictions"]["scratch"] == direct["eval_predictions"]["scratch"]
    assert amended["comparisons"]["scratch"] == direct["comparisons"]["scratch"]
    assert sorted(amended["warnings"]) == sorted(direct["warnings"])
    assert sorted(w["text"] for w in amended["warnings_detail"]) == sorted(amended["warnings"])
    twin = amended["baselines"]["scratch"]["training"]
    same = {k: v for k, v in direct["baselines"]["scratch"]["training"].items() if k != "history"}
    assert twin["train_size"] == amended["data"]["train"] and {k: twin[k] for k in same} == same   # but the seconds


def test_followup_trains_the_twin_at_the_runs_own_precision(tmp_path):
    parent = tmp_path / "parent"
    finetune(FinetuneConfig(**_settings(tmp_path), baselines=[], precision="bf16", device="cpu", out=str(parent)))
    scratch_job(ScratchFollowupConfig(parent_out=str(parent), out=str(tmp_path / "job")))
    amended = json.loads((parent / "report.json").read_text())
    twin = amended["baselines"]["scratch"]["training"]
    assert (twin["device"], twin["precision"]) == ("cpu", "bf16") and amended["precision"] == "bf16"


def test_followup_of_a_failed_or_deleted_run_is_cancelled_with_the_reason(tmp_path):
    store = RunStore.open(f"sqlite:///{tmp_path / 'runs.db'}")
    settings = _settings(tmp_path)
    failed = store.create_run(FinetuneConfig(**settings), "will fail")
    gone = store.create_run(FinetuneConfig(**settings), "will be deleted")
    f1, f2 = _followup(store, failed), _followup(store, gone)
    store.enqueue(failed.id)
    store.mark_failed(failed.id, "boom")
    store.delete_run(gone.id)
    assert sorted(queue.release_followups(store)) == sorted([f1.id, f2.id])
    assert store.get(f1.id).status == "cancelled" and "will fail" in store.get(f1.id).error
    assert store.get(f2.id).status == "cancelled" and "deleted" in store.get(f2.id).error


def test_followup_refuses_when_the_data_changed_since_the_run(tmp_path, one_thread):
    settings = _settings(tmp_path)
    run = finetune(FinetuneConfig(**settings, baselines=[], out=str(tmp_path / "run")))
    assert "scratch" not in run.to_dict()["baselines"]
    # Two more labeled rows: the run's training (or eval) items are no longer what the run used.
    with open(tmp_path / "data" / "data.csv", "a", encoding="utf-8") as f:
        f.write("the film was great number 99,positive\nthe film was awful number 99,negative\n")
    cfg = ScratchFollowupConfig(parent_out=str(tmp_path / "run"), out=str(tmp_path / "follow"))
    with pytest.raises(DataError, match="changed since it ran"):
        scratch_job(cfg)
    assert "scratch" not in json.loads((tmp_path / "run" / "report.json").read_text())["baselines"]


def test_a_followup_queued_before_the_job_moved_still_finds_its_job():
    from tlcore.runs.job_paths import job_config, resolve_job

    assert resolve_job("tlcore.settings.followup:scratch_job") is scratch_job
    cfg = job_config("tlcore.settings.followup:scratch_job", {"parent_out": "p", "out": "o"})
    assert isinstance(cfg, ScratchFollowupConfig) and cfg.parent_out == "p"


def test_followup_settings_are_checked(tmp_path):
    from tlcore.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown setting"):
        ScratchFollowupConfig.from_dict({"parent": "x"})
    with pytest.raises(DataError, match="no finished run"):
        scratch_job(ScratchFollowupConfig(parent_out=str(tmp_path / "nothing"), out=str(tmp_path / "f")))


def test_a_run_with_a_source_carries_the_diagnosis_summary_in_report_and_model_card(tmp_path, one_thread):
    source = write_text_set(tmp_path / "source", n_per_class=14, seed=1)
    settings = _settings(tmp_path)
    report = finetune(FinetuneConfig(**settings, source=str(source), baselines=[], out=str(tmp_path / "r"))).to_dict()
    d = report["diagnosis"]
    assert d["severity"] in ("none", "mild", "strong") and d["verdict"]
    assert isinstance(d["top_drift"], list)
    card = (tmp_path / "r" / "README.md").read_text()
    assert "Domain mismatch" in card and d["verdict"] in card
    no_source = finetune(FinetuneConfig(**settings, baselines=[], out=str(tmp_path / "n"))).to_dict()
    assert no_source.get("diagnosis") is None


def test_a_followup_yields_to_a_run_a_user_waits_for_and_resumes_from_its_checkpoint(tmp_path, one_thread, monkeypatch):
    from tlcore.runs import jobs

    store = RunStore.open(f"sqlite:///{tmp_path / 'runs.db'}")
    settings = _settings(tmp_path)
    settings["epochs"] = 4
    parent = store.create_run(FinetuneConfig(**settings, baselines=[]), "demo")
    store.enqueue(parent.id)
    follow = _followup(store, parent)
    w = Worker(store, WorkerOptions(**{**FAST, "cancel_check_s": 0.0}))
    assert w.run_once() == "done"

    # A user starts another run while the scratch twin trains (after its first epoch).
    urgent = store.create_run(FinetuneConfig(**settings, baselines=[]), "user run")
    real_call = jobs.ProgressWriter.__call__

    def call(self, event):
        real_call(self, event)
        ev = event.to_dict() if hasattr(event, "to_dict") else event
        if self.run_id == follow.id and (ev.get("metrics") or {}).get("epoch") == 1 and store.get(urgent.id).queued_at is None:
            store.enqueue(urgent.id)

    monkeypatch.setattr(jobs.ProgressWriter, "__call__", call)
    assert w.run_once() == "yielded"
    assert store.get(follow.id).status == "queued"
    assert w.run_once() == "done" and store.get(urgent.id).status == "done"  # the user's run went first
    assert w.run_once() == "done" and store.get(follow.id).status == "done"  # then the follow-up resumed

    # It continued after epoch 1 (the trainer reseeds the batch order on resume, so the numbers are not bit-identical
    # to an uninterrupted run; the budget is the same).
    training = json.loads((parent.out / "report.json").read_text())["baselines"]["scratch"]["training"]
    assert [h["epoch"] for h in training["history"]] == [1, 2, 3, 4] and training["epochs_run"] == 4


def test_a_demo_run_gets_more_seeds_as_a_followup_the_same_as_seeds_in_the_run_itself(tmp_path, one_thread):
    """One-click demos train once; a follow-up waiting for the scratch one trains "after" and the trained baselines
    with the next seeds and adds them to the report after each seed. The result is what ``--seeds 3`` gives in the
    run itself: the same per-seed scores and the same verdict over seeds."""
    from tlcore.runs.models import SEEDS_JOB
    from tlcore.runs.seeds_followup import SeedsFollowupConfig, seeds_job

    store = RunStore.open(f"sqlite:///{tmp_path / 'runs.db'}")
    settings = _settings(tmp_path, strategy="partial")
    parent = store.create_run(FinetuneConfig(**settings, baselines=["knn", "classical"]), "demo run")
    store.enqueue(parent.id)
    scratch = _followup(store, parent)
    seeds = store.create_run({"parent_out": str(parent.out), "parent_run": scratch.id, "completes": parent.id,
                              "modality": "text", "seeds": 3}, "seeds follow-up", owner=parent.owner, job=SEEDS_JOB)
    w = Worker(store, WorkerOptions(**FAST))
    assert w.run_once() == "done" and w.run_once() == "done"           # the run, then the scratch follow-up
    assert store.get(seeds.id).queued_at is not None or queue.release_followups(store) == [seeds.id]
    before = json.loads((parent.out / "report.json").read_text())
    assert "seeds" not in before
    assert w.run_once() == "done", store.get(seeds.id).error             # the seeds follow-up
    amended = json.loads((parent.out / "report.json").read_text())
    assert set(before) <= set(amended) and amended["after"] == before["after"]
    assert [a["added"] for a in amended["amendments"]][-2:] == ["seeds 3-4 (follow-up job)", "seeds 3-5 (follow-up job)"]
    got = amended["seeds"]
    assert got["seeds"] == [3, 4, 5] and sorted(got["retrained"]) == ["after", "classical", "scratch"]
    assert got["first_seed_comparisons"] == before["comparisons"]

    direct = finetune(FinetuneConfig(**settings, baselines=["knn", "classical", "scratch"], seeds=3,
                                     out=str(tmp_path / "direct"))).to_dict()
    want = direct["seeds"]
    assert got["scores"] == want["scores"] and got["predictions"] == want["predictions"]
    assert amended["comparisons"] == direct["comparisons"] == want["comparisons"]
    assert sorted(amended["warnings"]) == sorted(direct["warnings"])
    # done already: running it again changes nothing
    again = seeds_job(SeedsFollowupConfig(parent_out=str(parent.out), out=str(tmp_path / "again"), seeds=3))
    assert again["seeds"]["scores"] == got["scores"]
    assert json.loads((parent.out / "report.json").read_text())["amendments"] == amended["amendments"]


def test_seeds_followup_settings_and_runs_it_cannot_complete_are_refused(tmp_path, one_thread):
    from tlcore.errors import ConfigError
    from tlcore.runs.seeds_followup import SeedsFollowupConfig, seeds_job

    with pytest.raises(ConfigError, match="from 2"):
        SeedsFollowupConfig.from_dict({"parent_out": "p", "out": "o", "seeds": 1})
    with pytest.raises(ConfigError, match="to 10"):
        SeedsFollowupConfig.from_dict({"parent_out": "p", "out": "o", "seeds": 11})
    with pytest.raises(DataError, match="no finished run"):
        seeds_job(SeedsFollowupConfig(parent_out=str(tmp_path / "nothing"), out=str(tmp_path / "f")))
    settings = _settings(tmp_path)
    finetune(FinetuneConfig(**settings, baselines=[], out=str(tmp_path / "run")))
    with open(tmp_path / "data" / "data.csv", "a", encoding="utf-8") as f:
        f.write("the film was great number 99,positive\nthe film was awful number 99,negative\n")
    with pytest.raises(DataError, match="changed since it ran"):
        seeds_job(SeedsFollowupConfig(parent_out=str(tmp_path / "run"), out=str(tmp_path / "f2")))
    assert "seeds" not in json.loads((tmp_path / "run" / "report.json").read_text())
