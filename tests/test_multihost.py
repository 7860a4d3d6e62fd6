"""Workers on several hosts, for real on one machine: one PostgreSQL server, an S3-compatible store served by moto,
two worker processes with their own home folders and host names (two "hosts"), and a third "app" process that only
reads the database and the store. Every run finishes exactly once; a worker killed mid-run (SIGKILL) has its run
resumed by the other worker from the checkpoint in S3.

Skips (with the reason) when PostgreSQL or moto cannot be started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_text_set
from postgres_fixture import _free_port

from tlcore.artifacts import ArtifactStore
from tlcore.config import FinetuneConfig
from tlcore.runs import RunStore

REPO = Path(__file__).resolve().parents[1]
BUCKET = "tl-multihost"


@pytest.fixture(scope="module")
def s3_endpoint():
    """An S3 server (moto in server mode) on a free port with an empty bucket; yields its URL."""
    try:
        import s3fs
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.skip(f"moto[server] / s3fs are not installed ({exc}): pip install -r requirements.txt")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001 - any failure to serve means: skip with the reason
        pytest.skip(f"moto S3 server could not be started: {exc}")
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True).mkdir(BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def cluster(postgres_url, s3_endpoint, tmp_path):
    """The shared database and store, the app's RunStore, and a way to start workers on "hosts"."""
    url = f"s3://{BUCKET}/{tmp_path.name}"
    options = {"endpoint_url": s3_endpoint}
    env = {**os.environ, "TRANSFERLAB_DB_URL": postgres_url, "TRANSFERLAB_ARTIFACTS_URL": url,
           "TRANSFERLAB_ARTIFACTS_OPTIONS": json.dumps(options), "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    artifacts = ArtifactStore(url, storage_options=options)
    app = RunStore(postgres_url, artifacts_root=tmp_path / "app-host" / "runs", artifacts=artifacts)
    app.migrate()
    procs: list[subprocess.Popen] = []

    def start_worker(host: str, *extra: str) -> subprocess.Popen:
        home = tmp_path / host
        home.mkdir(exist_ok=True)
        log = open(home / "worker.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "tlcore", "worker", "--host", host, "--gpus", "0", "--poll", "0.2",
                                 "--heartbeat", "0.5", "--stale-after", "4", "--checkpoint-sync", "0.2", "--log-level", "INFO",
                                 *extra],
                                env={**env, "TRANSFERLAB_HOME": str(home)}, stdout=log, stderr=subprocess.STDOUT,
                                cwd=REPO, start_new_session=True)   # a "host": its group is all it runs
        log.close()
        procs.append(proc)
        return proc

    def logs() -> str:
        return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(tmp_path.glob("*/worker.log")))

    def read_as_app(run_ids: list[str]) -> dict:
        """A third process ("the app on another host"): its own empty home; reads runs through DB + store."""
        code = textwrap.dedent("""
            import json, sys
            from tlcore.runs import RunStore
            store = RunStore()
            out = {}
            for run_id in sys.argv[1:]:
                folder = store.run_folder(run_id)
                report = json.loads((folder / "report.json").read_text())
                out[run_id] = {"accuracy": report["after"]["accuracy"], "model": (folder / "model").is_dir(),
                               "folder": str(folder), "training": report.get("training") or {},
                               "num_processes": report.get("num_processes"),
                               "baselines": report.get("baselines") or {},
                               "amendments": report.get("amendments") or [],
                               "readme": (folder / "README.md").read_text() if (folder / "README.md").is_file() else ""}
            print(json.dumps(out))
        """)
        home = tmp_path / "reader-host"
        done = subprocess.run([sys.executable, "-c", code, *run_ids], env={**env, "TRANSFERLAB_HOME": str(home)},
                              capture_output=True, text=True, timeout=120, cwd=REPO)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    yield {"app": app, "artifacts": artifacts, "start_worker": start_worker, "logs": logs, "read_as_app": read_as_app,
           "tmp": tmp_path}
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)        # the worker and any processes it launched
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
    app.dispose()


