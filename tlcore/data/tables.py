"""Reading user tables (CSV / TSV / JSONL) defensively: encodings, NUL bytes, huge fields and broken quoting end
in a DataError that names the line and says how to fix it, never in a traceback or silently lost rows.

Limits: one CSV field may hold up to ``MAX_FIELD_BYTES`` (16 MiB) - Python's default of 128 KiB refused ordinary
long documents. A text file is decoded as UTF-8 (with or without BOM), or UTF-16 / UTF-32 when it starts with a
BOM; anything else (Latin-1, UTF-16 without BOM, NUL bytes) is refused with the line of the first bad byte. JSON
lines are standard JSON: a repeated key, NaN / Infinity and an escaped half character (a lone surrogate) are refused.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path
from typing import Iterator

from tlcore.errors import DataError

MAX_FIELD_BYTES = 16 * 1024**2
_BOMS = [(codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")]


def read_text(path: Path) -> str:
    """The file's text (UTF-8, or UTF-16/32 with a BOM); a DataError naming the encoding problem and its line."""
    raw = path.read_bytes()
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), "utf-8")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        label = {"utf-8": "UTF-8", "utf-16": "UTF-16", "utf-32": "UTF-32"}[encoding]
        hint = (f"byte 0x{raw[exc.start]:02x} looks like Latin-1 / Windows-1252" if encoding == "utf-8"
                else "the text after its byte-order mark is damaged")
        raise DataError(f"{path.name} is not {label} text (bad byte at line {line}); {hint}; re-save it as "
                        "UTF-8") from None
    if "\0" in text:
        line = text[: text.index("\0")].count("\n") + 1
        why = " (UTF-16 without a byte-order mark?)" if encoding == "utf-8" and raw.count(b"\0") * 3 > len(raw) else ""
        raise DataError(f"{path.name} holds NUL bytes (first at line {line}){why}: not a text file; re-save it as "
                        "UTF-8 text")
    return text


class _RepeatedKey(Exception):
    pass


class _NotJson(Exception):
    pass


def _no_constant(name: str) -> None:
    raise _NotJson(name)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise _RepeatedKey(key)
        seen[key] = value
    return seen


def read_jsonl(text: str, name: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) per non-blank line."""
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise DataError(f"{name} line {n}: not valid JSON ({exc.msg}); each line must be one JSON object") from None
        except _RepeatedKey as exc:
            # json keeps the last of repeated keys: a row labelled both "pos" and "neg" would train as "neg"
            raise DataError(f"{name} line {n}: the key {exc.args[0]!r} appears twice in one object; keep one") from None
        except _NotJson as exc:
            # Python's json reads NaN / Infinity, which JSON has not: a label NaN would train as the class "nan"
            raise DataError(f"{name} line {n}: {exc.args[0]} is not a JSON value; write it as a string or leave the "
                            "key out") from None
        if not isinstance(row, dict):
            raise DataError(f"{name} line {n}: expected a JSON object like {{\"text\": ..., \"label\": ...}}")
        if "\\u" in line:
            _check_whole_characters(row, name, n)
        yield n, row


def _check_whole_characters(row: dict, name: str, n: int) -> None:
    """Refuse a \\uD83D-style escape of half a character (a lone surrogate): the text is damaged, and every later
    step that encodes it (the tokenizer, the cache key, the report) would fail on it."""
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        half = f"\\u{ord(exc.object[exc.start]):04X}"
        raise DataError(f"{name} line {n}: the escape {half} is half of a character (a lone surrogate): the text is "
                        "damaged; fix or remove the line") from None


def read_csv(text: str, name: str, delimiter: str = ",") -> tuple[list[str], list[tuple[int, dict]]]:
    """(columns, [(line number, row)]) of a CSV/TSV text with a header line.

    A row whose quotes swallow the lines after it is refused, naming the line where the quote opened: either the
    row spans several lines and has the wrong number of fields, or the lines it swallowed each look like rows
    of the table themselves. So are a column named twice in the header and a row that repeats the header (tables
    pasted together): each would change what is read without a word.
    """
    if csv.field_size_limit() < MAX_FIELD_BYTES:
        csv.field_size_limit(MAX_FIELD_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    shown = "tab" if delimiter == "\t" else repr(delimiter)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise DataError(f"{name} is empty; it needs a header line (e.g. text,label) and one row per example")
        columns = [h.strip() for h in header]
        twice = next((c for i, c in enumerate(columns) if c and c in columns[:i]), None)
        if twice:       # a row is a dict by column: the first of the two values would be lost without a word
            raise DataError(f"{name}: the column {twice!r} appears twice in the header line; keep one")
        rows: list[tuple[int, dict]] = []
        last = reader.line_num
        for fields in reader:
            start, last = last + 1, reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip() and start == last):
                continue
            if last > start and _swallowed(fields, columns, delimiter):
                raise DataError(f"{name} line {start}: a quote (\") opened on this line is not closed where the row "
                                f"ends, so lines {start}-{last} were read as one row; close or remove the quote "
                                "(a quote inside a field is written as two quotes \"\")")
            if [f.strip() for f in fields] == columns:
                raise DataError(f"{name} line {start} repeats the header line ({delimiter.join(columns)}): tables "
                                "pasted together? Remove the line, or it is read as a row of the table")
            if len(fields) > len(columns) and any(f.strip() for f in fields[len(columns):]):
                raise DataError(f"{name} line {start}: {len(fields)} fields but the header has {len(columns)}; quote "
                                f"fields that contain the separator ({shown})")
            rows.append((start, {c: (fields[i] if i < len(fields) else None) for i, c in enumerate(columns)}))
    except csv.Error as exc:
        raise DataError(f"{name} line {reader.line_num}: cannot parse the table ({exc}); check its quoting") from None
    return columns, rows


def _swallowed(fields: list[str], columns: list[str], delimiter: str) -> bool:
    if len(fields) != len(columns):
        return True
    for f in fields:
        inner = f.split("\n")[1:]
        if len(inner) >= 2 and all(line.count(delimiter) >= len(columns) - 1 for line in inner if line.strip()):
            return True
    return False
