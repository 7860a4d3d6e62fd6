"""Widgets built from dataclass fields (``field_help``): one source of truth for the CLI and the app."""

from __future__ import annotations

import re
from typing import Any, Optional, Sequence

import streamlit as st

from tlcore.config import field_help


def _base_type(type_str: str) -> tuple[str, bool]:
    t = str(type_str).replace("typing.", "")
    m = re.fullmatch(r"Optional\[(\w+)\]", t) or re.fullmatch(r"(\w+) \| None", t)
    return (m.group(1), True) if m else (t, False)


# FinetuneConfig fields set by the chosen data set or by the dedicated backbone/strategy widgets;
# every other field becomes a form widget, so a new config field shows up in the app by itself.
# ``exclude`` is set by the Data page's label audit ("Re-run without these"), not typed.
FINETUNE_FIXED_FIELDS = ("modality", "out", "target", "source", "unlabeled", "eval", "task", "backbone", "strategy",
                         "exclude")


def finetune_settings() -> list[str]:
    from tlcore.config import FinetuneConfig

    return [f for f in field_help(FinetuneConfig) if f not in FINETUNE_FIXED_FIELDS]


def number_limits(meta: dict, cast: type = int) -> dict:
    """``min_value`` / ``max_value`` for ``st.number_input`` from a field's metadata or a ``tlcore.config.LIMITS``
    entry: the same limits the config's validation and the CLI enforce (pages with hand-made inputs use this)."""
    out = {}
    if "min" in meta:
        out["min_value"] = cast(meta["min"])
    if "max" in meta:
        out["max_value"] = cast(meta["max"])
    return out


def field_widget(name: str, meta: dict, key: str, value: Any = None) -> Any:
    """One widget for one config field; ``value`` overrides the default."""
    label = name.replace("_", " ")
    help_text = meta.get("help", "")
    default = meta["default"] if value is None else value
    kind, optional = _base_type(meta["type"])
    if meta.get("choices"):
        choices = list(meta["choices"])
        return st.selectbox(label, choices, index=choices.index(default) if default in choices else 0, help=help_text, key=key)
    if kind == "list":
        options = list(meta.get("choices_list") or default or [])
        return st.multiselect(label, options, default=list(default or []), help=help_text, key=key)
    if kind == "bool":
        return st.checkbox(label, value=bool(default), help=help_text, key=key)
    if kind in ("int", "float"):
        cast = int if kind == "int" else float
        kwargs: dict = {"help": help_text, "key": key, **number_limits(meta, cast)}
        if kind == "float":
            kwargs["format"] = "%g"
            if default is not None and default < 0.01:
                kwargs["step"] = float(default) / 2 or 1e-5
        if optional:
            kwargs["placeholder"] = "default"
        return st.number_input(label, value=None if default is None else cast(default), **kwargs)
    text = st.text_input(label, value="" if default is None else str(default), help=help_text, key=key)
    return (text or None) if optional else text


def config_form(cls: type, fields: Sequence[str], key: str, overrides: Optional[dict] = None,
                columns: int = 3) -> dict:
    """Widgets for ``fields`` of dataclass ``cls`` laid out in columns; returns {field: value}."""
    helps = field_help(cls)
    values = {}
    cols = st.columns(columns)
    for i, name in enumerate(fields):
        with cols[i % columns]:
            values[name] = field_widget(name, helps[name], f"{key}-{name}", (overrides or {}).get(name))
    return values
