"""Try it: a finished run's before and after models on new inputs, through ``tlcore.load_run`` only.

The page reads widgets and renders; what it shows is built here: which runs qualify, the two predictions
(``LoadedRun.predict`` with ``model="before"`` and ``"after"``), honest score labels, and the HTML for entity
spans and transcript differences (pure string building, escaped, tested without a browser).
"""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any, Optional, Sequence

import streamlit as st

from tlcore.errors import TransferLabError
from tlcore.tasks import TaskSpec, task_of

SCORE_LABELS = {"probability": "probability", "cosine": "similarity to the class mean"}
SCORE_HELP = {
    "probability": "softmax probability of the model's classifier head",
    "cosine": "cosine similarity between the input's pretrained features and each class's mean feature "
              "(from −1 to 1; not a probability)",
}
MAX_SENTENCES = 20


# ---------------------------------------------------------------- runs and predictions

def usable(run_dir: Path) -> bool:
    """A finished run folder Try it can load: a report and a saved model."""
    return (run_dir / "report.json").is_file() and (run_dir / "model" / "config.json").is_file()


@st.cache_resource(show_spinner="Loading the run…", max_entries=4)
def _loaded(path: str, mtime: float):
    from tlcore import load_run

    return load_run(path)


def loaded_run(run_dir: Path):
    """``tlcore.load_run`` of a run folder, kept per server (its models load on first use, once)."""
    return _loaded(str(run_dir), (run_dir / "report.json").stat().st_mtime)


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _run_lock(path: Path) -> threading.Lock:
    """One lock per run folder: its cached models are shared by every session of this server, and Whisper's encoder
    window is set per call, so two sessions must not predict with the same run at once."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(path), threading.Lock())


@dataclass
class Comparison:
    """Both models on the same inputs. ``before`` is None when the run has no before model (``before_note`` says why)."""

    after: list[dict]
    before: Optional[list[dict]] = None
    before_note: str = ""
    kinds: dict = field(default_factory=dict)


def compare(run, inputs: Sequence[Any]) -> Comparison:
    """``run.predict(inputs, model="after")`` and ``model="before"``. Errors from the after model propagate (the
    input is unusable); a missing before model (older runs) becomes ``before_note``."""
    with _run_lock(run.path):
        after = run.predict(list(inputs), model="after")
        try:
            before = run.predict(list(inputs), model="before")
        except TransferLabError as exc:
            return Comparison(after, None, str(exc))
    return Comparison(after, before)


def run_spec(run) -> TaskSpec:
    """The spec of a loaded run's task (``LoadedRun.task``; the report's, else read from the saved model)."""
    return task_of({"task": run.task})


def before_description(report: dict) -> str:
    """What the run's report says its before model is (e.g. "nearest class mean of the pretrained features …"); for
    an older report that does not say, what it is for its task: a task with a pretrained model of its own (a
    speech recognizer) scores that model as it is."""
    kind = (report.get("before") or {}).get("kind")
    if kind:
        return kind
    spec = task_of(report)
    if spec.backbones:
        family = spec.backbones[0][1].split(" ", 1)[0]   # "Whisper tiny.en (bundled, offline), ..." -> "Whisper"
        return f"the pretrained {family} as it is"
    return "the model before transfer"


def after_description(report: dict) -> str:
    strategy = report.get("strategy") or ""
    return f"the run's model after transfer ({strategy})" if strategy else "the run's model after transfer"


def run_caption(run) -> str:
    """One line: task · modality · backbone · strategy · what it predicts."""
    report = run.report
    data = report.get("data") or {}
    spec = run_spec(run)
    parts = [spec.noun, run.modality or "", str(report.get("backbone") or ""), str(report.get("strategy") or "")]
    if spec.labels_key:
        parts.append(f"{spec.label_noun}: " + ", ".join(data.get(spec.labels_key) or []))
    return " · ".join(p for p in parts if p)


def prediction_kind(row: dict) -> str:
    """How a prediction row is shown, by what it holds: "entities" (a tagger's spans over tokens), "transcript"
    (text heard in a clip) or "scores" (a class with the top-k scores)."""
    if "spans" in row:
        return "entities"
    if "transcript" in row:
        return "transcript"
    return "scores"


# ---------------------------------------------------------------- inputs

def sentences(text: str) -> list[str]:
    """The sentences to tag: one per non-empty line (at most MAX_SENTENCES)."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()][:MAX_SENTENCES]


def pick_audio(recorded: Any, uploaded: Any) -> Any:
    """The clip to use: a fresh recording wins over an uploaded file; None when there is neither."""
    return recorded if recorded is not None else uploaded


def upload_name(source: Any, default: str = "recording.wav") -> str:
    """An uploaded or recorded file's name (a recording may have none)."""
    return getattr(source, "name", None) or default


# ---------------------------------------------------------------- classification

def score_label(kind: str) -> str:
    """How to call a score column: 'probability' or 'similarity to the class mean' (never a cosine as probability)."""
    return SCORE_LABELS.get(kind, kind)


def score_bars(top: Sequence[Sequence], kind: str, color: str):
    """Top-k bars; cosine scores on their own axis (−1..1, two decimals) instead of the probability axis."""
    from tlcore import plots

    fig = plots.top_k_bars([(c, float(s)) for c, s in top], color=color)
    if kind == "cosine":
        fig.update_traces(text=[f"{float(s):.2f}" for _, s in list(top)[::-1]])
        fig.update_xaxes(range=[max(-1.0, min(0.0, min(float(s) for _, s in top))), 1], tickformat=".1f",
                         title="similarity to the class mean (cosine)")
    return fig


# ---------------------------------------------------------------- NER

def spans_to_tags(n_tokens: int, spans: Sequence[dict]) -> list[str]:
    """BIO tags for ``n_tokens`` tokens from ``[{"type", "start", "end"}, ...]`` (end exclusive)."""
    tags = ["O"] * n_tokens
    for s in spans:
        start, end = int(s["start"]), min(int(s["end"]), n_tokens)
        for i in range(start, end):
            tags[i] = ("B-" if i == start else "I-") + str(s["type"])
    return tags


def entities_html(row: dict) -> str:
    """One tagged sentence (an NER prediction row) with its entity spans highlighted, as HTML."""
    from ui.spans import tagged_html

    tokens = row.get("tokens") or []
    if not tokens:
        return '<div style="color:#777">(empty)</div>'
    body = tagged_html(tokens, spans_to_tags(len(tokens), row.get("spans") or []))
    if not row.get("spans"):
        body += ' <span style="color:#777;font-size:0.85em">(no entities)</span>'
    return f'<div style="line-height:1.9">{body}</div>'


#: What the number beside a found span means (a tagger's spans carry a confidence since issue 19).
SPAN_CONFIDENCE_NOTE = ("The number beside ✓ is the span's confidence: the probability of its least confident word's "
                        "tag (after: calibrated by the run's temperature when one was fitted).")


def spans_have_confidence(rows: Sequence[dict]) -> bool:
    """Do these NER prediction rows' spans carry a confidence (runs' models since issue 19 do)?"""
    return any(s.get("confidence") is not None for row in rows for s in row.get("spans") or [])


def spans_table(before: Optional[Sequence[dict]], after: Sequence[dict]) -> dict[str, list]:
    """One row per entity span found by either model: sentence, text, type, and whether before / after found it
    (``✓``, with the span's confidence when the prediction carries one)."""
    rows: dict[tuple, dict] = {}
    for which, preds in (("before", before or []), ("after", after)):
        for n, row in enumerate(preds, 1):
            for s in row.get("spans") or []:
                key = (n, s["start"], s["end"], s["type"])
                found = "✓" if s.get("confidence") is None else f"✓ {float(s['confidence']):.2f}"
                rows.setdefault(key, {"sentence": n, "entity": s.get("text", ""), "type": s["type"],
                                      "before": "—", "after": "—"})[which] = found
    ordered = [rows[k] for k in sorted(rows)]
    columns = ["sentence", "entity", "type"] + (["before"] if before is not None else []) + ["after"]
    return {c: [r[c] for r in ordered] for c in columns}


# ---------------------------------------------------------------- ASR

def transcript_diff_html(before: str, after: str) -> tuple[str, str]:
    """The two transcripts as HTML, words that differ marked: removed ones red in ``before``, new ones green in
    ``after``. An empty transcript reads "(nothing recognized)"."""
    a, b = (before or "").split(), (after or "").split()
    left: list[str] = []
    right: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        old, new = escape(" ".join(a[i1:i2])), escape(" ".join(b[j1:j2]))
        if op == "equal":
            left.append(old)
            right.append(new)
            continue
        if old:
            left.append(f'<span style="background:#fbe3e6;text-decoration:line-through;border-radius:3px;'
                        f'padding:0 2px">{old}</span>')
        if new:
            right.append(f'<span style="background:#d7f0e8;border-radius:3px;padding:0 2px">{new}</span>')

    def box(words: list[str]) -> str:
        text = " ".join(words) if words else '<span style="color:#777">(nothing recognized)</span>'
        return (f'<div style="border:1px solid #e6e9ef;border-radius:8px;padding:8px 12px;font-size:1.1em;'
                f'line-height:1.7">{text}</div>')

    return box(left), box(right)
