"""The command line's flags. ``finetune``, ``sweep``, ``diagnose``, ``rank`` and ``cluster`` take one flag per field
of their config (:class:`~tlcore.config.FinetuneConfig`, :mod:`tlcore.experiments.configs`), with the field's help
and limits; ``curve`` takes FinetuneConfig's for the runs at each point and
:class:`~tlcore.experiments.configs.CurveConfig`'s for the curve itself (shots, seeds, scratch). The values go to the config unchecked (numbers parsed where they can
be), so its ``validate`` refuses a bad one with the same words as the API and the app's forms."""

from __future__ import annotations

import argparse
import math
from typing import Any, Sequence

from tlcore.config import LIMITS, FinetuneConfig, field_help, limit_text, option_name
from tlcore.experiments.configs import AuditConfig, ClusterConfig, CurveConfig, DiagnoseConfig, LabelNextConfig, RankConfig
from tlcore.experiments.sweep import SweepConfig

#: The config each generated subcommand is built from, and the fields it leaves out (``cluster``: ``out`` is the run
#: folder of the app's background runs; the CLI writes the report with --json instead).
GENERATED: dict[str, tuple[type, tuple[str, ...]]] = {
    "finetune": (FinetuneConfig, ()), "sweep": (SweepConfig, ()), "diagnose": (DiagnoseConfig, ()),
    "rank": (RankConfig, ()), "audit": (AuditConfig, ()), "cluster": (ClusterConfig, ("out",)), "label-next": (LabelNextConfig, ()),
}


def whole_number(text: str) -> Any:
    """An integer option as typed: ``"3"`` -> 3, ``"1e3"`` -> 1000; anything else is passed on as it is (2.5, nan,
    'abc') for the config to refuse in its own words."""
    try:
        return int(text)
    except ValueError:
        value = real_number(text)
        return int(value) if isinstance(value, float) and math.isfinite(value) and value.is_integer() else value


def real_number(text: str) -> Any:
    """A float option as typed; text that is no number is passed on for the config to refuse."""
    try:
        return float(text)
    except ValueError:
        return text


def _comma_list(text: str) -> list:
    return [x.strip() for x in text.split(",") if x.strip()]


def add_config_flags(parser: argparse.ArgumentParser, cls: type, skip: Sequence[str] = (),
                     only: Sequence[str] = ()) -> None:
    """One flag per config field (all but ``skip``, or just ``only``), with the field's help text: the CLI is built
    from the same config as the app. Choices and limits are shown in the help and checked by the config's
    ``validate``, not by argparse, so a bad value gets the same message here as from the API."""
    for name, meta in field_help(cls).items():
        if name in skip or (only and name not in only):
            continue
        flag = "--" + option_name(name, meta)
        kwargs: dict = {"help": meta.get("help", "").replace("%", "%%"), "dest": name, "default": meta["default"]}
        if limit_text(meta):     # the allowed range, as the config (and the app's form) enforce it
            kwargs["help"] += f" Allowed: {limit_text(meta)}."
        if meta.get("required"):
            kwargs["help"] += " Required."
        kind = str(meta["type"])
        if isinstance(meta["default"], list):
            kwargs.update(type=_comma_list, help=kwargs["help"] + " Comma-separated.")
        elif isinstance(meta["default"], bool):   # a setting that is on by default gets its --no- flag
            kwargs.update(action=argparse.BooleanOptionalAction if meta["default"] else "store_true")
        else:
            kwargs["type"] = whole_number if "int" in kind else real_number if "float" in kind else str
            if "choices" in meta:
                kwargs["metavar"] = "{" + ",".join(map(str, meta["choices"])) + "}"
        if name == "out":
            kwargs["required"] = True
        spellings = [flag, "--" + name] if "_" in name and "flag" not in meta else [flag]   # the underscore one too
        parser.add_argument(*spellings, **kwargs)


def config_values(args: argparse.Namespace, cls: type) -> dict:
    """The values of ``cls``'s generated flags in parsed ``args`` (the fields a subcommand skips are left out)."""
    return {name: getattr(args, name) for name in field_help(cls) if hasattr(args, name)}


#: The curve's own fields (:class:`CurveConfig`); its other flags are FinetuneConfig's, used at every point.
CURVE_FIELDS = ("shots", "seeds", "scratch")

#: The flags of the analysis commands that are no config field: where the report goes, and no progress bars.
REPORT_FLAGS = ("json", "quiet")


