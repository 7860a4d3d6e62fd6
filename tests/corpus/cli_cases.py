"""The CLI part of the bad-input corpus: bad numbers for every numeric option, run folders as ``--out``, and
``predict`` on damaged run folders and wrong inputs. Every case is an argv for ``python -m tlcore`` run in-process,
on the tiny test backbones with ``--epochs 1``, so each takes seconds.

Cases that need a finished run copy one built once per session (:func:`_cached_run`) into their own folder, so a case
that damages its copy never touches another case's. ``protect`` lists the files of an existing run (or of the user's
own folder) that must come out of the case byte for byte the same; a file listed but absent must stay absent (a
failed run must leave nothing at ``--out``).
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

from conftest import write_image_set, write_text_set

from corpus import Case

_CACHE: dict[str, Path] = {}


def _cached_run(modality: str = "text") -> Path:
    """A finished linear-probe run on the tiny backbone, built once per session (seconds)."""
    if modality not in _CACHE:
        import tlcore

        root = Path(tempfile.mkdtemp(prefix=f"tl-corpus-{modality}-run-"))
        make = write_text_set if modality == "text" else write_image_set
        data = make(root / "data")
        tlcore.finetune(modality=modality, target=str(data), backbone=f"tiny-{modality}", epochs=1, baselines=[],
                        out=str(root / "run"))
        _CACHE[modality] = root / "run"
    return _CACHE[modality]


def _run_copy(folder: Path, modality: str = "text") -> Path:
    run = folder / "run"
    if not run.exists():
        shutil.copytree(_cached_run(modality), run)
    return run


def _files(root: Path) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _text(folder: Path, n: int = 12) -> Path:
    return write_text_set(folder / "data", n_per_class=n)


def _finetune(folder: Path, *extra, n: int = 12) -> list:
    return ["finetune", "--modality", "text", "--target", _text(folder, n), "--backbone", "tiny-text", "--epochs", "1",
            "--baselines", "", "--quiet", "--out", folder / "out", *extra]


def _opt(flag: str, value: str, *more) -> Case:
    """finetune with one out-of-range (or malformed) option; also protects --out from being created."""
    kind = f"finetune {flag} {value}" + (" " + " ".join(more) if more else "")
    return Case(kind, "options", lambda f: _finetune(f, flag, value, *more),
                protect=lambda f: [f / "out" / "config.json", f / "out" / "report.json"])


def _cluster(folder: Path, *extra) -> list:
    return ["cluster", "--modality", "text", "--data", _text(folder), "--backbone", "tiny-text", "--quiet", *extra]


def _curve(folder: Path, *extra) -> list:
    return ["curve", "--modality", "text", "--target", _text(folder), "--backbone", "tiny-text", "--epochs", "1",
            "--no-scratch", "--quiet", *extra]


def _one_row(folder: Path, name: str, text: str, label: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f"text,label\n{text},{label}\n")
    return folder / name


def _diagnose_one_row(folder: Path) -> list:
    return ["diagnose", "--modality", "text", "--source", _one_row(folder, "s.csv", "a good film", "pos"),
            "--target", _one_row(folder, "t.csv", "a bad film", "neg"), "--backbone", "tiny-text", "--quiet"]


def _out_inside_target(folder: Path) -> list:
    data = _text(folder)
    return ["finetune", "--modality", "text", "--target", data, "--backbone", "tiny-text", "--epochs", "1",
            "--baselines", "", "--quiet", "--out", data / "run"]


def _cluster_identical(folder: Path) -> list:
    data = folder / "same.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("text\n" + "the same sentence\n" * 6)
    return ["cluster", "--modality", "text", "--data", data, "--backbone", "tiny-text", "--quiet"]


def _multilabel(folder: Path, *extra) -> list:
    data = folder / "ml.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("text,labels\n" + "".join(f"row {i},{'a|b' if i % 3 == 0 else 'ab'[i % 2]}\n" for i in range(20)))
    return ["finetune", "--modality", "text", "--task", "multilabel", "--target", data, "--backbone", "tiny-text",
            "--epochs", "1", "--baselines", "", "--quiet", "--out", folder / "out", *extra]


# Decisions (issue 21): more processes than devices are refused with the limit (64 processes on 2 cores filled the
# memory); a run folder inside a data folder is refused (the run would land in the user's data); clustering copies
# of one item is refused (there is nothing to cluster, and it crashed after writing the report); a per-class cap
# means nothing when an item has several labels: refused.
OPTIONS = [
    Case("finetune --num-processes above the CPU cores", "options", lambda f: _finetune(f, "--num-processes", "64"),
         protect=lambda f: [f / "out" / "config.json", f / "out" / "report.json"]),
    Case("cluster on copies of one text", "options", _cluster_identical),
    Case("multi-label finetune --max-per-class", "options", lambda f: _multilabel(f, "--max-per-class", "3")),
    Case("multi-label finetune with an adaptation strategy", "options", lambda f: _multilabel(f, "--strategy", "dann")),
    _opt("--epochs", "0"),
    _opt("--epochs", "-1"),
    _opt("--epochs", "2.5"),
    _opt("--epochs", "abc"),
    Case("finetune --epochs 1000000000 (3 examples per class, no validation split)", "options",
         lambda f: _finetune(f, "--epochs", "1000000000", "--strategy", "partial", n=3), timeout=60),
    _opt("--batch-size", "0"),
    _opt("--batch-size", "-4"),
    _opt("--lr", "-1"),
    _opt("--lr", "0"),
    _opt("--lr", "nan"),
    _opt("--lr", "inf"),
    _opt("--lora-r", "0", "--strategy", "lora"),
    _opt("--partial-blocks", "0", "--strategy", "partial"),
    _opt("--layer-decay", "2"),
    _opt("--patience", "0"),
    _opt("--max-per-class", "-1"),
    _opt("--max-per-class", "0"),
    _opt("--val-fraction", "5"),
    _opt("--eval-fraction", "0"),
    _opt("--eval-fraction", "1"),
    _opt("--seed", "-1"),
    _opt("--baselines", "magic"),
    _opt("--on-bad-file", "explode"),
    Case("finetune --eval equal to --target", "options",
         lambda f: _finetune(f, "--eval", f / "data")),
    Case("finetune --eval a copy of --target", "options",
         lambda f: _finetune(f, "--eval", shutil.copytree(_text(f), f / "copy"))),
    Case("cluster --k 0", "options", lambda f: _cluster(f, "--k", "0")),
    Case("cluster --k 1", "options", lambda f: _cluster(f, "--k", "1")),
    Case("cluster --k 1000", "options", lambda f: _cluster(f, "--k", "1000")),
    Case("cluster --k 30 on 24 items", "options", lambda f: _cluster(f, "--k", "30")),
    Case("cluster --seed -1", "options", lambda f: _cluster(f, "--seed", "-1")),
    Case("curve --seeds 0", "options", lambda f: _curve(f, "--seeds", "0")),
    Case("curve --seeds 1000", "options", lambda f: _curve(f, "--seeds", "1000")),
    Case("curve --shots -1", "options", lambda f: _curve(f, "--shots", "-1")),
    Case("curve --shots two", "options", lambda f: _curve(f, "--shots", "1,two")),
    Case("curve --shots 13 values", "options", lambda f: _curve(f, "--shots", ",".join(str(i) for i in range(1, 14)))),
    Case("curve --batch-size 0", "options", lambda f: _curve(f, "--batch-size", "0")),
    Case("diagnose with one row per set", "options", _diagnose_one_row),
    Case("diagnose --seed -1", "options",
         lambda f: ["diagnose", "--modality", "text", "--source", _text(f), "--target", _text(f), "--seed", "-1"]),
    Case("rank --seed -1", "options",
         lambda f: ["rank", "--modality", "text", "--target", _text(f), "--backbones", "tiny-text", "--seed", "-1"]),
    Case("demo make --seed -1", "options", lambda f: ["demo", "make", "sentiment", "--out", f / "demo", "--seed", "-1"]),
    Case("predict --top-k 0", "options", lambda f: ["predict", "--run", _run_copy(f), "--input", "hi", "--top-k", "0"]),
    Case("predict --top-k -3", "options", lambda f: ["predict", "--run", _run_copy(f), "--input", "hi", "--top-k", "-3"]),
]


# ------------------------------------------------------------------ run folders

def _into_run(*extra) -> callable:
    def make(folder: Path) -> list:
        run = _run_copy(folder)
        return ["finetune", "--modality", "text", "--target", _text(folder), "--backbone", "tiny-text", "--epochs", "1",
                "--baselines", "", "--quiet", "--out", run, *extra]
    return make


def _failing_overwrite(folder: Path) -> list:
    """--overwrite with a run that fails after it started (its target has no 'text' column)."""
    run = _run_copy(folder)
    bad = folder / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "data.csv").write_text("sentence,label\n" + "".join(f"s {i},{'ab'[i % 2]}\n" for i in range(20)))
    return ["finetune", "--modality", "text", "--target", bad, "--backbone", "tiny-text", "--epochs", "1", "--quiet",
            "--out", run, "--overwrite"]


def _foreign(folder: Path, *extra) -> list:
    mine = folder / "mine"
    mine.mkdir(parents=True, exist_ok=True)
    (mine / "notes.txt").write_text("my own notes\n")
    return ["finetune", "--modality", "text", "--target", _text(folder), "--backbone", "tiny-text", "--epochs", "1",
            "--quiet", "--out", mine, *extra]


def _unfinished(folder: Path) -> list:
    """A run folder left by an interrupted run of an older version: config.json and checkpoints, no report."""
    run = folder / "old"
    shutil.copytree(_cached_run() / "model", run / "checkpoints" / "after")
    shutil.copy(_cached_run() / "config.json", run / "config.json")
    return ["finetune", "--modality", "text", "--target", _text(folder), "--backbone", "tiny-text", "--epochs", "1",
            "--quiet", "--out", run]


def _out_on_file(folder: Path) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.csv").write_text("a,b\n1,2\n")
    return _finetune(folder)[:-1] + [folder / "results.csv"]


def _out_under_file(folder: Path) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.csv").write_text("a,b\n1,2\n")
    return _finetune(folder)[:-1] + [folder / "results.csv" / "run"]


def _read_only_parent(folder: Path) -> list:
    if os.geteuid() == 0:          # root writes through file modes: use a place no one can create folders in
        parent = Path("/sys/transferlab-corpus-read-only")
    else:
        parent = folder / "locked"
        parent.mkdir(parents=True, exist_ok=True)
        parent.chmod(0o555)
    return _finetune(folder)[:-1] + [parent / "run"]


def _json_missing(folder: Path) -> list:
    return _finetune(folder, "--json", folder / "no" / "such" / "report.json")


def _json_folder(folder: Path) -> list:
    (folder / "reports").mkdir(parents=True, exist_ok=True)
    return _finetune(folder, "--json", folder / "reports")


def _failed_new_run(folder: Path) -> list:
    bad = folder / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "data.csv").write_text("sentence,label\n" + "".join(f"s {i},{'ab'[i % 2]}\n" for i in range(20)))
    return ["finetune", "--modality", "text", "--target", bad, "--backbone", "tiny-text", "--epochs", "1", "--quiet",
            "--out", folder / "new"]


def _protect_run(folder: Path) -> list:
    return _files(folder / "run")


RUN_FOLDERS = [
    Case("--out inside the --target folder", "run folders", _out_inside_target,
         protect=lambda f: [f / "data" / "data.csv"]),
    Case("--out holds a finished run", "run folders", _into_run(), protect=_protect_run),
    Case("--out holds a finished run, --resume", "run folders", _into_run("--resume"), protect=_protect_run),
    Case("--resume and --overwrite together", "run folders", _into_run("--resume", "--overwrite"),
         protect=_protect_run),
    Case("--overwrite by a run that fails", "run folders", _failing_overwrite, protect=_protect_run),
    Case("--out holds the user's own files", "run folders", _foreign, protect=lambda f: _files(f / "mine")),
    Case("--out holds the user's own files, --overwrite", "run folders", lambda f: _foreign(f, "--overwrite"),
         protect=lambda f: _files(f / "mine")),
    Case("--out holds an unfinished run, no --resume", "run folders", _unfinished,
         protect=lambda f: _files(f / "old")),
    Case("--out is an existing file", "run folders", _out_on_file, protect=lambda f: [f / "results.csv"]),
    Case("--out inside a file", "run folders", _out_under_file, protect=lambda f: [f / "results.csv"]),
    Case("--out in a read-only folder", "run folders", _read_only_parent),
    Case("--json into a missing folder", "run folders", _json_missing, protect=lambda f: [f / "out" / "report.json"]),
    Case("--json is a folder", "run folders", _json_folder, protect=lambda f: [f / "out" / "report.json"]),
    Case("a failed run leaves nothing at --out", "run folders", _failed_new_run,
         protect=lambda f: [f / "new" / "config.json", f / "new" / "report.json"]),
]


# ------------------------------------------------------------------ predict on damaged runs and wrong inputs

def _damaged(change) -> callable:
    def make(folder: Path) -> list:
        run = _run_copy(folder)
        extra = change(run) or []
        return ["predict", "--run", run, "--input", "the film was great", *extra]
    return make


def _truncate(path: Path, keep: int = 20) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _png_bomb(path: Path, side: int = 100_000) -> Path:
    """A tiny PNG file whose header claims side x side pixels (10 billion): refused from its header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def _image_input(write) -> callable:
    def make(folder: Path) -> list:
        run = _run_copy(folder, "image")
        return ["predict", "--run", run, "--input", write(folder)]
    return make


