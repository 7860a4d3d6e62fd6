"""Run store: migrations, SQLite settings, CRUD and lifecycle rules, on SQLite and on PostgreSQL (``db_url``)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tlcore.errors import ConfigError
from tlcore.progress import Progress
from tlcore.runs import RunNotFound, RunStateError, RunStore, create_share, db, list_shares, queue
from tlcore.runs.models import Base


@pytest.fixture
def store(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))
    monkeypatch.delenv("TRANSFERLAB_DB_URL", raising=False)
    s = RunStore(db_url)
    yield s
    s.dispose()


def _diffs(store: RunStore, metadata: sa.MetaData) -> list:
    with store._engine_pair()[0].connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)


def test_fresh_database_is_upgraded_to_head_and_matches_the_orm(store, tmp_path):
    if store.url.startswith("sqlite"):
        assert store.url == RunStore().url == f"sqlite:///{tmp_path / 'app' / 'runs.db'}"  # the default place
    assert db.current_revision(store._engine_pair()[0]) is None
    assert store.migrate() == db.head_revision() == "0002"
    assert db.current_revision(store._engine_pair()[0]) == "0002"
    assert _diffs(store, Base.metadata) == []
    # The comparison is able to fail: a model with one more column differs from the migrated database.
    changed = sa.MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["runs"].append_column(sa.Column("extra", sa.Integer()))
    assert any(d[0] == "add_column" for d in _diffs(store, changed))


def test_concurrent_first_opens_migrate_once(db_url, tmp_path):
    stores = [RunStore(db_url, artifacts_root=tmp_path / "runs") for _ in range(4)]
    errors: list[BaseException] = []

    def open_it(s: RunStore) -> None:
        try:
            s.migrate()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_it, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(db.current_revision(s._engine_pair()[0]) == "0002" for s in stores)
    for s in stores:
        s.dispose()


def test_a_lock_race_is_retried_and_other_errors_are_not(monkeypatch):
    """SQLite answers some races of concurrent first opens with 'database is locked' at once, past its busy handler
    (the switch to WAL, another connection's WAL recovery); those are retried for a bounded time, nothing else is."""
    monkeypatch.setattr(db.time, "sleep", lambda _s: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise sa.exc.OperationalError("PRAGMA journal_mode=WAL", {}, Exception("database is locked"))
        return "wal"

    assert db.when_unlocked(flaky) == "wal" and len(calls) == 3
    other = sa.exc.OperationalError("SELECT 1", {}, Exception("no such table: runs"))
    with pytest.raises(sa.exc.OperationalError, match="no such table"):
        db.when_unlocked(lambda: (_ for _ in ()).throw(other))
    locked = sa.exc.OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
    with pytest.raises(sa.exc.OperationalError, match="database is locked"):  # a lock that stays is not waited out forever
        db.when_unlocked(lambda: (_ for _ in ()).throw(locked), timeout_s=0)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_uses_wal_and_busy_timeout(store):
    store.migrate()
    with store._engine_pair()[0].connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_db_url_env_var_is_honoured(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("TRANSFERLAB_DB_URL", db_url)
    s = RunStore()
    assert s.url == db_url
    run = s.create_run({"modality": "image"}, "x")
    s.dispose()
    assert RunStore(db_url).get(run.id).name == "x"  # it went to that database, not the default one
    assert not (tmp_path / "elsewhere" / "app" / "runs.db").exists()


def test_create_get_list_and_artifact_dir(store, tmp_path):
    a = store.create_run({"modality": "image", "epochs": 3, "out": "/ignored"}, "first", owner="alice", dataset="flowers")
    b = store.create_run({"modality": "text"}, "  ", owner="bob")
    assert len(a.id) == 32 and a.status == "queued" and a.queued_at is None and a.attempts == 0
    assert a.config["out"] == str(tmp_path / "app" / "runs" / a.id) == str(store.artifact_dir(a.id))
    assert a.out.is_dir() and a.config["epochs"] == 3 and a.dataset == "flowers"
    assert b.name.startswith("text linear_probe")  # blank names get a readable default
    assert store.get(a.id) == a
    assert [r.id for r in store.list_runs()] == [b.id, a.id]  # newest first
    assert [r.id for r in store.list_runs(owner="alice")] == [a.id]
    json.dumps(store.get(a.id).to_dict())  # plain JSON for the app
    with pytest.raises(RunNotFound, match="no run with id"):
        store.get("nope")


def test_unknown_setting_is_refused_before_anything_is_stored(store):
    with pytest.raises(ConfigError, match="unknown setting"):
        store.create_run({"modality": "text", "epoch": 3}, "typo")
    assert store.list_runs() == []


def test_delete_removes_artifacts_and_share_links_but_refuses_running(store):
    run = store.create_run({"modality": "text"}, "r")
    (run.out / "report.json").write_text("{}")
    create_share(store, run.id, expires_in=timedelta(days=1))
    store.enqueue(run.id)
    claim = queue.claim_next(store)
    assert claim is not None and claim.run_id == run.id
    with pytest.raises(RunStateError, match="cancel it"):
        store.delete_run(run.id)
    assert store.mark_failed(run.id, "x", attempt=claim.attempt)
    staging = run.out.parent / f".{run.id}.partial-12345"      # a cancelled attempt's checkpoints (RunWriter)
    (staging / "checkpoints").mkdir(parents=True)
    other = run.out.parent / ".another-run.partial-1"
    other.mkdir()
    store.delete_run(run.id)
    assert not run.out.exists() and not staging.exists()
    assert other.exists()                                      # only this run's own folders go
    assert list_shares(store, run.id) == []
    with pytest.raises(RunNotFound):
        store.delete_run(run.id)


def test_enqueue_and_cancel_rules(store):
    run = store.create_run({"modality": "text"}, "r")
    assert queue.claim_next(store) is None  # created but not submitted
    queued = store.enqueue(run.id)
    assert queued.status == "queued" and queued.queued_at is not None
    assert store.enqueue(run.id).queued_at == queued.queued_at  # idempotent
    assert store.request_cancel(run.id).status == "cancelled"  # a queued run stops at once
    assert queue.claim_next(store) is None
    again = store.enqueue(run.id)  # a cancelled run can be queued again, fresh
    assert again.status == "queued" and again.finished_at is None and not again.cancel_requested
    claim = queue.claim_next(store)
    with pytest.raises(RunStateError, match="already running"):
        store.enqueue(run.id)
    running = store.request_cancel(run.id)  # a running run is only flagged; the worker stops it
    assert running.status == "running" and running.cancel_requested
    assert not store.mark_done(run.id, {}, attempt=claim.attempt + 1)  # a stale attempt cannot write
    assert store.mark_done(run.id, {"after_accuracy": 0.9}, attempt=claim.attempt)
    done = store.get(run.id)
    assert done.status == "done" and done.metrics == {"after_accuracy": 0.9} and done.finished_at >= done.started_at
    with pytest.raises(RunStateError, match="already finished"):
        store.enqueue(run.id)
    assert not store.mark_failed(run.id, "late")  # finished runs stay finished


def test_progress_keeps_last_event_and_one_history_entry_per_epoch(store):
    run = store.create_run({"modality": "text"}, "r")
    store.update_progress(run.id, Progress("features", 1, 4, "extracting"))
    store.update_progress(run.id, Progress("train", 1, 3, metrics={"epoch": 1, "loss": 0.9}),
                          Progress("train", 1, 3, metrics={"epoch": 1, "loss": 0.8}),  # same epoch: replaced
                          {"stage": "train", "step": 2, "total": 3, "metrics": {"epoch": 2, "loss": 0.5}, "time": 1.0})
    store.update_progress(run.id, Progress("scratch", 1, 3, metrics={"epoch": 1, "loss": 1.5}))
    progress = store.get(run.id).progress
    assert progress["last"]["stage"] == "scratch"
    assert [(h["stage"], h["epoch"], h["loss"]) for h in progress["history"]] == [
        ("train", 1, 0.8), ("train", 2, 0.5), ("scratch", 1, 1.5)]


def test_timestamps_are_timezone_aware_utc(store):
    run = store.create_run({"modality": "audio"}, "r")
    assert run.created_at.utcoffset() == timedelta(0)
    assert store.get(run.id).created_at == run.created_at


def test_upgrade_to_head_and_downgrade_to_base(db_url):
    store = RunStore(db_url, auto_migrate=False)
    engine = store._engine_pair()[1]

    def schema() -> tuple[set, set]:
        inspector = sa.inspect(engine)
        tables = set(inspector.get_table_names()) - {"alembic_version"}
        return tables, {ix["name"] for t in tables for ix in inspector.get_indexes(t)}

    assert schema() == (set(), set())
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    tables, indexes = schema()
    assert tables == {"runs", "share_links"}
    assert {"ix_runs_owner", "ix_runs_status", "ix_share_links_run_id"} <= indexes
    assert _diffs(store, Base.metadata) == []  # the migrated schema is exactly the models' schema
    run = store.create_run({"modality": "text"}, "kept through a no-op upgrade")
    db.upgrade(engine)  # idempotent
    assert store.get(run.id).name == "kept through a no-op upgrade"
    db.downgrade(engine, "base")
    assert db.current_revision(engine) is None
    assert schema() == (set(), set())
    db.upgrade(engine)  # and back up again, empty
    assert store.list_runs() == []
    store.dispose()


def test_text_that_postgresql_refuses_is_stored_the_same_on_every_backend(store):
    """NUL characters, NaN metrics and over-long identifiers: PostgreSQL refuses what SQLite silently kept."""
    run = store.create_run({"modality": "text"}, "a\x00b", dataset="upload:x")
    assert store.get(run.id).name == "a\ufffdb"
    store.enqueue(run.id)
    claim = queue.claim_next(store)
    store.update_progress(run.id, Progress("train", 1, 2, metrics={"epoch": 1, "train_loss": float("nan")}))
    assert store.get(run.id).progress["history"][0]["train_loss"] is None
    assert store.mark_failed(run.id, "bad byte \x00 in row 7", attempt=claim.attempt)
    assert store.get(run.id).error == "bad byte \ufffd in row 7"
    done = store.create_run({"modality": "text"}, "nan metrics")
    store.enqueue(done.id)
    claim = queue.claim_next(store)
    assert store.mark_done(done.id, {"after_accuracy": 0.5, "after_macro_f1": float("nan")}, attempt=claim.attempt)
    assert store.get(done.id).metrics == {"after_accuracy": 0.5, "after_macro_f1": None}
    with pytest.raises(ValueError, match="owner is 201 characters long; at most 200"):
        store.create_run({"modality": "text"}, "long owner", owner="o" * 201)
    with pytest.raises(ValueError, match="dataset is 301 characters long"):
        store.create_run({"modality": "text"}, "long dataset", dataset="d" * 301)
    assert [r.name for r in store.list_runs()] == ["nan metrics", "a\ufffdb"]  # nothing stored for the refused ones
    assert sorted(p.name for p in store.artifacts_root.iterdir()) == sorted([run.id, done.id])  # nor a folder


def test_follow_ups_go_after_runs_a_user_waits_for_and_more_seeds_after_scratch_baselines(store):
    """Claim order: runs a user waits for, then scratch follow-ups, then more seeds (oldest first within each); a
    running seeds job gives way to a queued scratch follow-up (another demo's Compare waits for it), a scratch
    follow-up does not give way to more seeds."""
    from tlcore.runs import queue
    from tlcore.runs.models import SCRATCH_JOB, SEEDS_JOB

    def queued(name: str, job: str):
        run = store.create_run({"parent_out": "p", "out": "", "seeds": 3} if job == SEEDS_JOB else
                               {"parent_out": "p", "out": ""}, name, job=job)
        store.enqueue(run.id)
        return run.id

    seeds = queued("seeds of demo A", SEEDS_JOB)
    scratch = queued("scratch of demo B", SCRATCH_JOB)
    claim = queue.claim_next(store)
    assert claim.run_id == scratch                       # queued later, but a scratch baseline goes first
    assert not queue.should_yield(store, claim)          # the queued seeds job does not interrupt it
    claim = queue.claim_next(store)
    assert claim.run_id == seeds and not queue.should_yield(store, claim)
    queued("scratch of demo C", SCRATCH_JOB)
    assert queue.should_yield(store, claim)              # more seeds give way to another scratch baseline
