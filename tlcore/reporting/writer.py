"""The one run writer: every setting and task writes its run folder through :class:`RunWriter`.

A run folder holds ``config.json`` (written first), ``checkpoints/<stage>/`` while training (for resume),
``model/`` (``save_pretrained`` form), ``before/`` (what Try it needs to run the "before" model, when it is not
simply the pretrained backbone), ``report.json``, the model card ``README.md`` and, with ``--track tensorboard``,
``tensorboard/`` (:mod:`tlcore.reporting.tracking`). Every file is written to a
temporary name and renamed (:mod:`tlcore.reporting.files`), and the whole folder is written as a hidden sibling
``.<name>.partial-<pid>`` that is renamed into place once complete (:class:`RunWriter`): a crash never leaves a
half-written run at ``out``, and a folder that holds a run is never overwritten unless asked. Every report gets the
same envelope (:func:`~tlcore.reporting.envelope.complete_report`).
"""

from __future__ import annotations

import contextvars
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

from tlcore.device import is_main_process, rank
from tlcore.errors import Cancelled, ConfigError
from tlcore.reporting.envelope import complete_analysis, complete_report
from tlcore.reporting.files import write_text
from tlcore.reporting.model_card import model_card_markdown
from tlcore.reporting.tracking import track_run
from tlcore.storage import storage_problem
from tlcore.training.launch import LAUNCHER_ENV, SCRATCH_ENV

#: Names a run folder of ours may hold before its report exists (an unfinished or failed attempt); anything else
#: in a folder without report.json means the folder is not ours, and it is never replaced.
_LEFTOVERS = {"config.json", "error.log", "checkpoints", "model", "before", "README.md", "examples", "clusters.json"}
_OPTIONS: contextvars.ContextVar[Optional[dict]] = contextvars.ContextVar("run_folder_options", default=None)


@contextmanager
def run_folder_options(*, resume: bool = False, overwrite: bool = False, keep_failed: bool = True) -> Iterator[None]:
    """How the run folders opened inside this block treat an existing ``out`` (see :class:`RunWriter`).

    The settings, tasks and jobs open their folder with :func:`begin_run` / ``RunWriter`` themselves; the entry point
    (``tlcore.finetune``, the app's jobs) says here whether the user asked to resume or overwrite. A run that fails
    inside the block is abandoned: its hidden staging folder is removed unless it holds checkpoints to resume from
    (and ``keep_failed``; a cancelled run keeps them always: the app's queue resumes runs that yielded)."""
    state = {"resume": resume, "overwrite": overwrite, "writers": []}
    token = _OPTIONS.set(state)
    try:
        yield
    except BaseException as exc:
        keep = keep_failed or isinstance(exc, (Cancelled, KeyboardInterrupt, SystemExit))
        for writer in state["writers"]:
            writer.abandon(keep_checkpoints=keep)
        raise
    finally:
        _OPTIONS.reset(token)


def _launcher() -> set[int]:
    """The pid of the process that launched this one as a rank of a multi-process run (``launch.LAUNCHER_ENV``):
    it may have prepared a staging folder for the run (resume checkpoints fetched from the store) but writes nothing
    while the ranks run, so its folder counts as an earlier attempt to take over, not as a concurrent writer."""
    raw = os.environ.get(LAUNCHER_ENV, "")
    return {int(raw)} if raw.isdigit() else set()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:          # it exists but belongs to someone else
        return True
    return True


def _has_checkpoints(folder: Path) -> bool:
    ckpt = folder / "checkpoints"
    return ckpt.is_dir() and any(p.is_file() for p in ckpt.rglob("*"))


