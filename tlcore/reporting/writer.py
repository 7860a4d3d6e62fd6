"""The one run writer: every setting and task writes its run folder through :class:`RunWriter`.

A run folder holds ``config.json`` (written first), ``checkpoints/<stage>/`` while training (for resume),
``model/`` (``save_pretrained`` form), ``before/`` (what Try it needs to run the "before" model, when it is not
simply the pretrained backbone), ``report.json`` and the model card ``README.md``. Every file is written to a
temporary name and renamed, so a crash never leaves a half-written report or model next to a finished one.

Every report gets the same envelope (:func:`complete_report`): ``report_schema``, ``tlcore_version``, ``setting``,
``task``, ``environment``, ``config``, ``baselines_skipped`` (every baseline that was not computed, with the
reason), and ``timings_s`` rounded to milliseconds. Counts in ``data`` mean the same for every task: ``train`` =
labeled target items used for training (including the ``val`` items held out of them for early stopping),
``val`` = those held out, ``eval`` = the held-out eval items, ``source`` / ``unlabeled`` = items of those sets.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Callable, Optional

import torch

from tlcore import __version__
from tlcore.reporting.model_card import model_card_markdown

log = logging.getLogger(__name__)
REPORT_SCHEMA = 2
#: Baselines a classification run can compute; NER has no k-NN, ASR neither (see ``baselines_skipped``).
BASELINES = ("scratch", "knn")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: object) -> None:
    """``data`` as indented JSON at ``path``, written atomically (temporary name, then rename)."""
    _write_text(path, json.dumps(data, indent=2, default=float))


def complete_report(report: dict, config: dict, *, setting: str, skipped: Optional[dict[str, str]] = None) -> dict:
    """The shared envelope around a task's report (module docstring); the task's keys win where both set one."""
    requested = list(config.get("baselines") or [])
    not_requested = {name: f"not requested (baselines = {', '.join(requested) or 'none'})"
                     for name in BASELINES if name not in requested and name not in report.get("baselines", {})}
    envelope = {
        "report_schema": REPORT_SCHEMA, "tlcore_version": __version__, "setting": setting,
        "task": config.get("task", "classify"), "modality": config.get("modality"), "seed": config.get("seed", 0),
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": torch.get_num_threads(), "device": "cpu", "precision": "fp32", "num_processes": 1},
        "config": config,
        "warnings": [], "notes": [], "baselines": {},
    }
    out = {**envelope, **report}
    out["baselines_skipped"] = {**not_requested, **(skipped or {}), **report.get("baselines_skipped", {})}
    out["timings_s"] = {k: round(float(v), 3) for k, v in report.get("timings_s", {}).items()}
    return out


class RunWriter:
    """Writes one run folder (see the module docstring)."""

    def __init__(self, out: str | Path, config: dict):
        if not out:
            from tlcore.errors import ConfigError

            raise ConfigError("no run folder given: pass --out RUN_DIR")
        self.out = Path(out)
        self.config = config

    def start(self) -> Path:
        """Create the folder and write config.json. A folder that already holds a finished run (report.json) is
        never overwritten: the user's results stay. An unfinished run's folder is reused (resume)."""
        from tlcore.errors import ConfigError

        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"--out {self.out} is a file, not a folder; give a new folder name for the run")
        if (self.out / "report.json").exists():
            raise ConfigError(f"--out {self.out} already holds a finished run (report.json); choose another folder "
                              "or delete that run first — TransferLab never overwrites saved results")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            probe = self.out / f".write-test{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"cannot write the run folder {self.out}: {exc.strerror}; choose a writable folder") from None
        _write_text(self.out / "config.json", json.dumps(self.config, indent=2))
        return self.out

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

    def finish(self, report: dict, *, setting: str, save_model: Callable[[Path], object],
               save_before: Optional[Callable[[Path], object]] = None, skipped: Optional[dict[str, str]] = None) -> dict:
        """Save the model (and the "before" model's own parts), then report.json and README.md; return the report."""
        report = complete_report(report, self.config, setting=setting, skipped=skipped)
        if "diagnosis" not in report:
            report["diagnosis"] = diagnosis_summary(self.config)
        self.save_folder("model", save_model)
        if save_before is not None:
            self.save_folder("before", save_before)
        _write_text(self.out / "report.json", json.dumps(report, indent=2, default=float))
        _write_text(self.out / "README.md", model_card_markdown(report))
        return report


def begin_run(cfg) -> RunWriter:
    """Check a :class:`FinetuneConfig` (the one validation) and open its run folder: how every run starts."""
    cfg.validate()
    writer = RunWriter(cfg.out, cfg.to_dict())
    writer.start()
    return writer


def diagnosis_summary(config: dict, *, top: int = 5) -> Optional[dict]:
    """The domain-mismatch diagnosis of the run's source vs target (the Diagnose page's verdict and the properties
    that drift most) for the report and model card; None without a source set. The backbone features are the run's
    own (cached), so this costs seconds. A failure here never fails the run: the summary then says why it is missing."""
    source, target = config.get("source"), config.get("target")
    if not source or not target:
        return None
    from tlcore.diagnostics.diagnose import run_diagnose

    try:
        full = run_diagnose(config["modality"], str(source), str(target), backbone=config.get("backbone"),
                            seed=int(config.get("seed") or 0), task=config.get("task"))
    except Exception as exc:  # noqa: BLE001 - the run's results must not depend on the diagnosis
        log.warning("diagnosis summary failed", exc_info=True)
        return {"error": f"not computed: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"}
    rows = sorted((r for r in (full.get("drift") or {}).get("rows", []) if r.get("drifting")),
                  key=lambda r: -float(r.get("effect") or 0))
    drift = []
    for r in rows[:top]:
        text = f"{r['name']} (effect {float(r['effect']):.2f}"
        if r.get("mean_a") is not None and r.get("mean_b") is not None:
            text += f"; source mean {float(r['mean_a']):.3g} → target mean {float(r['mean_b']):.3g}"
        drift.append(text + ")")
    verdict = full.get("verdict") or {}
    return {"severity": verdict.get("severity"), "verdict": verdict.get("summary"), "top_drift": drift,
            "backbone": full.get("backbone"), "source": str(source), "target": str(target)}


def amend_report(folder: str | Path, report: dict, *, what: str) -> dict:
    """Rewrite a finished run's report.json and model card with results a follow-up job added (the scratch baseline).

    Only additions are allowed: every key of the old report stays (values may be extended), and the amendment is
    recorded in ``report["amendments"]`` with its time, so nothing the run saved is silently changed."""
    folder = Path(folder)
    old = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    missing = sorted(set(old) - set(report))
    if missing:
        raise ValueError(f"an amendment may only add to a report; it drops {missing}")
    report = {**report, "amendments": [*old.get("amendments", []),
                                       {"added": what, "at": datetime.now(UTC).isoformat(timespec="seconds")}]}
    write_json(folder / "report.json", report)
    _write_text(folder / "README.md", model_card_markdown(report))
    return report
