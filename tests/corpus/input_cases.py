"""Bad-input corpus, inputs of kinds the first campaigns missed (issue 21): names, encodings and Unicode
normalisation, duplicates and contradictions.

Odd but valid inputs (``expect="ok"``) run through the CLI with ``--json`` and check the report: every item used,
the class names kept byte for byte, nothing written outside the run folder; a wrong result fails the case. Inputs a
careful user would not want trained as they are end in one clear line (``error``), or the run goes on and says
what it noticed, in the report's warnings and on stderr (``notice``, with ``notice_words`` naming that notice, so a
run's ordinary "no clear gain" warning does not count).
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from corpus import Case
from corpus.data_cases import _check, _csv, _finetune, _png_bytes, _text_rows

_USED = ("skipped", "ignored", "dropped", "left out")     # an ok case must not have lost an item quietly or loudly


# ---------------------------------------------------------------- helpers

def _images(root: Path, classes: dict) -> Path:
    """``classes``: folder name -> file names; every image has its own bytes (no accidental duplicates)."""
    level = 10
    for label, files in classes.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for name in files:
            (root / label / name).write_bytes(_png_bytes(level))
            level += 7
    return root


def _three(*labels: str, ext: str = ".png") -> dict:
    return {label: [f"{i}{ext}" for i in range(3)] for label in labels}


def _report(folder: Path, modality: str, target: Path, *extra) -> dict:
    """Fine-tune through the CLI; the report of a run that must succeed."""
    from tlcore.cli import main

    path = folder / "report.json"
    rc = main([str(a) for a in _finetune(folder, modality, target, *extra, "--json", path)])
    _check(rc == 0, f"a valid input was refused (exit {rc})")
    return json.loads(path.read_text())


def _all_used(folder: Path, modality: str, target: Path, n_items: int, classes=None, *extra):
    """A valid but odd input: every item used, none listed as a problem, the classes named as the user named them."""
    def run():
        data = _report(folder, modality, target, *extra)["data"]
        used = data["train"] + data["val"] + data["eval"]
        _check(used == n_items and not data["problems"], f"{used} of {n_items} items used; problems {data['problems']}")
        if classes is not None:
            _check(data["classes"] == sorted(classes), f"classes {data['classes']!r}, expected {sorted(classes)!r}")
    return run


def _loads(path: Path, n_items: int, classes=None, first=None):
    """Load a table the way every run does and check what came out (rows, class names, the first text)."""
    def run():
        from tlcore.data.loaders import load_dataset

        ds = load_dataset(path, "text")
        _check(len(ds) == n_items and not ds.problems, f"{len(ds)} of {n_items} rows read; problems {ds.problems}")
        if classes is not None:
            _check(ds.classes == sorted(classes), f"classes {ds.classes!r}, expected {sorted(classes)!r}")
        if first is not None:
            _check(ds.items[0] == first, f"first text read as {ds.items[0]!r}, expected {first!r}")
    return run


def _noticed(folder: Path, modality: str, target: Path, words: str, *extra):
    """The run completes and its report's warnings carry the notice (``words``)."""
    def run():
        report = _report(folder, modality, target, *extra)
        texts = [w if isinstance(w, str) else w.get("text", "") for w in report["warnings"]]
        _check(any(words in t for t in texts), f"no {words!r} among the report's warnings: {texts}")
    return run


def _table(folder: Path, rows, **kw) -> Path:
    return _csv(folder / "data" / "data.csv", rows, **kw).parent


def _raw(folder: Path, name: str, data: bytes) -> Path:
    path = folder / "data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _jsonl_lines(n: int = 12) -> list:
    return [json.dumps({"text": f"sentence {i} about {'cats' if i % 2 else 'dogs'}", "label": "ab"[i % 2]},
                       ensure_ascii=False) for i in range(n)]


# ---------------------------------------------------------------- names

