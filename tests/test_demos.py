"""Built-in demo data sets: layout, counts, disjoint splits, reproducibility, atomic writes; eSpeak NG synthesis."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tlcore.data import demos
from tlcore.data.demos import DEMOS, SPLITS, demo_dir, list_demos, make_demo
from tlcore.errors import ConfigError, DataError
from tlcore.tasks import get_task, task_names

NAMES = [spec.name for spec in list_demos() if spec.task == "classify"]  # ner/asr demos: tests/test_ner.py, test_asr.py


def _usable(name: str) -> str:
    why_not = DEMOS.get(name).available()
    if why_not:
        pytest.skip(why_not)
    return name


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """Each available demo at size small: twice with seed 0, once with seed 1 (made lazily, once)."""
    cache: dict = {}

    def get(name: str, seed: int = 0, copy: int = 0) -> Path:
        key = (name, seed, copy)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"{name}-s{seed}-{copy}") / "demo"
            cache[key] = make_demo(_usable(name), out, seed=seed, size="small")
        return cache[key]

    return get


def _file_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _contents(split: Path, modality: str) -> list[str]:
    """A content hash per item: file bytes for images/audio, the text for text."""
    if modality == "text":
        with open(split / "data.csv", newline="", encoding="utf-8") as f:
            return [hashlib.sha256(row["text"].encode()).hexdigest() for row in csv.DictReader(f)]
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(split.rglob("*")) if p.is_file()]


def test_every_demo_is_registered_with_a_description_and_license():
    assert {"emoji", "digits", "fashion-shift", "sentiment", "spoken-digits"} <= set(NAMES)
    for spec in list_demos():
        assert spec.task in task_names() and spec.modality in get_task(spec.task).modalities   # a task that takes it
        assert spec.description and "\n" not in spec.description and spec.license


@pytest.mark.parametrize("name", NAMES)
def test_layout_and_counts_match_manifest(made, name):
    out = made(name)
    spec = DEMOS.get(name)
    manifest = json.loads((out / "demo.json").read_text())
    assert (manifest["name"], manifest["seed"], manifest["size"]) == (name, 0, "small")
    assert manifest["license"] == spec.license
    for split in SPLITS:
        counts = manifest["counts"][split]
        folder = out / split
        if spec.modality == "text":
            with open(folder / "data.csv", newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            columns = ["text"] if split == "unlabeled" else ["text", "label"]
            assert list(rows[0]) == columns
            assert len(rows) == counts["total"]
            if split != "unlabeled":
                assert {c: sum(r["label"] == c for r in rows) for c in counts["per_class"]} == counts["per_class"]
            continue
        ext = ".png" if spec.modality == "image" else ".wav"
        files = [p for p in folder.rglob("*") if p.is_file() and p.name != "groups.csv"]
        assert files and all(p.suffix == ext for p in files)
        if split != "unlabeled" and name in ("emoji", "spoken-digits"):     # glyph / speaker of every labeled file
            groups = (folder / "groups.csv").read_text().splitlines()
            assert groups[0] == "file,group" and len(groups) == 1 + len(files)
        assert len(files) == counts["total"]
        if split == "unlabeled":
            assert all(p.parent == folder for p in files) and counts["per_class"] is None
        else:
            assert {d.name: len(list(d.iterdir())) for d in folder.iterdir() if d.is_dir()} == counts["per_class"]
            assert len(counts["per_class"]) >= 2 and len(set(counts["per_class"].values())) == 1  # balanced


@pytest.mark.parametrize("name", NAMES)
def test_splits_load_with_the_dataset_loader(made, name):
    from tlcore.data import load_dataset

    out, modality = made(name), DEMOS.get(name).modality
    manifest = json.loads((out / "demo.json").read_text())
    for split in ("source", "target", "eval"):
        data = load_dataset(out / split, modality, on_error="refuse", require_labels=True)
        assert data.class_counts() == manifest["counts"][split]["per_class"]
    unlabeled = load_dataset(out / "unlabeled", modality, on_error="refuse")
    assert not unlabeled.labeled and len(unlabeled) == manifest["counts"]["unlabeled"]["total"]


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_disjoint_from_target_and_unlabeled(made, name):
    out, modality = made(name), DEMOS.get(name).modality
    held_out = set(_contents(out / "eval", modality))
    assert len(held_out) == len(_contents(out / "eval", modality))
    assert not held_out & set(_contents(out / "target", modality))
    assert not held_out & set(_contents(out / "unlabeled", modality))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bytes_other_seed_differs(made, name):
    first, again, other = made(name), made(name, copy=1), made(name, seed=1)
    assert _file_hashes(first) == _file_hashes(again)
    modality = DEMOS.get(name).modality
    for split in SPLITS:
        assert set(_contents(other / split, modality)) != set(_contents(first / split, modality))


def test_refuses_an_occupied_folder_and_keeps_its_files(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not the 'sentiment' demo"):
        make_demo(_usable("sentiment"), out, size="small")
    assert (out / "notes.txt").read_text() == "keep me" and len(list(out.iterdir())) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no partial folder left behind


def test_a_finished_demo_is_kept_and_another_seed_is_refused(tmp_path):
    out = make_demo(_usable("sentiment"), tmp_path / "demo", size="small")
    before = _file_hashes(out)
    stamp = (out / "demo.json").stat().st_mtime_ns
    assert make_demo("sentiment", out, size="small") == out
    assert (out / "demo.json").stat().st_mtime_ns == stamp and _file_hashes(out) == before
    with pytest.raises(DataError):
        make_demo("sentiment", out, seed=1, size="small")


def test_a_failing_generator_leaves_nothing(tmp_path, monkeypatch):
    def broken(out: Path, seed: int, size: str) -> None:
        (out / "source").mkdir()
        raise RuntimeError("boom")

    spec = DEMOS.get(_usable("sentiment"))
    monkeypatch.setitem(DEMOS._items, "sentiment", dataclasses.replace(spec, make=broken))
    with pytest.raises(RuntimeError, match="boom"):
        make_demo("sentiment", tmp_path / "demo", size="small")
    assert list(tmp_path.iterdir()) == []


def test_an_unavailable_demo_says_why(tmp_path, monkeypatch):
    spec = DEMOS.get("fashion-shift")
    monkeypatch.setitem(DEMOS._items, "fashion-shift",
                        dataclasses.replace(spec, available=lambda: "run `apt-get install dataset-fashion-mnist`"))
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        make_demo("fashion-shift", tmp_path / "demo", size="small")
    assert list(tmp_path.iterdir()) == []


def test_unknown_name_or_size_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        make_demo("no-such-demo", tmp_path / "x")
    assert all(name in str(info.value) for name in NAMES)
    with pytest.raises(ConfigError, match="small"):
        make_demo("sentiment", tmp_path / "x", size="huge")


def test_demo_dir_caches_under_transferlab_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))
    path = demo_dir(_usable("sentiment"), size="small", seed=3)
    assert path == tmp_path / "cache" / "demos" / "sentiment-small-s3"
    assert json.loads((path / "demo.json").read_text())["seed"] == 3
    stamp = (path / "demo.json").stat().st_mtime_ns
    assert demo_dir("sentiment", size="small", seed=3) == path
    assert (path / "demo.json").stat().st_mtime_ns == stamp


def test_espeak_speaks_a_word():
    from tlcore.data.demos import espeak

    if espeak.available():
        pytest.skip(espeak.available())
    audio, rate = espeak.synthesize("seven", "en-us", rate=175, pitch=50, seed=1)
    assert rate == 22050 and audio.dtype == np.float32
    assert 0.2 < len(audio) / rate < 2.0
    assert np.abs(audio).max() > 0.05 and np.sqrt(np.mean(audio**2)) > 0.01
    with pytest.raises(DataError, match="unknown eSpeak NG voice"):
        espeak.synthesize("seven", "xx-not-a-voice")


def test_espeak_batches_are_reproducible():
    from tlcore.data.demos import espeak

    if espeak.available():
        pytest.skip(espeak.available())
    jobs = [{"text": w, "voice": v, "seed": 5} for w in ("one", "two") for v in ("en-029+f3", "en-gb-scotland")]
    first, rate = espeak.synthesize_batch(jobs)
    second, _ = espeak.synthesize_batch(jobs)
    assert rate == 22050 and len(first) == 4
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_importing_demos_loads_no_data_libraries():
    code = ("import sys, tlcore.data.demos as d; assert 'digits' in d.DEMOS; "
            "print(sorted(m for m in ('sklearn', 'matplotlib', 'fontTools', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(demos.__file__).resolve().parents[3])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_negative_seed_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="non-negative"):
        make_demo("sentiment", tmp_path / "x", seed=-1)
