"""HTML for NER sentences: entity spans as colored marks, predicted spans outlined green (matches gold) or red.

Pure string building (escaped), so it is tested without a browser.
"""

from __future__ import annotations

from html import escape
from typing import Sequence

from tlcore.tasks.ner.metrics import extract_spans

TYPE_COLORS = ("#dbe7fb", "#fde2c4", "#d7f0e8", "#eadcf5", "#fbe3e6", "#eef3d2")
FIXED_COLORS = {"PER": TYPE_COLORS[0], "ORG": TYPE_COLORS[1], "LOC": TYPE_COLORS[2], "MISC": TYPE_COLORS[3]}


def type_color(kind: str) -> str:
    return FIXED_COLORS.get(kind) or TYPE_COLORS[sum(map(ord, kind)) % len(TYPE_COLORS)]


def _mark(words: Sequence[str], kind: str, outline: str) -> str:
    return (f'<mark style="background:{type_color(kind)};{outline}border-radius:4px;padding:1px 4px;margin:0 1px">'
            f'{escape(" ".join(words))} <sub style="font-size:0.7em;color:#555">{escape(kind)}</sub></mark>')


def tagged_html(tokens: Sequence[str], tags: Sequence[str], gold: Sequence[str] | None = None) -> str:
    """One sentence with its spans marked. With ``gold``, each span gets a green outline when the same span
    (type and boundaries) is in gold, else a red dashed one."""
    spans = extract_spans(tags)
    gold_spans = set(extract_spans(gold)) if gold is not None else None
    starts = {s: (k, e) for k, s, e in spans}
    out, i = [], 0
    while i < len(tokens):
        if i in starts:
            kind, end = starts[i]
            outline = ""
            if gold_spans is not None:
                outline = ("outline:2px solid #2a9d8f;" if (kind, i, end) in gold_spans
                           else "outline:2px dashed #d1495b;")
            out.append(_mark(tokens[i:end], kind, outline))
            i = end
        else:
            out.append(escape(str(tokens[i])))
            i += 1
    return " ".join(out)


def sentence_html(row: dict) -> str:
    """A flipped sentence (``tokens``, ``gold``, ``before``, ``after``) as three labeled lines."""
    tokens, gold = row.get("tokens") or [], row.get("gold") or []
    gain = row.get("gain", 0)
    badge = (f'<span style="color:#2a9d8f">+{gain} correct</span>' if gain > 0 else
             f'<span style="color:#d1495b">{gain} correct</span>' if gain < 0 else '<span style="color:#777">±0</span>')
    lines = [("gold", tagged_html(tokens, gold))]
    for phase in ("before", "after"):
        if row.get(phase) is not None:
            lines.append((phase, tagged_html(tokens, row[phase], gold)))
    body = "".join(f'<div style="margin:2px 0"><span style="display:inline-block;width:4.5em;color:#666;'
                    f'font-size:0.85em">{name}</span>{html}</div>' for name, html in lines)
    return (f'<div style="border:1px solid #e6e9ef;border-radius:8px;padding:8px 12px;margin:6px 0;line-height:1.9">'
            f'<div style="font-size:0.8em;float:right">{badge}</div>{body}</div>')


def legend_html(types: Sequence[str]) -> str:
    marks = " ".join(_mark([t], t, "") for t in types)
    return (f'<div style="font-size:0.85em;line-height:2">Entity types: {marks} · predicted span '
            '<span style="outline:2px solid #2a9d8f;padding:0 4px">matches gold</span> · '
            '<span style="outline:2px dashed #d1495b;padding:0 4px">does not</span></div>')
