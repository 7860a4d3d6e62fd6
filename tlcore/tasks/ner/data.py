"""Token-classification data: loading ``.jsonl`` (``tokens`` + ``tags`` lists) or CoNLL-style text, validating
BIO tags, and aligning word-level tags to sub-word tokens.

    data = load_ner("corpus/")            # a folder holding exactly one .jsonl / .conll / .txt file, or the file
    data.sentences[0], data.tags[0]       # ["Angela", "Weber", ...], ["B-PER", "I-PER", ...]

CoNLL: one ``token ... tag`` per line (token = first column, tag = last column), a blank line between
sentences, ``-DOCSTART-`` lines skipped. One column per line everywhere = unlabeled tokens.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from tlcore.data.confine import check_folder_links
from tlcore.data.loaders import read_utf8
from tlcore.errors import DataError

NER_EXTS = (".jsonl", ".conll", ".txt")
IGNORE = -100          # label of sub-tokens after the first, and of special tokens (ignored by cross-entropy)
_TAG = re.compile(r"^(O|[BI]-\S+)$")


@dataclass
class NerData:
    """Sentences of words; ``tags`` (same shape) is None for unlabeled data; ``lines[i]`` = where sentence i starts."""

    sentences: list[list[str]]
    tags: Optional[list[list[str]]] = None
    origin: str = ""
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def labeled(self) -> bool:
        return self.tags is not None

    def subset(self, idx: Sequence[int]) -> "NerData":
        return NerData([self.sentences[i] for i in idx], [self.tags[i] for i in idx] if self.tags is not None else None,
                       self.origin, [self.lines[i] for i in idx] if self.lines else [])

    def entity_types(self) -> list[str]:
        return sorted({t[2:] for seq in self.tags or [] for t in seq if t != "O"})

    def entity_counts(self) -> dict[str, int]:
        """Entities per type (conlleval spans)."""
        from tlcore.tasks.ner.metrics import extract_spans

        return dict(sorted(Counter(s[0] for seq in self.tags or [] for s in extract_spans(seq)).items()))

    def content_hash(self) -> str:
        h = hashlib.sha256(b"ner")
        for i, words in enumerate(self.sentences):
            h.update(json.dumps([words, self.tags[i] if self.tags else None]).encode("utf-8"))
        return h.hexdigest()[:16]


def is_tag(tag: str) -> bool:
    """``O``, ``B-TYPE`` or ``I-TYPE``."""
    return bool(_TAG.match(tag))


def tag_vocabulary(entity_types: Sequence[str]) -> list[str]:
    """``["O", "B-T1", "I-T1", "B-T2", ...]`` for sorted entity types: the head's output order."""
    return ["O"] + [f"{p}-{t}" for t in sorted(set(entity_types)) for p in ("B", "I")]


# ---------------------------------------------------------------- loading