def dotted_class_folders(folder):
    root = _images(folder / "data", _three("v1.0", "v2.0.final"))
    return _all_used(folder, "image", root, 6, ["v1.0", "v2.0.final"])


def unicode_class_folders(folder):
    names = ["猫", "Ünïcödé", "😀 smile"]
    root = _images(folder / "data", _three(*names))
    return _all_used(folder, "image", root, 9, names)


def shell_class_folders(folder):
    names = ["$(touch pwned)", "a;b|c&d", "`id` *"]
    root = _images(folder / "data", _three(*names))
    check = _all_used(folder, "image", root, 9, names)

    def run():
        check()
        _check(not any(Path(p, "pwned").exists() for p in (".", folder, root)), "a class name was run by a shell")
    return run


def shell_paths(folder):
    """The data set and the run folder named with spaces, quotes and shell metacharacters."""
    root = _table(folder / "my data; $(touch pwned) 'x'", _text_rows())
    out = folder / "runs & `id` \"y\""

    def run():
        from tlcore.cli import main

        argv = _finetune(folder, "text", root)[:-3] + ["--out", out, "--quiet", "--json", folder / "r.json"]
        rc = main([str(a) for a in argv])
        _check(rc == 0 and (out / "report.json").is_file(), f"exit {rc}; run folder written: {out.exists()}")
        _check(not any(Path(p, "pwned").exists() for p in (".", folder)), "a path was run by a shell")
    return run


def long_file_names(folder):
    long = {label: [label[0] * 250 + f"{i}.png" for i in range(3)] for label in ("bright", "dark")}   # 255 bytes
    return _all_used(folder, "image", _images(folder / "data", long), 6)


def out_name_too_long(folder):
    return _finetune(folder, "text", _table(folder, _text_rows()))[:-3] + ["--out", str(folder / ("r" * 300)), "--quiet"]


def case_only_class_folders(folder):
    root = _images(folder / "data", _three("Cat", "cat", "dog"))
    return _noticed(folder, "image", root, "only in letter case")


def case_only_file_names(folder):
    root = _images(folder / "data", {"a": ["x.png", "X.png", "x.PNG"], "b": ["y.png", "Y.png", "y.PNG"]})
    return _all_used(folder, "image", root, 6)


def newline_file_name(folder):
    root = _images(folder / "data", {"a": ["one\ntwo.png", "b.png", "c.png"], "b": ["d.png", "e.png", "f.png"]})
    return _all_used(folder, "image", root, 6)


def non_utf8_file_name(folder):
    root = _images(folder / "data", _three("a", "b"))
    raw = bytes(root / "a") + b"/caf\xe9.png"            # a Latin-1 name: not valid UTF-8
    with open(raw, "wb") as f:
        f.write(_png_bytes(13))
    return _all_used(folder, "image", root, 7)


def trailing_space_class_folder(folder):
    return _finetune(folder, "image", _images(folder / "data", _three("cat", "cat ", "dog")))


def invisible_character_labels(folder):
    rows = [(f"row {i}", ["cat", "cat\u200b", "dog"][i % 3]) for i in range(12)]   # a zero-width space
    return _finetune(folder, "text", _table(folder, rows))


def path_like_labels(folder):
    labels = ["../up", "a/b", "/abs"]
    rows = [(f"text number {i} of {labels[i % 3]}", labels[i % 3]) for i in range(12)]
    check = _all_used(folder, "text", _table(folder, rows), 12, labels)

    def run():
        check()
        _check(not (folder / "up").exists() and not (folder.parent / "up").exists(), "a label was used as a path")
    return run


def upper_case_extensions(folder):
    root = _images(folder / "data", {"a": ["1.PNG", "2.Png", "3.png"], "b": ["4.PNG", "5.pNg", "6.png"]})
    return _all_used(folder, "image", root, 6)


# ---------------------------------------------------------------- encodings and normalisation

