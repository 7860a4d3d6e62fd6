"""Storage housekeeping: usage per part, LRU eviction of the feature cache and unzipped copies past the cap (never an
entry in use, never uploads or runs), and ``python -m tlcore gc`` (a dry run frees nothing)."""

import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest

from tlcore import storage
from tlcore.cli import main
from tlcore.errors import ConfigError
from tlcore.paths import cache_dir, home

HOUR = 3600


@pytest.fixture(autouse=True)
def _private_temp_folder(tmp_path, monkeypatch):
    """gc also looks in the system temp folder (scratch of killed multi-process launches): these tests give it one of
    their own, so other runs' leftovers there neither change what they see nor get removed by them."""
    import tempfile

    folder = tmp_path / "system-temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


def _feature(name: str, size: int, age_s: float):
    path = cache_dir("features") / f"{name}.npy"
    path.write_bytes(b"\0" * size)
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def _unzipped(name: str, size: int, age_s: float):
    folder = cache_dir("unzipped") / name
    (folder / "set").mkdir(parents=True)
    (folder / "set" / "x.bin").write_bytes(b"\0" * size)
    (folder / ".complete").write_text(str(size))
    t = time.time() - age_s
    os.utime(folder, (t, t))
    return folder


def _precious():
    up = home() / "uploads" / "abc" / "data.csv"
    up.parent.mkdir(parents=True)
    up.write_bytes(b"x" * 5000)
    run = home() / "app" / "runs" / "r1" / "report.json"
    run.parent.mkdir(parents=True)
    run.write_bytes(b"y" * 5000)
    return up, run


def test_usage_counts_files_and_not_links(tmp_path):
    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    (folder / "a").write_bytes(b"x" * 100)
    (folder / "sub" / "b").write_bytes(b"x" * 50)
    (tmp_path / "big").write_bytes(b"x" * 10_000)
    (folder / "link").symlink_to(tmp_path / "big")
    assert storage.usage_bytes(folder) == 150
    assert storage.usage_bytes(folder / "a") == 100 and storage.usage_bytes(tmp_path / "missing") == 0
    _feature("f1", 300, 0)
    _precious()
    used = storage.usage()
    assert used["features"] == 300 and used["uploads"] == 5000 and used["runs"] == 5000


def test_eviction_is_least_recently_used_first_and_spares_entries_in_use():
    old = _feature("old", 1000, 5 * HOUR)
    middle = _unzipped("middle", 1000, 3 * HOUR)
    recent = _feature("recent", 1000, 2 * HOUR)
    in_use = _feature("in-use", 1000, 60)              # used a minute ago: a run may be reading it
    up, run = _precious()
    removed = storage.evict(max_bytes=1500)
    assert [os.path.basename(r.path) for r in removed] == ["old.npy", "middle", "recent.npy"]
    assert not old.exists() and not middle.exists() and not recent.exists()
    assert in_use.exists() and up.exists() and run.exists()        # over the cap, yet in use / never evictable
    assert not [p for p in cache_dir("unzipped").iterdir() if p.name != storage.LEASES]   # the renamed copy too


def test_touch_on_use_changes_the_order():
    a = _feature("a", 1000, 5 * HOUR)
    b = _feature("b", 1000, 4 * HOUR)
    storage.touch(a)
    t = time.time() - 2 * HOUR
    os.utime(a, (t, t))          # a used after b (but not so recently it is in use)
    storage.evict(max_bytes=1500)
    assert a.exists() and not b.exists()


def test_gc_dry_run_frees_nothing_and_gc_removes_stale_temporaries(capsys):
    stale_dir = cache_dir("unzipped") / ".0123456789abcdef-xyz"
    stale_dir.mkdir()
    (stale_dir / "half.png").write_bytes(b"z" * 700)
    fresh_tmp = cache_dir("features") / ".tiny-abc.123.npy"
    fresh_tmp.write_bytes(b"z" * 10)
    part = home() / "uploads" / "d1" / ".up.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"z" * 20)
    t = time.time() - 2 * HOUR
    for p in (stale_dir, part):
        os.utime(p, (t, t))
    old = _feature("old", 2000, 5 * HOUR)
    up, run = _precious()

    report = storage.gc(dry_run=True, max_gb=1e-6)          # cap 1000 bytes
    assert {os.path.basename(r.path) for r in report.removed} == {stale_dir.name, part.name, "old.npy"}
    assert report.freed_bytes == 700 + 20 + 2000
    assert stale_dir.exists() and part.exists() and old.exists() and fresh_tmp.exists()

    assert main(["gc", "--max-gb", "0"]) == 0
    out = capsys.readouterr().out
    assert "removed" in out and "freed 2.7 kB" in out
    assert not stale_dir.exists() and not part.exists() and not old.exists()
    assert fresh_tmp.exists() and up.exists() and run.exists()


