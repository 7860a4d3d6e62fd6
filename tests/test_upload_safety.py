"""Confined, bounded uploads: paths inside tables stay inside their data set (refused before any probing, so no
message tells whether an outside file exists), archives are checked member by member and in total, images and
audio are decoded under explicit caps, and hostile tables end in a message naming the line."""

import csv
import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import write_image_set, write_wav

from tlcore.data import archive, loaders
from tlcore.data.loaders import load_dataset
from tlcore.errors import DataError

# ---------------------------------------------------------------- paths named inside tables

def _audio_table(root: Path, bad: str) -> Path:
    for label in ("low", "high"):
        write_wav(root / label / f"{label}.wav", 300 if label == "low" else 1500)
    (root / "data.csv").write_text(f"path,label\nlow/low.wav,low\n{bad},high\nhigh/high.wav,high\n")
    return root / "data.csv"


def _escape(kind: str, tmp: Path) -> str:
    outside = tmp / "outside"
    outside.mkdir(exist_ok=True)
    write_wav(outside / "secret.wav", 440)
    data = tmp / "data"
    (data / "low").mkdir(parents=True, exist_ok=True)
    if kind == "absolute":
        return str(outside / "secret.wav")
    if kind == "absolute-missing":
        return str(outside / "no-such.wav")
    if kind == "dotdot":
        return "../outside/secret.wav"
    if kind == "symlink-file":
        (data / "low" / "link.wav").symlink_to(outside / "secret.wav")
        return "low/link.wav"
    (data / "shared").symlink_to(outside, target_is_directory=True)
    return "shared/secret.wav"


@pytest.mark.parametrize("kind", ["absolute", "absolute-missing", "dotdot", "symlink-file", "symlink-folder"])
def test_audio_table_path_escapes_are_refused_naming_the_row_before_any_probing(tmp_path, kind, monkeypatch):
    bad = _escape(kind, tmp_path)
    table = _audio_table(tmp_path / "data", bad)
    probed = []
    real = loaders._check_media
    monkeypatch.setattr(loaders, "_check_media", lambda f, m: probed.append(Path(f)) or real(f, m))
    with pytest.raises(DataError) as err:
        load_dataset(table, "audio", on_error="skip")      # refused even when bad rows would be skipped
    message = str(err.value)
    assert "data.csv row 3" in message and repr(bad) in message
    assert "not found" not in message and "exist" not in message
    assert all(p.is_relative_to(os.path.realpath(tmp_path / "data")) for p in probed)
    assert not any("outside" in str(p) for p in probed)


def test_existing_and_missing_outside_paths_get_the_same_message(tmp_path):
    messages = []
    for name in ("secret.wav", "no-such.wav"):
        folder = tmp_path / name
        (folder / "outside").mkdir(parents=True)
        write_wav(folder / "outside" / "secret.wav", 440)
        bad = str(folder / "outside" / name)
        with pytest.raises(DataError) as err:
            load_dataset(_audio_table(folder / "data", bad), "audio")
        messages.append(str(err.value).replace(bad, "<path>"))
    assert messages[0] == messages[1]


def test_links_that_stay_inside_the_data_set_are_fine(tmp_path):
    table = _audio_table(tmp_path / "data", "alias.wav")
    (tmp_path / "data" / "alias.wav").symlink_to(tmp_path / "data" / "high" / "high.wav")
    ds = load_dataset(table, "audio", on_error="refuse")
    assert len(ds) == 3 and ds.labels == ["low", "high", "high"]


@pytest.mark.parametrize("bad", ["/etc/hostname", "../outside.wav", "C:\\Windows\\x.wav"])
def test_asr_metadata_escapes_are_refused_naming_the_line(tmp_path, bad):
    from tlcore.tasks.asr.data import load_asr_dataset

    write_wav(tmp_path / "clips" / "a.wav", 300)
    (tmp_path / "clips" / "metadata.csv").write_text(f"file_name,transcription\na.wav,hello\n{bad},secret\n")
    with pytest.raises(DataError, match=r"metadata.csv line 3: path .* (absolute|'\.\.')"):
        load_asr_dataset(tmp_path / "clips", on_bad_file="skip")


def test_folder_sets_do_not_follow_links_out(tmp_path):
    outside = write_image_set(tmp_path / "outside", n_per_class=1)
    root = write_image_set(tmp_path / "data", n_per_class=2)
    (root / "stolen").symlink_to(outside / "bright", target_is_directory=True)
    with pytest.raises(DataError, match="'stolen' .* symbolic link that leads outside"):
        load_dataset(root, "image")
    (root / "stolen").unlink()
    (root / "dark" / "x.png").symlink_to(outside / "dark" / "dark_0.png")
    with pytest.raises(DataError, match="x.png.*outside the data set"):
        load_dataset(root, "image")
    (root / "dark" / "x.png").unlink()
    (root / "dark" / "inside.png").symlink_to(root / "dark" / "dark_0.png")    # a link within the set is fine
    assert len(load_dataset(root, "image")) == 5


# ---------------------------------------------------------------- archives

