"""The commands around the engine: demo data, the backbone list, predictions and the ONNX / Hugging Face export of a
finished run, and the disk clean-up (``gc``)."""

from __future__ import annotations

import argparse
import json
import sys

from tlcore import storage
from tlcore.artifacts import ArtifactStore
from tlcore.cli.console import ProgressBar
from tlcore.config import check_option
from tlcore.data.demos import list_demos, make_demo
from tlcore.errors import ConfigError, first_line
from tlcore.inference.hub_export import export_hf
from tlcore.inference.onnx_export import export_onnx, parity_summary
from tlcore.inference.predict import predict_run
from tlcore.models.registry import DEFAULT_BACKBONE, list_backbones


def cmd_demo(args: argparse.Namespace) -> int:
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
    for spec in list_backbones(args.modality, include_tiny=args.all):
        default = " (default)" if DEFAULT_BACKBONE.get(spec.modality) == spec.name else ""
        print(f"{spec.name}\t{spec.modality}\t{spec.description}{default}\t{spec.weights}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    check_option("top_k", args.top_k, flag="--top-k")
    backend = "onnx" if args.onnx else "torch"
    for row in predict_run(args.run, args.input, top_k=args.top_k, model=args.model, backend=backend,
                           device=args.device):
        print(json.dumps(row))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.push and args.format != "hf":
        raise ConfigError(f"--push uploads a Hugging Face export: use it with --format hf, not --format {args.format}")
    bar = ProgressBar(args.quiet)
    try:
        if args.format == "hf":
            result = export_hf(args.run, out=args.out, push=args.push, progress=bar)
            note = "Hugging Face export written" + (f"; pushed to {result.url}" if result.url else
                                                     "; upload it with --push USER/NAME (or huggingface_hub.upload_folder)")
        else:
            result = export_onnx(args.run, out=args.out, progress=bar)
            note = f"ONNX export written; parity with PyTorch on {parity_summary(result.parity)}"
    finally:
        bar.close()
    print(note, file=sys.stderr)
    print(result.folder)
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
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
