"""Run folders are never overwritten: a run is written to a hidden staging folder and renamed into place when it
completes; an --out that holds a run is refused unless --resume or --overwrite; a failed run leaves nothing at --out
and an existing run byte for byte the same; --resume continues from the checkpoints a cancelled run left."""

import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import write_text_set

import tlcore
from tlcore.cli import main
from tlcore.errors import Cancelled, ConfigError, DataError

SETTINGS = dict(modality="text", backbone="tiny-text", epochs=1, baselines=[])


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent: Path, name: str) -> list:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def bad_target(folder: Path) -> Path:
    """Valid as a path, fails once the run has started (no 'text' column)."""
    folder.mkdir(parents=True)
    (folder / "data.csv").write_text("sentence,label\n" + "".join(f"s {i},{'ab'[i % 2]}\n" for i in range(20)))
    return folder


@pytest.fixture
def finished(tmp_path):
    data = write_text_set(tmp_path / "data")
    tlcore.finetune(target=str(data), out=str(tmp_path / "run"), **SETTINGS)
    return tmp_path / "run", data


def test_a_run_is_renamed_into_place_and_leaves_no_staging_folder(finished):
    run, _ = finished
    assert {"report.json", "config.json", "README.md", "model", "before"} <= {p.name for p in run.iterdir()}
    assert json.loads((run / "config.json").read_text())["out"] == str(run)   # the final path, not the staging one
    assert leftovers(run.parent, "run") == []


def test_a_failed_run_leaves_nothing_at_out(tmp_path):
    events = []
    with pytest.raises(DataError, match="text"):
        tlcore.finetune(target=str(bad_target(tmp_path / "bad")), out=str(tmp_path / "new"),
                        progress=events.append, **SETTINGS)
    assert events, "the run had started"
    assert not (tmp_path / "new").exists() and leftovers(tmp_path, "new") == []


def test_existing_run_untouched_after_a_refusal_and_after_a_failed_overwrite(finished, tmp_path):
    run, data = finished
    before = digest(run)
    with pytest.raises(ConfigError, match=r"already holds a finished run.*--overwrite"):
        tlcore.finetune(target=str(data), out=str(run), **SETTINGS)
    with pytest.raises(ConfigError, match="nothing to resume"):
        tlcore.finetune(target=str(data), out=str(run), resume=True, **SETTINGS)
    with pytest.raises(DataError):
        tlcore.finetune(target=str(bad_target(tmp_path / "bad")), out=str(run), overwrite=True, **SETTINGS)
    assert digest(run) == before
    assert leftovers(run.parent, "run") == []


def test_overwrite_replaces_the_run_only_once_the_new_one_completes(finished):
    run, data = finished
    old = json.loads((run / "report.json").read_text())
    seen = []

    def watch(event):        # while the new run works, the old one is still complete at --out
        if event.stage != "done":
            seen.append((run / "report.json").read_text() == json.dumps(old, indent=2, default=float))

    result = tlcore.finetune(target=str(data), out=str(run), overwrite=True, progress=watch,
                             **{**SETTINGS, "strategy": "partial"})
    assert seen and all(seen)
    assert result.strategy == "partial" and json.loads((run / "report.json").read_text())["strategy"] == "partial"
    assert old["strategy"] == "linear_probe"
    assert leftovers(run.parent, "run") == []


def test_a_folder_tlcore_did_not_create_is_never_written_into_or_replaced(tmp_path):
    data = write_text_set(tmp_path / "data")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match="holds no TransferLab run"):
            tlcore.finetune(target=str(data), out=str(mine), overwrite=overwrite, **SETTINGS)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and leftovers(tmp_path, "mine") == []
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        tlcore.finetune(target=str(data), out=str(mine / "notes.txt"), **SETTINGS)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_an_empty_folder_is_used(tmp_path):
    """The app's store creates each run's folder before the worker starts it."""
    data = write_text_set(tmp_path / "data")
    (tmp_path / "run").mkdir()
    tlcore.finetune(target=str(data), out=str(tmp_path / "run"), **SETTINGS)
    assert (tmp_path / "run" / "report.json").is_file()


def test_out_is_checked_before_any_work(tmp_path):
    data = write_text_set(tmp_path / "data")
    (tmp_path / "file").write_text("x")
    events = []
    with pytest.raises(ConfigError, match="file is a file, not a folder"):
        tlcore.finetune(target=str(data), out=str(tmp_path / "file" / "run"), progress=events.append, **SETTINGS)
    assert events == []


