"""benchmarks/gpu_check.py in its CPU mode (``--device cpu --tiny``): every device path runs and reports ok, so the
check is ready the day a GPU machine is (it is written for one and cannot be run on one here)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_tiny_mode_reports_every_path_ok(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "TRANSFERLAB_HOME": str(tmp_path / "home")}
    env.pop("OUT", None)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--tiny",
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=900)
    data = json.loads((out / "gpu_check.json").read_text())
    failed = {r["path"]: r["error"] + "\n" + r["traceback"] for r in data["rows"] if r["status"] != "ok"}
    assert not failed, failed
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    paths = {r["path"] for r in data["rows"]}
    for expected in ("features (image, text, audio)", "linear_probe (audio)", "partial (text)",
                     "full (image, BatchNorm, augment)", "lora (text)", "scratch twin (image)", "classical baseline (text)",
                     "ner (full)", "asr (decoder)", "adapt head (dann)", "adapt backbone (dann --adapt-backbone)",
                     "predict", "try it (load_run, after + before)", "launch (num_processes=2)",
                     "P8 full fine-tuning (text)", "P8 full fine-tuning (image)", "features vs bare loop (image)"):
        assert expected in paths
    p8 = next(r for r in data["rows"] if r["path"] == "P8 full fine-tuning (text)")["detail"]
    assert p8["ours"]["samples_per_s"] > 0 and p8["hf_trainer"]["samples_per_s"] > 0
    assert data["machine"]["device"] == "cpu" and data["precisions"] == ["bf16"]
    table = (out / "gpu_check.md").read_text()
    assert table.startswith("# gpu_check on CPU") and "| ner (full) | bf16 | ok |" in table
    assert data["streamlit_imported"] is False   # the GPU machine has no Streamlit