def _report_flags(parser: argparse.ArgumentParser, *, what: str = "the report") -> None:
    """The analysis commands' --json and --quiet (:data:`REPORT_FLAGS`)."""
    parser.add_argument("--json", help=f"write {what} here (else to stdout)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


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
    add_config_flags(ft, *GENERATED["finetune"])
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

    ex = sub.add_parser("export", help="export a finished run's model (after transfer): to ONNX, checked against "
                                       "PyTorch, or as a Hugging Face Hub folder with a model card")
    ex.add_argument("--run", required=True, help="run folder (holds model/)")
    ex.add_argument("--format", choices=("onnx", "hf"), default="onnx",
                    help="onnx: model.onnx + preprocessing, checked against PyTorch; hf: a folder ready for the Hugging "
                         "Face Hub (model/, report.json, README.md with YAML metadata)")
    ex.add_argument("--out", help="folder to write (default RUN/export/onnx or RUN/export/hf); must be new or empty — an "
                                  "existing export is never overwritten")
    ex.add_argument("--push", metavar="REPO_ID",
                    help="with --format hf: also upload the folder to this Hugging Face Hub model repo (USER/NAME; "
                         "created private if new). Needs a network connection and `hf auth login`; report.json holds "
                         "the eval items, so check the repo before making it public")
    ex.add_argument("--quiet", action="store_true", help="no progress bars")

    dg = sub.add_parser("diagnose", help="how far is the target from the source? (before any training)")
    add_config_flags(dg, *GENERATED["diagnose"])
    _report_flags(dg)

    rk = sub.add_parser("rank", help="which backbone will transfer best? (no fine-tuning)")
    add_config_flags(rk, *GENERATED["rank"])
    _report_flags(rk)

    au = sub.add_parser("audit", help="label issues and data problems: likely mislabeled items, duplicates, outliers "
                                      "(cleanlab on cross-validated probes of the pretrained features)")
    add_config_flags(au, *GENERATED["audit"])
    _report_flags(au)
    au.add_argument("--csv", help="also write the issues as CSV here (one row per item and issue); a fine-tuning run "
                                  "takes it as --exclude to leave the flagged training items out")

    cv = sub.add_parser("curve", help="data-efficiency curve: accuracy vs labeled examples per class, pretrained vs scratch")
    add_config_flags(cv, FinetuneConfig, skip=("out", "seed", "seeds", "max_per_class", "baselines", "unlabeled"))
    add_config_flags(cv, CurveConfig, only=CURVE_FIELDS)
    _report_flags(cv, what="the curve")

    sw = sub.add_parser("sweep", help="which strategy? every strategy and baseline under one protocol, one table and "
                                      "a recommendation")
    add_config_flags(sw, *GENERATED["sweep"])
    _report_flags(sw, what="the sweep's report")

    cl = sub.add_parser("cluster", help="unsupervised transfer: cluster unlabeled data on pretrained features vs raw inputs")
    add_config_flags(cl, *GENERATED["cluster"])
    _report_flags(cl)

    ln = sub.add_parser("label-next", help="which unlabeled items to label next: a ranked list (TypiClust, margin x "
                                           "k-center...) and the accuracy projected for N more labels")
    add_config_flags(ln, *GENERATED["label-next"])
    ln.add_argument("--csv", help="also write the ranked list here as CSV (rank,item,name,suggested,uncertainty,label), "
                                  "with an empty label column to fill in")
    _report_flags(ln, what="the ranking")

    er = sub.add_parser("errors", help="error analysis of a finished run: the largest confusion cells and top-loss "
                                       "items (NER: entity errors by kind; ASR: worst utterances, word substitutions)")
    er.add_argument("run", metavar="RUN_DIR", help="a finished run folder (the --out of `finetune`)")
    er.add_argument("--top", type=whole_number, default=10, dest="top_k", metavar="N",
                    help="entries kept per ranked list (confusion cells, losses, errors, utterances, word edits); "
                         f"counts are always whole (allowed: {limit_text(LIMITS['top_k'])})")
    er.add_argument("--json", metavar="FILE", help="write the analysis here (else to stdout)")

    gcp = sub.add_parser("gc", help="remove stale temporary files and evict the feature / unzip caches past the cap")
    gcp.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    gcp.add_argument("--max-gb", type=float, help="cache cap in GB (default $TRANSFERLAB_CACHE_MAX_GB or 20)")
    gcp.add_argument("--store-features-max-gb", type=float,
                     help="with an artifact store: cap in GB of its shared feature files, oldest removed first "
                          "(default $TRANSFERLAB_STORE_FEATURES_MAX_GB or 100)")

    sub.add_parser("worker", help="background job runner used by the app", add_help=False)
    return p