def find_ner_file(path: str | Path) -> Path:
    """The one token-classification file in ``path`` (a file, a folder or a .zip of a folder)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if path.is_file() and path.suffix.lower() == ".zip":
        from tlcore.data.archive import extract_zip

        path = extract_zip(path)
    if path.is_file():
        if path.suffix.lower() not in NER_EXTS:
            raise DataError(f"{path.name}: unsupported file type {path.suffix!r} for NER; use .jsonl (tokens + tags) "
                            "or CoNLL text (.conll / .txt)")
        return path
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in NER_EXTS)
    check_folder_links(path, files)        # a linked file must not lead outside the data set folder
    if len(files) != 1:
        found = ", ".join(p.name for p in files) or "none"
        raise DataError(f"{path}: expected exactly one .jsonl / .conll / .txt file with NER data in the folder, found {found}")
    return files[0]


def load_ner(path: str | Path, *, require_tags: bool = False) -> NerData:
    """Load and validate NER data; raise DataError naming the line of the first problem."""
    file = find_ner_file(path)
    text = read_utf8(file)
    data = _parse_jsonl(text, file.name) if file.suffix.lower() == ".jsonl" else _parse_conll(text, file.name)
    data.origin = str(file)
    if not data.sentences:
        raise DataError(f"{file.name}: no sentences found; expected "
                        + ("one JSON object per line with 'tokens' and 'tags' lists" if file.suffix.lower() == ".jsonl"
                           else "one 'token tag' pair per line and a blank line between sentences"))
    if require_tags and data.tags is None:
        raise DataError(f"{file.name}: has no tags; labeled NER data needs a tag for every token (BIO: O, B-TYPE, I-TYPE)")
    return data


def _scheme_hint(tag) -> str:
    """A pointer to the conversion when ``tag`` comes from another tagging scheme than BIO."""
    if isinstance(tag, str) and re.match(r"^[SEUL]-\S+$", tag):
        return f" ({tag[0]}- tags come from the BIOES/BILOU scheme: write S-/U- as B-, E-/L- as I-)"
    if isinstance(tag, str) and re.match(r"^[A-Za-z]+$", tag) and tag != "O":
        return f" (a bare type like {tag!r} is the IO scheme: write B-{tag} for an entity's first token, I-{tag} after)"
    return ""


def _check_tags(where: str, words: list[str], tags: list[str]) -> None:
    if len(words) != len(tags):
        raise DataError(f"{where}: {len(words)} tokens but {len(tags)} tags; every token needs exactly one tag")
    for k, tag in enumerate(tags):
        if not isinstance(tag, str) or not is_tag(tag):
            raise DataError(f"{where}: tag {tag!r} of token {k + 1} ({str(words[k])[:40]!r}) is not a BIO tag"
                            f"{_scheme_hint(tag)}; use O, B-TYPE or I-TYPE (e.g. B-PER, I-ORG)")


def _parse_jsonl(text: str, name: str) -> NerData:
    sentences, tags, lines = [], [], []
    has_tags: Optional[bool] = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name} line {n}"
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg}); each line must be one object like "
                            '{"tokens": ["Anna", "lives"], "tags": ["B-PER", "O"]}') from None
        if not isinstance(row, dict) or "tokens" not in row:
            raise DataError(f"{where}: expected an object with a 'tokens' list (and a 'tags' list)")
        words = row["tokens"]
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
            raise DataError(f"{where}: 'tokens' must be a non-empty list of non-empty strings")
        if has_tags is None:
            has_tags = "tags" in row
        if has_tags != ("tags" in row):
            raise DataError(f"{where}: some lines have 'tags' and some do not; tag every sentence or none")
        if has_tags:
            if not isinstance(row["tags"], list):
                raise DataError(f"{where}: 'tags' must be a list of strings")
            _check_tags(where, words, row["tags"])
            tags.append(list(row["tags"]))
        sentences.append([w.strip() for w in words])
        lines.append(n)
    return NerData(sentences, tags if has_tags else None, lines=lines)


def _parse_conll(text: str, name: str) -> NerData:
    sentences: list[list[str]] = []
    tags: list[list[str]] = []
    lines: list[int] = []
    words: list[str] = []
    wtags: list[str] = []
    columns: Optional[int] = None   # 1 = unlabeled tokens, 2 = token ... tag
    start = 0

    def flush() -> None:
        if words:
            sentences.append(list(words))
            tags.append(list(wtags))
            lines.append(start)
        words.clear()
        wtags.clear()

    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            flush()
            continue
        if parts[0] == "-DOCSTART-":
            flush()
            continue
        kind = 1 if len(parts) == 1 else 2
        if columns is None:
            columns = kind
        if kind != columns:
            raise DataError(f"{name} line {n}: expected 'token tag' like the lines before, found {len(parts)} column(s): {line.strip()!r}"
                            if columns == 2 else f"{name} line {n}: a tag appears, but earlier lines had tokens only; "
                            "tag every token or none")
        if not words:
            start = n
        if kind == 2 and not is_tag(parts[-1]):
            raise DataError(f"{name} line {n}: tag {parts[-1]!r} of token {parts[0][:40]!r} (sentence "
                            f"{len(sentences) + 1}) is not a BIO tag{_scheme_hint(parts[-1])}; use O, B-TYPE or I-TYPE "
                            "(e.g. B-PER, I-ORG) in the last column")
        words.append(parts[0])
        wtags.append(parts[-1] if kind == 2 else "O")
    flush()
    return NerData(sentences, tags if columns == 2 else None, lines=lines)


def write_jsonl(path: Path, sentences: Sequence[Sequence[str]], tags: Optional[Sequence[Sequence[str]]] = None) -> None:
    """The .jsonl format: one ``{"tokens": [...], "tags": [...]}`` per line, UTF-8, atomically replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for i, words in enumerate(sentences):
            row = {"tokens": list(words)}
            if tags is not None:
                row["tags"] = list(tags[i])
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------- splits

