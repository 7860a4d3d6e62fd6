"""Bad-input corpus, the commands against the machine and their smallest inputs (issue 21): process, worker and batch
counts, reports that would grow with the number of classes or the length of the texts, and every subcommand's empty
and one-item inputs.

Every case is an argv for ``python -m tlcore`` or a callable that runs one and checks what it wrote, on the tiny test
backbones. A command given nothing to work on (an empty table, a folder without files, one item where it needs two)
is refused with one line that says what it needs; one given one item where one is enough answers for it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from corpus import Case
from corpus.cli_cases import _cluster, _curve, _run_copy, _text
from corpus.cli_cases import _finetune as _finetune_text
from corpus.data_cases import _check, _csv, _image_folder

_USED = ("skipped", "ignored", "dropped", "left out")


def _header_only(folder: Path, name: str = "empty") -> Path:
    return _csv(folder / name / "data.csv", []).parent


def _empty_folder(folder: Path, name: str = "nothing") -> Path:
    (folder / name).mkdir(parents=True, exist_ok=True)
    return folder / name


def _one_row(folder: Path, name: str = "one", label: str = "positive") -> Path:
    return _csv(folder / name / "data.csv", [["the film was great", label]]).parent


def _one_per_class(folder: Path, name: str = "pair") -> Path:
    return _csv(folder / name / "data.csv", [["the film was great", "positive"], ["the film was awful", "negative"]]).parent


def _finetune_on(folder: Path, target: Path, *extra) -> list:
    return ["finetune", "--modality", "text", "--target", target, "--backbone", "tiny-text", "--epochs", "1",
            "--baselines", "", "--quiet", "--out", folder / "run", *extra]


def _main_json(argv: list, path: Path) -> dict:
    from tlcore.cli import main

    rc = main([str(a) for a in argv] + ["--json", str(path)])
    _check(rc == 0, f"exit {rc}")
    return json.loads(path.read_text())


def _sweep(folder: Path, target: Path, *extra) -> list:
    return ["sweep", "--modality", "text", "--target", target, "--backbone", "tiny-text", "--epochs", "1",
            "--strategies", "linear_probe", "--baselines", "", "--out", folder / "sweep", "--quiet", *extra]


def _diagnose(source: Path, target: Path) -> list:
    return ["diagnose", "--modality", "text", "--source", source, "--target", target, "--backbone", "tiny-text",
            "--quiet"]


def _rank(target: Path) -> list:
    return ["rank", "--modality", "text", "--target", target, "--backbones", "tiny-text", "--quiet"]


def _cluster_on(data: Path) -> list:
    return ["cluster", "--modality", "text", "--data", data, "--backbone", "tiny-text", "--quiet"]


def _curve_on(target: Path) -> list:
    return ["curve", "--modality", "text", "--target", target, "--backbone", "tiny-text", "--epochs", "1",
            "--no-scratch", "--seeds", "1", "--shots", "1", "--quiet"]


# ---------------------------------------------------------------- process, worker and batch counts

def _workers_capped(folder: Path):
    """More DataLoader workers than cores: each is a process holding its own copy of the decoding state; the run
    uses one per core and says so in its report."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def run():
        from tlcore.cli import main

        rc = main([str(a) for a in _finetune_text(folder, "--num-workers", "64", "--json", folder / "r.json")])
        _check(rc == 0, f"exit {rc}")
        report = json.loads((folder / "r.json").read_text())
        texts = [w if isinstance(w, str) else w.get("text", "") for w in report["warnings"]]
        _check(report["config"]["num_workers"] == 64, "the report must keep what was asked for")
        _check(any("--num-workers 64" in t and f"{cores}" in t for t in texts), f"no notice of the cap: {texts}")
    return run


def _big_batch(folder: Path):
    """A batch larger than the data: one batch per epoch, nothing dropped."""
    def run():
        report = _main_json(_finetune_text(folder, "--strategy", "full", "--batch-size", "1024", n=6),
                            folder / "r.json")
        _check(report["training"]["history"][0]["train_loss"] > 0, f"no training: {report['training']}")
    return run


def _batch_of_one_images(folder: Path):
    """Full fine-tuning of an image backbone one image at a time (batch norm sees one item per step)."""
    def run():
        root = _image_folder(folder / "data", n=4)
        report = _main_json(["finetune", "--modality", "image", "--target", root, "--backbone", "tiny-image",
                             "--epochs", "1", "--strategy", "full", "--batch-size", "1", "--baselines", "", "--quiet",
                             "--out", folder / "run"], folder / "r.json")
        loss = report["training"]["history"][0]["train_loss"]
        _check(loss == loss and loss > 0, f"train loss {loss}")
    return run