def _zip(path: Path, members: dict, encrypted: bool = False) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    if encrypted:      # set the "encrypted" flag bit in every local and central header (zipfile cannot encrypt)
        raw = bytearray(path.read_bytes())
        for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            i = raw.find(sig)
            while i >= 0:
                raw[i + at] |= 0x1
                i = raw.find(sig, i + 4)
        path.write_bytes(bytes(raw))
    return path


def _unzipped_leftovers() -> list:
    from tlcore.paths import cache_dir

    return [p.name for p in cache_dir("unzipped").iterdir()]


def test_each_member_is_ratio_checked_not_only_big_ones(tmp_path):
    """The issue's bomb in small: several members of a few MiB of zeros, each far over the ratio."""
    path = _zip(tmp_path / "b.zip", {f"set/a/{i}.png": bytes(3 * 1024**2) for i in range(3)})
    with pytest.raises(DataError, match=r"set/a/0.png' expands .*zip bomb"):
        archive.extract_zip(path)
    assert _unzipped_leftovers() == []


def test_small_compressible_members_are_no_false_alarm(tmp_path):
    text = "text,label\n" + "".join(f"the same review again,{'ab'[i % 2]}\n" for i in range(20_000))
    path = _zip(tmp_path / "t.zip", {"set/data.csv": text.encode()})
    assert len(load_dataset(path, "text")) == 20_000


def test_total_ratio_catches_many_small_members(tmp_path):
    path = _zip(tmp_path / "b.zip", {f"set/{i}.txt": bytes(800 * 1024) for i in range(40)})
    with pytest.raises(DataError, match=r"expands .* in all"):
        archive.extract_zip(path)


def test_count_and_total_size_limits(tmp_path, monkeypatch):
    path = _zip(tmp_path / "n.zip", {f"set/{i}.txt": b"x" * 100 for i in range(8)})
    monkeypatch.setattr(archive, "MAX_FILES", 5)
    with pytest.raises(DataError, match="8 entries; the limit is 5"):
        archive.extract_zip(path)
    monkeypatch.setattr(archive, "MAX_FILES", 100)
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 500)
    with pytest.raises(DataError, match="expands to more than"):
        archive.extract_zip(path)


def test_lying_headers_hit_the_streamed_budget_and_leave_nothing(tmp_path, monkeypatch):
    path = _zip(tmp_path / "l.zip", {f"set/{i}.txt": os.urandom(4000) for i in range(5)})
    monkeypatch.setattr(archive, "check_members", lambda zf: zf.infolist())   # as if the sizes in the header lied
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 10_000)
    with pytest.raises(DataError, match="beyond its declared size"):
        archive.extract_zip(path)
    assert _unzipped_leftovers() == []


@pytest.mark.parametrize("members, encrypted, message", [
    ({"set/a/x.png": b"1", "set/a/x.png/y.png": b"2"}, False, "both as a file and as a folder"),
    ({"set/a": b"1", "set/a/y.png": b"2"}, False, "both as a file and as a folder"),
    ({"set/a/x.png": b"1", "set/a/inner.zip": b"PK"}, False, "itself an archive"),
    ({"set/a/x.png": b"1", "set/a/data.tar.gz": b"x"}, False, "itself an archive"),
    ({"set/a/x.png": b"1"}, True, "password-protected zip"),
    ({"set/" + "d/" * 20 + "x.png": b"1"}, False, "folders deep"),
    ({"../x.png": b"1"}, False, "path traversal"),
])
def test_archive_member_checks(tmp_path, members, encrypted, message):
    with pytest.raises(DataError, match=message):
        archive.extract_zip(_zip(tmp_path / "a.zip", members, encrypted))


def test_duplicate_members_are_refused(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = _zip(tmp_path / "d.zip", {"set/x.png": b"1"})
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("set/x.png", b"2")
    with pytest.raises(DataError, match="twice"):
        archive.extract_zip(path)


def test_upload_is_hashed_streamed_and_reused(tmp_path, monkeypatch):
    root = write_image_set(tmp_path / "set", n_per_class=2)
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(root.rglob("*.png")):
            zf.write(f, f.relative_to(tmp_path))
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read whole") if self == path else real(self))
    first = archive.extract_zip(path)
    assert first.name == "set" and (first.parent / ".complete").read_text().isdigit()
    assert archive.extract_zip(path) == first


# ---------------------------------------------------------------- images and audio

def _png_header(path: Path, w: int, h: int) -> Path:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path


def test_pixel_cap_refuses_bombs_from_the_header(tmp_path, monkeypatch):
    from tlcore.data.images import image_problem, load_rgb

    big = _png_header(tmp_path / "big.png", 50_000, 50_000)
    with pytest.raises(DataError, match="big.png: image has more than 40,000,000 pixels"):
        load_rgb(big)
    mid = _png_header(tmp_path / "mid.png", 3000, 3000)            # 9 M: under the default cap
    monkeypatch.setenv("TRANSFERLAB_MAX_IMAGE_PIXELS", "1000000")
    assert "over the limit of 1,000,000" in image_problem(mid) or "more than 1,000,000" in image_problem(mid)


def test_modes_become_plain_rgb(tmp_path):
    from PIL import Image

    from tlcore.data.images import load_rgb

    ramp = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 257)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    arr = np.asarray(load_rgb(tmp_path / "deep.png"))
    assert arr.shape == (16, 16, 3) and arr.min() == 0 and arr.max() == 255 and len(np.unique(arr)) == 256
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    assert np.asarray(load_rgb(tmp_path / "c.jpg"))[..., 0].mean() > 200
    (tmp_path / "fake.png").write_text("not an image")
    with pytest.raises(DataError, match="fake.png: unreadable or corrupt image"):
        load_rgb(tmp_path / "fake.png")


