"""Data sets the app can use: built-in demos and the user's uploads, named by a short reference.

A reference is ``demo:<name>`` or ``upload:<id>``; it lives in the URL (``?data=``) so reloads keep it.
Uploaded files are stored once under ``home()/uploads/<sha256>/<file name>`` (content-addressed, so a
file is never overwritten by a different one); an upload set is a small JSON manifest naming its splits. The
manifest is what makes a set visible and usable, so it lives in its owner's folder:

* local mode (no login): ``home()/uploads/sets/<id>.json`` (as before accounts existed);
* with login: ``home()/uploads/sets/users/<owner key>/<id>.json`` (``ui.auth.owner_key``: sha256 of the email).

A member reads only their own folder, so another user's ``upload:<id>`` reads as "not found" even when the same
bytes (hence the same id) exist elsewhere; admins and local mode read every folder. Each user's uploads are
limited to ``TRANSFERLAB_USER_QUOTA_GB`` (default 10), counted over the files their own sets name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import streamlit as st

from tlcore import paths
from tlcore.data.dataset import Dataset
from tlcore.errors import DataError
from tlcore.storage import usage_bytes as disk_bytes
from tlcore.tasks import DEFAULT_TASK, get_task
from ui.auth import current_user, is_admin, login_configured, owner_key
from ui.tasks import spec_of

SPLITS = ("source", "target", "eval", "unlabeled")
UPLOAD_TYPES = ["zip", "csv", "tsv", "jsonl"]   # what an upload takes when its task does not say (TaskSpec.upload_types)


def upload_types(task: str) -> list[str]:
    """The file types an upload of ``task`` data accepts (the task's own, else the default ones)."""
    return list(spec_of(task).upload_types or UPLOAD_TYPES)


def upload_help(task: str) -> str:
    """What an upload of ``task`` data looks like, and the file types it takes."""
    return f"{spec_of(task).data_hint}; as {', '.join('.' + t for t in upload_types(task))}"


@dataclass
class DataChoice:
    ref: str
    name: str
    modality: str
    splits: dict = field(default_factory=dict)     # split -> path (str)
    description: str = ""
    license: str = ""
    task: str = DEFAULT_TASK   # the task (tlcore.tasks) whose runs this data set can feed
    owner: Optional[str] = None   # who uploaded it (None: local mode, or made before login was enabled)

    @property
    def is_demo(self) -> bool:
        return self.ref.startswith("demo:")


def uploads_dir() -> Path:
    return paths.home() / "uploads"


def _safe_name(name: str) -> str:
    name = Path(name).name or "upload"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120] or "upload"


class QuotaExceeded(DataError):
    """An upload that would take a user past their storage quota."""


DEFAULT_QUOTA_GB = 10.0


def user_quota_bytes() -> int:
    """Each user's upload quota: ``TRANSFERLAB_USER_QUOTA_GB`` gigabytes (10^9 bytes; default 10)."""
    raw = os.environ.get("TRANSFERLAB_USER_QUOTA_GB", "")
    try:
        gb = float(raw) if raw.strip() else DEFAULT_QUOTA_GB
    except ValueError:
        gb = DEFAULT_QUOTA_GB
    return int(max(gb, 0.0) * 1e9)


def format_size(n: int) -> str:
    """Bytes as GB (10^9) with two decimals from 0.1 GB, else MB or kB with one."""
    if n >= 1e8:
        return f"{n / 1e9:.2f} GB"
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def usage_bytes(owner: Optional[str]) -> int:
    """Bytes used by ``owner``'s upload sets: every file their own manifests name, counted once."""
    files = {Path(p).resolve() for meta in _manifests([_owner_dir(owner)]) for p in meta[1]["splits"].values()}
    return sum(disk_bytes(f) for f in files)


def _session_owner() -> Optional[str]:
    return current_user() if login_configured() else None


def check_quota(path: Path, n_bytes: int, owner: Optional[str], also: Iterable[Path] = ()) -> None:
    """Refuse (``QuotaExceeded``) storing ``n_bytes`` at ``path`` for ``owner`` when it would pass their quota.
    ``also``: files saved earlier in the same batch (not yet in a manifest). Local mode has no quota."""
    if owner is None:
        return
    known = {Path(p).resolve() for meta in _manifests([_owner_dir(owner)]) for p in meta[1]["splits"].values()}
    pending = {Path(p).resolve() for p in also} - known
    if path.resolve() in known | pending:
        return  # the same file again: nothing new is stored for this user
    used = usage_bytes(owner) + sum(disk_bytes(p) for p in pending)
    quota = user_quota_bytes()
    if used + n_bytes > quota:
        raise QuotaExceeded(f"upload refused: it needs {format_size(n_bytes)} and you already use {format_size(used)} of your "
                            f"{format_size(quota)} quota. Remove upload sets you no longer need on the Data page, or ask "
                            "the administrator to raise TRANSFERLAB_USER_QUOTA_GB")


