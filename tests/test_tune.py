"""The same tuning budget for every trained model (``--tune N``, issue 18 part 2): the fine-tuned model and the scratch
twin each get N Optuna trials over the learning rate, scored on training items only; the report has every trial, the
chosen value and how it was chosen, for every model."""

from __future__ import annotations

import pytest
from conftest import write_text_set

import tlcore
from tlcore.config import FinetuneConfig
from tlcore.errors import ConfigError
from tlcore.tasks.classification.tune import tune_lr, tuning_split


def test_trial_zero_is_the_default_and_the_best_trial_wins():
    seen = []

    def score(lr, n):
        seen.append((n, lr))
        return -abs(lr - 3e-4) * 1e3          # best near 3e-4

    lr, info = tune_lr(score, 1e-4, 6, seed=0, rule="scored on held-out training items (never eval)")
    assert seen[0] == (0, 1e-4) and len(info["trials"]) == 6 and info["default"] == {"lr": 1e-4}
    assert lr == info["chosen"]["lr"] == max(info["trials"], key=lambda t: t["val_accuracy"])["lr"]
    assert all(1e-5 <= t["lr"] <= 1e-3 for t in info["trials"]) and "6 trial(s)" in info["how"]
    again = tune_lr(lambda lr, n: -abs(lr - 3e-4) * 1e3, 1e-4, 6, seed=0, rule="")[0]
    assert again == lr                        # seeded: same trials, same choice


def test_the_tuning_split_holds_out_training_items_or_whole_groups():
    import numpy as np

    labels = [f"c{i % 2}" for i in range(40)]
    fit, val, rule = tuning_split(labels, None, np.array([], int), np.arange(40), seed=0)
    assert len(val) == 10 and not set(fit) & set(val) and "never eval" in rule
    groups = [f"g{i // 4}" for i in range(40)]
    fit, val, _ = tuning_split(labels, groups, np.array([], int), np.arange(40), seed=0)
    assert not {groups[i] for i in fit} & {groups[i] for i in val}
    fit, val, rule = tuning_split(labels, None, np.array([3, 7]), np.array([0, 1, 2]), seed=0)
    assert list(val) == [3, 7] and "held out for early stopping" in rule


def test_a_tuned_run_gives_both_networks_the_same_trials_and_reports_them(tmp_path):
    data = write_text_set(tmp_path / "t", n_per_class=12)
    r = tlcore.finetune(modality="text", backbone="tiny-text", target=str(data), strategy="full", epochs=1, tune=2,
                        baselines=["scratch"], out=str(tmp_path / "run")).report
    after, twin = r["training"]["tuning"], r["baselines"]["scratch"]["training"]["tuning"]
    assert len(after["trials"]) == len(twin["trials"]) == 2
    assert r["training"]["lr"] == after["chosen"]["lr"] and r["baselines"]["scratch"]["training"]["lr"] == twin["chosen"]["lr"]
    assert after["trials"][0]["lr"] == pytest.approx(after["default"]["lr"])
    assert "never eval" in after["how"] and "never eval" in twin["how"]
    assert r["config"]["tune"] == 2
    untuned = tlcore.finetune(modality="text", backbone="tiny-text", target=str(data), strategy="linear_probe",
                              baselines=[], out=str(tmp_path / "probe")).report
    assert "cross-validation" in untuned["training"]["tuning"]


def test_tuning_is_refused_where_it_means_nothing(tmp_path):
    with pytest.raises(ConfigError, match="--tune 3: tuning trials are available for"):
        FinetuneConfig(task="ner", modality="text", target="x", out=str(tmp_path / "o"), tune=3).validate()
    with pytest.raises(ConfigError, match="drop --tune"):
        FinetuneConfig(modality="text", source="s", unlabeled="u", eval="e", strategy="dann", tune=2,
                       out=str(tmp_path / "o")).validate()
    with pytest.raises(ConfigError, match="tune"):
        FinetuneConfig(modality="text", target="x", out=str(tmp_path / "o"), tune=51).validate()
