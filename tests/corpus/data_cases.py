"""Bad-input corpus, data files and uploads: hostile tables, images, audio, path escapes and archives.

Each ``make(folder)`` writes its input under ``folder`` and returns an argv for ``python -m tlcore`` or a callable
that goes through the API or the app's upload path (``ui.datasets.save_upload`` + the loader the Data page uses).
Path-escape cases write a secret file *outside* the data set folder (``folder/outside``) and check its text never
shows up. Valid-but-odd inputs (``expect="ok"``) also check the result is right (e.g. a 16-bit image is not
saturated white, 8 kHz stereo becomes 16 kHz mono of the right length), so they can fail.

MP3: written with soundfile (libsndfile >= 1.1 has an MP3 encoder); where it has none the mp3 case is built as
a case that is skipped at make time with the reason (``pytest.skip``).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import numpy as np

from corpus import Case

SECRET = "TL-SECRET-7f3a9c-do-not-read"
_SKIP_WORDS = ("skipped", "ignored", "dropped")     # for runs that complete: their gain warnings are not notices
TINY = {"text": "tiny-text", "image": "tiny-image", "audio": "tiny-audio"}


# ---------------------------------------------------------------- helpers

def _finetune(folder: Path, modality: str, target: Path, *extra: str) -> list:
    return ["finetune", "--modality", modality, "--target", str(target), "--backbone", TINY[modality],
            "--epochs", "1", "--baselines", "", "--out", str(folder / "run"), "--quiet", *extra]


def _finetune_checked(folder: Path, modality: str, target: Path, n_items: int, *extra: str):
    """Fine-tune through the CLI, then check the report used every item (train + eval) and skipped none: a valid
    but odd input must be used, not dropped."""
    def run():
        from tlcore.cli import main

        report_path = folder / "report.json"
        rc = main([str(a) for a in _finetune(folder, modality, target, *extra, "--json", report_path)])
        _check(rc == 0, f"a valid input was refused (exit {rc})")
        data = json.loads(report_path.read_text())["data"]
        used = data["train"] + data["val"] + data["eval"]
        _check(used == n_items and not data["problems"], f"{used} of {n_items} items used; problems {data['problems']}")
    return run


def _csv(path: Path, rows: list, header=("text", "label"), encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _text_rows(n_per_class: int = 6) -> list:
    return [[f"the film was {w} number {i}", label] for label, w in (("positive", "great"), ("negative", "awful"))
            for i in range(n_per_class)]


def _secret_file(folder: Path, name: str = "secret.wav") -> Path:
    """A file outside the data set folder whose text must never be read or shown."""
    out = folder / "outside"
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(SECRET)
    return out / name


def _wav(path: Path, seconds: float = 0.4, sr: int = 16000, channels: int = 1, freq: float = 440.0, fmt=None) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    wave = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, format=fmt) if fmt else sf.write(str(path), data, sr)
    return path


def _audio_folder(folder: Path, n: int = 3) -> Path:
    for label, freq in (("low", 220.0), ("high", 1760.0)):
        for i in range(n):
            _wav(folder / label / f"{label}_{i}.wav", freq=freq * (1 + 0.05 * i))
    return folder


def _image_folder(folder: Path, n: int = 3) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, level in (("bright", 200), ("dark", 40)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            arr = np.clip(level + rng.normal(0, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(folder / label / f"{label}_{i}.png")
    return folder


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A valid PNG header declaring ``width`` x ``height`` (1-bit grey) with a tiny IDAT: a decompression bomb's
    signature, written without ever allocating the pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def _show_problems(ds) -> None:
    """What the Data page shows about skipped files (its notice)."""
    if ds.problems:
        print(f"{len(ds.problems)} unusable file(s)/row(s) skipped: " + "; ".join(map(str, ds.problems[:3])))


def _page_load(path: Path, modality: str, task: str = "classify"):
    """The Data page's loader on an uploaded split; prints its notice like the page."""
    from ui import datasets

    data = datasets.load(str(path), modality) if task == "classify" else datasets.load_task(str(path), task)
    _show_problems(data)
    return data


