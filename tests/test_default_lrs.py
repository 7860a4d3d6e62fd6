"""The default learning rates come from development data, and the evidence, the rule and the code agree (issue 18:
no default chosen on a split a reported number comes from)."""

from __future__ import annotations

import json
from pathlib import Path

from tlcore.strategies import get_strategy
from tlcore.strategies.defaults import CHOSEN_FILE, GRIDS, choose_lrs

ROOT = Path(__file__).resolve().parents[1]
EVIDENCE = json.loads((ROOT / "docs" / "default_lrs.json").read_text())


def test_the_chosen_rates_follow_the_rule_from_the_evidence_and_are_what_the_strategies_use():
    chosen = json.loads(CHOSEN_FILE.read_text())["lrs"]
    assert chosen == choose_lrs(EVIDENCE["runs"]) == EVIDENCE["chosen"]
    assert {s: {m: list(g) for m, g in grids.items()} for s, grids in GRIDS.items()} == EVIDENCE["grids"]
    for strategy, by_modality in chosen.items():
        for modality, lr in by_modality.items():
            assert lr in GRIDS[strategy][modality]
            assert get_strategy(strategy).lr_for(modality) == lr
    assert {(s, m) for s in GRIDS for m in GRIDS[s]} == {(s, m) for s in chosen for m in chosen[s]}


def test_no_evidence_run_read_an_eval_split():
    assert EVIDENCE["runs"] and all("target split (eval_path: None)" in r["data"] for r in EVIDENCE["runs"])
    assert all(r["dev"] > 0 and r["train"] > r["dev"] for r in EVIDENCE["runs"])


def test_the_rule_takes_the_best_mean_and_the_smaller_rate_on_a_tie():
    runs = [{"strategy": "full", "modality": "text", "lr": lr, "dev_accuracy": acc}
            for lr, acc in ((1e-4, 0.8), (1e-4, 0.6), (5e-5, 0.7), (2e-4, 0.7), (2e-4, 0.5))]
    assert choose_lrs(runs) == {"full": {"text": 5e-5}}     # 1e-4 and 5e-5 both average 0.7


TASK_EVIDENCE = json.loads((ROOT / "docs" / "task_default_lrs.json").read_text())


def test_ner_and_speech_recognition_rates_follow_the_rule_from_development_runs_that_never_read_an_eval_split():
    from tlcore.tasks import get_task
    from tlcore.tasks.asr.whisper import WhisperRecognizer
    from tlcore.tasks.default_lrs import CHOSEN_FILE as TASK_CHOSEN

    chosen = json.loads(TASK_CHOSEN.read_text())["lrs"]              # task -> strategy -> lr
    runs = TASK_EVIDENCE["runs"]
    rule = choose_lrs(runs, family="task", score="dev_score")         # strategy -> task -> lr
    assert rule == TASK_EVIDENCE["chosen"]
    assert chosen == {t: {s: rule[s][t] for s in rule if t in rule[s]} for t in ("ner", "asr")}
    assert runs and all("target split (eval_path: None)" in r["data"] and 0 < r["dev"] < r["train"] for r in runs)
    assert all(r["dev_score"] == (r["dev_value"] if r["task"] == "ner" else 1 - r["dev_value"]) for r in runs)
    for task in ("ner", "asr"):      # every grid point of the spec was run, and the spec trains with the choice
        grid = get_task(task).lr_grid
        assert {s: list(g) for s, g in grid.items()} == TASK_EVIDENCE["grids"][task]
        assert {(s, lr) for s in grid for lr in grid[s]} == {(r["strategy"], r["lr"]) for r in runs if r["task"] == task}
        assert get_task(task).lrs == chosen[task] and set(chosen[task]) == set(grid)
    assert {r["seed"] for r in runs if r["task"] == "ner"} == {0, 1, 2}    # NER: the mean over three training seeds
    assert WhisperRecognizer.lrs == get_task("asr").lrs


def test_the_recipe_follows_the_rule_from_development_runs_that_never_read_an_eval_split():
    from tlcore import recipe
    from tlcore.config import MIN_VAL_ITEMS, FinetuneConfig

    evidence = json.loads((ROOT / "docs" / "recipe.json").read_text())
    chosen = json.loads(recipe.CHOSEN_FILE.read_text())["recipe"]
    assert chosen == recipe.choose_recipe(evidence["runs"]) == evidence["chosen"]
    assert evidence["factors"] == {k: list(v) for k, v in recipe.FACTORS.items()} and evidence["prior"] == recipe.PRIOR
    runs = evidence["runs"]
    assert runs and all("target split (eval_path: None)" in r["data"] and 0 < r["dev"] < r["train"] for r in runs)
    for r in runs:            # each run changed one setting (or none) and trained at the strategy's derived rate
        changed = {k for k, v in r["recipe"].items() if v != recipe.PRIOR[k]}
        assert changed == (set() if r["factor"] == "base" else {r["factor"]})
        assert r["lr"] == get_strategy(r["strategy"]).lr_for(r["modality"])
    for name, value in chosen.items():      # every value tried where it applies, and the code runs with the choice
        cells = {(r["demo"], r["strategy"]) for r in runs if r["factor"] == "base"
                 and recipe.applies(name, r["strategy"], r["modality"])}
        tried = {(r["demo"], r["strategy"], r["value"]) for r in runs if r["factor"] == name}
        assert cells and tried == {(*c, v) for c in cells for v in recipe.FACTORS[name][1:]}
        assert recipe.setting(name) == value
    cfg = FinetuneConfig()
    assert (cfg.layer_decay, cfg.augment, MIN_VAL_ITEMS) == (chosen["layer_decay"], chosen["augment"],
                                                             chosen["min_val_items"])


def test_the_recipe_rule_takes_the_best_mean_over_cells_and_keeps_the_prior_on_a_tie():
    from tlcore.recipe import choose_recipe

    def run(demo, factor, value, acc, strategy="partial", modality="image"):
        return {"demo": demo, "strategy": strategy, "modality": modality, "factor": factor, "value": value,
                "dev_accuracy": acc}

    runs = [run("a", "base", None, 0.8), run("b", "base", None, 0.6),
            run("a", "layer_decay", 1.0, 0.9), run("b", "layer_decay", 1.0, 0.6),     # mean 0.75 > 0.7: wins
            run("a", "layer_decay", 0.65, 0.7), run("b", "layer_decay", 0.65, 0.7),
            run("a", "schedule", "constant", 0.6), run("b", "schedule", "constant", 0.8),   # 0.7: a tie, prior kept
            run("a", "augment", "none", 1.0, strategy="lora", modality="text")]             # text: not augmented
    chosen = choose_recipe(runs)
    assert chosen["layer_decay"] == 1.0 and chosen["schedule"] == "warmup_cosine" and chosen["augment"] == "standard"
