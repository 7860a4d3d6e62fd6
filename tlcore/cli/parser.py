"""The command line's flags. ``finetune`` and ``curve`` take one flag per :class:`~tlcore.config.FinetuneConfig`
field, with the field's help and limits: the CLI is built from the same config as the app's form."""

from __future__ import annotations

import argparse
from typing import Sequence

from tlcore.config import LIMITS, TASKS, FinetuneConfig, field_help, limit_text
from tlcore.experiments.sweep import SweepConfig


def add_config_flags(parser: argparse.ArgumentParser, cls: type, skip: Sequence[str] = ()) -> None:
    """One flag per config field, with the field's help text: the CLI is built from the same config as the app."""
    for name, meta in field_help(cls).items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        kwargs: dict = {"help": meta.get("help", ""), "dest": name}
        if limit_text(meta):     # the allowed range, as the config (and the app's form) enforce it
            kwargs["help"] += f" Allowed: {limit_text(meta)}."
        default = meta["default"]
        if isinstance(default, list):
            kwargs.update(type=lambda s: [x for x in s.split(",") if x], default=default,
                          help=kwargs["help"] + " Comma-separated.")
        elif isinstance(default, bool):
            kwargs.update(action="store_true", default=default)
        else:
            typ = meta["type"] if isinstance(meta["type"], type) else str
            if "int" in str(meta["type"]):
                typ = int
            elif "float" in str(meta["type"]):
                typ = float
            kwargs.update(type=typ, default=default)
            if "choices" in meta:
                kwargs["choices"] = meta["choices"]
        if name == "out":
            kwargs["required"] = True
        flags = [flag, "--" + name] if "_" in name else [flag]   # accept the underscore spelling too
        parser.add_argument(*flags, **kwargs)


def _task_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=TASKS, help=f"{', '.join(TASKS)} (default: detected from the data)")


