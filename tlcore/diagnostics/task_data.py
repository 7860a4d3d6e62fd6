"""Which task a diagnose / rank data set is for (classify, ner, asr), and loading it with errors that say what
is wrong and how to fix it.

    detect_task("demo/source", "text")            # "ner" for token-tagged text, else "classify"
    resolve_task(None, "audio", "src", "tgt")      # both sets detected; a mix of kinds is refused

Detection reads only file names and the first row of a table: a text set is token-tagged (NER) when its file is
CoNLL text (``.conll`` / ``.txt``) or a ``.jsonl`` whose first object has a ``tokens`` list; an audio set is for
speech recognition (ASR) when its table (``metadata.csv``) has a transcription column next to the file column.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Optional, Sequence

from tlcore.data.loaders import TEXT_EXT, resolve_data_path
from tlcore.errors import ConfigError, DataError

TASKS = ("classify", "ner", "asr")
TASK_MODALITY = {"ner": "text", "asr": "audio"}
TASK_NAMES = {"classify": "classification", "ner": "named-entity recognition (NER)", "asr": "speech recognition (ASR)"}
KIND_HINT = {
    "classify": "items with class labels (a text/label table, or label folders)",
    "ner": "token-tagged sentences (.jsonl with tokens + tags, or CoNLL text)",
    "asr": "audio clips with a metadata.csv of file_name,transcription",
}
NER_ONLY_EXT = {".conll", ".txt"}


def _first_json_row(path: Path) -> Optional[dict]:
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for line in f:
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError:
                    return None
                return row if isinstance(row, dict) else None
    return None


def _is_token_tagged(path: Path) -> bool:
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    tables = [p for p in files if p.suffix.lower() in TEXT_EXT | NER_ONLY_EXT]
    if any(p.suffix.lower() in (".csv", ".tsv") for p in tables):
        return False  # a text/label table: classification (the classification loader reads it)
    jsonl = [p for p in tables if p.suffix.lower() == ".jsonl"]
    if jsonl:
        row = _first_json_row(jsonl[0])
        return bool(row) and "tokens" in row and "text" not in row
    return any(p.suffix.lower() in NER_ONLY_EXT for p in tables)


def _has_transcripts(path: Path) -> bool:
    from tlcore.tasks.asr.data import FILE_COLUMNS, TEXT_COLUMNS

    if path.is_file():
        table = path if path.suffix.lower() == ".csv" else None
    elif (path / "metadata.csv").is_file():
        table = path / "metadata.csv"
    else:
        tables = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
        table = tables[0] if len(tables) == 1 else None
    if table is None:
        return False
    with open(table, encoding="utf-8-sig", errors="replace") as f:
        header = next(csv.reader(io.StringIO(f.readline())), [])
    columns = {c.strip().lower() for c in header}
    return bool(columns & set(TEXT_COLUMNS)) and bool(columns & set(FILE_COLUMNS))


def detect_task(path: str | Path, modality: str) -> str:
    """``"ner"`` for a token-tagged text set, ``"asr"`` for an audio set with a transcription table, else
    ``"classify"`` (see the module docstring). Raises DataError for a missing path."""
    resolved = resolve_data_path(path)
    if modality == "text" and _is_token_tagged(resolved):
        return "ner"
    if modality == "audio" and _has_transcripts(resolved):
        return "asr"
    return "classify"


def check_task(task: str, modality: str) -> None:
    """ConfigError for an unknown task or one that does not fit the modality."""
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    wanted = TASK_MODALITY.get(task)
    if wanted and modality != wanted:
        raise ConfigError(f"task {task!r} ({TASK_NAMES[task]}) needs modality {wanted!r}, not {modality!r}")


def resolve_task(task: Optional[str], modality: str, *paths: tuple[str, str]) -> str:
    """The task to run: ``task`` when given (checked against the modality), else the one detected from every
    ``(role, path)`` in ``paths``; sets of different kinds raise one DataError naming both."""
    if task is not None:
        check_task(task, modality)
        return task
    found = [(role, path, detect_task(path, modality)) for role, path in paths]
    kinds = {k for _, _, k in found}
    if len(kinds) > 1:
        (r1, p1, k1), (r2, p2, k2) = found[0], next(f for f in found if f[2] != found[0][2])
        raise DataError(
            f"the {r1} set ({Path(p1).name}) is {TASK_NAMES[k1]} data but the {r2} set ({Path(p2).name}) is "
            f"{TASK_NAMES[k2]} data; both must be the same kind: give two sets of {KIND_HINT[k1]}, "
            f"or two sets of {KIND_HINT[k2]}")
    return found[0][2] if found else "classify"


def require_items(n: int, role: str, unit: str, minimum: int = 2) -> None:
    """DataError when a set is too small to compare distributions or compute an interval."""
    if n < minimum:
        raise DataError(f"the {role} set has too few {unit} ({n}); at least {minimum} are needed to compare "
                        f"distributions and compute intervals: add more {unit}")


def load_ner_set(path: str, role: str, *, require_tags: bool = False):
    """``NerData`` of one set; a tagged set without a single entity is refused (nothing to compare or score)."""
    from tlcore.tasks.ner.data import load_ner

    try:
        data = load_ner(path, require_tags=require_tags)
    except DataError as exc:
        raise DataError(f"{role} data: {exc}") from None
    if data.tags is not None and not data.entity_counts():
        raise DataError(f"{role} data ({Path(data.origin).name}): no entities, every one of the {len(data)} sentences "
                        "is tagged O only; tag the entities with BIO tags (B-TYPE on the first word, I-TYPE on the "
                        "rest), or remove the 'tags' to use the sentences as untagged text")
    require_items(len(data), role, "sentences")
    return data


def load_asr_set(path: str, role: str):
    """``AsrData`` of one set (unusable rows are skipped and listed in ``problems``)."""
    from tlcore.tasks.asr.data import load_asr_dataset

    try:
        data = load_asr_dataset(path, on_bad_file="skip")
    except DataError as exc:
        raise DataError(f"{role} data: {exc}") from None
    require_items(len(data), role, "transcribed clips")
    return data


def joined_sentences(sentences: Sequence[Sequence[str]]) -> list[str]:
    """Each sentence's words joined by single spaces: the text a sentence encoder embeds."""
    return [" ".join(words) for words in sentences]
