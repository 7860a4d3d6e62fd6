"""PostgreSQL for real: engine settings, SKIP LOCKED claims from several processes, migrations at start from
processes starting at once, an unreachable database at start, and the app pointed at a team database.

Runs against the server of ``postgres_fixture`` (skips with the reason when PostgreSQL is not installed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from postgres_fixture import USER, _free_port
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tlcore.runs import RunStore, db, ensure_worker, queue
from tlcore.runs.errors import DatabaseUnavailable

REPO = Path(__file__).resolve().parents[1]
JOB = "test_runs_worker:fake_run"


def subprocess_env(**extra: str) -> dict:
    paths = [str(REPO), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), **extra}
    env.pop("TRANSFERLAB_DB_URL", None)
    env.update(extra)
    return env


@pytest.fixture
def pg_store(postgres_url, tmp_path):
    s = RunStore(postgres_url, artifacts_root=tmp_path / "runs")
    yield s
    s.dispose()


def submit(store: RunStore, n: int) -> list[str]:
    ids = []
    for i in range(n):
        run = store.create_run({"modality": "text"}, f"run {i}", job=JOB)
        store.enqueue(run.id)
        ids.append(run.id)
    return ids


def test_engine_checks_connections_and_times_out(pg_store):
    pg_store.migrate()
    engine = pg_store._engine_pair()[0]
    assert engine.pool._pre_ping and engine.pool._recycle == db.POOL_RECYCLE_S
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW application_name").scalar() == "transferlab"
        assert conn.exec_driver_sql("SHOW transaction_isolation").scalar() == "read committed"


def test_pooled_connections_cut_by_the_server_are_replaced_not_raised(pg_store):
    """A server restart or an idle timeout kills pooled connections; the next call must not fail (pool_pre_ping)."""
    run = pg_store.create_run({"modality": "text"}, "before the cut")
    with pg_store._engine_pair()[0].connect() as conn:
        pooled = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    admin = create_engine(pg_store.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pooled}).scalar()
    admin.dispose()
    assert pg_store.get(run.id).name == "before the cut"


def test_timestamps_stay_utc_whatever_the_session_time_zone(postgres_url, tmp_path):
    url = make_url(postgres_url).update_query_dict({"options": "-c timezone=America/New_York"})
    store = RunStore(url.render_as_string(hide_password=False), artifacts_root=tmp_path / "runs")
    run = store.create_run({"modality": "text"}, "tz")
    with store._engine_pair()[0].connect() as conn:
        assert conn.exec_driver_sql("SHOW timezone").scalar() == "America/New_York"
        stored = conn.execute(text("SELECT created_at AT TIME ZONE 'UTC' FROM runs")).scalar()
    got = store.get(run.id).created_at
    assert got.utcoffset().total_seconds() == 0 and got == run.created_at
    assert stored == run.created_at.replace(tzinfo=None)  # the instant, not the wall clock, is stored
    store.dispose()


def test_a_claimer_skips_a_run_locked_by_another_claimer_instead_of_waiting(pg_store):
    first, second = submit(pg_store, 2)
    other = create_engine(pg_store.url)
    with other.connect() as conn:
        tx = conn.begin()
        conn.execute(text("SELECT id FROM runs WHERE id = :id FOR UPDATE"), {"id": first})  # a claim in flight
        result: list = []
        thread = threading.Thread(target=lambda: result.append(queue.claim_next(pg_store, pid=1)), daemon=True)
        thread.start()
        thread.join(15)
        assert not thread.is_alive(), "claim_next waited for a locked run instead of skipping it"
        assert result[0] is not None and result[0].run_id == second
        tx.rollback()
    other.dispose()
    assert queue.claim_next(pg_store, pid=2).run_id == first


CLAIMER = textwrap.dedent("""
    import json, os, sys, time
    from tlcore.runs import RunStore, queue
    store = RunStore(sys.argv[1])
    store.migrate()
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.005)
    mine = []
    while (claim := queue.claim_next(store, pid=os.getpid())) is not None:
        mine.append(claim.run_id)
    print(json.dumps(mine))
""")


def test_processes_claiming_at_once_claim_every_run_exactly_once(pg_store, tmp_path):
    ids = submit(pg_store, 60)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, pg_store.url, str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=subprocess_env(), cwd=REPO) for _ in range(4)]
    time.sleep(1.0)
    go.touch()
    claimed = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        claimed.append(json.loads(out))
    everything = [rid for part in claimed for rid in part]
    assert len(everything) == len(set(everything)) == 60 and set(everything) == set(ids)
    runs = pg_store.list_runs()
    assert all(r.status == "running" and r.attempts == 1 for r in runs)
    pids = {r.worker_pid for r in runs}
    assert pids <= {p.pid for p in procs}
    assert {pid for pid, part in zip([p.pid for p in procs], claimed) if part} == pids  # who claimed = who holds


MIGRATOR = textwrap.dedent("""
    import os, sys, time
    from tlcore.runs import RunStore, db
    store = RunStore(sys.argv[1])
    store._engine_pair(), db.head_revision()  # imports and engine ready: the race below is only the upgrade
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.002)
    print(store.migrate())