class RunWriter:
    """Writes one run folder (see the module docstring) without ever overwriting one.

    ``out`` is the folder the user named; while the run works, everything is written to a hidden sibling
    ``.<name>.partial-<pid>`` (:attr:`out` points there between :meth:`start` and :meth:`complete`), which is
    renamed to ``out`` once report.json is written. So a failed or killed run leaves nothing at ``out``; its
    checkpoints stay in the staging folder, where ``resume`` picks them up (also from another process).

    ``out`` may be new or empty. A finished run there (report.json) is refused unless ``overwrite``: it is then
    replaced only when the new run completes. An unfinished attempt (our leftovers: config.json, checkpoints,
    error.log, or a staging folder with checkpoints) is refused unless ``resume`` (continue from its checkpoints) or
    ``overwrite`` (start over). Anything else (a file, a folder with other content) is refused always."""

    def __init__(self, out: str | Path, config: dict, *, resume: Optional[bool] = None,
                 overwrite: Optional[bool] = None):
        if not out:
            raise ConfigError("no run folder given: pass --out RUN_DIR")
        options = _OPTIONS.get() or {}
        self.final = Path(out)
        self.out = self.final             # the staging folder after start(), the final one after complete()
        self.config = config
        self.resume = bool(options.get("resume", False) if resume is None else resume)
        self.overwrite = bool(options.get("overwrite", False) if overwrite is None else overwrite)
        self.completed = False
        self._staging: Optional[Path] = None
        self._scratch = False             # a non-main rank of a multi-process run (see start)
        if "writers" in options:
            options["writers"].append(self)

    # ------------------------------------------------------------------ where things go
    @property
    def _abs(self) -> Path:
        return Path(os.path.abspath(os.path.expanduser(self.final)))

    def _partial(self, pid: int) -> Path:
        return self._abs.parent / f".{self._abs.name}.partial-{pid}"

    def partials(self) -> list[tuple[Path, int]]:
        """Staging folders of earlier or concurrent attempts at this run folder: (path, pid), newest first."""
        parent, prefix = self._abs.parent, f".{self._abs.name}.partial-"
        found = []
        try:
            entries = list(parent.iterdir()) if parent.is_dir() else []
        except OSError:
            return []
        for p in entries:
            if p.name.startswith(prefix) and p.name[len(prefix):].isdigit() and p.is_dir():
                found.append((p, int(p.name[len(prefix):])))
        return sorted(found, key=lambda t: t[0].stat().st_mtime, reverse=True)

    def _final_state(self) -> str:
        """absent | empty | finished | leftovers | foreign | file"""
        final = self._abs
        if not final.exists() and not final.is_symlink():
            return "absent"
        if not final.is_dir():
            return "file"
        try:
            names = {p.name for p in final.iterdir()}
        except OSError as exc:
            raise ConfigError(f"cannot read the run folder {self.final}: {exc.strerror}; choose a folder you can "
                              "write") from None
        if not names:
            return "empty"
        if "report.json" in names:
            return "finished"
        if all(n in _LEFTOVERS or n.startswith(".") for n in names) and names & {"config.json", "checkpoints",
                                                                                     "error.log"}:
            return "leftovers"
        return "foreign"

    # ------------------------------------------------------------------ the life of a run folder
    def start(self) -> Path:
        """Check ``out`` (class docstring), open the staging folder and write config.json there; returns it."""
        if not is_main_process():
            # Only rank 0 of a multi-process run writes the run folder. The other ranks compute the same run and
            # write what they would into a private scratch folder outside it, removed when they finish.
            # inside the launcher's own folder when there is one: removed with it even if this rank is killed
            within = os.environ.get(SCRATCH_ENV)
            self._scratch = True
            self._staging = self.out = Path(tempfile.mkdtemp(prefix=f"tlcore-rank{rank()}-",
                                                             dir=within if within and os.path.isdir(within) else None))
            return self.out

        out, state = self.final, self._final_state()
        blocker = next((a for a in self._abs.parents if a.exists() and not a.is_dir()), None)
        if blocker is not None:
            raise ConfigError(f"--out {out}: {blocker} is a file, not a folder; give a run folder in a folder")
        if state == "file":
            raise ConfigError(f"--out {out} is a file, not a folder; give a new folder name for the run")
        if state == "foreign":
            sample = sorted(p.name for p in self._abs.iterdir())[:3]
            raise ConfigError(f"--out {out} is not empty and holds no TransferLab run ({', '.join(sample)}"
                              f"{', ...' if len(sample) == 3 else ''}); give a new or empty folder — TransferLab "
                              "never writes into or replaces a folder it did not create")
        if state == "finished" and not self.overwrite:
            what = "; there is nothing to resume" if self.resume else ""
            raise ConfigError(f"--out {out} already holds a finished run (report.json){what}; choose another folder, "
                              "or pass --overwrite to replace it once the new run completes")
        above = _launcher()
        live = [(p, pid) for p, pid in self.partials() if pid != os.getpid() and pid not in above and _pid_alive(pid)]
        if live:
            raise ConfigError(f"another process (pid {live[0][1]}) is writing a run to {out} right now ({live[0][0]}); "
                              "wait for it to finish or choose another folder")
        stale = [p for p, pid in self.partials() if not _pid_alive(pid) or pid == os.getpid() or pid in above]
        resumable = [p for p in stale if _has_checkpoints(p)]
        if not self.resume and not self.overwrite and (state == "leftovers" or resumable):
            where = resumable[0] if resumable else out
            raise ConfigError(f"--out {out} holds an unfinished run (checkpoints in {where}, no report.json); pass "
                              "--resume to continue from its checkpoints, or --overwrite to start over")
        try:
            self._abs.parent.mkdir(parents=True, exist_ok=True)
            staging = self._claim(stale if self.resume else [], state)
            for p in stale:                       # leftovers of killed attempts that never reached a checkpoint
                if p.exists() and p != staging and not _has_checkpoints(p):
                    shutil.rmtree(p, ignore_errors=True)
            write_text(staging / "config.json", json.dumps(self.config, indent=2))
        except OSError as exc:
            mine = self._partial(os.getpid())
            if mine.exists() and not _has_checkpoints(mine):   # a full disk: leave nothing behind
                shutil.rmtree(mine, ignore_errors=True)
            raise ConfigError(storage_problem(exc, out) or f"cannot write the run folder {out}: {exc.strerror or exc}; "
                              "choose a folder you can write to") from None
        self._staging = self.out = staging
        return staging

    def _claim(self, stale: list[Path], state: str) -> Path:
        """The staging folder of this process: an earlier attempt's (resume) taken over by renaming it, else new."""
        mine = self._partial(os.getpid())
        for p in stale:                           # newest first
            if _has_checkpoints(p):
                if p != mine:
                    shutil.rmtree(mine, ignore_errors=True)
                    os.rename(p, mine)
                return mine
        shutil.rmtree(mine, ignore_errors=True)
        mine.mkdir()
        legacy = self._abs / "checkpoints"
        if self.resume and state == "leftovers" and legacy.is_dir():   # a run folder written before staging existed
            shutil.copytree(legacy, mine / "checkpoints")
        return mine

    def checkpoints(self, stage: str) -> Path:
        return self.out / "checkpoints" / stage

    def save_folder(self, name: str, save: Callable[[Path], object]) -> Path:
        """Let ``save(tmp)`` fill a fresh folder, then move it into place as ``out/name``."""
        final, tmp = self.out / name, self.out / f".{name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        return final

    def write_report(self, report: dict, *, model_card: bool = False) -> None:
        """report.json (and the model card README.md) into the staging folder; :meth:`complete` publishes them."""
        write_text(self.out / "report.json", json.dumps(report, indent=2, default=float))
        if model_card:
            write_text(self.out / "README.md", model_card_markdown(report))

    def finish(self, report: dict, *, setting: str, save_model: Callable[[Path], object],
               save_before: Optional[Callable[[Path], object]] = None, skipped: Optional[dict[str, str]] = None,
               diagnosis: Optional[dict] = None) -> dict:
        """Save the model (and the "before" model's own parts), then report.json and README.md, log the run to its
        experiment tracker if the config asks (:mod:`tlcore.reporting.tracking`; never fails the run), and move the run
        folder into place (:meth:`complete`); return the report. ``diagnosis``: the source-vs-target summary the
        pipeline computed (:func:`tlcore.diagnostics.summary.diagnosis_summary`; None without a source set): the
        writer only writes, it runs no model."""
        report = complete_report(report, self.config, setting=setting, skipped=skipped)
        report.setdefault("diagnosis", diagnosis)
        self.save_folder("model", save_model)
        if save_before is not None:
            self.save_folder("before", save_before)
        self.write_report(report, model_card=True)
        if (self.config.get("track") or "none") != "none" and not self._scratch:
            # logged from the staging folder, with report.json and README.md in it; then both are written again
            # with the outcome (where the run went, or a warning), before the folder is published
            report = track_run(report, self.out, run_name=self._abs.name)
            self.write_report(report, model_card=True)
        self.complete()
        return report

    def finish_analysis(self, report: dict, *, kind: str, setting: str) -> dict:
        """An analysis's report.json (clustering, curve, sweep) in the shared envelope
        (:func:`~tlcore.reporting.envelope.complete_analysis`), then the folder moved into place; returns it."""
        report = complete_analysis(report, self.config, kind=kind, setting=setting)
        self.write_report(report)
        self.complete()
        return report

    def complete(self) -> Path:
        """Rename the finished staging folder to ``out``. A finished run there is replaced only with ``overwrite``
        (it is moved aside first and deleted once the new one is in place); an unfinished attempt's leftovers with
        ``resume`` or ``overwrite``. If ``out`` was filled by someone else meanwhile, this run stays in its staging
        folder and the error says where."""
        staging, final = self._staging, self._abs
        if staging is None or self.completed:
            return self.final
        if self._scratch:
            shutil.rmtree(staging, ignore_errors=True)
            self.completed, self.out = True, self.final
            return self.final
        # the checkpoints served resume only: a finished run's model is in model/, so they go (often 4x its size)
        shutil.rmtree(staging / "checkpoints", ignore_errors=True)
        state = self._final_state()
        replace = state == "finished" and self.overwrite or state == "leftovers" and (self.resume or self.overwrite)
        if state in ("absent", "empty"):
            os.replace(staging, final)           # an empty folder is replaced by the rename itself
        elif replace:
            aside = final.parent / f".{final.name}.old-{os.getpid()}"
            shutil.rmtree(aside, ignore_errors=True)
            os.rename(final, aside)
            os.rename(staging, final)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            raise ConfigError(f"--out {self.final} was filled by something else while this run was working; nothing "
                              f"there was changed and this run is kept in {staging}: move it to a new folder")
        for p, pid in self.partials():            # earlier attempts this run supersedes
            if not _pid_alive(pid):
                shutil.rmtree(p, ignore_errors=True)
        self.completed, self.out = True, self.final
        return self.final

    def abandon(self, *, keep_checkpoints: bool = True) -> None:
        """After a failure: drop the staging folder, unless it holds checkpoints to resume from and
        ``keep_checkpoints``. Nothing at ``out`` is touched."""
        staging = self._staging
        if self.completed or staging is None or not staging.exists():
            return
        if self._scratch:
            shutil.rmtree(staging, ignore_errors=True)
            return
        if not (keep_checkpoints and _has_checkpoints(staging)):
            shutil.rmtree(staging, ignore_errors=True)

    def unfinished(self) -> Optional[Path]:
        """The staging folder this writer left with checkpoints (after a failure), or None."""
        staging = self._staging
        return (staging if staging is not None and not self.completed and not self._scratch
                and _has_checkpoints(staging) else None)


def begin_run(cfg, *, resume: Optional[bool] = None, overwrite: Optional[bool] = None) -> RunWriter:
    """Check a :class:`FinetuneConfig` (the one validation) and open its run folder: how every run starts.
    ``resume`` / ``overwrite`` default to what the entry point set with :func:`run_folder_options`."""
    cfg.validate()
    writer = RunWriter(cfg.out, cfg.to_dict(), resume=resume, overwrite=overwrite)
    writer.start()
    return writer