def _submit(cluster, n: int, *, epochs: int, n_per_class: int = 12, **overrides) -> list[str]:
    """``n`` small fine-tuning runs on a text set that exists only on the app host, then only in the store."""
    data = write_text_set(cluster["tmp"] / "app-host" / "uploads" / "target", n_per_class=n_per_class)
    ids = []
    for seed in range(n):
        cfg = FinetuneConfig(modality="text", backbone="tiny-text", target=str(data), epochs=epochs, seed=seed,
                             **{"strategy": "full", "baselines": [], **overrides})
        run = cluster["app"].create_run(cfg, name=f"run {seed}")
        assert run.inputs["target"]["name"] == "target"   # uploaded to the store by content
        cluster["app"].enqueue(run.id)
        ids.append(run.id)
    shutil.rmtree(data)   # workers can only get the data from the store now
    return ids


def _wait(cluster, ids: list[str], *, status: str = "done", timeout: float = 150) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [cluster["app"].get(i) for i in ids]
        if all(r.status == status for r in runs):
            return runs
        if any(r.status in ("failed", "cancelled") for r in runs):
            break
        time.sleep(0.5)
    states = [(r.name, r.status, r.attempts, r.worker_host, r.error) for r in runs]
    pytest.fail(f"runs did not all reach {status}: {states}\n{cluster['logs']()}")


@pytest.mark.slow
def test_two_hosts_finish_every_run_exactly_once(cluster):
    t0 = time.monotonic()
    ids = _submit(cluster, 6, epochs=2)
    cluster["start_worker"]("host-a")
    cluster["start_worker"]("host-b")
    runs = _wait(cluster, ids)
    print(f"six runs on two workers: {time.monotonic() - t0:.1f} s; by host: "
          f"{sorted((r.worker_host or '?') for r in runs)}")
    assert [r.attempts for r in runs] == [1] * 6            # each claimed once, never run twice
    assert {r.worker_host for r in runs} <= {"host-a", "host-b"}
    assert all(r.worker_gpus == 0 for r in runs)
    artifacts = cluster["artifacts"]
    assert all(artifacts.has_run(r.id) for r in runs)        # done means: the folder is in S3
    for r in runs:   # and the worker's copy is marked as one: evictable past its host's cache cap
        stamp = cluster["tmp"] / r.worker_host / "app" / "runs" / f".{r.id}.version"
        assert stamp.read_text() == artifacts.report_version(r.id)
    assert not any(artifacts.fs.exists(artifacts._path("checkpoints", r.id)) for r in runs)
    # The app on a third host sees every result, read from S3 into its own (empty) home.
    seen = cluster["read_as_app"](ids)
    reader_home = str(cluster["tmp"] / "reader-host")
    for run in runs:
        assert seen[run.id]["model"] and seen[run.id]["folder"].startswith(reader_home)
        assert seen[run.id]["accuracy"] == pytest.approx(run.metrics["after_accuracy"])


