"""Data sets the app can use: built-in demos and the user's uploads, named by a short reference.

A reference is ``demo:<name>`` or ``upload:<id>``; it lives in the URL (``?data=``) so reloads keep it.
Uploaded files are stored once under ``home()/uploads/<sha256>/<file name>`` (content-addressed, so a
file is never overwritten by a different one); an upload set is a small JSON manifest under
``home()/uploads/sets/<id>.json`` naming its splits.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import streamlit as st

from tlcore import paths
from tlcore.data.dataset import Dataset
from tlcore.errors import DataError

SPLITS = ("source", "target", "eval", "unlabeled")
UPLOAD_TYPES = ["zip", "csv", "tsv", "jsonl"]
TASK_UPLOAD_TYPES = {"ner": ["jsonl", "conll", "txt", "zip"], "asr": ["zip"]}
UPLOAD_HELP = {
    "classify": ".zip of a folder (<label>/<file>), or a CSV/TSV/JSONL table with text and label columns",
    "ner": ".jsonl with tokens and tags (BIO) per line, CoNLL text (.txt / .conll: token … tag per line, blank line "
           "between sentences), or a .zip of a folder holding one such file",
    "asr": ".zip of a folder of clips with a metadata.csv (file_name,transcription; optional speaker, accent)",
}


def upload_types(task: str) -> list[str]:
    """The file types an upload of ``task`` data accepts (classification by default)."""
    return TASK_UPLOAD_TYPES.get(task, UPLOAD_TYPES)


@dataclass
class DataChoice:
    ref: str
    name: str
    modality: str
    splits: dict = field(default_factory=dict)     # split -> path (str)
    description: str = ""
    license: str = ""
    task: str = "classify"   # classify | ner | asr: which runs this data set can feed

    @property
    def is_demo(self) -> bool:
        return self.ref.startswith("demo:")


def uploads_dir() -> Path:
    return paths.home() / "uploads"


def _safe_name(name: str) -> str:
    name = Path(name).name or "upload"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120] or "upload"


def save_upload(name: str, data: bytes) -> Path:
    """Store uploaded bytes at ``uploads/<sha256>/<name>``; the same bytes are stored once, nothing is overwritten."""
    digest = hashlib.sha256(data).hexdigest()
    folder = uploads_dir() / digest
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _safe_name(name)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def save_upload_set(modality: str, splits: dict[str, str], name: str = "", task: str = "classify") -> str:
    """Record an upload set; returns its reference ``upload:<id>`` (same files and task, same id)."""
    clean = {k: str(v) for k, v in splits.items() if v}
    parts = [modality, sorted(clean.items())] + ([task] if task != "classify" else [])
    ident = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
    sets = uploads_dir() / "sets"
    sets.mkdir(parents=True, exist_ok=True)
    label = name or " + ".join(Path(v).name for v in clean.values())
    (sets / f"{ident}.json").write_text(json.dumps({"name": label, "modality": modality, "task": task, "splits": clean},
                                                          indent=2))
    return f"upload:{ident}"


@st.cache_data(show_spinner=False, ttl=3600)
def _demo_specs() -> list[dict]:
    from tlcore.data.demos import list_demos

    out = []
    for spec in list_demos():
        try:
            why_not = spec.available()
        except Exception as exc:  # a broken optional dependency must not break the page
            why_not = str(exc)
        out.append({"name": spec.name, "modality": spec.modality, "task": getattr(spec, "task", "classify") or "classify",
                    "description": spec.description, "license": spec.license, "unavailable": why_not})
    return out


def demo_specs() -> list[dict]:
    return _demo_specs()


def upload_sets() -> list[DataChoice]:
    folder = uploads_dir() / "sets"
    if not folder.exists():
        return []
    out = []
    for f in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            meta = json.loads(f.read_text())
            out.append(DataChoice(f"upload:{f.stem}", meta["name"], meta["modality"], meta["splits"],
                                  task=meta.get("task") or "classify"))
        except (OSError, ValueError, KeyError):
            continue
    return out


def resolve(ref: Optional[str]) -> Optional[DataChoice]:
    """The data set a reference names (making a demo's files on first use); None when unknown."""
    if not ref:
        return None
    kind, _, ident = ref.partition(":")
    if kind == "demo":
        spec = next((d for d in demo_specs() if d["name"] == ident), None)
        if spec is None or spec["unavailable"]:
            return None
        folder = demo_folder(ident)
        splits = {s: str(folder / s) for s in SPLITS if (folder / s).exists()}
        return DataChoice(ref, f"demo: {ident}", spec["modality"], splits, spec["description"], spec["license"],
                          spec.get("task", "classify"))
    if kind == "upload" and re.fullmatch(r"[0-9a-f]{16}", ident):
        return next((c for c in upload_sets() if c.ref == ref), None)
    return None


@st.cache_resource(show_spinner="Preparing the demo data set…")
def _demo_folder(name: str, home: str) -> str:
    from tlcore.data.demos import demo_dir

    return str(demo_dir(name))


def demo_folder(name: str) -> Path:
    return Path(_demo_folder(name, str(paths.home())))


TASK_LABELS = {"classify": "", "ner": ", NER", "asr": ", speech recognition"}


def kind_label(modality: str, task: str) -> str:
    return f"{modality}{TASK_LABELS.get(task, ', ' + task)}"


def all_choices(task: Optional[str] = None) -> list[tuple[str, str]]:
    """(reference, label) for every usable data set (of ``task`` when given): demos first, then uploads (newest first)."""
    out = [(f"demo:{d['name']}", f"demo · {d['name']} ({kind_label(d['modality'], d.get('task', 'classify'))})")
           for d in demo_specs() if not d["unavailable"] and task in (None, d.get("task", "classify"))]
    out += [(c.ref, f"upload · {c.name} ({kind_label(c.modality, c.task)})") for c in upload_sets()
            if task in (None, c.task)]
    return out


def data_picker(key: str, label: str = "Data set", task: Optional[str] = None) -> Optional[DataChoice]:
    """A selectbox over all data sets (of ``task`` when given), following and setting ``?data=``."""
    choices = all_choices(task)
    if not choices:
        what = "" if task in (None, "classify") else f" for {'named-entity recognition' if task == 'ner' else 'speech recognition'}"
        st.info(f"No data set{what} yet: pick a demo or upload your data on the **Data** page.")
        return None
    refs = [c[0] for c in choices]
    current = st.query_params.get("data")
    index = refs.index(current) if current in refs else 0
    ref = st.selectbox(label, refs, index=index, format_func=lambda r: dict(choices)[r], key=key)
    if ref != current:
        st.query_params["data"] = ref
    return resolve(ref)


@st.cache_data(show_spinner="Checking the data…", max_entries=64)
def _load(path: str, modality: str, mtime: float) -> dict:
    from tlcore.data.loaders import load_dataset

    ds = load_dataset(path, modality, on_error="skip")
    return {"items": ds.items, "labels": ds.labels, "names": ds.names, "problems": [(p.where, p.reason) for p in ds.problems],
            "origin": ds.origin}


def load(path: str, modality: str) -> Dataset:
    """Load and validate one split (cached by path and modification time). Raises DataError."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p.name} no longer exists; upload it again")
    d = _load(str(p), modality, p.stat().st_mtime)
    from tlcore.data.dataset import Problem

    return Dataset(modality, list(d["items"]), None if d["labels"] is None else list(d["labels"]), origin=d["origin"],
                   problems=[Problem(w, r) for w, r in d["problems"]], names=list(d["names"]))


@st.cache_data(show_spinner="Checking the data…", max_entries=32)
def _load_task(path: str, task: str, mtime: float):
    if task == "ner":
        from tlcore.tasks.ner_data import load_ner

        return load_ner(path)
    from tlcore.tasks.asr_data import load_asr_dataset

    return load_asr_dataset(path, on_bad_file="skip")


def load_task(path: str, task: str):
    """Load and validate one split of NER (``NerData``) or ASR (``AsrData``) data. Raises DataError."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p.name} no longer exists; upload it again")
    return _load_task(str(p), task, p.stat().st_mtime)