# Decisions (issue 21): counts beyond the machine are refused with the limit (processes, --precision fp16 on a CPU) or,
# for DataLoader workers, capped at the cores with a notice (a worker more than the cores only costs memory); counts
# outside an option's range are refused with the range.
MACHINE = [
    Case("finetune --num-processes 0", "machine", lambda f: _finetune_text(f, "--num-processes", "0")),
    Case("finetune --num-workers 64 (more than the cores)", "machine", _workers_capped, expect="notice",
         notice_words=("--num-workers 64",)),
    Case("finetune --num-workers -1", "machine", lambda f: _finetune_text(f, "--num-workers", "-1")),
    Case("finetune --batch-size 100000", "machine", lambda f: _finetune_text(f, "--batch-size", "100000")),
    Case("finetune --batch-size 1024 on 12 items", "machine", _big_batch, expect="ok", notice_words=_USED),
    Case("full fine-tuning of images with --batch-size 1", "machine", _batch_of_one_images, expect="ok",
         notice_words=_USED),
    Case("curve --num-processes 64", "machine", lambda f: _curve(f, "--num-processes", "64")),
    Case("curve --num-workers 65", "machine", lambda f: _curve(f, "--num-workers", "65")),
    Case("sweep --batch-size 0", "machine", lambda f: _sweep(f, _text(f), "--batch-size", "0")),
    Case("cluster --max-items 5", "machine", lambda f: _cluster(f, "--max-items", "5")),
    Case("gc --max-gb -1", "machine", lambda f: ["gc", "--max-gb", "-1"]),
    Case("finetune --precision fp16 on the CPU", "machine",
         lambda f: _finetune_text(f, "--device", "cpu", "--precision", "fp16")),
]


# ---------------------------------------------------------------- report size

def _many_classes(folder: Path):
    """210 classes of 2 texts: the report keeps per-class scores but no 210 x 210 confusion matrices, and says so."""
    rows = [[f"example {i} of class {c}", f"class{c:03d}"] for c in range(210) for i in range(2)]
    target = _csv(folder / "data" / "data.csv", rows).parent

    def run():
        report = _main_json(["finetune", "--modality", "text", "--target", target, "--backbone", "tiny-text",
                             "--epochs", "1", "--baselines", "", "--quiet", "--out", folder / "run"], folder / "r.json")
        size = (folder / "r.json").stat().st_size
        _check("confusion" not in report["after"] and size < 2_000_000, f"report of {size} bytes")
    return run


def _long_texts(folder: Path):
    """Texts of 100 KB: the report records each eval text once (``eval_predictions.items``: what was scored, which
    runs are compared on) and shows flipped examples shortened, so it grows with the eval set, not with copies."""
    rows = [[("great " if y == "positive" else "awful ") * 17_000 + str(i), y] for y in ("positive", "negative")
            for i in range(8)]
    target = _csv(folder / "long" / "data.csv", rows).parent

    def run():
        report = _main_json(_finetune_on(folder, target), folder / "r.json")
        size, texts = (folder / "r.json").stat().st_size, sum(map(len, report["eval_predictions"]["items"]))
        _check(size < 1.2 * texts + 100_000, f"a report of {size} bytes for {texts} bytes of eval texts")
    return run


def _long_labels(folder: Path):
    """Class names of 5,000 characters: kept whole (they are the user's), the report grows only with them."""
    names = [c * 5000 for c in "xyz"]
    rows = [[f"text {i} for {n[0]}", n] for n in names for i in range(4)]
    target = _csv(folder / "long" / "data.csv", rows).parent

    def run():
        report = _main_json(_finetune_on(folder, target), folder / "r.json")
        size = (folder / "r.json").stat().st_size
        _check(report["data"]["classes"] == names and size < 400_000, f"a report of {size} bytes")
    return run


REPORT_SIZE = [
    Case("210 classes of 2 items (report size)", "report size", _many_classes, expect="notice",
         notice_words=("confusion",), timeout=180),
    Case("16 texts of 100 KB (report size)", "report size", _long_texts, expect="ok", notice_words=_USED),
    Case("class names of 5,000 characters (report size)", "report size", _long_labels, expect="ok",
         notice_words=_USED),
]


# ---------------------------------------------------------------- every subcommand's empty and one-item inputs

def _predict_one_row(folder: Path):
    def run():
        import contextlib
        import io

        from tlcore.cli import main

        table = _csv(folder / "in" / "new.csv", [["a lovely film"]], header=("text",))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = main(["predict", "--run", str(_run_copy(folder)), "--input", str(table)])
        rows = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
        _check(rc == 0 and len(rows) == 1 and rows[0]["prediction"] in ("positive", "negative"), f"{rc}, {rows}")
    return run