def _encoded_table(folder, encoding: str, bom: bytes = b""):
    text = "text,label\n" + "".join(f"{t},{y}\n" for t, y in _text_rows()) + "Grüße aus Köln,positive\n"
    data = text.encode(encoding)
    return _loads(_raw(folder, "data.csv", bom + data), 13, ["negative", "positive"], "the film was great number 0")


def utf8_bom(folder):
    return _encoded_table(folder, "utf-8", b"\xef\xbb\xbf")


def utf16_be_bom(folder):
    return _encoded_table(folder, "utf-16-be", b"\xfe\xff")


def utf32_bom(folder):
    return _encoded_table(folder, "utf-32")        # Python writes the BOM for "utf-32"


def jsonl_utf16_bom(folder):
    return _loads(_raw(folder, "data.jsonl", "\n".join(_jsonl_lines()).encode("utf-16")), 12, ["a", "b"])


def jsonl_utf8_bom(folder):
    return _loads(_raw(folder, "data.jsonl", b"\xef\xbb\xbf" + "\n".join(_jsonl_lines()).encode()), 12, ["a", "b"])


def jsonl_latin1(folder):
    lines = _jsonl_lines() + [json.dumps({"text": "très bien", "label": "a"}, ensure_ascii=False)]
    _raw(folder, "data.jsonl", "\n".join(lines).encode("latin-1"))
    return _finetune(folder, "text", folder / "data")


def crlf_lines(folder):
    text = "text,label\r\n" + "".join(f"{t},{y}\r\n" for t, y in _text_rows())
    return _loads(_raw(folder, "data.csv", text.encode()), 12, ["negative", "positive"], "the film was great number 0")


def mixed_newlines(folder):
    ends = ["\r\n", "\n", "\r"]
    text = "text,label\n" + "".join(f"{t},{y}{ends[i % 3]}" for i, (t, y) in enumerate(_text_rows()))
    return _loads(_raw(folder, "data.csv", text.encode()), 12, ["negative", "positive"], "the film was great number 0")


def nfc_nfd_texts_two_labels(folder):
    """The same sentence typed with é and with e + ◌́, under two labels: a contradiction that prints as one text."""
    nfc = unicodedata.normalize("NFC", "a café review")
    rows = _text_rows(8) + [[nfc, "positive"], [unicodedata.normalize("NFD", nfc), "negative"]] * 3
    return _noticed(folder, "text", _table(folder, rows), "two or more labels")


def nfd_eval_copy(folder):
    """An --eval text that is a training text in the other Unicode normalisation: the model is scored on it."""
    target = _table(folder, _text_rows(8) + [["un café très serré", "positive"]])
    _csv(folder / "eval" / "eval.csv", [[unicodedata.normalize("NFD", "un café très serré"), "positive"],
                                        ["the film was dull", "negative"]])
    return _finetune(folder, "text", target, "--eval", str(folder / "eval"))


def jsonl_lone_surrogate(folder):
    lines = _jsonl_lines() + ['{"text": "broken \\ud83d emoji", "label": "a"}']
    _raw(folder, "data.jsonl", "\n".join(lines).encode())
    return _finetune(folder, "text", folder / "data")


def jsonl_nan_label(folder):
    lines = _jsonl_lines() + ['{"text": "no label really", "label": NaN}', '{"text": "nor here", "label": NaN}']
    _raw(folder, "data.jsonl", "\n".join(lines).encode())
    return _finetune(folder, "text", folder / "data")


def repeated_header(folder):
    """Three exports pasted into one file: the header lines inside are read as rows of a class "label" (with an
    --eval set nothing else notices it)."""
    rows = []
    for part in range(3):
        rows += [["text", "label"]] * bool(part) + [[f"export {part} review {i} was {w}", y] for i in range(4)
                                                    for y, w in (("positive", "great"), ("negative", "awful"))]
    _csv(folder / "eval" / "eval.csv", [["a great film", "positive"], ["an awful film", "negative"]])
    return _finetune(folder, "text", _table(folder, rows), "--eval", str(folder / "eval"))


