"""The command line (DESIGN.md): ``python -m tlcore demo|backbones|finetune|predict|errors|export|worker ...``.

Bad input exits with code 2 and one line on stderr (no traceback); progress bars go to stderr. The flags are in
:mod:`~tlcore.cli.parser`, the commands that run the API in :mod:`~tlcore.cli.commands`, the others in
:mod:`~tlcore.cli.tools`, and what a command shows in :mod:`~tlcore.cli.console`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Optional, Sequence

from tlcore.cli import commands, tools
from tlcore.cli.parser import build_parser
from tlcore.errors import Cancelled, TransferLabError
from tlcore.runs.worker import main as worker_main
from tlcore.storage import leases_held, storage_problem

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

HANDLERS = {"demo": tools.cmd_demo, "backbones": tools.cmd_backbones, "finetune": commands.cmd_finetune,
            "predict": tools.cmd_predict, "diagnose": commands.cmd_diagnose, "rank": commands.cmd_rank,
            "curve": commands.cmd_curve, "cluster": commands.cmd_cluster, "export": tools.cmd_export,
            "gc": tools.cmd_gc, "sweep": commands.cmd_sweep, "audit": commands.cmd_audit, "label-next": commands.cmd_label_next,
            "errors": commands.cmd_errors}

__all__ = ["HANDLERS", "build_parser", "main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["worker"]:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return worker_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        with leases_held():       # the cache entries this command reads are not evicted under it
            return HANDLERS[args.cmd](args)
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
        where = getattr(args, "out", None) or getattr(args, "json", None) or "."
        problem = storage_problem(exc, where)
        if problem is None:
            raise
        print(f"error: {problem}", file=sys.stderr)
        return 2