def _truncated_png(folder: Path) -> Path:
    from PIL import Image

    path = folder / "cut.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(path)
    _truncate(path, 60)
    return path


def _png(folder: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (16, 16), (200, 10, 10)).save(folder / "photo.png")
    return folder / "photo.png"


def _cut_before(run: Path) -> list:
    _truncate(run / "before" / "before.json", 10)
    return ["--model", "before"]


def _empty_text_file(folder: Path) -> list:
    path = folder / "empty.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("  \n")
    return ["predict", "--run", _run_copy(folder), "--input", path]


def _folder_with_a_broken_image(folder: Path) -> Path:
    images = folder / "inputs"
    images.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (16, 16), (40 * i, 90, 200)).save(images / f"ok{i}.png")
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return images


# Decisions (issue 21): predict gives every input a prediction or refuses naming the one it cannot read — an empty
# text file has no text to classify; a folder with an unreadable image is refused, not answered with one row fewer.
PREDICT = [
    Case("predict: an empty .txt file", "predict", _empty_text_file),
    Case("predict: a folder with one unreadable image", "predict", _image_input(_folder_with_a_broken_image)),
    Case("predict: run config.json truncated", "predict", _damaged(lambda r: _truncate(r / "config.json"))),
    Case("predict: model/config.json truncated", "predict", _damaged(lambda r: _truncate(r / "model" / "config.json"))),
    Case("predict: report.json truncated", "predict", _damaged(lambda r: _truncate(r / "report.json"))),
    Case("predict: model weights missing", "predict", _damaged(lambda r: (r / "model" / "model.safetensors").unlink())),
    Case("predict: model weights truncated", "predict",
         _damaged(lambda r: _truncate(r / "model" / "model.safetensors", 100))),
    Case("predict: before model truncated", "predict", _damaged(_cut_before)),
    Case("predict: model folder missing", "predict", _damaged(lambda r: shutil.rmtree(r / "model"))),
    Case("predict: empty run folder", "predict",
         lambda f: ["predict", "--run", (f / "empty").mkdir(parents=True) or f / "empty", "--input", "hi"]),
    Case("predict: no such run folder", "predict", lambda f: ["predict", "--run", f / "nope", "--input", "hi"]),
    Case("predict: a PNG given to a text run", "predict",
         lambda f: ["predict", "--run", _run_copy(f), "--input", _png(f)]),
    Case("predict: misspelled file name", "predict",
         lambda f: ["predict", "--run", _run_copy(f), "--input", f / "reviwes.csv"]),
    Case("predict: misspelled folder name", "predict",
         lambda f: ["predict", "--run", _run_copy(f), "--input", "data/evl"]),
    Case("predict: a text table given to an image run", "predict",
         _image_input(lambda f: _text(f) / "data.csv")),
    Case("predict: truncated image", "predict", _image_input(_truncated_png)),
    Case("predict: image header claims 10 billion pixels", "predict",
         _image_input(lambda f: _png_bomb(f / "huge.png"))),
    Case("predict: missing image file", "predict", _image_input(lambda f: f / "photo-missing.png")),
]

CASES = OPTIONS + RUN_FOLDERS + PREDICT