def _upload(path: Path) -> Path:
    """Store a file the way the app's upload does; returns where it landed."""
    from ui import datasets

    return datasets.save_upload(path.name, path.read_bytes())


def _upload_and_load(path: Path, modality: str, task: str = "classify"):
    return lambda: _page_load(_upload(path), modality, task)


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)      # a wrong result is a failure of the case (reported as a traceback)


def _zip(path: Path, members: dict, *, symlinks=(), flags=None) -> Path:
    """``members``: name -> bytes (None: a folder entry). ``symlinks``: names stored as links."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            if data is None:
                zf.writestr(zipfile.ZipInfo(name if name.endswith("/") else name + "/"), b"")
                continue
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in symlinks:
                info.external_attr = (0o120777 << 16)
            zf.writestr(info, data)
    return path


def _png_bytes(level: int = 120) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), level, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _image_zip_members(n: int = 2) -> dict:
    return {f"set/{label}/{label}_{i}.png": _png_bytes(level + i) for label, level in (("a", 30), ("b", 220))
            for i in range(n)}


# ---------------------------------------------------------------- text tables

def text_empty(folder):
    (folder / "data").mkdir()
    (folder / "data" / "data.csv").write_bytes(b"")
    return _finetune(folder, "text", folder / "data")


def text_header_only(folder):
    _csv(folder / "data" / "data.csv", [])
    return _finetune(folder, "text", folder / "data")


def text_one_class(folder):
    _csv(folder / "data" / "data.csv", [[f"only text {i}", "same"] for i in range(10)])
    return _finetune(folder, "text", folder / "data")


def text_1000_classes(folder):
    _csv(folder / "data" / "data.csv", [[f"example {i}", f"class{i:04d}"] for i in range(1000)])
    return _finetune(folder, "text", folder / "data")


def text_stray_quote(folder):
    """Row 7 opens a quote that never closes: it used to swallow 35 of 40 rows with a misleading warning."""
    rows = [f"review number {i},{'pos' if i % 2 else 'neg'}" for i in range(40)]
    rows[6] = '"review number 6 was great,pos'
    path = folder / "data" / "data.csv"
    path.parent.mkdir(parents=True)
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return _finetune(folder, "text", folder / "data")


def text_latin1(folder):
    _csv(folder / "data" / "data.csv", _text_rows() + [["Müller's café was très bien", "positive"]], encoding="latin-1")
    return _finetune(folder, "text", folder / "data")


def text_utf16_bom(folder):
    path = _csv(folder / "data" / "data.csv", _text_rows() + [["Grüße aus Köln, très bien", "positive"]],
                encoding="utf-16")

    def run():
        from tlcore.data.loaders import load_dataset

        ds = load_dataset(path, "text")
        _check(len(ds) == 13 and "Grüße aus Köln, très bien" in ds.items, f"UTF-16 decoded wrongly: {ds.items[-1:]}")
    return run


def text_utf16_no_bom(folder):
    path = folder / "data" / "data.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes("text,label\nhello,a\nworld,b\n".encode("utf-16-le"))
    return _finetune(folder, "text", folder / "data")


def text_nul_bytes(folder):
    path = folder / "data" / "data.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"text,label\nfine,a\nbro\x00ken,b\n")
    return _finetune(folder, "text", folder / "data")


def text_1mb_row(folder):
    rows = _text_rows()
    rows[0] = ["great " * 175_000, "positive"]        # ~1 MB in one field (Python's csv limit is 128 KiB)
    _csv(folder / "data" / "data.csv", rows)
    return _finetune_checked(folder, "text", folder / "data", 12, "--strategy", "linear_probe")


def jsonl_text_list(folder):
    path = folder / "data" / "data.jsonl"
    path.parent.mkdir(parents=True)
    lines = [{"text": f"sentence {i}", "label": "ab"[i % 2]} for i in range(8)]
    lines[4]["text"] = ["a", "list", "of", "words"]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return _finetune(folder, "text", folder / "data")


def jsonl_label_object(folder):
    path = folder / "data" / "data.jsonl"
    path.parent.mkdir(parents=True)
    lines = [{"text": f"sentence {i}", "label": "ab"[i % 2]} for i in range(8)]
    lines[2]["label"] = {"name": "a"}
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return _finetune(folder, "text", folder / "data")


def tsv_unquoted_separator(folder):
    path = folder / "data" / "data.tsv"
    path.parent.mkdir(parents=True)
    path.write_text("text\tlabel\n" + "".join(f"row {i}\t{'ab'[i % 2]}\n" for i in range(8))
                    + "a tab\tinside the text\ta\n")
    return _finetune(folder, "text", folder / "data")


def ner_length_mismatch(folder):
    path = folder / "data" / "train.jsonl"
    path.parent.mkdir(parents=True)
    rows = [{"tokens": ["Anna", "lives", "in", "Berlin"], "tags": ["B-PER", "O", "O", "B-LOC"]}] * 5
    rows.append({"tokens": ["Bob", "works", "at", "Acme"], "tags": ["B-PER", "O", "B-ORG"]})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return _finetune(folder, "text", folder / "data", "--task", "ner")


def ner_bioes_scheme(folder):
    path = folder / "data" / "train.conll"
    path.parent.mkdir(parents=True)
    path.write_text("Anna B-PER\nWeber E-PER\nlives O\n\nBob S-PER\nsleeps O\n")
    return _finetune(folder, "text", folder / "data", "--task", "ner")


def ner_io_scheme(folder):
    path = folder / "data" / "train.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"tokens": ["Anna", "Weber", "lives"], "tags": ["PER", "PER", "O"]}) + "\n")
    return _finetune(folder, "text", folder / "data", "--task", "ner")


# ---------------------------------------------------------------- images

def image_truncated(folder):
    root = _image_folder(folder / "data")
    good = (root / "dark" / "dark_0.png").read_bytes()
    from PIL import Image

    big = root / "dark" / "cut.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(big)
    big.write_bytes(big.read_bytes()[: len(good) // 2 + 200])
    return _finetune(folder, "image", root, "--on-bad-file", "refuse")


def image_truncated_skipped(folder):
    """The default (skip) lists the truncated file and goes on: the Data page's notice."""
    root = _image_folder(folder / "data")
    from PIL import Image

    cut = root / "bright" / "cut.jpg"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(cut, quality=90)
    cut.write_bytes(cut.read_bytes()[:600])

    def run():
        ds = _page_load(root, "image")
        _check(len(ds) == 6 and any("cut.jpg" in p.where for p in ds.problems), "truncated JPEG not listed")
    return run