def eval_split_ner(data: NerData, fraction: float) -> tuple[NerData, NerData, Path]:
    """Hold out ``fraction`` of the sentences for evaluation once (stored by content hash, reused by every run)."""
    import numpy as np

    from tlcore.data.split import stored_split

    if len(data) < 4:
        raise DataError(f"the target set has {len(data)} sentences; give --eval or at least 4 tagged sentences")

    def make() -> tuple[list[int], list[int]]:
        order = np.random.default_rng(0).permutation(len(data))
        n_eval = min(len(data) - 2, max(1, int(round(fraction * len(data)))))
        return sorted(order[n_eval:].tolist()), sorted(order[:n_eval].tolist())

    train_idx, eval_idx, path = stored_split(f"ner-{data.content_hash()}", fraction, make)
    return data.subset(train_idx), data.subset(eval_idx), path


# ---------------------------------------------------------------- sub-word alignment

def align_labels(word_ids: Sequence[Optional[int]], word_tags: Sequence[str], tag2id: dict[str, int]) -> list[int]:
    """Label ids per sub-token: the first sub-token of each word gets its word's tag, every later sub-token of
    the word and every special token (word id None) gets -100 (ignored by the loss and the metrics).

    ``word_ids`` is a fast tokenizer's ``encoding.word_ids()``, e.g. ``[None, 0, 1, 1, None]``.
    """
    out, previous = [], None
    for w in word_ids:
        out.append(IGNORE if w is None or w == previous else tag2id[word_tags[w]])
        previous = w
    return out


@dataclass
class Encoded:
    """Tokenized sentences: sub-token ids and, per sub-token, the index of its word (None: special token)."""

    input_ids: list[list[int]]
    word_ids: list[list[Optional[int]]]
    n_words: list[int]
    truncated: int = 0          # sentences that lost words to the backbone's max_length

    def __len__(self) -> int:
        return len(self.input_ids)

    def first_positions(self, i: int) -> list[int]:
        """Sub-token position of each word's first piece (words cut off by truncation are absent)."""
        out, previous = [], None
        for pos, w in enumerate(self.word_ids[i]):
            if w is not None and w != previous:
                out.append(pos)
            previous = w
        return out


def encode(tokenizer, sentences: Sequence[Sequence[str]], max_length: int) -> Encoded:
    """Tokenize pre-split words with a fast tokenizer (``is_split_into_words``), no padding."""
    if not getattr(tokenizer, "is_fast", False):
        raise DataError("NER needs a fast tokenizer (word_ids()); this backbone's tokenizer is a slow one")
    enc = tokenizer([list(s) for s in sentences], is_split_into_words=True, truncation=True, max_length=max_length)
    word_ids = [enc.word_ids(i) for i in range(len(sentences))]
    truncated = sum(1 for s, w in zip(sentences, word_ids) if len({x for x in w if x is not None}) < len(s))
    return Encoded([list(x) for x in enc["input_ids"]], word_ids, [len(s) for s in sentences], truncated)