def _empty_input(folder: Path):
    """--input '' run from a folder that holds a table: Path("") is ".", so that table was predicted in its place."""
    here = folder / "here"
    _csv(here / "notes.csv", [["my own notes"]], header=("text",))
    run_dir = _run_copy(folder)

    def run():
        from tlcore.inference.predict import predict_run

        before = os.getcwd()
        os.chdir(here)
        try:
            rows = list(predict_run(run_dir, ""))
        finally:
            os.chdir(before)
        _check(False, f"predicted {len(rows)} row(s) for an empty --input")
    return run


def _export(folder: Path, *extra) -> list:
    return ["export", "--run", _run_copy(folder), "--quiet", *extra]


def _export_into_full(folder: Path) -> list:
    full = folder / "mine"
    full.mkdir(parents=True, exist_ok=True)
    (full / "notes.txt").write_text("my notes\n")
    return _export(folder, "--out", full)


def _demo_onto_file(folder: Path) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "taken").write_text("a file\n")
    return ["demo", "make", "sentiment", "--out", folder / "taken", "--size", "small"]


EMPTY_OR_ONE = [
    Case("finetune: one labeled row", "empty/one item", lambda f: _finetune_on(f, _one_row(f))),
    Case("finetune: an empty folder as --target", "empty/one item", lambda f: _finetune_on(f, _empty_folder(f))),
    Case("finetune: header-only --eval", "empty/one item", lambda f: _finetune_text(f, "--eval", _header_only(f))),
    Case("finetune: header-only --source", "empty/one item", lambda f: _finetune_text(f, "--source", _header_only(f))),
    Case("finetune: empty folder as --unlabeled (dann)", "empty/one item",
         lambda f: _finetune_text(f, "--strategy", "dann", "--source", _text(f), "--unlabeled", _empty_folder(f),
                                  "--eval", _one_per_class(f))),
    Case("diagnose: header-only --target", "empty/one item", lambda f: _diagnose(_text(f), _header_only(f))),
    Case("diagnose: empty folder as --source", "empty/one item", lambda f: _diagnose(_empty_folder(f), _text(f))),
    Case("rank: header-only --target", "empty/one item", lambda f: _rank(_header_only(f))),
    Case("rank: one row per class", "empty/one item", lambda f: _rank(_one_per_class(f))),
    Case("cluster: header-only table", "empty/one item", lambda f: _cluster_on(_header_only(f))),
    Case("cluster: one item", "empty/one item", lambda f: _cluster_on(_one_row(f))),
    Case("cluster: two items", "empty/one item", lambda f: _cluster_on(_one_per_class(f))),
    Case("curve: header-only --target", "empty/one item", lambda f: _curve_on(_header_only(f))),
    Case("curve: one row per class", "empty/one item", lambda f: _curve_on(_one_per_class(f))),
    Case("sweep: header-only --target", "empty/one item", lambda f: _sweep(f, _header_only(f))),
    Case("sweep: one row per class", "empty/one item", lambda f: _sweep(f, _one_per_class(f))),
    Case("sweep --strategies ''", "empty/one item", lambda f: _sweep(f, _text(f))[:10] + [""] + _sweep(f, _text(f))[11:]),
    Case("predict: an empty folder as --input", "empty/one item",
         lambda f: ["predict", "--run", _run_copy(f), "--input", _empty_folder(f)]),
    Case("predict: a header-only table as --input", "empty/one item",
         lambda f: ["predict", "--run", _run_copy(f), "--input", _csv(f / "in" / "new.csv", [], header=("text",))]),
    Case("predict: --input '' (from a folder holding a table)", "empty/one item", _empty_input),
    Case("predict: a one-row table", "empty/one item", _predict_one_row, expect="ok"),
    Case("export: empty run folder", "empty/one item", lambda f: ["export", "--run", _empty_folder(f), "--quiet"]),
    Case("export: no such run folder", "empty/one item", lambda f: ["export", "--run", f / "nope", "--quiet"]),
    Case("export --out a folder holding files", "empty/one item", _export_into_full,
         protect=lambda f: [f / "mine" / "notes.txt"]),
    Case("export --push with --format onnx", "empty/one item", lambda f: _export(f, "--push", "me/model")),
    Case("demo make: unknown demo", "empty/one item", lambda f: ["demo", "make", "no-such-demo", "--out", f / "d"]),
    Case("demo make --out an existing file", "empty/one item", _demo_onto_file, protect=lambda f: [f / "taken"]),
    Case("backbones --modality video", "empty/one item", lambda f: ["backbones", "--modality", "video"]),
]

CASES = MACHINE + REPORT_SIZE + EMPTY_OR_ONE