def image_fake_png(folder):
    root = _image_folder(folder / "data")
    (root / "bright" / "notes.png").write_text("this is a text file renamed to .png\n")
    return _finetune(folder, "image", root, "--on-bad-file", "refuse")


def image_bomb(folder):
    root = _image_folder(folder / "data")
    _png_header_only(root / "bright" / "bomb.png", 60_000, 60_000)      # 3.6 billion pixels declared
    return _finetune(folder, "image", root, "--on-bad-file", "refuse")


def image_bomb_predict_path(folder):
    """A bomb reaching the decoder directly (what predict and preprocessing call)."""
    path = folder / "bomb.png"
    _png_header_only(path, 60_000, 60_000)

    def run():
        from tlcore.models.image import load_rgb

        load_rgb(path)
    return run


def _decode_all(root: Path, check) -> callable:
    def run():
        from tlcore.data.loaders import load_dataset
        from tlcore.models.image import load_rgb

        ds = load_dataset(root, "image", on_error="refuse")
        for item in ds.items:
            im = load_rgb(item)
            _check(im.mode == "RGB", f"{item} decoded as {im.mode}")
            check(Path(item).name, np.asarray(im))
    return run


def image_one_pixel(folder):
    from PIL import Image

    root = folder / "data"
    for label, v in (("a", 10), ("b", 240)):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (1, 1), (v + i, v, v - i)).save(root / label / f"{i}.png")
    return _finetune_checked(folder, "image", root, 6, "--strategy", "linear_probe")


