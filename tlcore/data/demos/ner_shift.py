"""The ``ner-shift`` demo: named entities (PER, LOC, ORG) in formal news sentences (source) -> informal
social-media posts (target).

Everything is generated from templates and small name lists written here (no external data). The target
domain differs in style (lower case, no punctuation, slang and abbreviations, @-mentions, short posts, other
sentence frames) *and* in its entity lists (first names and nicknames, UK/US places, consumer brands and
venues), so memorising the source names does not help. ``target`` and ``eval`` draw from the same target
lists and templates, like a small labeled sample and a held-out set of one domain.

Files (the .jsonl NER format): ``source/data.jsonl``, ``target/data.jsonl``, ``eval/data.jsonl`` with
``tokens`` + ``tags``; ``unlabeled/data.jsonl`` with ``tokens`` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tlcore.data.demos._common import DEMOS, DemoSpec, _rng
from tlcore.tasks.ner.data import write_jsonl

NAME = "ner-shift"
SIZES = {"small": {"source": 24, "target": 12, "eval": 16, "unlabeled": 8},
         "default": {"source": 100, "target": 60, "eval": 150, "unlabeled": 100}}

# ---------------------------------------------------------------- source domain: formal news

SOURCE_PER = (
    "Angela Weber", "Thomas Berger", "Claire Dubois", "Marco Rossi", "Ingrid Larsen", "Pieter de Vries", "Elena Petrova",
    "Jan Kowalski", "Sofia Andersson", "Henrik Nilsen", "Laura Fischer", "Martin Schulz", "Anna Novak", "Lukas Meier",
    "Isabel Moreno", "Georg Hoffmann", "Katarina Horvat", "Olivier Laurent", "Maria Santos", "Stefan Wagner",
    "Helena Kovacs", "Paul Lehmann", "Eva Lindqvist", "Matthias Koch", "Julia Brandt", "Andreas Keller", "Nina Jensen",
    "Robert Zimmermann", "Camille Bernard", "Viktor Horak", "Francesca Bianchi", "Daniel Kraus", "Monika Schneider",
    "Erik Johansson", "Teresa Almeida", "Felix Hartmann", "Irene Costa", "Karl Vogel", "Sabine Richter", "Tomas Dvorak",
)
SOURCE_LOC = (
    "Berlin", "Hamburg", "Vienna", "Zurich", "Frankfurt", "Munich", "Brussels", "Amsterdam", "Rotterdam", "Copenhagen",
    "Stockholm", "Oslo", "Helsinki", "Warsaw", "Prague", "Budapest", "Lisbon", "Madrid", "Barcelona", "Milan", "Rome",
    "Geneva", "Lyon", "Marseille", "Antwerp", "Cologne", "Stuttgart", "Dresden", "Gothenburg", "Luxembourg",
)
SOURCE_ORG = (
    "Nordbank", "Hanse Logistics", "Alpine Energy Group", "Baltic Shipping", "Rhein Chemie", "Continental Rail",
    "Meridian Insurance", "Westfalia Steel", "Danubia Airlines", "Helvetia Pharma", "Europa Telecom", "Atlas Motors",
    "European Commission", "Federal Reserve", "World Bank", "Siemens", "Deutsche Post", "Lufthansa",
    "Nordic Investment Bank", "Vereinigte Versicherung", "Iberia Holdings", "Polaris Capital", "Adria Ports",
    "Carpathia Mining", "Lumen Semiconductors", "Orion Media", "Vesta Foods", "Castellan Bank", "Aurora Biotech",
    "Bundesbank",
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
SOURCE_TEMPLATES = (
    "{PER} , a spokesperson for {ORG} , said in {LOC} on {DAY} that the company would expand .",
    "{ORG} announced on {DAY} that {PER} will lead its new office in {LOC} .",
    "Shares of {ORG} rose {NUM} percent in {LOC} after chief executive {PER} presented the annual results .",
    "{PER} met officials from {ORG} in {LOC} to discuss the trade agreement .",
    "The mayor of {LOC} , {PER} , criticised the decision by {ORG} .",
    "According to {ORG} , exports from {LOC} fell by {NUM} percent in the second quarter .",
    "{PER} told reporters in {LOC} that talks with {ORG} had been constructive .",
    "{ORG} and {ORG} signed a partnership agreement in {LOC} on {DAY} .",
    "Police in {LOC} said {PER} was questioned as a witness on {DAY} .",
    "{PER} , who joined {ORG} in {YEAR} , will move to {LOC} next year .",
    "Analysts at {ORG} expect growth in {LOC} to slow to {NUM} percent .",
    "The conference in {LOC} was opened by {PER} , president of {ORG} .",
    "Minister {PER} visited the {ORG} plant near {LOC} on {DAY} .",
    "Inflation in {LOC} remained at {NUM} percent , the statistics office said .",
    "The board of {ORG} appointed {PER} as chief financial officer .",
)

# ---------------------------------------------------------------- target domain: social-media posts

TARGET_PER = (
    "jake", "priya", "tom h", "mia", "dev", "chloe", "liam", "zara", "ollie", "aisha", "ben", "sophie", "kev", "jess",
    "marcus", "leah", "ryan", "nat", "sam", "ella", "josh", "amira", "callum", "becca", "danny", "freya", "luke", "hannah",
    "mo", "tilly", "jake m", "katie b", "chris p", "emma", "harry", "lucy", "jamal", "poppy", "alfie", "grace",
)
TARGET_LOC = (
    "leeds", "manchester", "brighton", "glasgow", "bristol", "cardiff", "liverpool", "newcastle", "sheffield", "nottingham",
    "brooklyn", "austin", "portland", "seattle", "denver", "chicago", "boston", "miami", "dublin", "belfast", "edinburgh",
    "york", "bath", "oxford", "cambridge", "camden", "soho", "shoreditch", "la", "nyc",
)
TARGET_ORG = (
    "tesco", "greggs", "nandos", "primark", "asos", "spotify", "netflix", "uber", "deliveroo", "starbucks", "costa",
    "pret", "aldi", "lidl", "argos", "ryanair", "easyjet", "vodafone", "ee", "sainsburys", "amazon", "apple", "ikea",
    "boots", "wetherspoons", "monzo", "tiktok", "insta", "bbc", "man utd",
)
TARGET_TEMPLATES = (
    "just saw {PER} at {ORG} in {LOC} lol",
    "omg {PER} is moving to {LOC} next month",
    "anyone else's {ORG} app down rn ? cant even order in {LOC}",
    "me and {PER} got lost in {LOC} again haha",
    "{ORG} customer service is the worst waited {NUM} hrs smh",
    "cant believe {PER} still works at {ORG} tbh",
    "road trip to {LOC} w/ {PER} this wknd",
    "who's going to the {ORG} thing in {LOC} tmrw ?",
    "{PER} u coming to {LOC} or nah",
    "lol {PER} just dropped her {ORG} order all over the floor",
    "miss {LOC} so much esp the food",
    "new job at {ORG} !! first day in {LOC} tomorrow",
    "{MENTION} thx for the lift to {LOC} yesterday",
    "ugh {ORG} raised prices again , moving to {LOC} fr",
    "{LOC} weather is wild today",
    "ngl {ORG} in {LOC} slaps",
    "{MENTION} {MENTION} pub later ? {ORG} on the high st",
    "cant sleep again , {NUM} am and still scrolling {ORG}",
    "happy bday {PER} !! see u in {LOC} x",
    "srsly {ORG} lost my parcel again",
)
NO_ENTITY_POSTS = ("cant sleep again lol", "this week has been so long", "ok who ate my leftovers", "need coffee asap tbh")


def _fill(template: str, lists: dict[str, Sequence[str]], rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Fill the slots of a template with random entries; return words and BIO tags."""
    words, tags = [], []
    for part in template.split():
        slot = part[1:-1] if part.startswith("{") and part.endswith("}") else None
        if slot in ("PER", "LOC", "ORG"):
            name = lists[slot][int(rng.integers(len(lists[slot])))].split()
            words += name
            tags += [f"B-{slot}"] + [f"I-{slot}"] * (len(name) - 1)
        elif slot == "MENTION":
            words.append("@" + lists["PER"][int(rng.integers(len(lists["PER"])))].replace(" ", "_"))
            tags.append("B-PER")
        elif slot == "DAY":
            words.append(DAYS[int(rng.integers(len(DAYS)))])
            tags.append("O")
        elif slot == "YEAR":
            words.append(str(int(rng.integers(2005, 2021))))
            tags.append("O")
        elif "{NUM}" in part:
            words.append(part.replace("{NUM}", str(int(rng.integers(2, 12)))))
            tags.append("O")
        else:
            words.append(part)
            tags.append("O")
    return words, tags