def test_gc_removes_the_launch_scratch_of_a_dead_launcher_only(tmp_path, monkeypatch):
    """A host SIGKILLed mid multi-process run leaves its launch folder in the temp folder; gc removes it once its
    launcher is gone and an hour has passed, and never a live launcher's folder."""
    import subprocess
    import sys
    import tempfile

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    temp = Path(tempfile.gettempdir())
    dead = temp / f"{storage.LAUNCH_PREFIX}{gone.pid}-abc"
    dead_fit = temp / f"{storage.CLASSICAL_PREFIX}{gone.pid}-jkl"     # an out-of-core classical fit's chunks
    live = temp / f"{storage.LAUNCH_PREFIX}{os.getpid()}-def"
    live_fit = temp / f"{storage.CLASSICAL_PREFIX}{os.getpid()}-mno"
    young = temp / f"{storage.LAUNCH_PREFIX}{gone.pid}-ghi"
    other = temp / "tlcore-launch-notapid"
    for folder in (dead, dead_fit, live, live_fit, young, other):
        (folder / "logs").mkdir(parents=True)
        (folder / "logs" / "rank0.log").write_bytes(b"z" * 100)
    t = time.time() - 2 * HOUR
    for folder in (dead, dead_fit, live, live_fit, other):
        os.utime(folder, (t, t))
    assert [p.name for p in storage.stale_temporaries()] == sorted([dead.name, dead_fit.name])
    report = storage.gc()
    assert {str(dead), str(dead_fit)} <= {r.path for r in report.removed}
    assert not dead.exists() and not dead_fit.exists()
    assert live.exists() and live_fit.exists() and young.exists() and other.exists()
    for folder in (live, live_fit, young, other):
        shutil.rmtree(folder)


def test_a_local_copy_of_a_stored_run_is_a_cache_entry_and_other_run_folders_are_not(tmp_path):
    """With an artifact store, the app's (or a worker's) copy of a finished run is evicted past the cap once idle for
    an hour and downloaded again on the next open; a run folder the store does not hold is never touched."""
    import json

    from tlcore.artifacts import ArtifactStore
    from tlcore.runs import RunStore, queue

    artifacts = ArtifactStore(str(tmp_path / "store"))
    app = RunStore(f"sqlite:///{tmp_path / 'runs.db'}", artifacts=artifacts)
    assert app.artifacts_root == storage.runs_dir()
    elsewhere = tmp_path / "worker" / "run"
    (elsewhere / "model").mkdir(parents=True)
    (elsewhere / "model" / "weights.bin").write_bytes(b"w" * 3000)
    (elsewhere / "report.json").write_text(json.dumps({"after": {"accuracy": 0.75}}))
    run = app.create_run({"modality": "text"}, "trained on another host", job="tests.test_runs_worker:fake_run")
    artifacts.put_run(run.id, elsewhere)
    app.enqueue(run.id)
    assert app.mark_done(run.id, {"after_accuracy": 0.75}, attempt=queue.claim_next(app).attempt)
    only_copy = storage.runs_dir() / "local-only-run"          # e.g. a run from before the store was configured
    only_copy.mkdir(parents=True)
    (only_copy / "report.json").write_text("{}")
    (only_copy / "model.bin").write_bytes(b"m" * 5000)

    copy = app.run_folder(app.get(run.id))
    assert (copy / "model" / "weights.bin").is_file() and storage.stored_stamp(copy).is_file()
    assert [e.path for e in storage.run_copies()] == [copy]
    assert storage.gc(max_gb=0).removed == [] and copy.exists()       # just used: kept
    t = time.time() - 2 * HOUR
    for folder in (copy, only_copy):
        os.utime(folder, (t, t))
    report = storage.gc(max_gb=0)
    assert [r.path for r in report.removed] == [str(copy)] and "artifact store keeps" in report.removed[0].why
    assert not copy.exists() and not storage.stored_stamp(copy).exists() and only_copy.exists()
    again = app.run_folder(app.get(run.id))                            # the next open fetches it again
    assert json.loads((again / "report.json").read_text())["after"]["accuracy"] == 0.75
    app.delete_run(run.id)
    assert not again.exists() and not storage.stored_stamp(again).exists()
    app.dispose()


