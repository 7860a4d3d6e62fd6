"""The layers are real: the import-linter contracts in pyproject.toml hold, and the engine's entry point loads
neither the app (Streamlit) nor the run database (SQLAlchemy)."""

from __future__ import annotations

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
