"""The commands that run the engine's API (:mod:`tlcore.api`): finetune, sweep, diagnose, rank, curve, cluster, audit,
label-next and errors. Each builds its config from its flags (:func:`~tlcore.cli.parser.config_values`) and validates
it — the same check, and words, as the API's and the app's — then runs with a progress bar, writes the report as JSON
(``--json`` or stdout) and says the headline on stderr."""

from __future__ import annotations

import argparse
import json
import os
import sys

from tlcore import api
from tlcore.cli.console import ProgressBar, json_target, note_unfinished, write_report
from tlcore.cli.parser import CURVE_FIELDS, config_values
from tlcore.config import TASKS, FinetuneConfig, check_option
from tlcore.device import is_main_process
from tlcore.errors import Cancelled, ConfigError, TransferLabError
from tlcore.experiments.configs import (
    AuditConfig,
    ClusterConfig,
    CurveConfig,
    DiagnoseConfig,
    LabelNextConfig,
    RankConfig,
    check_curve_plan,
)
from tlcore.experiments.label_next import ranked_csv
from tlcore.experiments.sweep import SweepConfig
from tlcore.tasks import get_task
from tlcore.training.launch import CHILD_ENV, PROGRESS_ENV, progress_to_file


def cmd_finetune(args: argparse.Namespace) -> int:
    values = config_values(args, FinetuneConfig)
    if not any(a.startswith("--strategy") for a in args.argv) and values["task"] in TASKS:
        # ASR's: decoder for Whisper, full for a CTC model (no linear probe there)
        values["strategy"] = get_task(values["task"]).strategy_for(values.get("backbone"))
    cfg = FinetuneConfig.from_dict(values).validate()
    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it: pass only one of them")
    json_path = json_target(args.json)
    # one progress bar for a multi-process run: the launching process's, fed by rank 0's events (see launch.py)
    events_file = os.environ.get(PROGRESS_ENV) if os.environ.get(CHILD_ENV) else None
    bar = ProgressBar(args.quiet or not is_main_process() or bool(events_file))
    progress = progress_to_file(events_file, bar) if events_file and is_main_process() else bar
    try:
        result = api.finetune(cfg, progress=progress, resume=args.resume, overwrite=args.overwrite)
    except (TransferLabError, Cancelled, KeyboardInterrupt):
        note_unfinished(cfg.out)
        raise
    finally:
        bar.close()
    if not is_main_process() or os.environ.get(CHILD_ENV):
        return 0            # a process of a multi-process run: rank 0 wrote the run, the launching CLI reports it
    report = result.report
    if json_path:
        write_report(report, json_path)
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


def cmd_sweep(args: argparse.Namespace) -> int:
    cfg = SweepConfig.from_dict(config_values(args, SweepConfig)).validate()
    json_path = json_target(args.json)
    bar = ProgressBar(args.quiet)
    try:
        report = api.sweep(cfg.finetune_config(), out=cfg.out, strategies=cfg.strategies, progress=bar)
    finally:
        bar.close()
    if json_path:
        write_report(report, json_path)
    key = report["metric"]
    lines = [f"sweep folder: {cfg.out}"]
    for r in report["strategies"]:
        lo, hi = r["vs_best"]["ci95"]
        lines.append(f"{r['strategy']:<13} {key} {r[key]:.3f}  vs best {100 * r['vs_best']['difference']:+.1f} points "
                     f"(95% CI {100 * lo:+.1f} to {100 * hi:+.1f})  train {r['train_seconds']:.1f} s")
    lines += [f"baseline {b['label']}: {key} {b[key]:.3f}" for b in report["baselines"].values()]
    lines.append(f"recommendation: {report['recommendation']['text']}")
    print("\n".join(lines), file=sys.stderr)
    if not json_path:
        print(json.dumps({k: report[k] for k in ("best", "strategies", "baselines", "recommendation")}, indent=2,
                         default=float))
    return 0


def _analysis(args: argparse.Namespace, cls: type, run, **validate: bool):
    """What the analysis commands share: their config from the flags, checked (and ``--json`` before any work), then
    ``run(config=cfg, progress=bar)`` with a progress bar, the report written as JSON; returns the result."""
    cfg = cls.from_dict(config_values(args, cls)).validate(**validate)
    json_path = json_target(args.json)
    bar = ProgressBar(args.quiet)
    try:
        result = run(config=cfg, progress=bar)
    finally:
        bar.close()
    write_report(result.to_dict(), json_path)
    return result


def cmd_diagnose(args: argparse.Namespace) -> int:
    v = _analysis(args, DiagnoseConfig, api.diagnose).verdict
    print(f"verdict: {v['severity']} shift. {v['summary']}\nrecommendation: {v['recommendation']}", file=sys.stderr)
    return 0