def test_audio_duration_cap_is_checked_from_the_header(tmp_path, monkeypatch):
    import soundfile as sf

    from tlcore.data import audio

    write_wav(tmp_path / "long.wav", 440, seconds=3.0)
    monkeypatch.setenv("TRANSFERLAB_MAX_AUDIO_SECONDS", "2")
    monkeypatch.setattr(sf, "read", lambda *a, **k: pytest.fail("decoded before the header check"))
    with pytest.raises(DataError, match="long.wav: clip is 3 s long, over the limit of 2 s"):
        audio.load_audio(tmp_path / "long.wav", 16000)


def test_stereo_8khz_is_downmixed_and_resampled(tmp_path):
    import soundfile as sf

    from tlcore.data.audio import load_audio

    t = np.arange(8000) / 8000
    sf.write(str(tmp_path / "s.flac"), np.stack([np.sin(2 * np.pi * 200 * t)] * 2, axis=1) * 0.3, 8000)
    wave = load_audio(tmp_path / "s.flac", 16000)
    assert wave.shape == (16000,) and 0.2 < np.abs(wave).max() < 0.4


# ---------------------------------------------------------------- tables

def test_long_fields_and_legit_multiline_quotes_load(tmp_path):
    rows = [["x" * 300_000, "a"], ["first line\nsecond line, with a comma", "b"], ["plain", "a"]]
    with open(tmp_path / "t.csv", "w", newline="") as f:
        csv.writer(f).writerows([["text", "label"], *rows])
    ds = load_dataset(tmp_path / "t.csv", "text")
    assert [len(t) for t in ds.items] == [300_000, len(rows[1][0]), 5] and ds.names[2] == "row 5"


def test_a_field_over_the_limit_is_a_clear_error(tmp_path, monkeypatch):
    from tlcore.data import tables

    before = csv.field_size_limit()
    monkeypatch.setattr(tables, "MAX_FIELD_BYTES", 1000)
    csv.field_size_limit(1000)
    try:
        (tmp_path / "t.csv").write_text("text,label\n" + "y" * 2000 + ",a\n")
        with pytest.raises(DataError, match="t.csv line 2: cannot parse the table .*field larger"):
            load_dataset(tmp_path / "t.csv", "text")
    finally:
        csv.field_size_limit(before)


def test_unclosed_quote_names_its_line(tmp_path):
    lines = ["text,label"] + [f"row {i},{'ab'[i % 2]}" for i in range(40)]
    lines[7] = '"row 6 with a stray quote,a'
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 8: a quote .* lines 8-41 were read as one row"):
        load_dataset(tmp_path / "t.csv", "text")


def test_encodings(tmp_path):
    (tmp_path / "u16.csv").write_bytes("text,label\nGrüße,a\nçà,b\n".encode("utf-16"))
    assert load_dataset(tmp_path / "u16.csv", "text").items == ["Grüße", "çà"]
    (tmp_path / "l1.csv").write_bytes("text,label\nok,a\nGrüße,b\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not UTF-8 text \(bad byte at line 3\).*Latin-1"):
        load_dataset(tmp_path / "l1.csv", "text")
    (tmp_path / "nul.csv").write_bytes(b"text,label\nok,a\nx\x00y,b\n")
    with pytest.raises(DataError, match="NUL bytes .*line 3"):
        load_dataset(tmp_path / "nul.csv", "text")


def test_jsonl_values_must_be_strings(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"text": "ok", "label": "a"}\n{"text": ["a", "b"], "label": "b"}\n')
    with pytest.raises(DataError, match="t.jsonl line 2: 'text' must be a string, not a JSON list"):
        load_dataset(tmp_path / "t.jsonl", "text")
    (tmp_path / "n.jsonl").write_text('{"text": "ok", "label": 1}\n{"text": "fine", "label": 0}\n')
    assert load_dataset(tmp_path / "n.jsonl", "text").labels == ["1", "0"]


def test_audio_zip_with_table_beside_the_clips_is_read_as_a_table(tmp_path):
    buf = io.BytesIO()
    write_wav(tmp_path / "a.wav", 300)
    write_wav(tmp_path / "b.wav", 1500)
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("set/data.csv", "path,label\na.wav,low\nb.wav,high\n")
        zf.write(tmp_path / "a.wav", "set/a.wav")
        zf.write(tmp_path / "b.wav", "set/b.wav")
    (tmp_path / "s.zip").write_bytes(buf.getvalue())
    ds = load_dataset(tmp_path / "s.zip", "audio", on_error="refuse")
    assert ds.labels == ["low", "high"] and not ds.problems
