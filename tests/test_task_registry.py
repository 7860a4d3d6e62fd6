"""The task registry: one TaskSpec per task, found by name; no code outside tlcore/tasks/ compares a task name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tlcore.errors import ConfigError
from tlcore.tasks import TASKS, Metric, TaskSpec, all_tasks, get_task, register_task, task_names, task_of
from tlcore.tasks.detect import detect_task, resolve_task
from tlcore.tasks.job import TaskJob

ROOT = Path(__file__).resolve().parents[1]
SHARED_CODE = [*sorted((ROOT / "tlcore").rglob("*.py")), *sorted((ROOT / "ui").glob("*.py")),
               *sorted((ROOT / "pages").glob("*.py")), ROOT / "app.py"]


def _is_task_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in task_names()


def _has_task_name(node: ast.AST) -> bool:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_task_name(e) for e in node.elts)
    return _is_task_name(node)


def task_name_switches(source: str) -> list[tuple[int, str]]:
    """(line, what) of each place that switches on a task name: a comparison with one (``==``, ``!=``, ``in``), a
    dict keyed by task names, or a lookup with one as the key. Strings in docstrings and messages do not count."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(_has_task_name(n) for n in [node.left, *node.comparators]):
            found.append((node.lineno, "comparison"))
        elif isinstance(node, ast.Dict) and sum(_is_task_name(k) for k in node.keys if k is not None) >= 2:
            found.append((node.lineno, "table keyed by task names"))
        elif isinstance(node, ast.Subscript) and _is_task_name(node.slice):
            found.append((node.lineno, "lookup by a task name"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and node.args and _is_task_name(node.args[0])):
            found.append((node.lineno, "lookup by a task name"))
    return found


def test_the_checker_finds_the_switches_it_is_meant_to_find():
    code = '''
if task == "ner": pass
if cfg.task in ("ner", "asr"): pass
VIEWS = {"classify": 1, "ner": 2}
x = TABLE["asr"]
y = TABLE.get("ner", 0)
"""a docstring that says ner"""
raise ValueError("use task ner or asr")
'''
    assert [what for _, what in task_name_switches(code)] == [
        "comparison", "comparison", "table keyed by task names", "lookup by a task name", "lookup by a task name"]


def test_no_code_outside_the_tasks_folder_switches_on_a_task_name():
    offenders = []
    for path in SHARED_CODE:
        rel = path.relative_to(ROOT)
        if rel.parts[:2] == ("tlcore", "tasks"):
            continue
        offenders += [f"{rel}:{line}: {what}" for line, what in task_name_switches(path.read_text(encoding="utf-8"))]
    assert not offenders, "ask the task's spec (tlcore.tasks.get_task / task_of) instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize("module, table", [
    ("ui/tasks.py", "TASK_MODALITY"), ("ui/tasks.py", "TASKS"), ("ui/report.py", "TASK_VIEWS"),
    ("tlcore/reporting/model_card.py", "TASKS"), ("ui/datasets.py", "TASK_UPLOAD_TYPES"),
    ("ui/try_it.py", "TASK_NAMES"), ("tlcore/diagnostics/task_shift.py", "TASK_DEFINITIONS"),
])
def test_the_per_task_tables_are_gone(module, table):
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    assigned = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
    assert table not in assigned
    assert not (ROOT / "tlcore/diagnostics/task_data.py").exists()


def test_every_task_is_one_folder_with_its_spec_and_pipeline():
    assert task_names() == ("classify", "ner", "asr", "multilabel")
    for spec in all_tasks():
        folder = ROOT / Path(*spec.package.split("."))
        assert (folder / "__init__.py").is_file() and (folder / "pipeline.py").is_file()
        assert issubclass(spec.part("pipeline").Job, TaskJob) and callable(spec.part("pipeline").check_config)
        assert spec.metric is spec.metrics[0] and spec.second.key == spec.second_metric
        assert spec.default_strategy in (spec.strategies or (spec.default_strategy,))


def test_a_duplicate_task_is_refused_and_an_unknown_one_lists_the_known_ones():
    spec = get_task("ner")
    with pytest.raises(ValueError, match="already registered"):
        register_task(spec)
    with pytest.raises(ConfigError, match="unknown task .pos.; known: asr, classify, multilabel, ner"):
        get_task("pos")
    assert "pos" not in TASKS


def test_reports_from_before_tasks_and_unknown_tasks_read_as_classification():
    assert task_of({}).name == "classify"
    assert task_of({"task": "ner"}).name == "ner"
    assert task_of({"task": "something-newer"}).name == "classify"


def test_metrics_know_their_direction_and_format():
    wer = get_task("asr").metric
    assert not wer.higher_is_better and wer.improved(-0.1) and not wer.improved(0.1)
    assert wer.fmt(0.1234) == "12.3%" and wer.delta(0.2, 0.1) == "-10.0 points"
    f1 = Metric("entity_f1", "Entity F1")
    assert f1.fmt(0.5) == "0.500" and f1.delta(0.5, 0.625) == "+0.125"
    assert isinstance(get_task(None), TaskSpec) and get_task(None).name == "classify"


def test_a_task_lacking_a_part_says_so():
    with pytest.raises(ConfigError, match="task 'classify' has no formats"):
        get_task("classify").part("formats")


def test_detection_asks_each_task_and_falls_back_to_classification(tmp_path):
    (tmp_path / "ner.jsonl").write_text('{"tokens": ["Ann", "runs"], "tags": ["B-PER", "O"]}\n', encoding="utf-8")
    (tmp_path / "cls.csv").write_text("text,label\nhi,a\nho,b\n", encoding="utf-8")
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "metadata.csv").write_text("file_name,transcription\na.wav,hello\n", encoding="utf-8")
    assert detect_task(tmp_path / "ner.jsonl", "text") == "ner"
    assert detect_task(tmp_path / "cls.csv", "text") == "classify"
    assert detect_task(clips, "audio") == "asr"
    assert detect_task(clips, "image") == "classify"
    with pytest.raises(Exception, match="named-entity recognition .NER. data but the target set"):
        resolve_task(None, "text", ("source", str(tmp_path / "ner.jsonl")), ("target", str(tmp_path / "cls.csv")))
    with pytest.raises(ConfigError, match="task 'asr' .* needs modality 'audio', not 'text'"):
        resolve_task("asr", "text")
