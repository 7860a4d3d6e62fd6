"""Bring any model (issue 22): the compatibility matrix. A tiny random-weight ``save_pretrained`` folder of each family
people use most (tests/tiny_hf.py: six text, five image, five speech encoders) goes through every path — linear probe,
partial, full, LoRA, the scratch twin, DANN with ``--adapt-backbone``, NER (text), ``predict``, Try it's loader and the
ONNX export with its parity check (tests/compat_paths.py). Every cell is ok, or refused before any work with its one-line
reason; the README's matrix (docs/compat_matrix.json, benchmarks/compat_matrix.py) is what these tests assert."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from compat_paths import PATHS, check_family, write_texts
from tiny_hf import FAMILIES

import tlcore
from tlcore.errors import ConfigError
from tlcore.strategies.lora import lora_problem

pytestmark = [pytest.mark.usefixtures("one_thread"),   # WavLM warns on every call (transformers passes mixed mask types)
              pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning")]

ROOT = Path(__file__).resolve().parents[1]
#: (family, path) -> what the refusal must say; every other cell of a family's modality must be "ok".
REFUSED = {("albert", "partial"): "this backbone has a single block"}


def expected(family: str, path: str) -> str:
    if path == "ner" and FAMILIES[family].modality != "text":
        return "n/a"
    return "refused" if (family, path) in REFUSED else "ok"


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_model_family_goes_through_every_path(name, tiny_hf_folder, tmp_path):
    family = FAMILIES[name]
    cells = check_family(family, tiny_hf_folder(name), tmp_path)
    wrong = {path: f"{cell.status}: {cell.detail}" for path, cell in cells.items() if cell.status != expected(name, path)}
    assert not wrong, f"{name}: {wrong}"
    for (refused_family, path), reason in REFUSED.items():
        if refused_family == name:
            message = cells[path].detail
            assert reason in message and "\n" not in message and "use full or lora" in message, message


def test_a_sweep_is_refused_before_its_first_run_when_a_strategy_cannot_run_on_the_backbone(tiny_hf_folder, tmp_path):
    data = write_texts(tmp_path / "data")
    with pytest.raises(ConfigError, match="strategy 'partial' cannot run on backbone .*single block"):
        tlcore.sweep(modality="text", target=str(data), backbone=str(tiny_hf_folder("albert")), epochs=1,
                     baselines=[], strategies=["linear_probe", "partial"], out=tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()


def test_lora_is_refused_on_a_backbone_with_no_layer_for_its_adapters():
    assert lora_problem(SimpleNamespace(lora_target_modules=["q_proj", "v_proj"])) is None
    assert "has none: use partial or full" in lora_problem(SimpleNamespace(lora_target_modules=[]))


def test_the_readme_matrix_is_what_these_tests_assert():
    """docs/compat_matrix.json (benchmarks/compat_matrix.py, rendered into the README) has every family and path with
    the status the matrix test asserts: a changed family list or an outcome the tests no longer expect fails here."""
    table = json.loads((ROOT / "docs" / "compat_matrix.json").read_text())
    assert table["paths"] == list(PATHS)
    assert [row["family"] for row in table["families"]] == list(FAMILIES)
    for row in table["families"]:
        assert {p: c["status"] for p, c in row["cells"].items()} == {p: expected(row["family"], p) for p in PATHS}