def semicolon_table(folder):
    text = "text;label\n" + "".join(f"{t};{y}\n" for t, y in _text_rows())
    _raw(folder, "data.csv", text.encode())
    return _finetune(folder, "text", folder / "data")


def scripts_and_emoji(folder):
    texts = ["مرحبا بالعالم الجميل", "שלום עולם", "e\u0301te\u0301 cafe\u0301", "🎬🍿 great", "Ζωή ωραία", "日本語の文"]
    rows = [[f"{t} {i}", "ab"[i % 2]] for i, t in enumerate(texts * 2)]
    return _all_used(folder, "text", _table(folder, rows), 12, ["a", "b"])


# ---------------------------------------------------------------- duplicates and contradictions

def repeated_column(folder):
    path = folder / "data" / "data.csv"
    path.parent.mkdir(parents=True)
    path.write_text("text,label,label\n" + "".join(f"row {i},{'ab'[i % 2]},{'ba'[i % 2]}\n" for i in range(12)))
    return _finetune(folder, "text", path.parent)


def one_image_two_classes(folder):
    root = _images(folder / "data", _three("a", "b"))
    for label in ("a", "b"):
        (root / label / "same.png").write_bytes(_png_bytes(250))
    return _noticed(folder, "image", root, "two or more labels")


def every_text_twice(folder):
    rows = _text_rows(6) * 2
    return _noticed(folder, "text", _table(folder, rows), "left out of training")


def eval_shares_items(folder):
    target = _table(folder, _text_rows(6))
    _csv(folder / "eval" / "eval.csv", _text_rows(6)[:2] + [["a fresh review", "negative"]])
    return _finetune(folder, "text", target, "--eval", str(folder / "eval"))


def source_is_target(folder):
    target = _table(folder, _text_rows(6))
    return _noticed(folder, "text", target, "train/eval overlap", "--source", str(target))


def eval_class_not_in_target(folder):
    target = _table(folder, _text_rows(6))
    _csv(folder / "eval" / "eval.csv", [["the film was great", "positive"], ["a neutral film", "neutral"]])
    return _finetune(folder, "text", target, "--eval", str(folder / "eval"))


def groups_file_twice(folder):
    root = _images(folder / "data", _three("a", "b"))
    rows = [[f"{c}/{i}.png", f"g{i}"] for c in "ab" for i in range(3)] + [["a/0.png", "g9"]]
    _csv(root / "groups.csv", rows, header=("file", "group"))
    return _finetune(folder, "image", root)


def multilabel_repeated_label(folder):
    path = folder / "data" / "ml.csv"
    path.parent.mkdir(parents=True)
    path.write_text("text,labels\n" + "".join(f"row {i},{['a', 'b', 'a|b'][i % 3]}\n" for i in range(18))
                    + "row 18,a|a\n")

    def run():
        data = _report(folder, "text", path.parent, "--task", "multilabel")["data"]
        used = data["train"] + data["val"] + data["eval"]
        _check(used == 19 and data["classes"] == ["a", "b"] and not data["problems"], f"{used} items, {data}")
    return run


def multilabel_case_only_labels(folder):
    """Labels "Price" and "price" in one multi-label table: two labels here, said in the report."""
    path = folder / "data" / "ml.csv"
    path.parent.mkdir(parents=True)
    path.write_text("text,labels\n" + "".join(f"row {i},{['Price', 'price|b', 'b'][i % 3]}\n" for i in range(18)))
    return _noticed(folder, "text", path.parent, "only in letter case", "--task", "multilabel")


def multilabel_same_text_two_label_sets(folder):
    """One text under the label set a and under a|b: a contradiction for every label it does not share."""
    path = folder / "data" / "ml.csv"
    path.parent.mkdir(parents=True)
    path.write_text("text,labels\n" + "".join(f"row {i},{['a', 'b', 'a|b'][i % 3]}\n" for i in range(18))
                    + "the same words,a\nthe same words,a|b\n")
    return _noticed(folder, "text", path.parent, "two or more label sets", "--task", "multilabel")


