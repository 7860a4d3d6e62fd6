"""What the command line shows: progress bars on stderr, reports as JSON, and where a failed run's checkpoints wait."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

from tqdm import tqdm

from tlcore.errors import ConfigError
from tlcore.reporting.writer import RunWriter


class ProgressBar:
    """Progress events as tqdm bars on stderr, one per stage."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.stage: Optional[str] = None
        self.bar = None

    def __call__(self, ev) -> None:
        if self.quiet:
            return
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


def json_target(path: Optional[str]) -> Optional[Path]:
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


def note_unfinished(out: str) -> None:
    """After a failed or interrupted run: say where its checkpoints wait for --resume (nothing was written at --out)."""
    kept = [p for p, pid in RunWriter(out, {}).partials() if pid == os.getpid() and (p / "checkpoints").is_dir()]
    if kept:
        print(f"note: nothing was written to {out}; the checkpoints of this attempt are kept in {kept[0]}: run the "
              "same command with --resume to continue from them", file=sys.stderr)


def write_report(report: dict, path: Optional[Path]) -> None:
    text = json.dumps(report, indent=2, default=float)
    if path:
        try:
            path.write_text(text)
        except OSError as exc:
            raise ConfigError(f"cannot write --json {path}: {exc.strerror}") from None
    else:
        print(text)
