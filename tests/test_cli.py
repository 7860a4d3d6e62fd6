"""The command line contract of DESIGN.md: commands, JSON report, exit code 2 with one line on bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_text_set

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tlcore", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def test_demo_list_format():
    out = cli("demo", "list")
    assert out.returncode == 0
    rows = [line.split("\t") for line in out.stdout.strip().splitlines()]
    names = {r[0] for r in rows}
    assert {"digits", "sentiment", "spoken-digits"} <= names
    from tlcore.tasks import get_task, task_names

    assert all(len(r) == 4 and r[2] in task_names() and r[1] in get_task(r[2]).modalities for r in rows)


def test_backbones_lists_defaults():
    out = cli("backbones", "--modality", "text")
    assert out.returncode == 0 and "minilm-l6" in out.stdout and "(default)" in out.stdout
    assert "image" not in {line.split("\t")[1] for line in out.stdout.strip().splitlines()}


@pytest.mark.parametrize("args, message", [
    (["finetune", "--modality", "text", "--target", "/no/such/dir", "--out", "X"], "does not exist"),
    (["finetune", "--modality", "text", "--target", "{data}", "--backbone", "nope", "--out", "X"], "unknown backbone 'nope'; known:"),
    (["finetune", "--modality", "text", "--target", "{data}", "--strategy", "nope", "--out", "X"], "unknown strategy 'nope'; known:"),
    (["finetune", "--modality", "text", "--target", "{bad}", "--out", "X"], "no 'text' column"),
    (["demo", "make", "nope", "--out", "X"], "unknown demo 'nope'"),
    (["predict", "--run", "/no/run", "--input", "hi"], "no such run folder"),
])
def test_bad_input_exit_2_one_line(tmp_path, args, message):
    data = write_text_set(tmp_path / "data")
    (tmp_path / "bad.csv").write_text("sentence,label\nx,y\n")
    args = [a.format(data=data, bad=tmp_path / "bad.csv").replace("X", str(tmp_path / "out")) for a in args]
    out = cli(*args)
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in out.stderr


def test_finetune_json_and_predict(tmp_path):
    data = write_text_set(tmp_path / "data")
    run, report_path = tmp_path / "run", tmp_path / "report.json"
    out = cli("finetune", "--modality", "text", "--target", str(data), "--backbone", "tiny-text", "--strategy", "partial",
              "--epochs", "1", "--baselines", "knn", "--out", str(run), "--json", str(report_path))
    assert out.returncode == 0, out.stderr
    report = json.loads(report_path.read_text())
    assert report["strategy"] == "partial" and report["baselines"]["knn"]["accuracy"] >= 0
    assert "after:" in out.stderr
    pred = cli("predict", "--run", str(run), "--input", "the film was great")
    row = json.loads(pred.stdout.strip().splitlines()[0])
    assert pred.returncode == 0 and row["prediction"] in ("positive", "negative") and len(row["top"]) == 2
    on_cpu = cli("predict", "--run", str(run), "--input", "the film was great", "--device", "cpu")
    assert on_cpu.returncode == 0 and json.loads(on_cpu.stdout.strip().splitlines()[0]) == row
    if not __import__("torch").cuda.is_available():
        no_gpu = cli("predict", "--run", str(run), "--input", "the film was great", "--device", "cuda")
        assert no_gpu.returncode == 2 and "CUDA is not available" in no_gpu.stderr


def test_engine_never_imports_streamlit():
    code = "import sys, tlcore.settings.inductive, tlcore.cli, tlcore.data.demos, tlcore.models.registry; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
    offenders = [p for p in (ROOT / "tlcore").rglob("*.py") if "import streamlit" in p.read_text()]
    assert offenders == []


def test_ner_everywhere_on_the_command_line(tmp_path):
    """diagnose, rank and predict (after and before) on an NER set, from the CLI (tiny test backbone)."""
    from tlcore.data.demos import make_demo

    d = make_demo("ner-shift", tmp_path / "ner", size="small")
    out = cli("diagnose", "--modality", "text", "--task", "ner", "--source", str(d / "source"), "--target",
              str(d / "target"), "--backbone", "tiny-text", "--json", str(tmp_path / "dx.json"), "--quiet")
    assert out.returncode == 0, out.stderr
    dx = json.loads((tmp_path / "dx.json").read_text())
    assert dx["task"] == "ner" and "ner" in dx and "verdict:" in out.stderr
    out = cli("rank", "--modality", "text", "--target", str(d / "target"), "--backbones", "tiny-text,tiny-text@random",
              "--json", str(tmp_path / "rk.json"), "--quiet")
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "rk.json").read_text())["task"] == "ner"      # detected from the data
    run = tmp_path / "run"
    out = cli("finetune", "--task", "ner", "--modality", "text", "--target", str(d / "target"), "--eval", str(d / "eval"),
              "--backbone", "tiny-text", "--strategy", "full", "--epochs", "1", "--baselines", "", "--out", str(run), "--quiet")
    assert out.returncode == 0, out.stderr
    for which in ("after", "before"):
        out = cli("predict", "--run", str(run), "--input", "just saw priya at tesco in leeds", "--model", which)
        assert out.returncode == 0, out.stderr
        row = json.loads(out.stdout.strip().splitlines()[0])
        assert row["tokens"] == "just saw priya at tesco in leeds".split() and len(row["tags"]) == 7
    out = cli("rank", "--modality", "text", "--target", str(d / "target"), "--backbones", "tiny-text", "--validate")
    assert out.returncode == 2 and "error:" in out.stderr


def test_asr_everywhere_on_the_command_line(tmp_path, tiny_whisper):
    """diagnose, rank and predict (after and before) on ASR sets, from the CLI (tiny test models)."""
    from conftest import write_asr_clips

    src = write_asr_clips(tmp_path / "source", 4, speakers=("s1",), first=0)
    tgt = write_asr_clips(tmp_path / "target", 6, speakers=("s2", "s3"), first=10)
    ev = write_asr_clips(tmp_path / "eval", 3, speakers=("s4",), first=20)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = cli("diagnose", "--modality", "audio", "--source", str(src), "--target", str(tgt), "--backbone", "tiny-audio",
              "--json", str(tmp_path / "dx.json"), "--quiet", env=env)
    assert out.returncode == 0, out.stderr
    dx = json.loads((tmp_path / "dx.json").read_text())
    assert dx["task"] == "asr" and "asr" in dx
    out = cli("rank", "--modality", "audio", "--task", "asr", "--target", str(tgt), "--backbones", str(tiny_whisper),
              "--json", str(tmp_path / "rk.json"), "--quiet", env=env)
    assert out.returncode == 0, out.stderr
    assert {"wer", "cer"} <= set(json.loads((tmp_path / "rk.json").read_text())["ranking"][0]["scores"])
    run = tmp_path / "run"
    out = cli("finetune", "--task", "asr", "--modality", "audio", "--target", str(tgt), "--eval", str(ev), "--backbone",
              str(tiny_whisper), "--epochs", "1", "--batch-size", "2", "--out", str(run), "--quiet", env=env)
    assert out.returncode == 0, out.stderr
    for which in ("after", "before"):
        out = cli("predict", "--run", str(run), "--input", str(ev / "c0.wav"), "--model", which, env=env)
        assert out.returncode == 0, out.stderr
        assert "transcript" in json.loads(out.stdout.strip().splitlines()[0])