def _ner_lines(extra=()) -> str:
    rows = [{"tokens": [name, "lives", "in", city], "tags": ["B-PER", "O", "O", "B-LOC"]}
            for name, city in zip(["Anna", "Bob", "Omar", "Lena", "Ravi", "Mia"] * 2, ["Oslo", "Rome", "Lima"] * 4)]
    return "".join(json.dumps(r) + "\n" for r in [*rows, *extra])


def ner_case_only_types(folder):
    """Entity types PER and Per: two types here (B-PER and B-Per tags), said in the report."""
    path = folder / "data" / "ner.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(_ner_lines([{"tokens": ["Zoe", "lives", "in", "Kyiv"], "tags": ["B-Per", "O", "O", "B-LOC"]}] * 3))
    return _noticed(folder, "text", path, "only in letter case", "--task", "ner")


def ner_same_sentence_tagged_two_ways(folder):
    path = folder / "data" / "ner.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(_ner_lines([{"tokens": ["Paris", "is", "big"], "tags": ["B-LOC", "O", "O"]},
                                {"tokens": ["Paris", "is", "big"], "tags": ["B-PER", "O", "O"]}]))
    return _noticed(folder, "text", path, "two or more tag sequences", "--task", "ner")


def texts_differ_in_spaces(folder):
    rows = _text_rows(8) + [["  the same words  ", "positive"], ["the same words", "negative"]] * 3
    return _noticed(folder, "text", _table(folder, rows), "two or more labels")


# Decisions: names are data. A class is named by its folder or label byte for byte (dots, any script, shell
# metacharacters, a label like "../up": nothing is passed to a shell or used as a path), and every file is used
# whatever its name; a name the file system cannot hold is refused with the limit.
NAMES = [
    Case("class folder names with dots", "names", dotted_class_folders, expect="ok", notice_words=_USED),
    Case("class folder names in CJK, accents and emoji", "names", unicode_class_folders, expect="ok",
         notice_words=_USED),
    Case("class folder names with shell metacharacters", "names", shell_class_folders, expect="ok", notice_words=_USED),
    Case("spaces, quotes and shell metacharacters in --target and --out", "names", shell_paths, expect="ok",
         notice_words=_USED),
    Case("255-byte file names", "names", long_file_names, expect="ok", notice_words=_USED),
    Case("--out with a 300-character folder name", "names", out_name_too_long),
    # Decision: folders "Cat" and "cat" are two classes on Linux but one on macOS and Windows; they may be meant
    # (letters), so the run goes on and says so rather than refusing or merging them.
    Case("class folders that differ only in case", "names", case_only_class_folders, expect="notice",
         notice_words=("only in letter case",)),
    Case("multi-label: labels that differ only in case", "names", multilabel_case_only_labels, expect="notice",
         notice_words=("only in letter case",)),
    Case("NER: entity types that differ only in case", "names", ner_case_only_types, expect="notice",
         notice_words=("only in letter case",)),
    Case("file names that differ only in case", "names", case_only_file_names, expect="ok", notice_words=_USED),
    Case("file name with a newline", "names", newline_file_name, expect="ok", notice_words=_USED),
    Case("file name that is not UTF-8", "names", non_utf8_file_name, expect="ok", notice_words=_USED),
    # Decision: "cat" and "cat " (or "cat" + a zero-width space) print the same, like the NFC/NFD labels: refused,
    # not merged silently (which of the two names would the model answer?).
    Case("class folders 'cat' and 'cat ' (trailing space)", "names", trailing_space_class_folder),
    Case("labels that differ by a zero-width space", "names", invisible_character_labels),
    Case("labels that look like paths (../up, a/b, /abs)", "names", path_like_labels, expect="ok", notice_words=_USED),
    Case("upper- and mixed-case file extensions", "names", upper_case_extensions, expect="ok", notice_words=_USED),
]