def test_gc_cli_dry_run_and_bad_cap(capsys):
    _feature("old", 2000, 5 * HOUR)
    assert main(["gc", "--dry-run", "--max-gb", "0"]) == 0
    out = capsys.readouterr().out
    assert "would remove" in out and "old.npy" in out and (cache_dir("features") / "old.npy").exists()
    assert main(["gc", "--max-gb", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "max-gb" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="cache cap must be a size in GB >= 0"):
        storage.gc(max_gb=-1)


def test_gc_caps_the_artifact_stores_shared_features_oldest_first(tmp_path, monkeypatch, capsys):
    """Every host's gc also keeps the store's features/ under its cap: oldest upload first, nothing uploaded in the
    last hour, interrupted uploads whatever the total; a dry run removes nothing."""
    from tlcore.artifacts import ArtifactStore

    monkeypatch.setenv("TRANSFERLAB_ARTIFACTS_URL", str(tmp_path / "store"))
    store = ArtifactStore.from_env()
    src = tmp_path / "f.npy"
    src.write_bytes(b"f" * 2000)
    ages = {"a/old.npy": 5 * HOUR, "users/k/older.npy": 6 * HOUR, "b/mid.npy": 3 * HOUR, "c/new.npy": 0}
    for rel, age in ages.items():
        store.put_features(rel, src)
        t = time.time() - age
        os.utime(tmp_path / "store" / "features" / rel, (t, t))
    partial = tmp_path / "store" / "features" / "a" / "cut.npy.tmp-4242"
    partial.write_bytes(b"p" * 10)
    t = time.time() - 2 * HOUR
    os.utime(partial, (t, t))
    cap = "0.0000045"   # 4500 bytes: two of the four 2000-byte files must go

    assert main(["gc", "--dry-run", "--store-features-max-gb", cap]) == 0
    out = capsys.readouterr().out
    assert "would remove" in out and "older.npy" in out and "cut.npy.tmp-4242" in out and "would free 4.0 kB" in out
    assert len(store.feature_files()) == 5
    assert main(["gc", "--store-features-max-gb", cap]) == 0
    out = capsys.readouterr().out
    left = sorted(p.rsplit("/", 1)[-1] for p, _, _ in store.feature_files())
    assert left == ["mid.npy", "new.npy"], out          # the two oldest and the interrupted upload went
    assert "of shared features; 4.0 kB left of 4.5 kB allowed" in out
    assert main(["gc", "--store-features-max-gb", "0"]) == 0
    assert sorted(p.rsplit("/", 1)[-1] for p, _, _ in store.feature_files()) == ["new.npy"]   # an hour's grace
    capsys.readouterr()
    assert main(["gc", "--store-features-max-gb", "-1"]) == 2
    assert "--store-features-max-gb must be between 0 and 1000000; got -1" in capsys.readouterr().err
    monkeypatch.setenv("TRANSFERLAB_STORE_FEATURES_MAX_GB", "plenty")
    assert main(["gc"]) == 2
    assert "TRANSFERLAB_STORE_FEATURES_MAX_GB='plenty' is not a number" in capsys.readouterr().err
    assert [p.rsplit("/", 1)[-1] for p, _, _ in store.feature_files()] == ["new.npy"]   # refused before removing


def test_bad_cap_setting_is_a_config_error(monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_CACHE_MAX_GB", "lots")
    with pytest.raises(ConfigError, match="TRANSFERLAB_CACHE_MAX_GB"):
        storage.cache_max_bytes()
    monkeypatch.setenv("TRANSFERLAB_CACHE_MAX_GB", "")
    assert storage.cache_max_bytes() == int(storage.DEFAULT_CACHE_MAX_GB * 1e9)


def test_unzipping_evicts_old_copies_past_the_cap(tmp_path, monkeypatch):
    from tlcore.data.archive import extract_zip

    old = _unzipped("oldcopy", 5000, 5 * HOUR)
    monkeypatch.setenv("TRANSFERLAB_CACHE_MAX_GB", "0.000001")       # 1000 bytes
    path = tmp_path / "n.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("set/a.txt", os.urandom(2000))
    root = extract_zip(path)
    assert root.is_dir() and (root / "a.txt").exists()              # the new copy is kept (it is about to be used)
    assert not old.exists()


def test_cached_features_and_unzipped_copies_belong_to_their_owner(tmp_path):
    """Inside ``owner_scope`` the caches derived from a user's data live in that user's folder; gc and eviction
    still see every user's entries."""
    import zipfile

    from tlcore.data.archive import extract_zip
    from tlcore.paths import home, owner_key, owner_scope

    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("set/pos/a.txt", "great")
    with owner_scope("alice@example.org"):
        a = extract_zip(archive)
    with owner_scope("bob@example.org"):
        b = extract_zip(archive)
    local = extract_zip(archive)
    users = home() / "cache" / "unzipped" / "users"
    assert a.is_relative_to(users / owner_key("alice@example.org"))
    assert b.is_relative_to(users / owner_key("bob@example.org"))
    assert not local.is_relative_to(users) and len({a, b, local}) == 3
    entries = {e.path for e in storage.cache_entries()}
    assert {a.parent, b.parent, local.parent} <= entries and users not in entries


def _set_copy(digest: str, size: int, age_s: float):
    """A worker's copy of a data set fetched from the artifact store (``cache/sets/<sha256>/<name>``)."""
    folder = cache_dir("sets") / digest
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "x.bin").write_bytes(b"\0" * size)
    t = time.time() - age_s
    os.utime(folder, (t, t))
    return folder


def test_a_leased_entry_is_never_evicted_however_old_until_its_job_ends():
    """A job reading an unzipped copy or fetched set for longer than IN_USE_S keeps it: the lease, not the clock."""
    long_job = _unzipped("u-long", 1000, 30 * HOUR)
    fetched = _set_copy("a" * 64, 1000, 30 * HOUR)
    with storage.leases_held():
        storage.lease(long_job)
        storage.lease(fetched)
        for entry in (long_job, fetched):          # the lease records the use, so age it again
            t = time.time() - 30 * HOUR
            os.utime(entry, (t, t))
        assert storage.in_use(long_job) and storage.in_use(fetched)
        assert storage.evict(0) == [] and long_job.exists() and fetched.exists()
    assert not storage.in_use(long_job)
    assert sorted(r.path for r in storage.evict(0)) == sorted([str(long_job), str(fetched)])
    assert not long_job.exists() and not fetched.exists()


def test_a_lease_held_by_another_process_is_released_when_it_dies(tmp_path):
    import signal
    import subprocess
    import sys

    entry = _unzipped("u-other", 1000, 30 * HOUR)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from tlcore import storage\n"
        "with storage.leases_held():\n"
        f"    storage.lease(Path({str(entry)!r})); print('held', flush=True); time.sleep(120)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t = time.time() - 30 * HOUR
        os.utime(entry, (t, t))
        assert storage.evict(0) == [] and entry.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert [r.path for r in storage.evict(0)] == [str(entry)]      # the dead job's lock went with it


def test_gc_counts_and_evicts_fetched_sets_and_their_stale_downloads():
    fetched = _set_copy("b" * 64, 2000, 5 * HOUR)
    stale = fetched / ".data.download-4242"
    stale.mkdir()
    t = time.time() - 2 * HOUR
    os.utime(stale, (t, t))
    os.utime(fetched, (t, t))                 # last used when that download was interrupted
    assert storage.usage()["sets"] == 2000
    report = storage.gc(max_gb=0)
    assert str(stale) in [r.path for r in report.removed] and str(fetched) in [r.path for r in report.removed]
    assert not fetched.exists() and report.usage_after["sets"] == 0


def test_extract_zip_leases_its_copy_for_the_job(tmp_path):
    from tlcore.data.archive import extract_zip

    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("set/a/x.txt", "hello")
    with storage.leases_held():
        root = extract_zip(archive)
        copy = root.parent
        t = time.time() - 30 * HOUR
        os.utime(copy, (t, t))
        assert storage.in_use(copy) and storage.evict(0) == []
    assert [r.path for r in storage.evict(0)] == [str(copy)]