def image_cmyk(folder):
    from PIL import Image

    root = _image_folder(folder / "data", n=2)
    Image.new("CMYK", (12, 12), (0, 255, 255, 0)).save(root / "bright" / "cmyk.jpg")      # pure red in CMYK

    def check(name, arr):
        if name == "cmyk.jpg":
            _check(arr[..., 0].mean() > 200 and arr[..., 1].mean() < 60, f"CMYK red decoded as {arr.mean((0, 1))}")
    return _decode_all(root, check)


def image_16bit(folder):
    from PIL import Image

    root = _image_folder(folder / "data", n=2)
    ramp = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 256)          # 0 .. 65280
    Image.fromarray(ramp).save(root / "dark" / "deep.png")

    def check(name, arr):
        if name == "deep.png":
            _check(arr.min() < 10 and arr.max() > 240 and len(np.unique(arr)) > 100,
                   f"16-bit image clipped: min {arr.min()} max {arr.max()} levels {len(np.unique(arr))}")
    return _decode_all(root, check)


def image_palette_alpha(folder):
    from PIL import Image

    root = _image_folder(folder / "data", n=2)
    im = Image.new("P", (10, 10), 1)
    im.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    im.info["transparency"] = 0
    im.save(root / "bright" / "pal.png", transparency=0)

    def check(name, arr):
        if name == "pal.png":
            _check(arr[..., 1].mean() > 150, f"palette image decoded as {arr.mean((0, 1))}")
    return _decode_all(root, check)


