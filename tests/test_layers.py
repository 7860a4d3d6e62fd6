"""The layers are real: the import-linter contracts in pyproject.toml hold, and the engine's entry point loads
neither the app (Streamlit) nor the run database (SQLAlchemy)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_engine_entry_point_loads_neither_streamlit_nor_sqlalchemy():
    code = ("import sys, tlcore; tlcore.finetune; "
            "print(sorted(m for m in ('streamlit', 'sqlalchemy', 'alembic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_importing_the_engine_makes_openmp_threads_wait_passively_unless_told_otherwise():
    """``import tlcore`` (before torch) sets OMP_WAIT_POLICY=PASSIVE: spinning OpenMP threads made feature extraction
    4x slower on a busy 2-core machine. A value the user exported is kept."""
    code = "import os, tlcore, torch; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert out.stdout.strip() == "PASSIVE", out.stderr
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**env, "OMP_WAIT_POLICY": "ACTIVE"})
    assert out.stdout.strip() == "ACTIVE", out.stderr


#: Issue 17's size rules: no engine module past ~400 lines, and each setting's pipeline one short function.
MAX_MODULE_LINES = 400
MAX_PIPELINE_LINES = 80


def test_no_engine_module_is_longer_than_the_limit():
    long = {str(p.relative_to(ROOT)): n for p in sorted((ROOT / "tlcore").rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"split these by concern (at most {MAX_MODULE_LINES} lines each): {long}"


def test_each_setting_is_one_short_pipeline_function():
    sizes = {}
    for name, func in (("pipeline", "run_stages"), ("inductive", "run_finetune"), ("transductive", "run_adaptation")):
        tree = ast.parse((ROOT / "tlcore" / "settings" / f"{name}.py").read_text(encoding="utf-8"))
        node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == func)
        sizes[f"{name}.{func}"] = node.end_lineno - node.lineno + 1
    assert all(n <= MAX_PIPELINE_LINES for n in sizes.values()), sizes