# Decisions: a byte-order mark says what the encoding is, so UTF-8/16/32 with one are read; without one only UTF-8 is
# (guessing Latin-1 would turn a damaged UTF-8 file into wrong text). Texts are compared in NFC: "café" typed two ways
# is one text for duplicates and the train/eval overlap. JSON that is not standard (lone surrogates, NaN) is refused
# with its line; a table in another separator is refused by its missing 'text' column.
ENCODINGS = [
    Case("UTF-8 table with a byte-order mark", "encodings", utf8_bom, expect="ok"),
    Case("UTF-16 big-endian table with a byte-order mark", "encodings", utf16_be_bom, expect="ok"),
    Case("UTF-32 table with a byte-order mark", "encodings", utf32_bom, expect="ok"),
    Case("UTF-16 JSONL with a byte-order mark", "encodings", jsonl_utf16_bom, expect="ok"),
    Case("UTF-8 JSONL with a byte-order mark", "encodings", jsonl_utf8_bom, expect="ok"),
    Case("latin-1 JSONL", "encodings", jsonl_latin1),
    Case("CRLF line endings", "encodings", crlf_lines, expect="ok"),
    Case("CRLF, LF and CR line endings mixed", "encodings", mixed_newlines, expect="ok"),
    Case("one text in NFC and NFD under two labels", "encodings", nfc_nfd_texts_two_labels, expect="notice",
         notice_words=("two or more labels",)),
    Case("--eval text equal to a training text up to NFC/NFD", "encodings", nfd_eval_copy),
    Case("JSONL with a lone surrogate escape", "encodings", jsonl_lone_surrogate),
    Case("JSONL label NaN", "encodings", jsonl_nan_label),
    Case("semicolon-separated CSV", "encodings", semicolon_table),
    Case("texts in Arabic, Hebrew, Greek, CJK, emoji and combining marks", "encodings", scripts_and_emoji,
         expect="ok", notice_words=_USED),
]

# Decisions: a repeated column is refused like a repeated JSON key (one of the two values would be dropped), and so
# is a repeated header line (it would be a row of a class named like the label column);
# contradictions and copies go on with their counts in the report (a user may mean them); a user-given eval set that
# shares items with the training data, or has a class it lacks, is refused.
DUPLICATES = [
    Case("repeated column in the CSV header", "duplicates", repeated_column),
    Case("header line repeated inside the table", "duplicates", repeated_header),
    Case("one image in two class folders", "duplicates", one_image_two_classes, expect="notice",
         notice_words=("two or more labels",)),
    Case("every text twice under its label", "duplicates", every_text_twice, expect="notice",
         notice_words=("left out of training",)),
    Case("--eval shares two items with --target", "duplicates", eval_shares_items),
    Case("--source is the --target", "duplicates", source_is_target, expect="notice",
         notice_words=("train/eval overlap",)),
    Case("--eval has a class the target lacks", "duplicates", eval_class_not_in_target),
    Case("groups.csv lists a file under two groups", "duplicates", groups_file_twice),
    Case("multi-label cell naming one label twice", "duplicates", multilabel_repeated_label, expect="ok",
         notice_words=_USED),
    Case("texts that differ only in outer spaces, two labels", "duplicates", texts_differ_in_spaces, expect="notice",
         notice_words=("two or more labels",)),
    Case("multi-label: one text under two label sets", "duplicates", multilabel_same_text_two_label_sets,
         expect="notice", notice_words=("two or more label sets",)),
    Case("NER: one sentence tagged two ways", "duplicates", ner_same_sentence_tagged_two_ways, expect="notice",
         notice_words=("two or more tag sequences",)),
]

CASES = NAMES + ENCODINGS + DUPLICATES
