"""End to end with the real pretrained default backbones on small demo subsets (offline)."""

import pytest

from tlcore.config import FinetuneConfig
from tlcore.data.demos import DEMOS, demo_dir
from tlcore.models.registry import DEFAULT_BACKBONE, build_backbone
from tlcore.settings.inductive import run_finetune

pytestmark = pytest.mark.slow
CASES = [("sentiment", "text"), ("digits", "image"), ("spoken-digits", "audio")]


@pytest.mark.parametrize("demo, modality", CASES)
def test_linear_probe_on_demo_beats_chance(tmp_path, demo, modality):
    d = demo_dir(demo, size="small")
    report = run_finetune(FinetuneConfig(modality=modality, source=str(d / "source"), target=str(d / "target"),
                                         eval=str(d / "eval"), strategy="linear_probe", epochs=3, out=str(tmp_path / "run"),
                                         baselines=["knn"]))
    chance = 1 / len(report["data"]["classes"])
    assert report["backbone"] == DEFAULT_BACKBONE[modality]
    assert report["after"]["accuracy"] > chance + 0.15, report["after"]
    assert report["before"]["kind"].startswith("source-trained")
    assert report["baselines"]["knn"]["accuracy"] > chance


def test_lora_on_real_text_backbone(tmp_path):
    d = demo_dir("sentiment", size="small")
    report = run_finetune(FinetuneConfig(modality="text", target=str(d / "target"), eval=str(d / "eval"), strategy="lora",
                                         epochs=2, out=str(tmp_path / "run"), baselines=[]))
    assert report["training"]["epochs_run"] >= 1 and 0 <= report["after"]["accuracy"] <= 1


def test_pretrained_weights_are_real():
    """Pretrained and random-init twins differ, and the pretrained text encoder separates sentiment words."""
    import numpy as np

    from tlcore.data.dataset import Dataset
    from tlcore.models.features import extract_features

    words = ["wonderful", "excellent", "delightful", "superb", "awful", "horrible", "dreadful", "terrible"]
    ds = Dataset("text", words, ["p"] * 4 + ["n"] * 4)
    f = extract_features(build_backbone("minilm-l6", "text"), ds, use_cache=False)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    sim = f @ f.T
    within = (sim[:4, :4].sum() - 4 + sim[4:, 4:].sum() - 4) / 24
    across = sim[:4, 4:].mean()
    assert within > across


def test_demos_registered():
    assert {"digits", "sentiment", "spoken-digits"} <= set(DEMOS.names())