@pytest.mark.slow
def test_a_run_that_needs_a_gpu_is_left_to_a_worker_that_offers_one(cluster):
    data = write_text_set(cluster["tmp"] / "app-host" / "data")
    app = cluster["app"]
    gpu_run = app.create_run({"modality": "text", "backbone": "tiny-text", "target": str(data), "strategy": "full",
                              "epochs": 1, "baselines": []}, "needs a gpu", resources={"gpus": 1})
    cpu_ids = _submit(cluster, 1, epochs=1)
    app.enqueue(gpu_run.id)   # queued first: the CPU worker must skip it, not block on it
    cluster["start_worker"]("host-cpu", "--once")
    _wait(cluster, cpu_ids)
    assert app.get(gpu_run.id).status == "queued" and app.get(gpu_run.id).attempts == 0
    assert app.get(gpu_run.id).need_gpus == 1


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_killed_worker_run_resumes_on_the_other_host_from_the_s3_checkpoint(cluster, processes):
    """With 2 processes too: rank 0 (a child of the worker) writes the checkpoints the worker uploads, and on the
    other host rank 0 takes over the staging folder its worker filled from S3."""
    epochs = 200 if processes == 1 else 80
    [run_id] = _submit(cluster, 1, epochs=epochs, n_per_class=40, patience=100, num_processes=processes)
    artifacts, app = cluster["artifacts"], cluster["app"]
    first = cluster["start_worker"]("host-a")
    latest = artifacts._path("checkpoints", run_id, "LATEST")
    deadline = time.monotonic() + 120
    while not artifacts._exists(latest):
        assert time.monotonic() < deadline, f"no checkpoint reached S3\n{cluster['logs']()}"
        assert app.get(run_id).status in ("queued", "running"), cluster["logs"]()
        time.sleep(0.2)
    assert app.get(run_id).status == "running" and app.get(run_id).worker_host == "host-a"
    while (app.get(run_id).progress.get("last") or {}).get("stage") != "train":   # live, from rank 0 with 2
        assert time.monotonic() < deadline, f"no training progress reached the database\n{cluster['logs']()}"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)   # the host dies: no cleanup, no final status, a stale heartbeat
    first.wait(timeout=30)
    assert app.get(run_id).status == "running"
    if processes > 1:   # the dead launcher's scratch folder is left in the temp folder; gc knows it for an orphan
        from tlcore import storage

        left = sorted(Path(tempfile.gettempdir()).glob(f"{storage.LAUNCH_PREFIX}{first.pid}-*"))
        assert left and set(left) <= set(storage.orphan_scratch_folders())
        for folder in left:             # (gc removes it after an hour; this test leaves nothing behind)
            shutil.rmtree(folder)
    cluster["start_worker"]("host-b")   # another host, its own empty disk: only S3 has the checkpoint
    [run] = _wait(cluster, [run_id], timeout=170)
    assert run.attempts == 2 and run.worker_host == "host-b"
    seen = cluster["read_as_app"]([run_id])[run_id]
    assert seen["model"] and seen["accuracy"] == pytest.approx(run.metrics["after_accuracy"])
    assert seen["training"].get("resumed_from_epoch", 0) >= 1, seen["training"]   # continued, not started over
    assert seen["num_processes"] == processes
    assert "resuming from the checkpoint" in (cluster["tmp"] / "host-b" / "worker.log").read_text()


@pytest.mark.slow
def test_a_followup_on_another_host_amends_the_run_in_the_store(cluster):
    """The one-click demo's scratch baseline in a team deployment: the run finishes on host A, which then dies; its
    follow-up runs on host B, which has neither the run's folder nor its data but the store, and the amended report
    (scratch baseline, model card) is what the app on a third host reads."""
    from tlcore.runs.models import SCRATCH_JOB

    app = cluster["app"]
    [run_id] = _submit(cluster, 1, epochs=2, strategy="linear_probe", baselines=["knn"])
    first = cluster["start_worker"]("host-a")
    [run] = _wait(cluster, [run_id])
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    before = cluster["read_as_app"]([run_id])[run_id]
    assert "scratch" not in before["baselines"] and "knn" in before["baselines"]
    # Created now (as the app does with the demo run), released by host B's worker once it sees the run is done.
    follow = app.create_run({"parent_out": str(run.out), "parent_run": run.id, "modality": "text"},
                            name="scratch baseline", dataset=run.dataset, job=SCRATCH_JOB)
    cluster["start_worker"]("host-b")
    [done] = _wait(cluster, [follow.id])
    assert done.worker_host == "host-b"
    after = cluster["read_as_app"]([run_id])[run_id]
    assert after["baselines"]["scratch"]["accuracy"] == pytest.approx(done.metrics["scratch_accuracy"])
    assert after["baselines"]["knn"] == before["baselines"]["knn"] and after["accuracy"] == before["accuracy"]
    assert after["amendments"] and after["amendments"][0]["added"].startswith("baselines.scratch")
    assert "scratch" in after["readme"].lower()
    stamp = cluster["tmp"] / "host-b" / "app" / "runs" / f".{run_id}.version"   # host B's amended copy = the store's
    assert stamp.read_text() == cluster["artifacts"].report_version(run_id)