def save_upload(name: str, data: bytes, *, also: Iterable[Path] = ()) -> Path:
    """Store uploaded bytes at ``uploads/<sha256>/<name>``; the same bytes are stored once, nothing is overwritten.
    With login, the signed-in user's quota is checked first (``QuotaExceeded``); ``also``: files saved earlier in the
    same batch."""
    digest = hashlib.sha256(data).hexdigest()
    folder = uploads_dir() / digest
    path = folder / _safe_name(name)
    check_quota(path, len(data), _session_owner(), also)
    folder.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def _sets_root() -> Path:
    return uploads_dir() / "sets"


def _owner_dir(owner: Optional[str]) -> Path:
    """Where ``owner``'s manifests live: the sets folder itself for local mode (None), else a folder per user."""
    return _sets_root() if owner is None else _sets_root() / "users" / owner_key(owner)


def _readable_dirs() -> list[Path]:
    """The manifest folders this session may read, its own first: local mode and admins every folder; a signed-in
    member only their own; nobody (login configured, not signed in) none."""
    if not login_configured():
        own = _owner_dir(None)
    else:
        user = current_user()
        if user is None:
            return []
        own = _owner_dir(user)
        if not is_admin():
            return [own]
    users = _sets_root() / "users"
    others = sorted(p for p in users.iterdir() if p.is_dir()) if users.is_dir() else []
    return list(dict.fromkeys([own, _sets_root(), *others]))


def _manifests(folders: list[Path]) -> list[tuple[Path, dict]]:
    out = []
    for folder in folders:
        for f in folder.glob("*.json") if folder.is_dir() else ():
            try:
                meta = json.loads(f.read_text())
                if isinstance(meta.get("splits"), dict) and meta.get("modality"):
                    out.append((f, meta))
            except (OSError, ValueError, AttributeError):
                continue
    return out


def _manifests_named(folder: Path, ident: str) -> Optional[tuple[Path, dict]]:
    f = folder / f"{ident}.json"
    if not f.is_file():
        return None
    try:
        meta = json.loads(f.read_text())
    except (OSError, ValueError):
        return None
    return (f, meta) if isinstance(meta, dict) and isinstance(meta.get("splits"), dict) and meta.get("modality") else None


def _choice(f: Path, meta: dict) -> DataChoice:
    return DataChoice(f"upload:{f.stem}", str(meta.get("name") or f.stem), meta["modality"], meta["splits"],
                      task=meta.get("task") or DEFAULT_TASK, owner=meta.get("owner"))


def save_upload_set(modality: str, splits: dict[str, str], name: str = "", task: str = DEFAULT_TASK) -> str:
    """Record an upload set in the signed-in user's folder (local mode: the shared one); returns its reference
    ``upload:<id>`` (same files and task, same id; a set of the default task keeps the id it had before tasks)."""
    clean = {k: str(v) for k, v in splits.items() if v}
    parts = [modality, sorted(clean.items())] + ([task] if task != DEFAULT_TASK else [])
    ident = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
    owner = _session_owner()
    if login_configured() and owner is None:
        raise PermissionError("sign in to upload data")
    sets = _owner_dir(owner)
    sets.mkdir(parents=True, exist_ok=True)
    label = name or " + ".join(Path(v).name for v in clean.values())
    (sets / f"{ident}.json").write_text(json.dumps({"name": label, "modality": modality, "task": task, "splits": clean,
                                                    "owner": owner}, indent=2))
    return f"upload:{ident}"


def delete_upload_set(ref: str) -> bool:
    """Remove the signed-in user's upload set (its manifest; the files stay for other sets naming the same bytes
    until the cleanup collects them). Returns False when this user has no such set."""
    kind, _, ident = ref.partition(":")
    if kind != "upload" or not re.fullmatch(r"[0-9a-f]{16}", ident):
        return False
    for folder in _readable_dirs():
        f = folder / f"{ident}.json"
        if f.is_file():
            f.unlink()
            return True
    return False


@st.cache_data(show_spinner=False, ttl=3600)
def _demo_specs() -> list[dict]:
    from tlcore.data.demos import list_demos

    out = []
    for spec in list_demos():
        try:
            why_not = spec.available()
        except Exception as exc:  # a broken optional dependency must not break the page
            why_not = str(exc)
        out.append({"name": spec.name, "modality": spec.modality, "task": getattr(spec, "task", None) or DEFAULT_TASK,
                    "description": spec.description, "license": spec.license, "unavailable": why_not})
    return out


