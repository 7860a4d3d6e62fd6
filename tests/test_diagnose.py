"""diagnose / rank end to end on small generated data (tiny and real backbones)."""

import csv

import numpy as np
import pytest
from conftest import write_image_set

from tlcore.diagnostics.diagnose import candidate_backbones, run_diagnose, run_rank
from tlcore.experiments.rank_validation import validated_rank


def _texts(folder, texts, labels):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "data.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(zip(texts, labels))
    return folder


def _shifted_images(folder, rng, n=24, size=16):
    """Same classes as write_image_set but large, low-contrast images: brightness/contrast/size drift."""
    from PIL import Image

    for label, level in (("bright", 150), ("dark", 100)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(n // 2):
            arr = np.clip(level + rng.normal(0, 3, (size * 2, size * 2, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(folder / label / f"{i}.png")
    return folder


def test_diagnose_finds_planted_image_shift(tmp_path):
    rng = np.random.default_rng(0)
    src = write_image_set(tmp_path / "src", n_per_class=20)
    tgt = _shifted_images(tmp_path / "tgt", rng, n=40)
    report = run_diagnose("image", str(src), str(tgt), backbone="tiny-image", n_permutations=100)
    assert report["verdict"]["severity"] in ("mild", "strong")
    drifting = {r["name"] for r in report["drift"]["rows"] if r["drifting"]}
    assert {"width", "contrast"} <= drifting
    assert report["mismatch"]["mmd"]["p_value"] < 0.05


def test_diagnose_two_halves_of_one_set_no_shift(tmp_path):
    rng = np.random.default_rng(1)
    words = ["good", "bad", "fine", "poor", "nice", "awful", "great", "weak"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(3, 9)))) for _ in range(160)]
    labels = ["a" if "good" in t else "b" for t in texts]
    a = _texts(tmp_path / "a", texts[::2], labels[::2])
    b = _texts(tmp_path / "b", texts[1::2], labels[1::2])
    report = run_diagnose("text", str(a), str(b), backbone="tiny-text", n_permutations=100)
    assert report["verdict"]["severity"] == "none", report["verdict"]
    assert not any(r["drifting"] for r in report["drift"]["rows"])
    assert report["mismatch"]["mmd"]["p_value"] > 0.05


def test_rank_scores_every_candidate(tmp_path):
    target = write_image_set(tmp_path / "t", n_per_class=10)
    report = validated_rank("image", str(target), backbones=["tiny-image", "tiny-image@random"], n_boot=5)
    assert [r["rank"] for r in report["ranking"]] == [1, 2]
    for row in report["ranking"]:
        assert {"logme", "h_score", "knn_accuracy"} <= set(row["scores"])
        for s in row["scores"].values():
            assert s["lo"] <= s["hi"]
    assert set(report["validation"]["accuracy"]) == {"tiny-image", "tiny-image@random"}
    assert "logme" in report["validation"]["kendall_tau"]


def test_candidates_include_random_twins():
    names = candidate_backbones("text")
    assert "minilm-l6" in names and "minilm-l6@random" in names and "tiny-text" not in names


@pytest.mark.slow
def test_rank_real_image_backbone_has_leep(tmp_path):
    target = write_image_set(tmp_path / "t", n_per_class=6)
    report = run_rank("image", str(target), backbones=["efficientnet-lite0-128"], n_boot=3)
    assert {"leep", "nce"} <= set(report["ranking"][0]["scores"])


def test_rank_advice_says_when_scores_disagree_on_the_best():
    from tlcore.diagnostics.rank import _advice
    from tlcore.diagnostics.transferability import rank_backbones

    agree = rank_backbones({"a": {"logme": (2.0, 1.9, 2.1), "knn_accuracy": (0.9, 0.85, 0.95)},
                            "b": {"logme": (1.0, 0.9, 1.1), "knn_accuracy": (0.5, 0.45, 0.55)}})
    assert _advice(agree) == "a ranks first on every score's interval; start with it."
    split = rank_backbones({"a": {"logme": (2.0, 1.9, 2.1), "h_score": (3.0, 2.9, 3.1), "knn_accuracy": (0.5, 0.45, 0.55)},
                            "b": {"logme": (1.0, 0.9, 1.1), "h_score": (1.0, 0.9, 1.1), "knn_accuracy": (0.9, 0.85, 0.95)}})
    advice = _advice(split)
    assert "scores disagree" in advice and "k-NN accuracy favours b" in advice and "H-score, LogME favour a" in advice
