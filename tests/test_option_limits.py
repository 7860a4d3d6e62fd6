"""Every numeric option has limits, declared once (``tlcore.config.LIMITS`` / the config fields' metadata) and
enforced the same way by the config's validation (the API and the app's jobs), the CLI (its help shows the range)
and the app's form (min/max of its number inputs); an out-of-range value is refused with the allowed range."""

import argparse
import dataclasses
import math

import pytest
from conftest import write_text_set

from tlcore.api import ClusterConfig, CurveConfig, DiagnoseConfig, LabelNextConfig, RankConfig
from tlcore.cli import build_parser
from tlcore.cli.parser import real_number, whole_number
from tlcore.config import LIMITS, FinetuneConfig, check_option, field_help, limit_text
from tlcore.device import cpu_cores
from tlcore.errors import ConfigError


def numeric_fields(cls):
    return {name: meta for name, meta in field_help(cls).items() if "min" in meta or "max" in meta}


def base_config(cls, tmp_path):
    data = str(write_text_set(tmp_path / "data"))
    if cls is FinetuneConfig:
        return FinetuneConfig(modality="text", target=data, backbone="tiny-text", out=str(tmp_path / "run"))
    if cls is ClusterConfig:
        return ClusterConfig(modality="text", data=data, backbone="tiny-text", out=str(tmp_path / "run"))
    if cls is DiagnoseConfig:
        return DiagnoseConfig(modality="text", source=data, target=data, backbone="tiny-text")
    if cls is RankConfig:
        return RankConfig(modality="text", target=data, backbones=["tiny-text"])
    if cls is LabelNextConfig:
        return LabelNextConfig(modality="text", pool=data, target=data, backbone="tiny-text")
    return CurveConfig(modality="text", target=data, backbone="tiny-text", out=str(tmp_path / "run"), shots=[1, 0],
                       seeds=1)


def outside(meta):
    """Values just outside each declared limit (and the non-numbers every numeric field must refuse)."""
    whole = isinstance(meta["min"], int) and isinstance(meta.get("max"), int)
    step = 1 if whole else max(abs(meta["min"]) * 0.5, 1e-3)
    values = [meta["min"] - step, math.nan, math.inf]
    if "max" in meta:
        values.append(meta["max"] + (1 if whole else 0.01))
    return values


@pytest.mark.parametrize("cls", [FinetuneConfig, ClusterConfig, CurveConfig, DiagnoseConfig, RankConfig, LabelNextConfig])
def test_config_validation_enforces_every_declared_limit_with_the_range_in_the_message(cls, tmp_path):
    cfg = base_config(cls, tmp_path)
    cfg.validate()
    fields = numeric_fields(cls)
    assert fields, cls
    for name, meta in fields.items():
        for edge in (meta["min"], meta.get("max", meta["min"])):
            if name == "seeds":
                continue                                   # the curve also caps seeds x shots; checked below
            if name == "num_processes" and edge > cpu_cores():
                # the declared range is the launcher's; a run is also refused more processes than this machine has
                # cores (or GPUs), with that limit in the message
                with pytest.raises(ConfigError, match=f"use at most {cpu_cores()}"):
                    dataclasses.replace(cfg, **{name: edge}).validate()
                continue
            dataclasses.replace(cfg, **{name: edge}).validate()
        for bad in outside(meta):
            with pytest.raises(ConfigError) as err:
                dataclasses.replace(cfg, **{name: bad}).validate()
            flag = name.replace("_", "-")
            assert str(err.value).startswith(flag), (name, bad, err.value)
            if math.isfinite(bad):
                assert f"between {limit_text(meta).replace('..', ' and ')}" in str(err.value), err.value


def test_limits_are_declared_once():
    """The config fields carry the LIMITS entries of the same name: nothing is typed twice."""
    for cls in (FinetuneConfig, ClusterConfig, CurveConfig, DiagnoseConfig, RankConfig, LabelNextConfig):
        for name, meta in numeric_fields(cls).items():
            assert {k: meta[k] for k in ("min", "max") if k in meta} == LIMITS[name], (cls.__name__, name)


def test_whole_numbers_are_shown_in_full():
    with pytest.raises(ConfigError, match="epochs must be between 1 and 500; got 1000000000$"):
        FinetuneConfig(target="t", out="o", epochs=1_000_000_000).validate()
    with pytest.raises(ConfigError, match="seed must be between 0 and 4294967295; got -1"):
        check_option("seed", -1)
    with pytest.raises(ConfigError, match="--top-k must be between 1 and 1000; got 0"):
        check_option("top_k", 0, flag="--top-k")
    assert check_option("k", None) is None and check_option("k", 7) == 7


def _subcommands(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in action.choices.items():
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            for inner_name, inner in nested[0].choices.items():
                yield f"{name} {inner_name}", inner
        else:
            yield name, sub


def test_every_numeric_option_of_every_subcommand_has_a_limit():
    """A new int/float flag without an entry in LIMITS (or config metadata) fails here."""
    declared = {**LIMITS, **numeric_fields(FinetuneConfig)}
    seen = []
    for command, sub in _subcommands(build_parser()):
        for action in sub._actions:
            if action.type in (int, float, whole_number, real_number):
                assert action.dest in declared, f"{command} {action.option_strings}: no limit declared"
                seen.append((command, action.dest))
    commands = {c for c, _ in seen}
    assert {"finetune", "predict", "diagnose", "rank", "curve", "cluster", "demo make"} <= commands


def test_cli_help_shows_the_same_ranges():
    parser = build_parser()
    subs = dict(_subcommands(parser))
    for name, meta in numeric_fields(FinetuneConfig).items():
        action = next(a for a in subs["finetune"]._actions if a.dest == name)
        assert f"Allowed: {limit_text(meta)}." in action.help, name
    top_k = next(a for a in subs["predict"]._actions if a.dest == "top_k")
    assert limit_text(LIMITS["top_k"]) in top_k.help
    k = next(a for a in subs["cluster"]._actions if a.dest == "k")
    assert limit_text(LIMITS["k"]) in k.help


def test_the_app_form_uses_the_same_limits(monkeypatch):
    import streamlit as st

    from ui import forms

    seen = {}

    def number_input(label, value=None, **kwargs):
        seen[kwargs["key"]] = kwargs
        return value

    monkeypatch.setattr(st, "number_input", number_input)
    helps = field_help(FinetuneConfig)
    numeric = [f for f in forms.finetune_settings() if f in numeric_fields(FinetuneConfig)]
    assert {"epochs", "batch_size", "lr", "lora_r", "max_per_class", "val_fraction"} <= set(numeric)
    for name in numeric:
        forms.field_widget(name, helps[name], key=f"t-{name}")
        widget, meta = seen[f"t-{name}"], helps[name]
        assert widget["min_value"] == meta["min"] and widget["max_value"] == meta["max"], name
    limits = forms.number_limits(LIMITS["k"])
    assert limits == {"min_value": 2, "max_value": 50}