def test_the_s3_stores_shared_features_are_capped_by_upload_age(s3_endpoint, tmp_path):
    """S3 reports LastModified as a datetime (a local folder as mtime): the oldest upload goes first there too."""
    store = ArtifactStore(f"s3://{BUCKET}/{tmp_path.name}", storage_options={"endpoint_url": s3_endpoint})
    src = tmp_path / "f.npy"
    src.write_bytes(b"f" * 1000)
    for rel in ("a/first.npy", "users/k/second.npy"):
        store.put_features(rel, src)
        time.sleep(1.1)                     # S3 times have whole seconds
    files = store.feature_files()
    assert [p.rsplit("/", 1)[-1] for p, _, _ in files] == ["first.npy", "second.npy"]
    assert abs(files[0][2] - time.time()) < 60 and [size for _, size, _ in files] == [1000, 1000]
    assert store.evict_features(1500, min_age_s=3600) == ([], 2000)          # just uploaded: kept
    [gone], left = store.evict_features(1500, min_age_s=0)
    url, size, why = gone.path, gone.bytes, gone.why
    assert left == 1000
    assert url == f"s3://{BUCKET}/{tmp_path.name}/features/a/first.npy" and size == 1000 and "oldest" in why
    assert [p.rsplit("/", 1)[-1] for p, _, _ in store.feature_files()] == ["second.npy"]


# ---------------------------------------------------------------- the artifact store alone (a local folder: fast)

