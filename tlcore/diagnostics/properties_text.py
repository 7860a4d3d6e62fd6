"""Per-text properties, vocabulary overlap and the words that best separate two corpora."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Words are runs of letters/digits/underscore, optionally joined by apostrophes ("don't" is one word).
WORD_RE = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` (the tokenisation used by every function in this module)."""
    return [w.lower() for w in WORD_RE.findall(text)]


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def _token_ids(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Token ids per text from a Hugging Face tokenizer, without special tokens when it supports that."""
    try:
        encoded = tokenizer(texts, add_special_tokens=False)
    except TypeError:
        encoded = tokenizer(texts)
    return [list(ids) for ids in encoded["input_ids"]]


def text_properties(texts: Sequence[str], tokenizer: Any = None) -> dict[str, np.ndarray]:
    """Measure simple properties of each text; one float array of length n per property.

    Properties:
      * ``characters`` = len(text); ``words`` = number of word tokens (regex ``\\w+('\\w+)*``);
      * ``non_ascii_share`` = characters with code point > 127 / characters;
      * ``digit_share`` = digit characters / characters;
      * ``uppercase_share`` = uppercase letters / letters (0 for texts without letters);
      * with a Hugging Face ``tokenizer`` (ids from ``tokenizer(texts, add_special_tokens=False)``, or
        ``tokenizer(texts)`` if that keyword is not accepted): ``tokens``, ``tokens_per_word`` =
        tokens / max(words, 1) (high values: the vocabulary fits the text badly, cf. "fertility",
        Rust et al. 2021) and ``unk_rate`` = share of ids equal to ``tokenizer.unk_token_id``.
    Shapes: texts (n,) -> {name: (n,)}.
    """
    texts = [str(t) for t in texts]
    props: dict[str, list[float]] = {
        "characters": [], "words": [], "non_ascii_share": [], "digit_share": [], "uppercase_share": [],
    }
    n_words: list[int] = []
    for text in texts:
        n_chars = len(text)
        letters = sum(ch.isalpha() for ch in text)
        n_words.append(len(WORD_RE.findall(text)))
        props["characters"].append(float(n_chars))
        props["words"].append(float(n_words[-1]))
        props["non_ascii_share"].append(_share(sum(ord(ch) > 127 for ch in text), n_chars))
        props["digit_share"].append(_share(sum(ch.isdigit() for ch in text), n_chars))
        props["uppercase_share"].append(_share(sum(ch.isupper() for ch in text), letters))
    if tokenizer is not None:
        ids = _token_ids(tokenizer, texts)
        unk = getattr(tokenizer, "unk_token_id", None)
        props["tokens"] = [float(len(x)) for x in ids]
        props["tokens_per_word"] = [len(x) / max(w, 1) for x, w in zip(ids, n_words, strict=True)]
        props["unk_rate"] = [_share(sum(i == unk for i in x), len(x)) if unk is not None else 0.0 for x in ids]
    return {k: np.asarray(v, dtype=np.float64) for k, v in props.items()}


def vocabulary_overlap(texts_a: Sequence[str], texts_b: Sequence[str]) -> dict[str, float]:
    """How much of B's vocabulary A already covers.

    With V_a, V_b the sets of lower-cased word types and c_b(w) the token counts in B:
      * ``jaccard`` = |V_a ∩ V_b| / |V_a ∪ V_b|;
      * ``oov_rate_b_given_a`` = Σ_{w ∉ V_a} c_b(w) / Σ_w c_b(w) (share of B's running words unseen in A);
      * ``oov_type_rate_b_given_a`` = |V_b \\ V_a| / |V_b|; ``vocab_a`` = |V_a|; ``vocab_b`` = |V_b|.
    """
    count_a = Counter(w for t in texts_a for w in words(str(t)))
    count_b = Counter(w for t in texts_b for w in words(str(t)))
    va, vb = set(count_a), set(count_b)
    union = va | vb
    tokens_b = sum(count_b.values())
    return {
        "jaccard": _share(len(va & vb), len(union)),
        "oov_rate_b_given_a": _share(sum(c for w, c in count_b.items() if w not in va), tokens_b),
        "oov_type_rate_b_given_a": _share(len(vb - va), len(vb)),
        "vocab_a": float(len(va)),
        "vocab_b": float(len(vb)),
    }


def separating_words(
    texts_a: Sequence[str], texts_b: Sequence[str], k: int = 15, *, prior_scale: float = 1.0
) -> list[tuple[str, float, int, int]]:
    """The ``k`` words whose frequency differs most between corpus A and corpus B.

    Paper: Monroe, Colaresi & Quinn (2008), "Fightin' Words: Lexical Feature Selection and Evaluation for
    Identifying the Content of Political Conflict", Political Analysis 16 (Eq. 16, 22) — log-odds ratio
    with an informative Dirichlet prior.

    Formula, with y_w^a, y_w^b word counts, n_a, n_b corpus sizes, and the prior taken from the pooled
    corpus: α_w = prior_scale · (y_w^a + y_w^b), α_0 = Σ_w α_w;
        δ_w = log[(y_w^a + α_w) / (n_a + α_0 − y_w^a − α_w)] − log[(y_w^b + α_w) / (n_b + α_0 − y_w^b − α_w)]
        σ²(δ_w) ≈ 1/(y_w^a + α_w) + 1/(y_w^b + α_w),   z_w = δ_w / σ(δ_w).
    Returns [(word, z_w, count_a, count_b)] for the k largest |z_w|; z > 0 means typical of A, z < 0
    typical of B. Ties are broken alphabetically, so the output is deterministic.
    """
    count_a = Counter(w for t in texts_a for w in words(str(t)))
    count_b = Counter(w for t in texts_b for w in words(str(t)))
    n_a, n_b = sum(count_a.values()), sum(count_b.values())
    if n_a == 0 or n_b == 0:
        return []
    vocab = sorted(set(count_a) | set(count_b))
    if len(vocab) < 2:  # one word type: nothing can separate the corpora (and the odds are undefined)
        return []
    alpha_0 = prior_scale * (n_a + n_b)
    scored: list[tuple[str, float, int, int]] = []
    for w in vocab:
        ya, yb = count_a[w], count_b[w]
        aw = prior_scale * (ya + yb)
        delta = math.log((ya + aw) / (n_a + alpha_0 - ya - aw)) - math.log((yb + aw) / (n_b + alpha_0 - yb - aw))
        var = 1.0 / (ya + aw) + 1.0 / (yb + aw)
        scored.append((w, delta / math.sqrt(var), int(ya), int(yb)))
    scored.sort(key=lambda row: (-abs(row[1]), row[0]))
    return scored[:k]