def _report_flags(parser: argparse.ArgumentParser, *, seed: bool = True, what: str = "the report") -> None:
    """The analysis commands' --seed, --json and --quiet."""
    if seed:
        parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help=f"write {what} here (else to stdout)")
    parser.add_argument("--quiet", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tlcore", description="TransferLab: does transfer learning help on your data?")
    p.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = p.add_subparsers(dest="cmd", required=True)

    demo = sub.add_parser("demo", help="built-in offline demo data sets")
    dsub = demo.add_subparsers(dest="demo_cmd", required=True)
    dsub.add_parser("list", help="one line per demo: NAME, MODALITY, TASK, what it shows")
    make = dsub.add_parser("make", help="write DIR/source, DIR/target, DIR/eval, DIR/unlabeled")
    make.add_argument("name")
    make.add_argument("--out", required=True)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--size", choices=("small", "default"), default="default")

    bb = sub.add_parser("backbones", help="list the registered backbones")
    bb.add_argument("--modality", choices=("image", "text", "audio"))
    bb.add_argument("--all", action="store_true", help="include tiny test backbones")

    ft = sub.add_parser("finetune", help="transfer a pretrained backbone to your data and measure before/after")
    add_config_flags(ft, FinetuneConfig)
    ft.add_argument("--json", help="also write the report to this file")
    ft.add_argument("--resume", action="store_true", help="continue an unfinished run of --out from its last checkpoint")
    ft.add_argument("--overwrite", action="store_true",
                    help="replace the run already in --out, once the new run completes (a failed run changes nothing)")
    ft.add_argument("--quiet", action="store_true", help="no progress bars")

    pr = sub.add_parser("predict", help="predict with a finished run's model")
    pr.add_argument("--run", required=True, help="run folder (holds model/)")
    pr.add_argument("--input", required=True, help="a file, a folder, or a text table / a text string (text runs)")
    pr.add_argument("--top-k", type=int, default=3, help="classification: how many classes to list per input "
                    f"(allowed: {limit_text(LIMITS['top_k'])})")
    pr.add_argument("--model", choices=("after", "before"), default="after",
                    help="the model after transfer (default) or the one before it, as the report scored them")
    pr.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                    help="where the classification models run (auto: CUDA, then MPS, else CPU)")
    pr.add_argument("--onnx", action="store_true",
                    help="run the model after transfer through onnxruntime, from the run's ONNX export (see `export`)")

    ex = sub.add_parser("export", help="export a finished run's model (after transfer) to ONNX, checked against PyTorch")
    ex.add_argument("--run", required=True, help="run folder (holds model/)")
    ex.add_argument("--format", choices=("onnx",), default="onnx", help="export format (onnx)")
    ex.add_argument("--out", help="folder to write (default RUN/export/onnx); must be new or empty — an existing export "
                                  "is never overwritten")
    ex.add_argument("--quiet", action="store_true", help="no progress bars")

    dg = sub.add_parser("diagnose", help="how far is the target from the source? (before any training)")
    dg.add_argument("--modality", required=True, choices=("image", "text", "audio"))
    dg.add_argument("--source", required=True, help="source-domain data (labels optional)")
    dg.add_argument("--target", required=True, help="target-domain data (labels optional)")
    dg.add_argument("--backbone", help="backbone whose features are compared (default per modality)")
    _task_flag(dg)
    _report_flags(dg)

    rk = sub.add_parser("rank", help="which backbone will transfer best? (no fine-tuning)")
    rk.add_argument("--modality", required=True, choices=("image", "text", "audio"))
    rk.add_argument("--target", required=True, help="labeled target data")
    rk.add_argument("--backbones", help="comma-separated candidates (default: all registered + their @random twins)")
    rk.add_argument("--validate", action="store_true", help="also fine-tune every candidate and report Kendall tau")
    rk.add_argument("--eval", help="labeled eval data for --validate (else a split of --target)")
    _task_flag(rk)
    _report_flags(rk)

    cv = sub.add_parser("curve", help="data-efficiency curve: accuracy vs labeled examples per class, pretrained vs scratch")
    add_config_flags(cv, FinetuneConfig, skip=("out", "seed", "seeds", "max_per_class", "baselines", "unlabeled"))
    cv.add_argument("--shots", default="1,2,5,10,25,0", help="examples per class to try; 0 = all")
    cv.add_argument("--seeds", type=int, default=3, help=f"number of seeds per point (allowed: {limit_text(LIMITS['seeds'])})")
    cv.add_argument("--no-scratch", action="store_true", help="skip the scratch curve (faster)")
    _report_flags(cv, seed=False, what="the curve")

    sw = sub.add_parser("sweep", help="which strategy? every strategy and baseline under one protocol, one table and "
                                      "a recommendation")
    add_config_flags(sw, SweepConfig)
    _report_flags(sw, seed=False, what="the sweep's report")

    cl = sub.add_parser("cluster", help="unsupervised transfer: cluster unlabeled data on pretrained features vs raw inputs")
    cl.add_argument("--modality", required=True, choices=("image", "text", "audio"))
    cl.add_argument("--data", required=True, help="data to cluster (labels, if present, are used only for NMI/ARI)")
    cl.add_argument("--backbone")
    cl.add_argument("--k", type=int, help="number of clusters (default: chosen by silhouette; allowed: "
                    f"{limit_text(LIMITS['k'])}, at most the number of items)")
    _report_flags(cl)

    gcp = sub.add_parser("gc", help="remove stale temporary files and evict the feature / unzip caches past the cap")
    gcp.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    gcp.add_argument("--max-gb", type=float, help="cache cap in GB (default $TRANSFERLAB_CACHE_MAX_GB or 20)")
    gcp.add_argument("--store-features-max-gb", type=float,
                     help="with an artifact store: cap in GB of its shared feature files, oldest removed first "
                          "(default $TRANSFERLAB_STORE_FEATURES_MAX_GB or 100)")

    sub.add_parser("worker", help="background job runner used by the app", add_help=False)
    return p
