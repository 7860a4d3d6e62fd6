"""The README's measured tables are written by a script from the JSON beside them (issue 18, "numbers that cannot
drift"): every block is what its JSON renders to, and a number edited by hand is caught."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import readme_tables  # noqa: E402  (benchmarks/ is not a package)

README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(readme_tables.TABLES))
def test_every_measured_table_in_the_readme_is_what_its_json_renders_to(name):
    assert readme_tables.readme_block(README, name) == readme_tables.rendered(name), (
        f"README table {name!r} differs from {readme_tables.TABLES[name][0]}: run benchmarks/readme_tables.py")


def test_a_number_edited_by_hand_is_caught():
    block = readme_tables.readme_block(README, "demo")
    row = next(line for line in block.splitlines() if line.startswith("| sentiment |"))
    cells = row.split(" | ")
    cells[5] = "0.999 ± 0.000"          # the "after" cell
    edited = README.replace(row, " | ".join(cells))
    assert readme_tables.readme_block(edited, "demo") != readme_tables.rendered("demo")
