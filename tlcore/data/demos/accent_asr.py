"""The ``accent-asr`` demo: short English commands and questions spoken by eSpeak NG, US / British RP voices
(``source``) versus Scottish, Caribbean, Lancashire and West Midlands voices (``target``, ``eval``).

* ``target`` (adaptation set) and ``eval`` are speaker-disjoint (no accent+voice pair in both; even the voice
  variants differ) and sentence-disjoint (an eval sentence is never in ``target``).
* ``source`` speaks exactly the eval sentences in the source accents, so "source vs eval" differs only in the
  speakers (accent, voice, a slightly faster speaking rate): the pretrained model's WER on each shows the shift.
* Each split is a folder of 16 kHz WAV files with ``metadata.csv`` (``file_name,transcription,speaker,accent``).

Transcripts are written as people write them (capitals, punctuation, numbers in words); scoring normalises.
Synthesis runs in one fresh process (``synthesize_batch``), so a seed gives byte-identical files.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from tlcore.data.demos._common import (
    DEMOS,
    SPOKEN_RATE,
    DemoSpec,
    _espeak_available,
    _finish_clips,
    _rng,
    count_table_rows,
)

SENTENCES = (
    "Turn the kitchen lights off at seven.",
    "Call my sister tomorrow morning.",
    "Set a timer for twenty minutes.",
    "What is the weather like in Glasgow?",
    "Play some quiet music in the bedroom.",
    "Remind me to buy milk and bread.",
    "Open the garage door, please.",
    "How far is it to the train station?",
    "Book a table for four at eight o'clock.",
    "Send a message to Peter saying I am late.",
    "Turn the heating up to twenty one degrees.",
    "What time does the bank close today?",
    "Add carrots and potatoes to the shopping list.",
    "Wake me up at half past six.",
    "Show me the way to the nearest hospital.",
    "Read the news headlines from this morning.",
    "Lock the front door and the back door.",
    "How many days are left until Christmas?",
    "Switch off the television in the living room.",
    "The meeting starts at ten in the morning.",
    "Please water the plants on Thursday.",
    "Find a cheap hotel near the airport.",
    "My flight to Edinburgh leaves at noon.",
    "Turn the volume down a little.",
    "What is twelve multiplied by nine?",
    "Cancel my appointment with the dentist.",
    "Put the kettle on for a cup of tea.",
    "Where did I park the car yesterday?",
    "The bus to London is running late.",
    "Close all the windows before the rain starts.",
    "Order a large pizza with mushrooms.",
    "How long does it take to boil an egg?",
    "Start the washing machine at midnight.",
    "Tell me a joke about a penguin.",
    "Dim the lights in the dining room.",
    "What is the capital city of Canada?",
    "Call a taxi to take me home.",
    "Pay the electricity bill on Monday.",
    "The children walk to school every day.",
    "Record the football match tonight.",
    "Turn left at the next roundabout.",
    "How much sugar is in this recipe?",
    "Schedule a call with the team on Friday.",
    "Is it going to snow this weekend?",
    "Translate good morning into French.",
    "Stop the music and turn on the radio.",
    "The library opens at nine thirty.",
    "Check my email for new messages.",
    "Buy two tickets for the concert.",
    "Feed the cat before you leave the house.",
    "What is the score of the rugby game?",
    "Move my dentist appointment to next week.",
    "Turn on the fan in the office.",
    "The river flows past the old church.",
    "Navigate to the closest petrol station.",
    "Give me a recipe for vegetable soup.",
    "How old is the castle on the hill?",
    "Please charge my phone overnight.",
    "Set the alarm for five fifteen.",
    "We need more coffee for the office.",
    "Show me photos from last summer.",
    "Send fifty pounds to my brother.",
    "The garden needs water every evening.",
    "How do you spell necessary?",
    "Pause the film for ten minutes.",
    "Write down the phone number for the doctor.",
    "Is the swimming pool open on Sunday?",
    "Turn the oven on to two hundred degrees.",
    "Bring an umbrella, it looks like rain.",
    "The shop on the corner sells fresh fish.",
    "What films are showing at the cinema tonight?",
    "Make a list of things to pack for the holiday.",
    "Switch the porch light on at sunset.",
    "My keys are on the table by the door.",
    "How many miles is it to Manchester?",
    "Leave a note for the plumber.",
    "Start a workout playlist in the garden.",
    "The last train home leaves at eleven.",
    "Ask my neighbour to collect the post.",
    "Turn everything off when I go to bed.",
)

SAMPLE_RATE = SPOKEN_RATE
SOURCE_ACCENTS = ("en-us", "en-gb-x-rp")
TARGET_ACCENTS = ("en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
ACCENT_NAMES = {"en-us": "us", "en-gb-x-rp": "rp", "en-gb-scotland": "scottish", "en-029": "caribbean",
                "en-gb-x-gbclan": "lancashire", "en-gb-x-gbcwmd": "west-midlands"}
SOURCE_VARIANTS = ("", "+m3", "+f2", "+m6")
TARGET_VARIANTS = ("+m1", "+f3", "+m4", "+f4")  # adaptation speakers
EVAL_VARIANTS = ("+m2", "+f1", "+m5", "+f5")    # held-out speakers: never in target
SOURCE_RATE, TARGET_RATE = (150, 181), (165, 211)  # words per minute, [low, high)
# clips per accent in target / eval, sentences reserved for eval (and source), source clips
_SIZES = {"small": {"target": 3, "eval": 2, "eval_sentences": 4, "source": 4},
          "default": {"target": 24, "eval": 12, "eval_sentences": 24, "source": 24}}
LICENSE = ("sentences written for TransferLab; audio synthesized with eSpeak NG (GPL-3.0-or-later engine and voice "
           "data, bundled by espeakng-loader); the generated audio and transcripts are TransferLab's own")


def _jobs(sentences: Sequence[str], accents: Sequence[str], variants: Sequence[str], per_accent: int,
          rate: tuple[int, int], rng: np.random.Generator) -> list[dict]:
    """``per_accent`` utterances per accent; sentences cycle through a shuffled order so each is used evenly."""
    jobs = []
    for accent in accents:
        order = list(rng.permutation(len(sentences)))
        for k in range(per_accent):
            variant = variants[int(rng.integers(len(variants)))]
            jobs.append({"text": sentences[order[k % len(order)]], "voice": accent + variant,
                         "rate": int(rng.integers(*rate)), "pitch": int(rng.integers(30, 71)),
                         "seed": int(rng.integers(2**31 - 1)), "accent": ACCENT_NAMES[accent],
                         "speaker": f"{ACCENT_NAMES[accent]}{variant or '+default'}"})
    return jobs


def _write_split(folder: Path, jobs: Sequence[dict], clips: Sequence[np.ndarray]) -> None:
    import soundfile

    folder.mkdir(parents=True)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["file_name", "transcription", "speaker", "accent"])
        for i, (job, clip) in enumerate(zip(jobs, clips)):
            name = f"utt_{i:04d}.wav"
            soundfile.write(folder / name, clip, SAMPLE_RATE, subtype="PCM_16", format="WAV")
            writer.writerow([name, job["text"], job["speaker"], job["accent"]])


def make_accent_asr(out: Path, seed: int, size: str) -> None:
    """Write ``out/source``, ``out/target`` and ``out/eval`` (see the module docstring)."""
    from tlcore.data.demos.espeak import synthesize_batch

    sizes, rng = _SIZES[size], _rng(seed, "accent-asr")
    order = [SENTENCES[i] for i in rng.permutation(len(SENTENCES))]
    eval_sentences, train_sentences = order[:sizes["eval_sentences"]], order[sizes["eval_sentences"]:]
    splits = {
        "target": _jobs(train_sentences, TARGET_ACCENTS, TARGET_VARIANTS, sizes["target"], TARGET_RATE, rng),
        "eval": _jobs(eval_sentences, TARGET_ACCENTS, EVAL_VARIANTS, sizes["eval"], TARGET_RATE, rng),
    }
    # every eval sentence once (up to sizes["source"]), the two source accents alternating
    splits["source"] = [_jobs([text], [SOURCE_ACCENTS[i % 2]], SOURCE_VARIANTS, 1, SOURCE_RATE, rng)[0]
                        for i, text in enumerate(eval_sentences[:sizes["source"]])]
    names = ("source", "target", "eval")
    jobs = [job for name in names for job in splits[name]]
    clips, rate = synthesize_batch([{k: j[k] for k in ("text", "voice", "rate", "pitch", "seed")} for j in jobs])
    clips = _finish_clips(clips, rate)
    start = 0
    for name in names:
        n = len(splits[name])
        _write_split(out / name, splits[name], clips[start:start + n])
        start += n


DEMOS.register("accent-asr", DemoSpec(
    "accent-asr", "audio", "asr",
    "speech recognition: short spoken commands in US/British RP voices (source) -> Scottish, Caribbean, "
    "Lancashire and West Midlands voices (target, eval: other speakers, other sentences)",
    LICENSE, make_accent_asr, _espeak_available, count=count_table_rows))
