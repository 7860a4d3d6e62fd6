"""Error analysis from the CLI (``python -m tlcore errors RUN_DIR``) and the API (``tlcore.error_analysis``), issue 19
part 1: a real tiny classification run, hand-written NER / ASR / multi-label reports with known errors, and the bad
inputs that must end in one line and exit code 2."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import tlcore
from tlcore.cli import main
from tlcore.errors import ConfigError, DataError


def _write_run(folder, report: dict):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report))
    return folder


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["errors", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------ classification: a real run

def test_a_real_runs_errors_from_the_api_and_the_cli_agree_with_its_report(tmp_path, capsys):
    from tests.conftest import write_text_set

    target, source = write_text_set(tmp_path / "t"), write_text_set(tmp_path / "s", seed=1)
    run = tmp_path / "run"
    tlcore.finetune(modality="text", target=str(target), source=str(source), backbone="tiny-text", out=str(run),
                    baselines=[])
    report = json.loads((run / "report.json").read_text())
    preds, losses = report["eval_predictions"], report["eval_losses"]
    truth, after = np.array(preds["true"]), np.array(preds["after"])

    result = tlcore.error_analysis(run, top=2)
    data = json.loads(json.dumps(result.to_dict()))               # JSON as it is, nothing lost on the way
    assert data == result.to_dict() and data["task"] == result.task == "classify"
    assert data["models"]["after"]["errors"] == int((truth != after).sum())
    assert data["models"]["before"]["errors"] == int((truth != np.array(preds["before"])).sum())
    worst = int(np.argmax(losses["after"]))
    assert data["top_losses"][0]["index"] == worst and data["top_losses"][0]["loss_after"] == max(losses["after"])
    assert data["top_losses"][0]["name"] == preds["names"][worst] and len(data["top_losses"]) == 2
    for cell in data["models"]["after"]["largest_cells"]:
        assert all(report["data"]["classes"][truth[i["index"]]] == cell["true"] for i in cell["items"])

    code, out, err = _cli(capsys, run, "--top", "2", "--json", tmp_path / "errors.json")
    assert code == 0 and out == ""
    assert json.loads((tmp_path / "errors.json").read_text()) == {**data, "run_dir": str(run)}
    assert "highest loss after transfer:\n  " + preds["names"][worst] in err
    code, out, _ = _cli(capsys, run, "--top", "1")               # no --json: the JSON on stdout
    assert code == 0 and len(json.loads(out)["top_losses"]) == 1


# ------------------------------------------------------------------ known errors, hand-written reports

def _classification_report() -> dict:
    return {"task": "classify", "data": {"classes": ["cat", "dog", "fox"]},
            "eval_predictions": {"true": [0, 0, 1, 1, 2, 2], "before": [0, 1, 1, 1, 2, 0], "after": [1, 1, 1, 0, 2, 2],
                                 "items": [f"/d/{n}.png" for n in "abcdef"], "names": [f"{n}.png" for n in "abcdef"]},
            "eval_losses": {"definition": "cross-entropy", "before": [0.1, 2.0, 0.2, 0.3, 0.1, 1.5],
                            "after": [1.2, 0.9, 0.1, 2.5, 0.2, 0.3]}}


def test_classification_cells_and_losses_of_a_known_report(tmp_path, capsys):
    run = _write_run(tmp_path / "run", _classification_report())
    code, out, err = _cli(capsys, run, "--top", "5")
    assert code == 0
    data = json.loads(out)
    cells = data["models"]["after"]["largest_cells"]
    assert [(c["true"], c["predicted"], c["count"], [i["name"] for i in c["items"]]) for c in cells] == [
        ("cat", "dog", 2, ["a.png", "b.png"]), ("dog", "cat", 1, ["d.png"])]
    assert data["models"]["before"]["errors"] == 2 and data["models"]["before"]["error_cells"] == 2
    assert {c["class"]: (c["missed"], c["spurious"]) for c in data["models"]["after"]["per_class"]} == {
        "cat": (2, 1), "dog": (1, 2), "fox": (0, 0)}
    assert [r["name"] for r in data["top_losses"]] == ["d.png", "a.png", "b.png", "f.png", "e.png"]
    assert [r["name"] for r in data["loss_rose"]] == ["d.png", "a.png", "e.png"]    # rose by 2.2, 1.1, 0.1
    assert "after: 3 of 6 items wrong, in 2 confusion cells; largest: cat → dog (2); dog → cat (1)" in err
    assert "\n  d.png: true dog, predicted cat, loss 2.5\n" in err and "“" not in err     # a file's name, not its path
    assert "loss rose most (before → after):\n  d.png: 0.3 → 2.5\n" in err


def test_multilabel_errors_are_missed_and_spurious_labels(tmp_path, capsys):
    run = _write_run(tmp_path / "run", {"task": "multilabel", "data": {"classes": ["x", "y"]},
                                        "eval_predictions": {"true": [[0], [0, 1], [], [1]],
                                                             "before": [[0], [0, 1], [], [1]],
                                                             "after": [[], [0], [1], [0, 1]]}})
    result = tlcore.error_analysis(run)
    after = result.to_dict()["models"]["after"]
    assert after["errors"] == 4 and result.to_dict()["multi_label"] is True
    assert {(c["true"], c["predicted"]) for c in after["largest_cells"]} == {
        ("x", "missed"), ("y", "missed"), ("y", "spurious"), ("x", "spurious")}
    assert result.to_dict()["top_losses"] == [] and "no per-item losses" in result.to_dict()["loss_note"]
    assert "after: 4 label errors; largest: x missed (1); x spurious (1); y missed (1); y spurious (1)" in result.summary


def test_ner_entity_errors_by_kind(tmp_path, capsys):
    tokens = ["anyone", "else's", "greggs", "app", "down", "in", "bath"]
    gold = ["O", "O", "B-ORG", "O", "O", "O", "B-LOC"]
    before = ["O", "O", "B-LOC", "O", "O", "O", "O"]               # greggs: ORG tagged LOC; bath (LOC) missed
    after = ["B-PER", "O", "B-ORG", "O", "O", "O", "B-LOC"]        # a spurious PER on "anyone"
    run = _write_run(tmp_path / "run", {"task": "ner", "eval_predictions": {
        "tokens": [tokens], "gold": [gold], "before": [before], "after": [after]}})
    code, out, err = _cli(capsys, run)
    assert code == 0
    data = json.loads(out)
    assert data["task"] == "ner"
    assert data["counts"]["before"] == {"missed": 1, "spurious": 0, "wrong_type": 1, "wrong_boundary": 0,
                                        "wrong_type_and_boundary": 0}
    assert data["counts"]["after"]["spurious"] == 1 and sum(data["counts"]["after"].values()) == 1
    wrong = next(e for e in data["errors"]["before"] if e["kind"] == "wrong_type")
    assert wrong["gold"]["text"] == wrong["predicted"]["text"] == "greggs" and wrong["predicted"]["type"] == "LOC"
    assert "before: 2 entity errors (1 missed, 0 spurious, 1 wrong type, 0 wrong boundary" in err
    assert "after, spurious: no gold entity · predicted PER “anyone”" in err


def test_asr_worst_utterances_and_substitutions(tmp_path, capsys):
    run = _write_run(tmp_path / "run", {"task": "asr", "eval_predictions": {
        "names": ["a.wav", "b.wav", "c.wav"],
        "reference": ["turn the lights off", "the lights are on", "good morning"],
        "before": ["turn the nights of", "the nights are on", "good morning"],
        "after": ["turn the lights off", "the lights are on", "good mourning"]}})
    code, out, err = _cli(capsys, run, "--top", "5")
    assert code == 0
    data = json.loads(out)
    assert [w["name"] for w in data["worst"]["before"]] == ["a.wav", "b.wav"]     # 2/4 words, then 1/4
    assert data["worst"]["before"][0]["wer"] == pytest.approx(0.5)
    assert data["substitutions"]["before"] == [{"reference": "lights", "recognised_as": "nights", "count": 2},
                                               {"reference": "off", "recognised_as": "of", "count": 1}]
    assert [w["name"] for w in data["worst"]["after"]] == ["c.wav"]
    assert "before: most frequent substitutions: lights → nights ×2, off → of ×1" in err
    assert "after: most frequent substitutions: morning → mourning ×1" in err


# ------------------------------------------------------------------ bad input: one line, exit code 2

def _old_report(tmp_path):
    report = _classification_report()
    del report["eval_predictions"], report["eval_losses"]          # saved before per-item data was stored
    return _write_run(tmp_path / "old", report)


def _partial_run(tmp_path):
    (tmp_path / "partial" / "checkpoints").mkdir(parents=True)     # an unfinished run: checkpoints, no report
    return tmp_path / "partial"


def _damaged(tmp_path):
    folder = tmp_path / "damaged"
    folder.mkdir()
    (folder / "report.json").write_text('{"task": "classify", "data": ')
    return folder


BAD = {
    "missing folder": (lambda p: p / "nowhere", "no such run folder", DataError),
    "empty folder": (lambda p: (p / "empty").mkdir() or p / "empty", "holds no finished run", DataError),
    "unfinished run": (_partial_run, "holds no finished run", DataError),
    "damaged report": (_damaged, "cannot be read", DataError),
    "analysis report": (lambda p: _write_run(p / "audit", {"kind": "audit", "task": "classify"}),
                        "holds an analysis report (audit), not a fine-tuning run", DataError),
    "run before per-item data": (_old_report, "no per-item predictions", DataError),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_run_folders_are_one_line_and_exit_2(tmp_path, capsys, case):
    make, words, error = BAD[case]
    folder = make(tmp_path)
    code, out, err = _cli(capsys, folder)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and words in err and err.count("\n") == 1 and "Traceback" not in err
    with pytest.raises(error, match=re.escape(words)):
        tlcore.error_analysis(folder)


@pytest.mark.parametrize("top, words", [("0", "between 1 and 1000; got 0"), ("1001", "between 1 and 1000; got 1001"),
                                        ("abc", "must be a number; got 'abc'"), ("2.5", "must be a whole number")])
def test_a_bad_top_is_refused_before_reading_anything(tmp_path, capsys, top, words):
    code, out, err = _cli(capsys, tmp_path / "nowhere", "--top", top)      # --top is checked first
    assert code == 2 and out == "" and err.startswith("error: --top must be ") and words in err
    assert err.count("\n") == 1


def test_the_api_takes_top_as_the_cli_does(tmp_path, capsys):
    run = _write_run(tmp_path / "run", _classification_report())
    with pytest.raises(ConfigError, match="^top must be between 1 and 1000; got 0$"):
        tlcore.error_analysis(run, top=0)
    assert len(tlcore.error_analysis(run, top=1).to_dict()["top_losses"]) == 1
    assert len(tlcore.error_analysis(run, top=None).to_dict()["top_losses"]) == 6          # None: every item
    code, _, err = _cli(capsys, run, "--json", tmp_path / "no" / "errors.json")
    assert code == 2 and "does not exist" in err and err.count("\n") == 1


def test_top_is_the_callers_not_the_pages_list_length(tmp_path):
    n = 30                                    # more than the Compare page lists (24 losses, 20 utterances)
    cls = _write_run(tmp_path / "cls", {"task": "classify", "data": {"classes": ["a", "b"]}, "eval_predictions": {
        "true": [0] * n, "before": [0] * n, "after": [1] * n, "names": [f"i{i}" for i in range(n)]},
        "eval_losses": {"after": [float(i) for i in range(n)], "before": [0.0] * n}})
    data = tlcore.error_analysis(cls, top=n).to_dict()
    assert [r["name"] for r in data["top_losses"]] == [f"i{i}" for i in reversed(range(n))]
    assert len(data["loss_rose"]) == n - 1                         # i0's loss did not rise
    asr = _write_run(tmp_path / "asr", {"task": "asr", "eval_predictions": {
        "reference": ["one two three"] * n, "before": ["one two three"] * n,
        "after": ["one two" if i % 2 else "one" for i in range(n)]}})      # WER 1/3 and 2/3
    worst = tlcore.error_analysis(asr, top=n).to_dict()["worst"]["after"]
    assert len(worst) == n and [w["index"] for w in worst] == [*range(0, n, 2), *range(1, n, 2)]
    assert worst[0]["wer"] == pytest.approx(2 / 3) and worst[-1]["wer"] == pytest.approx(1 / 3)