""")


def test_processes_migrating_an_empty_database_at_the_same_moment_all_succeed(postgres_url, tmp_path):
    """Without the advisory lock around the upgrade, 2 of 3 such processes fail (duplicate key in pg_type)."""
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", MIGRATOR, postgres_url, str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=subprocess_env(), cwd=REPO) for _ in range(3)]
    time.sleep(3.0)
    go.touch()
    results = [(p.communicate(timeout=120), p.returncode) for p in procs]
    assert [rc for _, rc in results] == [0, 0, 0], [err[-1500:] for (_, err), _ in results]
    assert [out.strip() for (out, _), _ in results] == [db.head_revision()] * 3
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all() == [db.head_revision()]
    engine.dispose()


def test_workers_started_on_an_empty_team_database_migrate_it_and_run_its_queue(postgres_url, tmp_path):
    env = subprocess_env(TRANSFERLAB_HOME=str(tmp_path / "home"), TRANSFERLAB_DB_URL=postgres_url)
    procs = [subprocess.Popen([sys.executable, "-m", "tlcore", "worker", "--once", "--poll", "0.05"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
             for _ in range(2)]
    results = [(p.wait(timeout=180), p.stderr.read()) for p in procs]
    assert [rc for rc, _ in results] == [0, 0], [err[-2000:] for _, err in results]
    assert sum("upgrading run database" in err for _, err in results) >= 1
    assert all(":***@" in err and "tl-test-password" not in err for _, err in results)  # logged, password masked
    store = RunStore(postgres_url, artifacts_root=tmp_path / "runs")
    assert db.current_revision(store._engine_pair()[0]) == db.head_revision()
    ids = submit(store, 3)
    proc = subprocess.run([sys.executable, "-m", "tlcore", "worker", "--once", "--poll", "0.05"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [store.get(i).status for i in ids] == ["done"] * 3
    store.dispose()


# ------------------------------------------------------------------ the database cannot be reached at start
def _unreachable(case: str, server, name: str) -> str:
    if case == "refused port":
        return f"postgresql+psycopg://{USER}:s3cret-pw@127.0.0.1:{_free_port()}/{name}"
    if case == "wrong password":
        return server.url(name, password="s3cret-pw")
    return server.url("no_such_db_xyz")


CASES = {  # what the message says was wrong, and what it says to check
    "refused port": ("Connection refused", "check that the PostgreSQL server is running"),
    "wrong password": ('password authentication failed for user "tl"', "check the user name and password"),
    "missing database": ('database "no_such_db_xyz" does not exist', "create the database"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_unreachable_database_at_start_fails_with_one_clear_line(case, postgres_server, postgres_url, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    name = make_url(postgres_url).database
    url = _unreachable(case, postgres_server, name)
    reason, hint = CASES[case]
    password = make_url(url).password
    shown = make_url(url).render_as_string(hide_password=True)

    def check(message: str) -> None:
        assert "\n" not in message and password not in message and "Traceback" not in message
        assert f"cannot use the run database {shown}: " in message
        assert reason in message and hint in message and "TRANSFERLAB_DB_URL" in message

    store = RunStore(url, artifacts_root=tmp_path / "runs")
    with pytest.raises(DatabaseUnavailable) as info:
        store.migrate()
    check(str(info.value))
    with pytest.raises(DatabaseUnavailable):
        store.create_run({"modality": "text"}, "never stored")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no partial record
    with pytest.raises(DatabaseUnavailable):
        ensure_worker(store)
    assert not (tmp_path / "home" / "app" / "worker.spawned").exists()  # no worker started against it
    store.dispose()

    proc = subprocess.run([sys.executable, "-m", "tlcore", "worker", "--once"], capture_output=True, text=True,
                          timeout=120, env=subprocess_env(TRANSFERLAB_DB_URL=url), cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    check(proc.stderr.strip())
    with create_engine(postgres_server.url(name)).connect() as conn:  # the real database was not touched
        assert conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar() == 0


def test_a_bad_url_or_missing_driver_is_one_clear_line():
    for url, reason in [("postgresql+nodriver://u:pw@h/db", "install the database driver"),
                        ("mysql+mysqldb://u:pw@h/db", "install the database driver"),
                        ("not a url at all", "check the URL")]:
        with pytest.raises(DatabaseUnavailable) as info:
            RunStore(url).migrate()
        message = str(info.value)
        assert "\n" not in message and reason in message and ":pw@" not in message


# ------------------------------------------------------------------ the app pointed at a team database
def test_the_app_uses_the_team_database_and_migrates_it(app_home, postgres_url, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TRANSFERLAB_DB_URL", postgres_url)
    engine = create_engine(postgres_url)
    with engine.connect() as conn:  # an empty database: the app creates the schema
        assert conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar() == 0
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(i.value.startswith("No runs yet") for i in at.info)
    assert db.current_revision(engine) == db.head_revision()
    store = RunStore(postgres_url)
    run = store.create_run({"modality": "text"}, "made by a worker host", job=JOB)
    at.switch_page("pages/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "made by a worker host" in list(at.dataframe[0].value["name"])  # listed from the team database
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM runs WHERE id = :id"), {"id": run.id}).scalar() == run.name
    assert not (app_home.path / "app" / "runs.db").exists()  # no SQLite file beside it
    store.dispose()
    engine.dispose()


def test_the_app_says_in_one_line_when_the_team_database_is_down(app_home, postgres_server, postgres_url, monkeypatch):
    from streamlit.testing.v1 import AppTest

    url = _unreachable("refused port", postgres_server, make_url(postgres_url).database)
    monkeypatch.setenv("TRANSFERLAB_DB_URL", url)
    for query in ({}, {"share": "x" * 43}):            # the app and a share link
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and errors[0].startswith("cannot use the run database"), errors
        assert make_url(url).password not in errors[0]
