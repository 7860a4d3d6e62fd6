"""Data loading and validation: every format of DESIGN.md and every bad-input case has a clear message."""

import json
import zipfile

import pytest
from conftest import write_audio_set, write_image_set, write_text_set

from tlcore.data.loaders import load_dataset
from tlcore.data.split import cap_per_class, eval_split, stratified_split
from tlcore.errors import DataError


def test_text_csv_tsv_jsonl(tmp_path):
    ds = load_dataset(write_text_set(tmp_path / "t"), "text")
    assert len(ds) == 24 and ds.classes == ["negative", "positive"]
    (tmp_path / "a.tsv").write_text("text\tlabel\nhello there\tx\nbye now\ty\n", encoding="utf-8")
    assert load_dataset(tmp_path / "a.tsv", "text").labels == ["x", "y"]
    (tmp_path / "b.jsonl").write_text('{"text": "a", "label": "p"}\n\n{"text": "b", "label": "q"}\n')
    assert load_dataset(tmp_path / "b.jsonl", "text").items == ["a", "b"]
    (tmp_path / "c.csv").write_text("text\nonly text\nmore\n")
    assert load_dataset(tmp_path / "c.csv", "text").labels is None


def test_wrong_csv_columns_named(tmp_path):
    (tmp_path / "x.csv").write_text("sentence,label\nhi,a\n")
    with pytest.raises(DataError, match=r"no 'text' column \(found: sentence, label\)"):
        load_dataset(tmp_path / "x.csv", "text")


def test_non_utf8_text(tmp_path):
    (tmp_path / "x.csv").write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8.*line 2.*re-save it as UTF-8"):
        load_dataset(tmp_path / "x.csv", "text")


