"""The command line (DESIGN.md): ``python -m tlcore demo|backbones|finetune|predict|export|worker ...``.

Bad input exits with code 2 and one line on stderr (no traceback); progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from tlcore.config import LIMITS, TASKS, FinetuneConfig, check_option, field_help, limit_text
from tlcore.errors import Cancelled, ConfigError, TransferLabError, first_line
from tlcore.tasks import get_task

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _add_config_flags(parser: argparse.ArgumentParser, cls: type, skip: Sequence[str] = ()) -> None:
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


class _Bar:
    """Progress events as tqdm bars on stderr, one per stage."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.stage: Optional[str] = None
        self.bar = None

    def __call__(self, ev) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if ev.stage != self.stage:
            self.close()
            self.stage = ev.stage
            self.bar = tqdm(total=ev.total or None, desc=ev.stage, file=sys.stderr, leave=False, dynamic_ncols=True)
        if self.bar is not None:
            if ev.total and self.bar.total != ev.total:
                self.bar.total = ev.total
            self.bar.n = ev.step
            post = {k: v for k, v in ev.metrics.items() if k in ("epoch", "batch_loss", "val_accuracy")}
            self.bar.set_postfix(post or None, refresh=False)
            self.bar.set_description(f"{ev.stage}: {ev.message}" if ev.message else ev.stage, refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_demo(args: argparse.Namespace) -> int:
    from tlcore.data.demos import list_demos, make_demo

    if args.demo_cmd == "list":
        for d in list_demos():
            why = d.available()
            note = f" [unavailable: {why}]" if why else ""
            print(f"{d.name}\t{d.modality}\t{d.task}\t{d.description}{note}")
        return 0
    check_option("seed", args.seed, flag="--seed")
    out = make_demo(args.name, args.out, seed=args.seed, size=args.size)
    print(out)
    return 0


def cmd_backbones(args: argparse.Namespace) -> int:
    from tlcore.models.registry import DEFAULT_BACKBONE, list_backbones

    for spec in list_backbones(args.modality, include_tiny=args.all):
        default = " (default)" if DEFAULT_BACKBONE.get(spec.modality) == spec.name else ""
        print(f"{spec.name}\t{spec.modality}\t{spec.description}{default}\t{spec.weights}")
    return 0


def _json_target(path: Optional[str]) -> Optional[Path]:
    """Check a --json path before the (long) work starts: its folder must exist and it must not be a folder."""
    if not path:
        return None
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"--json {path} is a folder; give a file name such as {target / 'report.json'}")
    if not target.parent.is_dir():
        raise ConfigError(f"--json {path}: the folder {target.parent} does not exist; create it or pick another path")
    if not os.access(target.parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ConfigError(f"--json {path}: cannot write there (permission denied); pick a writable path")
    return target


def _note_unfinished(out: str) -> None:
    """After a failed or interrupted run: say where its checkpoints wait for --resume (nothing was written at --out)."""
    from tlcore.reporting.writer import RunWriter

    kept = [p for p, pid in RunWriter(out, {}).partials() if pid == os.getpid() and (p / "checkpoints").is_dir()]
    if kept:
        print(f"note: nothing was written to {out}; the checkpoints of this attempt are kept in {kept[0]}: run the "
              "same command with --resume to continue from them", file=sys.stderr)


def _write_json(report: dict, path: Optional[Path]) -> None:
    text = json.dumps(report, indent=2, default=float)
    if path:
        try:
            path.write_text(text)
        except OSError as exc:
            raise ConfigError(f"cannot write --json {path}: {exc.strerror}") from None
    else:
        print(text)


def cmd_finetune(args: argparse.Namespace) -> int:
    import tlcore

    values = {k: getattr(args, k) for k in field_help(FinetuneConfig)}
    if not any(a.startswith("--strategy") for a in args.argv):
        values["strategy"] = get_task(values["task"]).default_strategy   # ASR's: decoder (no linear probe there)
    cfg = FinetuneConfig.from_dict(values).validate()
    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it: pass only one of them")
    json_path = _json_target(args.json)
    from tlcore.device import is_main_process
    from tlcore.training.launch import CHILD_ENV, PROGRESS_ENV, progress_to_file

    # one progress bar for a multi-process run: the launching process's, fed by rank 0's events (see launch.py)
    events_file = os.environ.get(PROGRESS_ENV) if os.environ.get(CHILD_ENV) else None
    bar = _Bar(args.quiet or not is_main_process() or bool(events_file))
    progress = progress_to_file(events_file, bar) if events_file and is_main_process() else bar
    try:
        result = tlcore.finetune(cfg, progress=progress, resume=args.resume, overwrite=args.overwrite)
    except (TransferLabError, Cancelled, KeyboardInterrupt):
        _note_unfinished(cfg.out)
        raise
    finally:
        bar.close()
    if not is_main_process() or os.environ.get(CHILD_ENV):
        return 0            # a process of a multi-process run: rank 0 wrote the run, the launching CLI reports it
    report = result.report
    if json_path:
        _write_json(report, json_path)
    key = get_task(result.task).metric.key
    lines = [f"run folder: {cfg.out}"]
    for name, m in [("before", result.before), ("after", result.after)] + [(f"baseline {k}", v) for k, v in result.baselines.items()]:
        lo, hi = m.get(f"{key}_ci95", [m[key], m[key]])
        lines.append(f"{name + ':':<8} {key} {m[key]:.3f}  95% CI {lo:.3f}-{hi:.3f}" + (f"  ({m['kind']})" if "kind" in m else ""))
    lines += [f"baseline {k} not computed: {v}" for k, v in result.baselines_skipped.items()]
    lines += [f"warning: {w}" for w in result.warnings]
    print("\n".join(lines), file=sys.stderr)
    if not json_path:
        print(json.dumps({k: report.get(k) for k in ("task", "modality", "backbone", "strategy", "before", "after",
                                                     "baselines", "baselines_skipped", "warnings")}, indent=2, default=float))
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    import tlcore

    check_option("seed", args.seed, flag="--seed")
    json_path = _json_target(args.json)
    bar = _Bar(args.quiet)
    try:
        result = tlcore.diagnose(args.source, args.target, modality=args.modality, task=args.task,
                                 backbone=args.backbone, seed=args.seed, progress=bar)
    finally:
        bar.close()
    _write_json(result.to_dict(), json_path)
    v = result.verdict
    print(f"verdict: {v['severity']} shift. {v['summary']}\nrecommendation: {v['recommendation']}", file=sys.stderr)
    return 0


def cmd_rank(args: argparse.Namespace) -> int:
    import tlcore

    check_option("seed", args.seed, flag="--seed")
    json_path = _json_target(args.json)
    bar = _Bar(args.quiet)
    names = [b for b in (args.backbones or "").split(",") if b] or None
    try:
        result = tlcore.rank(args.target, modality=args.modality, backbones=names, task=args.task, seed=args.seed,
                             validate=args.validate, eval=args.eval, progress=bar)
    finally:
        bar.close()
    report = result.to_dict()
    _write_json(report, json_path)
    for row in result.ranking:
        cells = "  ".join(f"{k} {v['point']:.3f} [{v['lo']:.3f}, {v['hi']:.3f}]" for k, v in row["scores"].items())
        print(f"{row['rank']}. {row['backbone']}: {cells}", file=sys.stderr)
    if "validation" in report:
        print(f"kendall tau vs fine-tuned accuracy: {report['validation']['kendall_tau']}", file=sys.stderr)
    print(result.advice, file=sys.stderr)
    return 0


def cmd_curve(args: argparse.Namespace) -> int:
    import tlcore

    values = {k: getattr(args, k) for k in field_help(FinetuneConfig) if hasattr(args, k)}
    cfg = FinetuneConfig.from_dict({**values, "out": ""}).validate(need_out=False)
    from tlcore.api import CurveConfig, check_curve_plan

    shots = CurveConfig.parse_shots(args.shots)
    check_curve_plan(shots, check_option("seeds", args.seeds, flag="--seeds"))
    json_path = _json_target(args.json)
    bar = _Bar(args.quiet)
    try:
        result = tlcore.curve(cfg, shots=shots, seeds=list(range(args.seeds)), scratch=not args.no_scratch, progress=bar)
    finally:
        bar.close()
    _write_json(result.to_dict(), json_path)
    for p in result.points:
        line = f"{p['shots']:>3} per class: pretrained {p['pretrained']['mean']:.3f} ± {p['pretrained']['std']:.3f}"
        if "scratch" in p:
            line += f"   scratch {p['scratch']['mean']:.3f} ± {p['scratch']['std']:.3f}"
        print(line, file=sys.stderr)
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    import tlcore

    check_option("k", args.k, flag="--k")
    check_option("seed", args.seed, flag="--seed")
    json_path = _json_target(args.json)
    bar = _Bar(args.quiet)
    try:
        result = tlcore.cluster(args.data, modality=args.modality, backbone=args.backbone, k=args.k, seed=args.seed,
                                progress=bar)
    finally:
        bar.close()
    _write_json(result.to_dict(), json_path)
    for side, r in (("pretrained", result.pretrained), ("raw", result.raw)):
        scores = f"  NMI {r['nmi']:.3f}  ARI {r['ari']:.3f}" if "nmi" in r else ""
        silhouette = "n/a" if r.get("silhouette") is None else f"{r['silhouette']:.3f}"
        print(f"{side}: k={r['k']}  silhouette {silhouette}{scores}", file=sys.stderr)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tlcore.inference.predict import predict_run

    check_option("top_k", args.top_k, flag="--top-k")
    backend = "onnx" if args.onnx else "torch"
    for row in predict_run(args.run, args.input, top_k=args.top_k, model=args.model, backend=backend,
                           device=args.device):
        print(json.dumps(row))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tlcore.inference.onnx_export import export_onnx, parity_summary

    bar = _Bar(args.quiet)
    try:
        result = export_onnx(args.run, out=args.out, progress=bar)
    finally:
        bar.close()
    print(f"ONNX export written; parity with PyTorch on {parity_summary(result.parity)}", file=sys.stderr)
    print(result.folder)
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from tlcore import storage
    from tlcore.artifacts import ArtifactStore

    check_option("max_gb", args.max_gb, flag="--max-gb")
    check_option("store_features_max_gb", args.store_features_max_gb, flag="--store-features-max-gb")
    store_cap = storage.store_features_max_bytes(args.store_features_max_gb)   # a bad setting stops before any removal
    report = storage.gc(dry_run=args.dry_run, max_gb=args.max_gb)
    verb = "would remove" if report.dry_run else "removed"
    for r in report.removed:
        print(f"{verb} {r.path} ({storage.human(r.bytes)}): {r.why}")
    cache = sum(report.usage_after.get(k, 0) for k in storage.EVICTABLE) + sum(e.size for e in storage.run_copies())
    print(f"{'would free' if report.dry_run else 'freed'} {storage.human(report.freed_bytes)}; evictable cache "
          f"{storage.human(cache)} of {storage.human(report.cap_bytes)} allowed; "
          + ", ".join(f"{k} {storage.human(v)}" for k, v in report.usage_after.items()))
    artifacts = ArtifactStore.from_env()
    if artifacts is None:
        return 0
    try:   # the shared feature files: every host may run this, each removal happens once
        shared, left = artifacts.evict_features(store_cap, dry_run=args.dry_run)
    except Exception as exc:  # noqa: BLE001 - the local clean-up is done; say why the store's was not
        print(f"error: could not clean the artifact store's feature files at {artifacts.url}: {first_line(exc)}",
              file=sys.stderr)
        return 1
    for r in shared:
        print(f"{verb} {r.path} ({storage.human(r.bytes)}): {r.why}")
    freed = sum(r.bytes for r in shared)
    print(f"artifact store {artifacts.url}: {'would free' if args.dry_run else 'freed'} {storage.human(freed)} of "
          f"shared features" + ("" if args.dry_run else
                                f"; {storage.human(left)} left of {storage.human(store_cap)} allowed"))
    return 0


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
    _add_config_flags(ft, FinetuneConfig)
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
    dg.add_argument("--task", choices=TASKS, help=f"{', '.join(TASKS)} (default: detected from the data)")
    dg.add_argument("--seed", type=int, default=0)
    dg.add_argument("--json", help="write the report here (else to stdout)")
    dg.add_argument("--quiet", action="store_true")

    rk = sub.add_parser("rank", help="which backbone will transfer best? (no fine-tuning)")
    rk.add_argument("--modality", required=True, choices=("image", "text", "audio"))
    rk.add_argument("--target", required=True, help="labeled target data")
    rk.add_argument("--backbones", help="comma-separated candidates (default: all registered + their @random twins)")
    rk.add_argument("--validate", action="store_true", help="also fine-tune every candidate and report Kendall tau")
    rk.add_argument("--eval", help="labeled eval data for --validate (else a split of --target)")
    rk.add_argument("--task", choices=TASKS, help=f"{', '.join(TASKS)} (default: detected from the data)")
    rk.add_argument("--seed", type=int, default=0)
    rk.add_argument("--json", help="write the report here (else to stdout)")
    rk.add_argument("--quiet", action="store_true")

    cv = sub.add_parser("curve", help="data-efficiency curve: accuracy vs labeled examples per class, pretrained vs scratch")
    _add_config_flags(cv, FinetuneConfig, skip=("out", "seed", "max_per_class", "baselines", "unlabeled"))
    cv.add_argument("--shots", default="1,2,5,10,25,0", help="examples per class to try; 0 = all")
    cv.add_argument("--seeds", type=int, default=3, help=f"number of seeds per point (allowed: {limit_text(LIMITS['seeds'])})")
    cv.add_argument("--no-scratch", action="store_true", help="skip the scratch curve (faster)")
    cv.add_argument("--json", help="write the curve here (else to stdout)")
    cv.add_argument("--quiet", action="store_true")

    cl = sub.add_parser("cluster", help="unsupervised transfer: cluster unlabeled data on pretrained features vs raw inputs")
    cl.add_argument("--modality", required=True, choices=("image", "text", "audio"))
    cl.add_argument("--data", required=True, help="data to cluster (labels, if present, are used only for NMI/ARI)")
    cl.add_argument("--backbone")
    cl.add_argument("--k", type=int, help="number of clusters (default: chosen by silhouette; allowed: "
                    f"{limit_text(LIMITS['k'])}, at most the number of items)")
    cl.add_argument("--seed", type=int, default=0)
    cl.add_argument("--json", help="write the report here (else to stdout)")
    cl.add_argument("--quiet", action="store_true")

    gcp = sub.add_parser("gc", help="remove stale temporary files and evict the feature / unzip caches past the cap")
    gcp.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    gcp.add_argument("--max-gb", type=float, help="cache cap in GB (default $TRANSFERLAB_CACHE_MAX_GB or 20)")
    gcp.add_argument("--store-features-max-gb", type=float,
                     help="with an artifact store: cap in GB of its shared feature files, oldest removed first "
                          "(default $TRANSFERLAB_STORE_FEATURES_MAX_GB or 100)")

    sub.add_parser("worker", help="background job runner used by the app", add_help=False)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["worker"]:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from tlcore.runs.worker import main as worker_main

        return worker_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handlers = {"demo": cmd_demo, "backbones": cmd_backbones, "finetune": cmd_finetune, "predict": cmd_predict,
                "diagnose": cmd_diagnose, "rank": cmd_rank, "curve": cmd_curve,
                "cluster": cmd_cluster, "export": cmd_export, "gc": cmd_gc}
    from tlcore.storage import leases_held

    try:
        with leases_held():       # the cache entries this command reads are not evicted under it
            return handlers[args.cmd](args)
    except TransferLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Cancelled as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # A full, read-only or unwritable disk under the run's folder is the user's to fix: say so in one line.
        from tlcore.storage import storage_problem

        where = getattr(args, "out", None) or getattr(args, "json", None) or "."
        problem = storage_problem(exc, where)
        if problem is None:
            raise
        print(f"error: {problem}", file=sys.stderr)
        return 2