def test_a_set_is_stored_once_per_content_and_fetched_under_each_name(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    a = write_text_set(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    ref_a, ref_b = store.put_set(a), store.put_set(b)
    assert ref_a["sha256"] == ref_b["sha256"] and (ref_a["name"], ref_b["name"]) == ("a", "b")
    shutil.rmtree(a)
    shutil.rmtree(b)
    for ref in (ref_a, ref_b):
        got = store.get_set(ref, tmp_path / "cache")
        assert got.name == ref["name"] and (got / "data.csv").read_text().startswith("text,label")
    with pytest.raises(FileNotFoundError, match="not in"):
        store.get_set({"sha256": "0" * 64, "name": "x"}, tmp_path / "cache")


def test_checkpoint_upload_waits_for_a_complete_save_and_resume_gets_the_newest(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    ckpt = tmp_path / "work" / "checkpoints"
    stage = ckpt / "full"
    stage.mkdir(parents=True)
    assert store.put_checkpoints("r1", ckpt) is None            # nothing saved yet
    (stage / "last.safetensors").write_text("epoch 1")
    (stage / "state.json").write_text('{"epoch": 1}')
    first = store.put_checkpoints("r1", ckpt)
    assert first is not None
    assert store.put_checkpoints("r1", ckpt, signature=first) == first   # unchanged: not uploaded again
    time.sleep(0.01)
    (stage / "last.safetensors").write_text("epoch 2")              # a save under way: weights newer than state
    assert store.put_checkpoints("r1", ckpt, signature=first) is None
    (stage / "state.json").write_text('{"epoch": 2}')
    assert store.put_checkpoints("r1", ckpt, signature=first) not in (None, first)
    assert store.get_checkpoints("r1", tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "full" / "state.json").read_text() == '{"epoch": 2}'
    assert (tmp_path / "elsewhere" / "full" / "last.safetensors").read_text() == "epoch 2"
    snapshots = [p for p in (tmp_path / "store" / "checkpoints" / "r1").iterdir() if p.name.isdigit()]
    assert len(snapshots) == 1                                      # older snapshots are dropped
    store.delete_checkpoints("r1")
    assert not store.get_checkpoints("r1", tmp_path / "again")


def test_a_worker_claims_only_runs_that_fit_what_it_offers(db_url, tmp_path):
    from tlcore.runs import queue
    from tlcore.runs.store import requested_resources

    store = RunStore(db_url, artifacts_root=tmp_path / "runs", artifacts=None)
    job = "test_runs_worker:fake_run"
    big = store.create_run({"modality": "text"}, "2 gpus, 40 GB", job=job, resources={"gpus": 2, "memory_gb": 40})
    small = store.create_run({"modality": "text"}, "cpu", job=job)
    for run in (big, small):
        store.enqueue(run.id)
    assert (store.get(big.id).need_gpus, store.get(big.id).need_memory_gb) == (2, 40.0)
    assert requested_resources({"device": "cuda", "num_processes": 4}) == (4, None)
    assert requested_resources({"device": "cpu"}) == (0, None)
    with pytest.raises(ValueError, match="unknown resources"):
        requested_resources({}, {"gpu": 1})
    # The older run needs more than a CPU worker offers: that worker takes the newer one instead.
    claim = queue.claim_next(store, host="cpu-box", gpus=0, memory_gb=64)
    assert claim is not None and claim.run_id == small.id
    assert queue.claim_next(store, host="small-gpu", gpus=2, memory_gb=16) is None   # too little memory
    claim = queue.claim_next(store, host="gpu-box", gpus=2, memory_gb=80)
    assert claim is not None and claim.run_id == big.id
    assert (store.get(big.id).worker_gpus, store.get(big.id).worker_memory_gb) == (2, 80.0)
    store.dispose()


def test_the_app_refetches_a_run_whose_report_was_amended_in_the_store(tmp_path, monkeypatch):
    """A follow-up (the demo's scratch baseline) amends a finished run's report on a worker host; the app's local
    copy is replaced by the amended one at its next check, and served from disk in between."""
    from tlcore.runs import queue
    from tlcore.runs import store as store_module

    artifacts = ArtifactStore(str(tmp_path / "store"))
    worker_copy = tmp_path / "worker" / "run"
    worker_copy.mkdir(parents=True)
    app = RunStore(f"sqlite:///{tmp_path / 'runs.db'}", artifacts_root=tmp_path / "app", artifacts=artifacts)
    run = app.create_run({"modality": "text"}, "finished elsewhere", job="tests.test_runs_worker:fake_run")
    (worker_copy / "report.json").write_text(json.dumps({"after": {"accuracy": 0.5}}))
    artifacts.put_run(run.id, worker_copy)
    app.enqueue(run.id)
    claim = queue.claim_next(app)
    assert app.mark_done(run.id, {"after_accuracy": 0.5}, attempt=claim.attempt)
    done = app.get(run.id)
    local = app.run_folder(done)
    assert json.loads((local / "report.json").read_text())["after"]["accuracy"] == 0.5
    (worker_copy / "report.json").write_text(json.dumps({"after": {"accuracy": 0.5}, "baselines": {"scratch": {}}}))
    artifacts.put_run(run.id, worker_copy)                      # the follow-up's amendment
    assert "baselines" not in json.loads((app.run_folder(done) / "report.json").read_text())   # within 30 s
    monkeypatch.setattr(store_module, "VERSION_CHECK_S", 0.0)
    assert "baselines" in json.loads((app.run_folder(done) / "report.json").read_text())
    app.dispose()


def test_hosts_share_the_feature_cache_through_the_store(tmp_path, monkeypatch):
    """Host A extracts a data set's features once; host B (its own home, empty cache) gets them from the store
    without running the backbone, for the same owner only; the files are identical."""
    from conftest import write_image_set

    from tlcore.data.loaders import load_dataset
    from tlcore.models.features import extract_features
    from tlcore.models.registry import build_backbone
    from tlcore.paths import owner_scope

    monkeypatch.setenv("TRANSFERLAB_ARTIFACTS_URL", str(tmp_path / "store"))
    ds = load_dataset(write_image_set(tmp_path / "img", n_per_class=6), "image")
    backbone = build_backbone("tiny-image", "image")
    calls = []
    backbone.register_forward_hook(lambda *a: calls.append(1))

    def on_host(name: str, owner: str) -> tuple:
        monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / name))
        events, calls[:] = [], []
        with owner_scope(owner):
            feats = extract_features(backbone, ds, batch_size=4, progress=events.append)
        return feats, len(calls), [e.message for e in events]

    a, ran_a, _ = on_host("host-a", "alice@example.test")
    b, ran_b, said_b = on_host("host-b", "alice@example.test")
    c, ran_c, _ = on_host("host-c", "bob@example.test")
    assert ran_a > 0 and ran_b == 0 and "features from the shared cache" in said_b
    np.testing.assert_array_equal(a, b)
    assert ran_c > 0, "another owner's cached features were used"
    np.testing.assert_array_equal(a, c)
    stored = sorted(p.relative_to(tmp_path / "store").parts[:2] for p in (tmp_path / "store").rglob("*.npy"))
    assert len(stored) == 2 and all(parts == ("features", "users") for parts in stored)
