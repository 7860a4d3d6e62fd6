"""ONNX export of a finished run (tlcore.inference.onnx_export): tiny image / text / audio classification and NER runs
export with their preprocessing and labels, match PyTorch on the run's eval items, predict the same labels through
onnxruntime (API and CLI), never overwrite an existing export or touch the run's own files, and refuse clearly what
they cannot export."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_audio_set, write_image_set, write_ner, write_text_set

from tlcore.cli import main
from tlcore.errors import ConfigError
from tlcore.inference import onnx_export as ox

pytestmark = pytest.mark.usefixtures("one_thread")

BACKBONES = {"image": "tiny-image", "text": "tiny-text", "audio": "tiny-audio", "ner": "tiny-text"}
EXPORT_FILES = {"model.onnx", "labels.json", "preprocessing.json", "parity.json", "README.md"}


def make_run(root: Path, kind: str) -> Path:
    """A tiny finished run (one epoch of full fine-tuning, so the backbone weights are the run's own)."""
    import torch

    import tlcore

    data = {"image": lambda: write_image_set(root / "data"), "text": lambda: write_text_set(root / "data"),
            "audio": lambda: write_audio_set(root / "data"), "ner": lambda: write_ner(root / "ner.jsonl")}[kind]()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # module fixtures run before the function-scoped one_thread
    try:
        tlcore.finetune(modality="text" if kind == "ner" else kind, task="ner" if kind == "ner" else "classify",
                        backbone=BACKBONES[kind], target=str(data), out=str(root / "run"), strategy="full", epochs=1,
                        baselines=[])
    finally:
        torch.set_num_threads(threads)
    return root / "run"


def digest(run_dir: Path) -> dict[str, str]:
    """Every file the run holds (its export folder aside), by content."""
    return {str(f.relative_to(run_dir)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(run_dir.rglob("*")) if f.is_file() and "export" not in f.relative_to(run_dir).parts}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``exported(kind)`` -> (run folder, the run's files before its export, ExportResult); made once per kind."""
    import torch

    made: dict[str, tuple] = {}

    def get(kind: str) -> tuple:
        if kind not in made:
            run = make_run(tmp_path_factory.mktemp(f"onnx_{kind}"), kind)
            before = digest(run)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                made[kind] = (run, before, ox.export_onnx(run))
            finally:
                torch.set_num_threads(threads)
        return made[kind]

    return get


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("onnx_image_plain"), "image")


def copy_run(run: Path, to: Path) -> Path:
    """A copy of a run folder without its export."""
    shutil.copytree(run, to, ignore=shutil.ignore_patterns("export"))
    return to


def eval_items(run: Path, kind: str) -> list:
    preds = json.loads((run / "report.json").read_text())["eval_predictions"]
    return [" ".join(s) for s in preds["tokens"]] if kind == "ner" else preds["items"]


# ---------------------------------------------------------------- the export itself

@pytest.mark.parametrize("kind", ["image", "text", "audio", "ner"])
def test_export_writes_a_checked_folder_and_leaves_the_run_alone(exported, kind):
    run, before, result = exported(kind)
    folder = run / "export" / "onnx"
    assert result.folder == folder and EXPORT_FILES <= {f.name for f in folder.iterdir()}
    assert not [f for f in (run / "export").iterdir() if f.name != "onnx"], "no temporary folder is left behind"
    assert digest(run) == before, "the export must not change any file the run already holds"
    report = json.loads((run / "report.json").read_text())

    labels = json.loads((folder / "labels.json").read_text())
    saved = json.loads((run / "model" / "config.json").read_text())
    assert labels == (saved["tags"] if kind == "ner" else report["data"]["classes"])

    doc = json.loads((folder / "preprocessing.json").read_text())
    section = {"image": "image", "text": "text", "audio": "audio", "ner": "text"}[kind]
    assert doc["task"] == ("ner" if kind == "ner" else "classify") and section in doc and doc["steps"]
    shapes = {i["name"]: i["shape"] for i in doc["inputs"]}
    assert all(shape[0] == "batch" for shape in shapes.values())
    if kind in ("text", "ner"):
        assert shapes["input_ids"][1] == "sequence" and doc["text"]["max_length"] == 64
        assert (folder / "tokenizer.json").is_file() or (folder / "vocab.txt").is_file()
    if kind == "image":
        assert shapes["pixel_values"] == ["batch", 3, 32, 32]
        assert doc["image"]["resize"]["width"] == 32 and doc["image"]["normalize"].startswith("(x * 255 - 127) / 128")
    if kind == "audio":
        assert doc["audio"]["sample_rate"] == 16000 and (folder / "preprocessor_config.json").is_file()

    record = json.loads((folder / "parity.json").read_text())
    p = record["parity"]
    n_eval = len(eval_items(run, kind))
    assert p["passed"] and p["items"] == n_eval == p["items_available"] and "eval" in p["inputs"]
    assert 0 <= p["max_abs_diff"] <= p["tolerance"] == pytest.approx(1e-3 * max(1.0, p["logit_scale"]))
    assert p["argmax_agreement"] == 1.0 and p["argmax_disagreements"] == 0
    assert p["compared"] == (n_eval if kind != "ner" else p["compared"]) and p["compared"] >= n_eval
    assert record["exporter"].startswith("torch.onnx.export(dynamo=True)")
    assert record["model_sha256"] == hashlib.sha256((run / "model" / "model.safetensors").read_bytes()).hexdigest()

    # The run's own model card is never rewritten; the export's card has the Export section with the numbers.
    assert "Export (ONNX)" not in (run / "README.md").read_text()
    card = (folder / "README.md").read_text()
    assert "## Export (ONNX)" in card and f"{p['max_abs_diff']:.2e}" in card and "passed" in card


@pytest.mark.parametrize("kind", ["image", "text", "audio", "ner"])
def test_onnx_predictions_equal_pytorch_on_the_eval_items(exported, kind):
    import tlcore

    run, _, _ = exported(kind)
    items = eval_items(run, kind)
    loaded = tlcore.load_run(run)
    torch_rows, onnx_rows = loaded.predict(items), loaded.predict(items, backend="onnx")
    if kind == "ner":
        assert [r["tags"] for r in onnx_rows] == [r["tags"] for r in torch_rows]
        assert [r["spans"] for r in onnx_rows] == [r["spans"] for r in torch_rows]
        return
    assert [r["prediction"] for r in onnx_rows] == [r["prediction"] for r in torch_rows]
    for a, b in zip(onnx_rows, torch_rows):
        assert a["score"] == b["score"] == "probability" and [c for c, _ in a["top"]] == [c for c, _ in b["top"]]
        assert np.allclose([s for _, s in a["top"]], [s for _, s in b["top"]], atol=1e-3)
    # ...and they are the labels the report scored for the model after transfer.
    preds = json.loads((run / "report.json").read_text())["eval_predictions"]
    classes = loaded.classes
    assert [classes.index(r["prediction"]) for r in onnx_rows] == preds["after"]


@pytest.mark.parametrize("kind", ["text", "ner"])
def test_cli_predict_onnx_prints_what_pytorch_prints(exported, kind, capsys):
    run, _, _ = exported(kind)
    data = run.parent / ("ner.jsonl" if kind == "ner" else "data")
    assert main(["predict", "--run", str(run), "--input", str(data)]) == 0
    torch_out = capsys.readouterr().out
    assert main(["predict", "--run", str(run), "--input", str(data), "--onnx"]) == 0
    onnx_out = capsys.readouterr().out
    key = "tags" if kind == "ner" else "prediction"
    rows = [[json.loads(line)[key] for line in out.splitlines()] for out in (torch_out, onnx_out)]
    assert rows[0] == rows[1] and len(rows[0]) >= 12


def test_an_existing_export_is_never_overwritten(exported, capsys):
    run, _, _ = exported("image")
    folder = run / "export" / "onnx"
    files = {f.name: f.read_bytes() for f in folder.iterdir()}
    with pytest.raises(ConfigError, match="already holds an ONNX export; TransferLab never overwrites"):
        ox.export_onnx(run)
    assert main(["export", "--run", str(run), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "already holds an ONNX export" in err and "delete that folder" in err and "--out NEW_FOLDER" in err
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == files


def test_predict_through_a_stale_export_is_refused(exported, tmp_path):
    run, _, _ = exported("text")
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    with open(copy / "model" / "model.safetensors", "ab") as f:   # the run's weights are no longer the exported ones
        f.write(b"\0")
    with pytest.raises(ConfigError, match="made from other weights"):
        ox.load_run_export(copy)


# ---------------------------------------------------------------- where it may write, and when it refuses

def test_out_must_be_new_or_empty_and_outside_the_runs_own_files(image_run, tmp_path):
    with pytest.raises(ConfigError, match="inside the run's own files"):
        ox.export_onnx(image_run, out=image_run / "model" / "onnx")
    with pytest.raises(ConfigError, match="inside the run's own files"):
        ox.export_onnx(image_run, out=image_run)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already holds files"):
        ox.export_onnx(image_run, out=busy)
    assert (busy / "notes.txt").read_text() == "mine" and not (image_run / "export").exists()


def test_export_elsewhere_with_synthetic_inputs_when_the_eval_files_are_gone(image_run, tmp_path):
    run = copy_run(image_run, tmp_path / "run")
    report = json.loads((run / "report.json").read_text())
    report["eval_predictions"]["items"] = [str(tmp_path / "gone" / Path(x).name) for x in report["eval_predictions"]["items"]]
    (run / "report.json").write_text(json.dumps(report))
    result = ox.export_onnx(run, out=tmp_path / "elsewhere")
    assert result.folder == tmp_path / "elsewhere" and not (run / "export").exists()
    p = result.parity["parity"]
    assert p["passed"] and p["inputs"].startswith("synthetic inputs") and p["compared"] == 8
    # The folder on its own predicts: the exported preprocessing + onnxruntime.
    model = ox.load_onnx_model(result.folder)
    items = [str(f) for f in sorted((image_run.parent / "data").rglob("*.png"))]
    import tlcore

    want = tlcore.load_run(image_run).after_model.predict_proba(items)
    assert np.allclose(model.predict_proba(items), want, atol=1e-4)
    with zipfile_of(ox.export_zip(result.folder)) as zf:
        assert {f"onnx/{n}" for n in EXPORT_FILES} <= set(zf.namelist())


def zipfile_of(data: bytes):
    import io
    import zipfile

    return zipfile.ZipFile(io.BytesIO(data))


def test_parity_beyond_tolerance_is_an_error_and_writes_nothing(image_run, tmp_path, monkeypatch):
    run = copy_run(image_run, tmp_path / "run")
    real = ox.OnnxGraph.logits
    monkeypatch.setattr(ox.OnnxGraph, "logits", lambda self, batch: real(self, batch) + 0.5)
    with pytest.raises(ox.ExportError, match="does not reproduce the PyTorch model: .* max \\|Δ logit\\| 5.00e-01"):
        ox.export_onnx(run)
    assert not (run / "export").exists(), "a failed export leaves nothing behind"


def fake_asr_run(folder: Path) -> Path:
    """A speech recognition run as far as the export can tell (it decides from the report's task, loading nothing)."""
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    (folder / "report.json").write_text(json.dumps({"task": "asr", "modality": "audio"}))
    return folder


def test_speech_recognition_runs_are_refused_with_the_reason(tmp_path, capsys):
    run = fake_asr_run(tmp_path / "asr")
    assert "generate()" in ox.refusal(run)
    with pytest.raises(ConfigError, match="cannot export to ONNX — speech recognition runs are not exported"):
        ox.export_onnx(run)
    assert main(["export", "--run", str(run)]) == 2
    assert "speech recognition runs are not exported" in capsys.readouterr().err
    assert main(["predict", "--run", str(run), "--input", "clip.wav", "--onnx"]) == 2
    assert "no ONNX backend" in capsys.readouterr().err
    assert not (run / "export").exists()


def test_cli_errors_for_a_missing_run_and_a_missing_export(image_run, tmp_path, capsys):
    missing = tmp_path / "no-such-run"
    assert main(["export", "--run", str(missing), "--format", "onnx"]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert main(["predict", "--run", str(missing), "--input", "x", "--onnx"]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert main(["predict", "--run", str(image_run), "--input", str(image_run.parent / "data"), "--onnx"]) == 2
    err = capsys.readouterr().err
    assert "has no ONNX export" in err and f"python -m tlcore export --run {image_run} --format onnx" in err
    assert main(["predict", "--run", str(image_run), "--input", "x", "--onnx", "--model", "before"]) == 2
    assert "only the model after transfer is exported" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--run", str(image_run), "--format", "tflite"])


# ---------------------------------------------------------------- the parity rule

def test_compare_logits_on_known_cases():
    ref = np.array([[2.0, -1.0], [0.0, 3.0], [1.0, 1.0000001]], np.float32)
    same = ox.compare_logits(ref, ref.copy())
    assert same["passed"] and same["max_abs_diff"] == 0 and same["tolerance"] == pytest.approx(3e-3)
    # a near tie may flip without failing; a clear winner may not
    tie = ref.copy()
    tie[2] = [1.0000002, 1.0]
    assert ox.compare_logits(ref, tie)["argmax_disagreements"] == 1 and ox.compare_logits(ref, tie)["passed"]
    off = ref + np.array([0.0, 0.01], np.float32)
    result = ox.compare_logits(ref, off)
    assert not result["passed"] and result["max_abs_diff"] == pytest.approx(0.01)
    assert not ox.compare_logits(ref, ref[:2])["passed"]
    assert not ox.compare_logits(ref[:0], ref[:0])["passed"], "nothing compared is not a pass"


# ---------------------------------------------------------------- the Runs page panel

def _panel(run_dir: str) -> None:
    from pathlib import Path

    from ui.export import export_panel

    export_panel(Path(run_dir))


def test_export_panel_exports_then_offers_the_zip(image_run, tmp_path):
    from streamlit.testing.v1 import AppTest

    run = copy_run(image_run, tmp_path / "run")
    at = AppTest.from_function(_panel, args=(str(run),), default_timeout=120).run()
    assert not at.exception and [b.label for b in at.button] == ["Export to ONNX"]
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["argmax agreement"] == "100.0%" and metrics["compared"].endswith("items")
    assert (run / "export" / "onnx" / "model.onnx").is_file()
    assert not at.button and "--onnx" in at.code[0].value
    assert [d.proto.label for d in at.get("download_button")] == ["Download ONNX export (.zip)"]
    at.run()   # later visits show the export, with no second button
    assert not at.exception and not at.button and {m.label for m in at.metric} == set(metrics)

    asr = fake_asr_run(tmp_path / "asr")
    at = AppTest.from_function(_panel, args=(str(asr),), default_timeout=60).run()
    assert not at.exception and not at.button
    assert any("speech recognition runs are not exported" in i.value for i in at.info)
