"""Every hostile input of the corpus (tests/corpus) ends in a clear error or a notice: no traceback, no hang, no
file read outside its data set, no run folder damaged. ``benchmarks/bad_inputs.py`` prints the figures table."""

import pytest
from corpus import all_cases, expected, run_case

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_bad_input(case, tmp_path):
    outcome = run_case(case, tmp_path / "case")
    assert not outcome.damaged, f"{case.kind}: changed {outcome.damaged}"
    assert not outcome.leaked, f"{case.kind}: the secret outside the data set showed up in the output"
    assert expected(case, outcome), f"{case.kind}: expected {case.expect}, got {outcome.result}: {outcome.message}"