def demo_specs() -> list[dict]:
    return _demo_specs()


def upload_sets() -> list[DataChoice]:
    """The upload sets this session may use (own first on equal ids), newest first."""
    seen: dict[str, tuple[Path, dict]] = {}
    for f, meta in _manifests(_readable_dirs()):
        seen.setdefault(f.stem, (f, meta))
    ordered = sorted(seen.values(), key=lambda fm: fm[0].stat().st_mtime, reverse=True)
    return [_choice(f, meta) for f, meta in ordered]


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
                          spec.get("task") or DEFAULT_TASK)
    if kind == "upload" and re.fullmatch(r"[0-9a-f]{16}", ident):
        # only this session's folders: another user's set reads exactly like one that does not exist
        for folder in _readable_dirs():
            found = _manifests_named(folder, ident)
            if found is not None:
                return _choice(*found)
    return None


@st.cache_resource(show_spinner="Preparing the demo data set…")
def _demo_folder(name: str, home: str) -> str:
    from tlcore.data.demos import demo_dir

    return str(demo_dir(name))


def demo_folder(name: str) -> Path:
    return Path(_demo_folder(name, str(paths.home())))


def kind_label(modality: str, task: Optional[str]) -> str:
    """The kind of a data set in a picker: its modality, and what it is for unless that goes without saying (the
    fallback task's data: "text"; token-tagged text: "text, named entities")."""
    spec = spec_of(task)
    return f"{modality}, {spec.noun}" if spec.detected else modality


def all_choices(task: Optional[str] = None) -> list[tuple[str, str]]:
    """(reference, label) for every usable data set (of ``task`` when given): demos first, then uploads (newest first)."""
    out = [(f"demo:{d['name']}", f"demo · {d['name']} ({kind_label(d['modality'], d.get('task'))})")
           for d in demo_specs() if not d["unavailable"] and task in (None, d.get("task") or DEFAULT_TASK)]
    me = current_user()
    out += [(c.ref, f"upload · {c.name} ({kind_label(c.modality, c.task)})"
             + (f" · {c.owner}" if c.owner and c.owner != me else "")) for c in upload_sets() if task in (None, c.task)]
    return out


def data_picker(key: str, label: str = "Data set", task: Optional[str] = None) -> Optional[DataChoice]:
    """A selectbox over all data sets (of ``task`` when given), following and setting ``?data=``."""
    choices = all_choices(task)
    if not choices:
        what = "" if task is None else f" for {get_task(task).description}"
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
def _load(path: str, modality: str, mtime: float, owner: Optional[str] = None) -> dict:
    from tlcore.data.loaders import load_dataset
    from tlcore.paths import owner_scope

    with owner_scope(owner):   # a .zip is unpacked into its owner's own cache folder
        ds = load_dataset(path, modality, on_error="skip")
    return {"items": ds.items, "labels": ds.labels, "names": ds.names, "problems": [(p.where, p.reason) for p in ds.problems],
            "origin": ds.origin}


def load(path: str, modality: str) -> Dataset:
    """Load and validate one split (cached by path and modification time). Raises DataError."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p.name} no longer exists; upload it again")
    d = _load(str(p), modality, p.stat().st_mtime, current_user())
    from tlcore.data.dataset import Problem

    return Dataset(modality, list(d["items"]), None if d["labels"] is None else list(d["labels"]), origin=d["origin"],
                   problems=[Problem(w, r) for w, r in d["problems"]], names=list(d["names"]))


@st.cache_data(show_spinner="Checking the data…", max_entries=32)
def _load_task(path: str, task: str, mtime: float, owner: Optional[str] = None):
    from tlcore.paths import owner_scope

    with owner_scope(owner):
        return get_task(task).part("formats").load(path, on_bad_file="skip")


def load_task(path: str, task: str):
    """Load and validate one split in the task's own data format (its ``formats.load``: tagged sentences,
    transcribed clips...); the fallback task's data (classification) is loaded with :func:`load`. Raises DataError."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p.name} no longer exists; upload it again")
    return _load_task(str(p), task, p.stat().st_mtime, current_user())


def load_split(path: str, modality: str, task: Optional[str]):
    """One split of a data set of ``task``: in the task's own format when it has one (:func:`load_task`), else as a
    classification :class:`Dataset` (:func:`load`). Raises DataError."""
    spec = spec_of(task)
    return load_task(path, spec.name) if spec.detected else load(path, modality)