def cmd_rank(args: argparse.Namespace) -> int:
    result = _analysis(args, RankConfig, api.rank)
    report = result.to_dict()
    for row in result.ranking:
        cells = "  ".join(f"{k} {v['point']:.3f} [{v['lo']:.3f}, {v['hi']:.3f}]" for k, v in row["scores"].items())
        print(f"{row['rank']}. {row['backbone']}: {cells}", file=sys.stderr)
    if "validation" in report:
        print(f"kendall tau vs fine-tuned accuracy: {report['validation']['kendall_tau']}", file=sys.stderr)
    print(result.advice, file=sys.stderr)
    return 0


def _out_file(path: str | None, flag: str):
    """:func:`json_target`'s checks for another output flag (its messages then name that flag)."""
    try:
        return json_target(path)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("--json", flag, 1)) from None


def cmd_audit(args: argparse.Namespace) -> int:
    csv_path = _out_file(args.csv, "--csv")
    result = _analysis(args, AuditConfig, api.audit)
    if csv_path:
        try:
            csv_path.write_text(result.csv(), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write --csv {csv_path}: {exc.strerror}") from None
    data = result.report["data"]
    for role, counts in result.counts.items():
        found = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items() if n) or "no issues"
        print(f"{role}: {result.report['flagged_items'][role]} of {data[role]} items flagged ({found})", file=sys.stderr)
    for role, why in result.report.get("label_skipped", {}).items():
        print(f"{role}: labels not checked: {why}", file=sys.stderr)
    for role, said in result.report.get("notes", {}).items():
        print(f"{role}: note from cleanlab: {' '.join(said)}", file=sys.stderr)
    return 0


def cmd_curve(args: argparse.Namespace) -> int:
    values = {k: v for k, v in config_values(args, FinetuneConfig).items() if k not in CURVE_FIELDS}
    cfg = FinetuneConfig.from_dict({**values, "out": ""}).validate(need_out=False)
    shots = CurveConfig.parse_shots(",".join(map(str, args.shots)))
    check_curve_plan(shots, check_option("seeds", args.seeds, flag="--seeds"))
    json_path = json_target(args.json)
    bar = ProgressBar(args.quiet)
    try:
        result = api.curve(cfg, shots=shots, seeds=list(range(args.seeds)), scratch=args.scratch, progress=bar)
    finally:
        bar.close()
    write_report(result.to_dict(), json_path)
    for p in result.points:
        line = f"{p['shots']:>3} per class: pretrained {p['pretrained']['mean']:.3f} ± {p['pretrained']['std']:.3f}"
        if "scratch" in p:
            line += f"   scratch {p['scratch']['mean']:.3f} ± {p['scratch']['std']:.3f}"
        print(line, file=sys.stderr)
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    result = _analysis(args, ClusterConfig, api.cluster, need_out=False)
    for side, r in (("pretrained", result.pretrained), ("raw", result.raw)):
        scores = f"  NMI {r['nmi']:.3f}  ARI {r['ari']:.3f}" if "nmi" in r else ""
        silhouette = "n/a" if r.get("silhouette") is None else f"{r['silhouette']:.3f}"
        print(f"{side}: k={r['k']}  silhouette {silhouette}{scores}", file=sys.stderr)
    return 0


def cmd_label_next(args: argparse.Namespace) -> int:
    result = _analysis(args, LabelNextConfig, api.label_next)
    if args.csv:
        with open(args.csv, "w", encoding="utf-8", newline="") as f:
            f.write(ranked_csv(result))
    for row in result.ranked[:10]:
        guess = f"  (probe guesses {row['suggested']}, p={row['suggested_p']:.2f})" if "suggested" in row else ""
        print(f"{row['rank']:>3}. {row['name']}{guess}", file=sys.stderr)
    if len(result.ranked) > 10:
        print(f"     ... {len(result.ranked) - 10} more" + (f" in {args.csv}" if args.csv else ""), file=sys.stderr)
    p = result.projection
    if p:
        print(f"projection (not a measurement) of {p.get('metric', 'accuracy')}: {p['mean'][0]:.3f} now "
              f"({p['n_now']} labels); with "
              f"{p['more_labels'][-1]} more {p['mean'][-1]:.3f} (95% band {p['low'][-1]:.3f}-{p['high'][-1]:.3f})",
              file=sys.stderr)
    else:
        print(f"no projection: {result.projection_missing}", file=sys.stderr)
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_errors(args: argparse.Namespace) -> int:
    top = check_option("top_k", args.top_k, flag="--top")       # before anything is read
    json_path = json_target(args.json)
    result = api.error_analysis(args.run, top=top)
    write_report(result.to_dict(), json_path)
    print(f"run: {args.run} ({get_task(result.task).description})", file=sys.stderr)
    for line in result.summary:
        print(line, file=sys.stderr)
    return 0