def image_animated(folder):
    from PIL import Image

    root = _image_folder(folder / "data", n=2)
    frames = [Image.new("RGB", (10, 10), c) for c in ((250, 250, 250), (0, 0, 0), (0, 0, 250))]
    frames[0].save(root / "bright" / "anim.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    (root / "bright" / "anim.gif").rename(root / "bright" / "anim.png")   # GIF bytes: Pillow reads by content

    def check(name, arr):
        if name == "anim.png":
            _check(arr.mean() > 200, f"animated image: first frame expected (white), got {arr.mean((0, 1))}")
    return _decode_all(root, check)


def image_as_text(folder):
    root = _image_folder(folder / "data")
    return _finetune(folder, "text", root)


def audio_as_image(folder):
    root = _audio_folder(folder / "data")
    return _finetune(folder, "image", root)


def text_as_audio(folder):
    _csv(folder / "data" / "data.csv", _text_rows())
    return _finetune(folder, "audio", folder / "data" / "data.csv")


# ---------------------------------------------------------------- audio

def audio_empty(folder):
    root = _audio_folder(folder / "data")
    (root / "low" / "empty.wav").write_bytes(b"")
    return _finetune(folder, "audio", root, "--on-bad-file", "refuse")


def audio_truncated(folder):
    root = _audio_folder(folder / "data")
    raw = (root / "low" / "low_0.wav").read_bytes()
    (root / "high" / "cut.wav").write_bytes(raw[:30])          # the header itself is cut
    return _finetune(folder, "audio", root, "--on-bad-file", "refuse")


def audio_8khz_stereo(folder):
    path = _wav(folder / "data" / "a" / "st.wav", seconds=1.0, sr=8000, channels=2)

    def run():
        from tlcore.data.audio import load_audio

        wave = load_audio(path, 16000)
        _check(wave.ndim == 1 and abs(len(wave) - 16000) <= 2, f"8 kHz stereo -> {wave.shape}, expected (16000,)")
    return run


def audio_ten_minutes(folder):
    root = _audio_folder(folder / "data")
    _wav(root / "low" / "long.wav", seconds=610, sr=8000)      # over the 600 s cap; refused from its header
    return _finetune(folder, "audio", root, "--on-bad-file", "refuse")


def audio_mp3(folder):
    import soundfile as sf

    if "MP3" not in sf.available_formats():
        import pytest

        pytest.skip(f"libsndfile {sf.__libsndfile_version__} has no MP3 support")
    _wav(folder / "data" / "a" / "tone.mp3", seconds=1.0, sr=16000, fmt="MP3")

    def run():
        from tlcore.data.audio import load_audio
        from tlcore.data.loaders import load_dataset

        ds = load_dataset(folder / "data", "audio", on_error="refuse")
        wave = load_audio(ds.items[0], 16000)
        _check(abs(len(wave) - 16000) < 2000 and np.abs(wave).max() > 0.1, f"MP3 decoded to {wave.shape}")
    return run


def audio_flac(folder):
    root = folder / "data"
    for label, freq in (("low", 220.0), ("high", 1760.0)):
        for i in range(3):
            _wav(root / label / f"{i}.flac", freq=freq * (1 + 0.05 * i), fmt="FLAC")
    return _finetune_checked(folder, "audio", root, 6, "--strategy", "linear_probe")


# ---------------------------------------------------------------- path escapes (tables and folders)

def _audio_table(folder: Path, bad: str) -> Path:
    root = _audio_folder(folder / "data", n=2)
    rows = [[f"{label}/{label}_{i}.wav", label] for label in ("low", "high") for i in range(2)]
    rows.insert(2, [bad, "low"])
    return _csv(root / "data.csv", rows, header=("path", "label"))


def csv_absolute_path(folder):
    secret = _secret_file(folder)
    table = _audio_table(folder, str(secret))
    return _finetune(folder, "audio", table)


def csv_absolute_missing(folder):
    """An absolute path that does not exist gets the same refusal as one that does (no existence oracle)."""
    table = _audio_table(folder, "/etc/tl-no-such-file-3b1.wav")
    return _finetune(folder, "audio", table)


def csv_dotdot_path(folder):
    _secret_file(folder)
    table = _audio_table(folder, "../outside/secret.wav")
    return _finetune(folder, "audio", table)


def csv_symlink_file(folder):
    secret = _secret_file(folder)
    table = _audio_table(folder, "low/innocent.wav")
    (table.parent / "low" / "innocent.wav").symlink_to(secret)
    return _finetune(folder, "audio", table)


def csv_symlink_folder(folder):
    _secret_file(folder)
    table = _audio_table(folder, "shared/secret.wav")
    (table.parent / "shared").symlink_to(folder / "outside", target_is_directory=True)
    return _finetune(folder, "audio", table)


def asr_metadata_absolute(folder):
    secret = _secret_file(folder)
    root = folder / "clips"
    _wav(root / "a.wav")
    _csv(root / "metadata.csv", [["a.wav", "hello there"], [str(secret), "secret words"]],
         header=("file_name", "transcription"))
    return lambda: _page_load(root, "audio", "asr")


def asr_metadata_dotdot(folder):
    _secret_file(folder)
    root = folder / "clips"
    _wav(root / "a.wav")
    _csv(root / "metadata.csv", [["a.wav", "hello"], ["../outside/secret.wav", "secret"]],
         header=("file_name", "transcription"))
    return lambda: _page_load(root, "audio", "asr")


def image_label_folder_symlink(folder):
    out = folder / "outside" / "pics"
    _image_folder(out, n=1)
    (out / "bright" / "secret.png").write_text(SECRET)
    root = _image_folder(folder / "data")
    (root / "stolen").symlink_to(out / "bright", target_is_directory=True)
    return _finetune(folder, "image", root)


def image_file_symlink(folder):
    secret = _secret_file(folder, "secret.png")
    root = _image_folder(folder / "data")
    (root / "dark" / "x.png").symlink_to(secret)
    return _finetune(folder, "image", root)


def text_table_symlink(folder):
    secret = folder / "outside" / "private.csv"
    _csv(secret, [[SECRET, "a"], [SECRET + " again", "b"]])
    (folder / "data").mkdir()
    (folder / "data" / "data.csv").symlink_to(secret)
    return _finetune(folder, "text", folder / "data")


# ---------------------------------------------------------------- uploads and archives

def _zip_case(members: dict, **kw):
    def make(folder):
        path = _zip(folder / "upload.zip", members, **kw)
        return _upload_and_load(path, "image")
    return make


def zip_slip(folder):
    return _zip_case({**_image_zip_members(), "../../evil.png": _png_bytes()})(folder)


def zip_absolute_member(folder):
    return _zip_case({**_image_zip_members(), "/tmp/evil.png": _png_bytes()})(folder)


def zip_symlink_member(folder):
    return _zip_case({**_image_zip_members(), "set/a/link.png": b"/etc/passwd"}, symlinks=("set/a/link.png",))(folder)


def zip_bomb_many(folder):
    """The issue's archive: about 1 MB packed, 100 members of 10 MiB each (1 GiB unpacked)."""
    path = folder / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in _image_zip_members().items():
            zf.writestr(name, data)
        zero = bytes(10 * 1024**2)
        for i in range(100):
            zf.writestr(f"set/a/pad_{i:03d}.png", zero)
    return _upload_and_load(path, "image")


def zip_bomb_one(folder):
    path = folder / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in _image_zip_members().items():
            zf.writestr(name, data)
        zf.writestr("set/a/huge.png", bytes(300 * 1024**2))
    return _upload_and_load(path, "image")


def zip_bomb_small_members(folder):
    """Many members each under the per-member threshold: the total ratio catches it."""
    path = folder / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in _image_zip_members().items():
            zf.writestr(name, data)
        zero = bytes(900 * 1024)
        for i in range(60):
            zf.writestr(f"set/b/pad_{i:03d}.png", zero)
    return _upload_and_load(path, "image")


def zip_nested(folder):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("a/x.png", _png_bytes())
    return _zip_case({**_image_zip_members(), "set/a/more.zip": inner.getvalue()})(folder)


def zip_encrypted(folder):
    src = folder / "src"
    for name, data in _image_zip_members().items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    path = folder / "locked.zip"
    if shutil.which("zip"):
        subprocess.run(["zip", "-q", "-r", "-P", "hunter2", str(path), "set"], cwd=src, check=True)
    else:   # no zip tool: set the "encrypted" flag bit in every local and central header (zipfile cannot encrypt)
        raw = bytearray(_zip(path, _image_zip_members()).read_bytes())
        for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            i = raw.find(sig)
            while i >= 0:
                raw[i + at] |= 0x1
                i = raw.find(sig, i + 4)
        path.write_bytes(bytes(raw))
    return _upload_and_load(path, "image")


def zip_file_folder_clash(folder):
    return _zip_case({**_image_zip_members(), "set/a": b"a file named like the folder"})(folder)


def zip_duplicate_names(folder):
    import warnings

    path = folder / "dup.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # zipfile warns "Duplicate name" while writing
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in _image_zip_members().items():
                zf.writestr(name, data)
            zf.writestr("set/a/a_0.png", _png_bytes(5))
    return _upload_and_load(path, "image")


def zip_deep(folder):
    deep = "set/a/" + "/".join(f"d{i}" for i in range(20)) + "/x.png"
    return _zip_case({**_image_zip_members(), deep: _png_bytes()})(folder)


def zip_not_a_zip(folder):
    path = folder / "photos.zip"
    path.write_text("this is not an archive")
    return _upload_and_load(path, "image")


def zip_truncated(folder):
    path = _zip(folder / "cut.zip", _image_zip_members(4))
    path.write_bytes(path.read_bytes()[:300])
    return _upload_and_load(path, "image")


def zip_valid_with_macos_junk(folder):
    """A valid image set zipped on a Mac (__MACOSX, ._ files, .DS_Store) loads, junk ignored."""
    members = {**_image_zip_members(3), "__MACOSX/set/a/._a_0.png": b"junk", "set/.DS_Store": b"junk"}
    path = _zip(folder / "mac.zip", members)

    def run():
        ds = _page_load(_upload(path), "image")
        _check(len(ds) == 6 and ds.classes == ["a", "b"] and not ds.problems, f"{len(ds)} items, {ds.problems}")
    return run


def upload_audio_csv_escape(folder):
    """The issue's first finding: an uploaded audio table naming a server file, previewed on the Data page."""
    secret = _secret_file(folder)
    path = _csv(folder / "clips.csv", [["a.wav", "x"], [str(secret), "y"]], header=("path", "label"))
    return _upload_and_load(path, "audio")


def upload_zip_audio_csv_dotdot(folder):
    """An uploaded zip whose table climbs out of the unzipped copy with '..'."""
    _wav(folder / "t.wav")
    members = {"set/data.csv": b"path,label\nt.wav,a\n../../../../../../etc/hostname,b\n",
               "set/t.wav": (folder / "t.wav").read_bytes()}
    return _upload_and_load(_zip(folder / "audio.zip", members), "audio")


def jsonl_repeated_key(folder):
    path = folder / "data" / "train.jsonl"
    path.parent.mkdir(parents=True)
    rows = [json.dumps({"text": f"row {i}", "label": "ab"[i % 2]}) for i in range(8)]
    rows.append('{"text": "great film", "label": "pos", "label": "neg"}')   # json keeps the last: refuse instead
    path.write_text("\n".join(rows) + "\n")
    return _finetune(folder, "text", path.parent)


def text_lookalike_labels(folder):
    import unicodedata

    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    rows = [(f"row {i}", [nfc, nfd, "tea"][i % 3]) for i in range(12)]   # print the same, two classes: refuse
    return _finetune(folder, "text", _csv(folder / "data" / "data.csv", rows).parent)


def image_hidden_class_folder(folder):
    root = _image_folder(folder / "data", n=4)
    hidden = root / ".hidden_class"
    hidden.mkdir()
    for i in range(4):
        (hidden / f"h{i}.png").write_bytes(_png_bytes(30 + 40 * i))
    return _finetune(folder, "image", root)       # run, and say the hidden folder was not used


def multilabel_bad_json_labels(folder):
    path = folder / "data" / "ml.csv"
    path.parent.mkdir(parents=True)
    path.write_text('text,labels\n' + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(8)) + 'row 9,"[""a"", "\n')
    return _finetune(folder, "text", path.parent, "--task", "multilabel")


