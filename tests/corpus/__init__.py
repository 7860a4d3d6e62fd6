"""The bad-input corpus: hostile inputs across the CLI, the API and the app's upload, and how each one ends.

Each ``Case`` builds its inputs in a fresh folder and returns what to run: an ``argv`` list for
``python -m tlcore`` (run in-process through ``tlcore.cli.main``) or a callable (the API / the app's upload
functions). ``run_case`` classifies the outcome:

- ``error``: a clear one-line error — the CLI exits 2 with one ``error: ...`` line on stderr, a callable raises a
  ``TransferLabError`` (the app shows its message);
- ``notice``: it completes and says what it did about the bad part (a line containing one of ``notice_words``);
- ``ok``: it completes (for inputs that are odd but valid);
- ``traceback``: any other exception or exit code; ``hang``: it ran past ``timeout`` seconds.

A case may name files that must not change (``protect``: a run folder given as ``--out``) and a secret outside the
data set that must never be read (``secret``: its text must not appear in any output). The corpus modules are
``data_cases`` (data files and uploads), ``cli_cases`` (options, run folders, predict), ``input_cases`` (names,
encodings, duplicates) and ``command_cases`` (counts against the machine, report size, every subcommand's empty and
one-item inputs); ``all_cases()`` joins them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

Runnable = Union[list, Callable[[], object]]


@dataclass
class Case:
    kind: str                                   # short, unique: shown in the figures table
    group: str                                  # data, upload, options, run folders, predict, names, encodings,
                                                # duplicates, machine, report size, empty/one item
    make: Callable[[Path], Runnable]            # builds inputs under the given folder; returns argv or a callable
    expect: str = "error"                       # error | notice | ok | error-or-notice
    notice_words: tuple = ("skipped", "warning", "note", "notice", "ignored", "dropped")
    protect: Optional[Callable[[Path], list]] = None   # folder -> files whose bytes must stay the same
    secret: str = ""                            # text of a file outside the data set that must never show up
    timeout: float = 120.0


@dataclass
class Outcome:
    kind: str
    group: str
    result: str                                 # error | notice | ok | traceback | hang
    message: str = ""
    damaged: list = field(default_factory=list)
    leaked: bool = False

    @property
    def passed(self) -> bool:
        return not self.damaged and not self.leaked and self.result in ("error", "notice", "ok")


class _Timeout(Exception):
    pass


def _digest(paths: list) -> dict:
    out = {}
    for p in paths:
        p = Path(p)
        out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
    return out


def run_case(case: Case, folder: Path) -> Outcome:
    """Build the case's inputs in ``folder``, run it and classify how it ended."""
    from tlcore.cli import main
    from tlcore.errors import TransferLabError

    folder.mkdir(parents=True, exist_ok=True)
    target = case.make(folder)
    protected = case.protect(folder) if case.protect else []
    before = _digest(protected)
    out, err = io.StringIO(), io.StringIO()

    def _alarm(signum, frame):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, case.timeout)
    result, message = "ok", ""
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if isinstance(target, list):
                try:
                    rc = main([str(a) for a in target])
                except SystemExit as exc:          # argparse: exit 2 with a usage line + one error line
                    rc = exc.code if isinstance(exc.code, int) else 2
            else:
                try:
                    target()
                    rc = 0
                except TransferLabError as exc:
                    print(f"error: {exc}", file=err)
                    rc = 2
    except _Timeout:
        result, message = "hang", f"ran past {case.timeout:.0f} s"
        rc = None
    except BaseException as exc:  # noqa: BLE001 - anything else escaping is what the corpus looks for
        result, message = "traceback", f"{type(exc).__name__}: {exc}"
        rc = None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    text = out.getvalue() + err.getvalue()
    if rc is not None:
        err_lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("error:") or ": error: " in ln]
        if rc == 2 and len(err_lines) == 1 and "Traceback" not in text:
            result, message = "error", err_lines[0]
        elif rc == 0:
            low = text.lower()
            noticed = any(w in low for w in case.notice_words)
            result = "notice" if noticed else "ok"
            message = next((ln for ln in text.splitlines() if any(w in ln.lower() for w in case.notice_words)), "")
        else:
            result, message = "traceback", f"exit {rc}: {text.strip()[-300:]}"
    after = _digest(protected)
    damaged = [p for p in before if before[p] != after.get(p)]
    leaked = bool(case.secret) and case.secret in text
    return Outcome(case.kind, case.group, result, message[:300], damaged, leaked)


def expected(case: Case, outcome: Outcome) -> bool:
    """Did the case end the way it should (and without damage or a leak)?"""
    if not outcome.passed:
        return False
    if case.expect == "error-or-notice":
        return outcome.result in ("error", "notice")
    return outcome.result == case.expect


def all_cases() -> list[Case]:
    cases: list[Case] = []
    for name in ("data_cases", "cli_cases", "input_cases", "command_cases"):
        try:
            module = __import__(f"corpus.{name}", fromlist=["CASES"])
        except ModuleNotFoundError as exc:
            if exc.name != f"corpus.{name}":
                raise
            continue
        cases.extend(module.CASES)
    kinds = [c.kind for c in cases]
    dupes = {k for k in kinds if kinds.count(k) > 1}
    if dupes:
        raise ValueError(f"duplicate corpus kinds: {sorted(dupes)}")
    return cases