def _cancel_after_first_checkpoint(parent: Path, name: str):
    def should_cancel() -> bool:
        return any(parent.glob(f".{name}.partial-*/checkpoints/after/state.json"))
    return should_cancel


def test_resume_continues_a_cancelled_run_from_its_checkpoint(tmp_path):
    data = write_text_set(tmp_path / "data")
    settings = {**SETTINGS, "strategy": "partial", "epochs": 3, "batch_size": 8}
    with pytest.raises(Cancelled):
        tlcore.finetune(target=str(data), out=str(tmp_path / "run"),
                        should_cancel=_cancel_after_first_checkpoint(tmp_path, "run"), **settings)
    assert not (tmp_path / "run").exists()
    kept = leftovers(tmp_path, "run")
    assert len(kept) == 1 and kept[0].startswith(".run.partial-")
    with pytest.raises(ConfigError, match="unfinished run.*--resume"):
        tlcore.finetune(target=str(data), out=str(tmp_path / "run"), **settings)
    result = tlcore.finetune(target=str(data), out=str(tmp_path / "run"), resume=True, **settings)
    assert result.report["training"]["resumed_from_epoch"] >= 1
    assert (tmp_path / "run" / "report.json").is_file() and leftovers(tmp_path, "run") == []


def test_resume_of_a_run_folder_written_before_staging(tmp_path):
    """An unfinished run folder of an older version (config.json and checkpoints at --out) resumes from them."""
    data = write_text_set(tmp_path / "data")
    settings = {**SETTINGS, "strategy": "partial", "epochs": 3, "batch_size": 8}
    with pytest.raises(Cancelled):
        tlcore.finetune(target=str(data), out=str(tmp_path / "run"),
                        should_cancel=_cancel_after_first_checkpoint(tmp_path, "run"), **settings)
    os.rename(tmp_path / leftovers(tmp_path, "run")[0], tmp_path / "run")       # the old layout
    with pytest.raises(ConfigError, match="unfinished run"):
        tlcore.finetune(target=str(data), out=str(tmp_path / "run"), **settings)
    result = tlcore.finetune(target=str(data), out=str(tmp_path / "run"), resume=True, **settings)
    assert result.report["training"]["resumed_from_epoch"] >= 1 and leftovers(tmp_path, "run") == []


def test_a_run_another_process_is_writing_is_refused(tmp_path):
    data = write_text_set(tmp_path / "data")
    (tmp_path / ".run.partial-1").mkdir()          # pid 1 is always alive
    with pytest.raises(ConfigError, match="another process"):
        tlcore.finetune(target=str(data), out=str(tmp_path / "run"), **SETTINGS)
    assert (tmp_path / ".run.partial-1").is_dir() and not (tmp_path / "run").exists()


def test_worker_job_starts_over_its_own_leftovers_but_never_replaces_a_report(tmp_path):
    from tlcore.api import finetune_job
    from tlcore.config import FinetuneConfig

    data = write_text_set(tmp_path / "data")
    out = tmp_path / "store" / "abc123"
    out.mkdir(parents=True)
    (out / "error.log").write_text("Traceback of the first attempt")
    cfg = FinetuneConfig(target=str(data), out=str(out), **SETTINGS)
    report = finetune_job(cfg)
    assert (out / "report.json").is_file() and not (out / "error.log").exists() and report["strategy"] == "linear_probe"
    before = digest(out)
    with pytest.raises(ConfigError, match="already holds a finished run"):
        finetune_job(cfg)
    assert digest(out) == before


def test_cli_refuses_bad_out_and_json_before_training(tmp_path, capsys):
    data = write_text_set(tmp_path / "data")
    base = ["finetune", "--modality", "text", "--target", str(data), "--backbone", "tiny-text", "--epochs", "1",
            "--quiet"]
    assert main(base + ["--out", str(tmp_path / "r"), "--json", str(tmp_path / "no" / "r.json")]) == 2
    assert "--json" in capsys.readouterr().err and not (tmp_path / "r").exists() and leftovers(tmp_path, "r") == []
    assert main(base + ["--out", str(tmp_path / "r"), "--resume", "--overwrite"]) == 2
    assert "only one of them" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    assert main(base + ["--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "--overwrite" in err