def text_conflicting_duplicates(folder):
    rows = _text_rows(8) + [["the very same sentence", "positive"], ["the very same sentence", "negative"]] * 3
    return _finetune(folder, "text", _csv(folder / "data" / "data.csv", rows).parent)


def ner_entities_only_in_eval_duplicates(folder):
    """Every tagged sentence is repeated: the automatic split puts a copy of each in eval, de-duplication drops the
    training copies, and only untagged sentences are left to train on. It said "every tag is O"."""
    path = folder / "data" / "train.jsonl"
    path.parent.mkdir(parents=True)
    tagged = [{"tokens": ["Anna", "met", "Bob", str(i)], "tags": ["B-PER", "O", "B-PER", "O"]} for i in range(3)]
    plain = [{"tokens": ["nothing", "here", str(i)], "tags": ["O", "O", "O"]} for i in range(10)]
    path.write_text("\n".join(json.dumps(r) for r in tagged * 16 + plain) + "\n")
    return _finetune(folder, "text", folder / "data", "--task", "ner")


CASES = [
    Case("NER: every tagged sentence duplicates an eval one", "data", ner_entities_only_in_eval_duplicates),
    Case("identical texts under two labels", "data", text_conflicting_duplicates, expect="notice"),
    Case("jsonl row with a repeated key", "data", jsonl_repeated_key),
    Case("labels that differ only in Unicode normalisation", "data", text_lookalike_labels),
    Case("hidden class folder", "data", image_hidden_class_folder, expect="notice"),
    Case("multi-label cell that is broken JSON", "data", multilabel_bad_json_labels),
    Case("empty text file", "data", text_empty),
    Case("header-only table", "data", text_header_only),
    Case("one class", "data", text_one_class),
    Case("1000 classes, one example each", "data", text_1000_classes),
    Case("stray quote in row 7", "data", text_stray_quote),
    Case("latin-1 table", "data", text_latin1),
    Case("utf-16 table with BOM", "data", text_utf16_bom, expect="ok"),
    Case("utf-16 table without BOM", "data", text_utf16_no_bom),
    Case("NUL bytes in table", "data", text_nul_bytes),
    Case("1 MB row", "data", text_1mb_row, expect="ok", notice_words=_SKIP_WORDS, timeout=180),
    Case("jsonl text is a list", "data", jsonl_text_list),
    Case("jsonl label is an object", "data", jsonl_label_object),
    Case("tsv with unquoted separator", "data", tsv_unquoted_separator),
    Case("NER token/tag length mismatch", "data", ner_length_mismatch),
    Case("NER BIOES tag scheme", "data", ner_bioes_scheme),
    Case("NER IO tag scheme", "data", ner_io_scheme),
    Case("truncated image (refuse)", "data", image_truncated),
    Case("truncated image (skip)", "data", image_truncated_skipped, expect="notice"),
    Case("fake png (text)", "data", image_fake_png),
    Case("image bomb in a set", "data", image_bomb),
    Case("image bomb decoded directly", "data", image_bomb_predict_path),
    Case("1x1 images", "data", image_one_pixel, expect="ok", notice_words=_SKIP_WORDS, timeout=180),
    Case("CMYK image", "data", image_cmyk, expect="ok"),
    Case("16-bit image", "data", image_16bit, expect="ok"),
    Case("palette image with transparency", "data", image_palette_alpha, expect="ok"),
    Case("animated image", "data", image_animated, expect="ok"),
    Case("images given as text", "data", image_as_text),
    Case("audio given as images", "data", audio_as_image),
    Case("text table given as audio", "data", text_as_audio),
    Case("empty audio file", "data", audio_empty),
    Case("truncated audio header", "data", audio_truncated),
    Case("8 kHz stereo audio", "data", audio_8khz_stereo, expect="ok"),
    Case("10-minute audio", "data", audio_ten_minutes),
    Case("MP3 audio", "data", audio_mp3, expect="ok"),
    Case("FLAC audio", "data", audio_flac, expect="ok", notice_words=_SKIP_WORDS, timeout=180),
    Case("csv absolute path", "data", csv_absolute_path, secret=SECRET),
    Case("csv absolute path (missing)", "data", csv_absolute_missing),
    Case("csv ../ path", "data", csv_dotdot_path, secret=SECRET),
    Case("csv symlinked file", "data", csv_symlink_file, secret=SECRET),
    Case("csv symlinked folder", "data", csv_symlink_folder, secret=SECRET),
    Case("ASR metadata absolute path", "data", asr_metadata_absolute, secret=SECRET),
    Case("ASR metadata ../ path", "data", asr_metadata_dotdot, secret=SECRET),
    Case("symlinked label folder", "data", image_label_folder_symlink, secret=SECRET),
    Case("symlinked image file", "data", image_file_symlink, secret=SECRET),
    Case("symlinked text table", "data", text_table_symlink, secret=SECRET),
    Case("zip-slip member", "upload", zip_slip),
    Case("zip absolute member", "upload", zip_absolute_member),
    Case("zip symlink member", "upload", zip_symlink_member),
    Case("zip bomb, 100 x 10 MiB", "upload", zip_bomb_many),
    Case("zip bomb, one 300 MiB member", "upload", zip_bomb_one),
    Case("zip bomb, small members", "upload", zip_bomb_small_members),
    Case("nested archive", "upload", zip_nested),
    Case("encrypted zip", "upload", zip_encrypted),
    Case("zip file/folder clash", "upload", zip_file_folder_clash),
    Case("zip duplicate names", "upload", zip_duplicate_names),
    Case("zip 20 folders deep", "upload", zip_deep),
    Case("not a zip", "upload", zip_not_a_zip),
    Case("truncated zip", "upload", zip_truncated),
    Case("zip from a Mac (junk files)", "upload", zip_valid_with_macos_junk, expect="ok"),
    Case("uploaded audio csv escape", "upload", upload_audio_csv_escape, secret=SECRET),
    Case("uploaded zip table ../ escape", "upload", upload_zip_audio_csv_dotdot),
]