def test_bad_jsonl_line(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"text": "a", "label": "p"}\n{oops\n')
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        load_dataset(tmp_path / "x.jsonl", "text")


def test_empty_rows_skipped_or_refused(tmp_path):
    (tmp_path / "x.csv").write_text("text,label\ngood,a\n,b\nfine,\nok,b\n")
    ds = load_dataset(tmp_path / "x.csv", "text")
    assert ds.items == ["good", "ok"] and [p.reason for p in ds.problems] == ["empty text", "empty label"]
    with pytest.raises(DataError, match="row 3: empty text"):
        load_dataset(tmp_path / "x.csv", "text", on_error="refuse")


def test_image_folder_labeled_and_unlabeled(tmp_path):
    ds = load_dataset(write_image_set(tmp_path / "img"), "image")
    assert ds.classes == ["bright", "dark"] and len(ds) == 16 and ds.names[0].startswith("bright/")
    flat = load_dataset(write_image_set(tmp_path / "flat", labeled=False), "image")
    assert flat.labels is None and len(flat) == 16


def test_corrupt_and_unsupported_images(tmp_path):
    root = write_image_set(tmp_path / "img", n_per_class=3)
    (root / "dark" / "broken.png").write_bytes(b"\x89PNG not really")
    (root / "dark" / "notes.txt").write_text("hi")
    ds = load_dataset(root, "image")
    reasons = {p.where: p.reason for p in ds.problems}
    assert "unreadable or corrupt" in reasons["dark/broken.png"]
    assert "unsupported extension '.txt'" in reasons["dark/notes.txt"]
    assert len(ds) == 6
    with pytest.raises(DataError, match="broken.png: unreadable or corrupt"):
        load_dataset(root, "image", on_error="refuse")


def test_empty_label_folder_and_single_class(tmp_path):
    root = write_image_set(tmp_path / "img", n_per_class=2)
    (root / "empty").mkdir()
    with pytest.raises(DataError, match="label folder\\(s\\) empty are empty"):
        load_dataset(root, "image")
    (root / "empty").rmdir()
    import shutil

    shutil.rmtree(root / "dark")
    with pytest.raises(DataError, match="only one class"):
        load_dataset(root, "image", require_labels=True)


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope", "image")


def test_audio_folder_csv_and_zero_length(tmp_path):
    root = write_audio_set(tmp_path / "aud", n_per_class=3)
    assert load_dataset(root, "audio").classes == ["high", "low"]
    import numpy as np
    import soundfile as sf

    sf.write(str(root / "low" / "empty.wav"), np.zeros(0, dtype=np.float32), 16000)
    ds = load_dataset(root, "audio")
    assert any(p.where == "low/empty.wav" and "length zero" in p.reason for p in ds.problems)
    (root / "list.csv").write_text("path,label\nlow/low_0.wav,low\nhigh/high_0.wav,high\nmissing.wav,low\n")
    ds = load_dataset(root / "list.csv", "audio")
    assert len(ds) == 2 and ds.problems[0].reason == "file not found"


def test_zip_upload_and_traversal(tmp_path):
    root = write_image_set(tmp_path / "img", n_per_class=2)
    z = tmp_path / "img.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in root.rglob("*.png"):
            zf.write(f, f"img/{f.relative_to(root)}")
    assert len(load_dataset(z, "image")) == 4
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../../evil.png", b"x")
    with pytest.raises(DataError, match="path traversal"):
        load_dataset(bad, "image")
    (tmp_path / "notzip.zip").write_bytes(b"hello")
    with pytest.raises(DataError, match="not a readable .zip"):
        load_dataset(tmp_path / "notzip.zip", "image")


def test_zip_bomb_refused(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/x.png", b"\0" * (64 * 1024**2))
    with pytest.raises(DataError, match="zip bomb"):
        load_dataset(bomb, "image")


def test_content_hash_changes_with_content(tmp_path):
    a = load_dataset(write_text_set(tmp_path / "a"), "text")
    b = load_dataset(write_text_set(tmp_path / "b"), "text")
    c = load_dataset(write_text_set(tmp_path / "c", seed=1), "text")
    assert a.content_hash() == b.content_hash() != c.content_hash()


def test_stratified_split_is_stored_and_reused(tmp_path):
    ds = load_dataset(write_text_set(tmp_path / "a", n_per_class=10), "text")
    train, ev, path = eval_split(ds, 0.3)
    assert ev.class_counts() == {"negative": 3, "positive": 3} and len(train) == 14
    stored = json.loads(path.read_text())
    train2, ev2, _ = eval_split(ds, 0.3)
    assert ev2.items == ev.items and stored["eval"] == sorted(stored["eval"])
    assert not set(train.items) & set(ev.items)
    keep, held = stratified_split(["a"] * 5 + ["b"] * 5, 0.2, seed=1)
    assert len(held) == 2 and sorted(keep + held) == list(range(10))
    assert cap_per_class(ds, 2, seed=0).class_counts() == {"negative": 2, "positive": 2}


def test_split_needs_two_per_class(tmp_path):
    (tmp_path / "x.csv").write_text("text,label\na,p\nb,q\nc,q\n")
    with pytest.raises(DataError, match="class 'p' has 1 example"):
        eval_split(load_dataset(tmp_path / "x.csv", "text"), 0.3)


def test_hidden_folders_are_never_read_and_only_reported_when_they_hold_media(tmp_path):
    """A hidden folder is not a label: one with images is listed as skipped; one holding a link that leads out of the
    data set (a tool's .cache) is neither followed nor refused, since nothing in it is used."""
    root = write_image_set(tmp_path / "imgs", n_per_class=2)
    (root / ".cache").mkdir()
    (root / ".cache" / "outside").symlink_to(tmp_path)
    ds = load_dataset(root, "image")
    assert ds.classes == ["bright", "dark"] and not ds.problems
    (root / ".more").mkdir()
    (root / "bright" / "bright_0.png").rename(root / ".more" / "b.png")
    ds = load_dataset(root, "image")
    assert [p.where for p in ds.problems] == [".more/"] and "hidden folder" in ds.problems[0].reason