def _sentences(n: int, templates: Sequence[str], lists: dict[str, Sequence[str]], rng: np.random.Generator,
               extra: Sequence[str] = (), *, seen: set) -> tuple[list[list[str]], list[list[str]]]:
    """``n`` sentences none of which is in ``seen`` (updated), so the splits share no sentence: an eval sentence
    that also sits in the training data would be scored on something the model has seen."""
    sentences, tags = [], []
    for _ in range(200 * n):
        if len(sentences) == n:
            break
        if extra and rng.random() < 0.05:
            w = extra[int(rng.integers(len(extra)))].split()
            t = ["O"] * len(w)
        else:
            w, t = _fill(templates[int(rng.integers(len(templates)))], lists, rng)
        if tuple(w) in seen:
            continue
        seen.add(tuple(w))
        sentences.append(w)
        tags.append(t)
    return sentences, tags


def make_ner_shift(out: Path, seed: int, size: str) -> None:
    """Write source / target / eval / unlabeled into ``out`` (the demo registry's ``make``)."""
    counts = SIZES[size]
    rng = _rng(seed, NAME)
    src = {"PER": SOURCE_PER, "LOC": SOURCE_LOC, "ORG": SOURCE_ORG}
    tgt = {"PER": TARGET_PER, "LOC": TARGET_LOC, "ORG": TARGET_ORG}
    seen: set = set()
    s, t = _sentences(counts["source"], SOURCE_TEMPLATES, src, rng, seen=seen)
    write_jsonl(out / "source" / "data.jsonl", s, t)
    for split in ("target", "eval"):
        s, t = _sentences(counts[split], TARGET_TEMPLATES, tgt, rng, NO_ENTITY_POSTS, seen=seen)
        write_jsonl(out / split / "data.jsonl", s, t)
    s, _ = _sentences(counts["unlabeled"], TARGET_TEMPLATES, tgt, rng, NO_ENTITY_POSTS, seen=seen)
    write_jsonl(out / "unlabeled" / "data.jsonl", s)


def count_ner_split(folder: Path) -> dict:
    """``{"total": sentences, "per_class": {entity type: entities}}`` (``per_class`` None when untagged): for demo.json."""
    from tlcore.tasks.ner.data import load_ner

    data = load_ner(folder)
    return {"total": len(data), "per_class": data.entity_counts() if data.labeled else None}


def _available() -> Optional[str]:
    return None   # generated from the lists above: always available


DEMOS.register(NAME, DemoSpec(
    NAME, "text", "ner",
    "named entities (PER, LOC, ORG) in formal news sentences (source) -> lower-case social-media posts with slang, "
    "@-mentions and different names, places and brands (target)",
    "generated by TransferLab from its own templates and name lists (no external data)",
    make_ner_shift, _available, count=count_ner_split))
