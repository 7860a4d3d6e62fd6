"""Offline speech synthesis with eSpeak NG, through the library bundled in the ``espeakng_loader`` wheel.

The C library keeps global state and is not thread-safe, so it is initialised once per process (lazily, on
the first call) and every call into it holds one lock. Synthesis runs in synchronous mode: samples arrive
through a callback while ``espeak_Synth`` runs.

eSpeak NG carries internal state from one utterance to the next (the same call gives slightly different
samples the second time) and seeds its noise generator (breathy voices) from the clock. With the noise
seed set before each utterance (``seed=``), a fresh process that makes the same calls in the same order gives
identical output. ``synthesize_batch`` therefore runs a whole batch in a new process: that is how demos stay
byte-reproducible.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tlcore.errors import DataError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Voice(ctypes.Structure):
    """``espeak_VOICE`` from speak_lib.h (only read, from ``espeak_ListVoices``)."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class _Engine:
    """The loaded library, its sample rate and the buffer the callback fills."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise DataError(
                "eSpeak NG is not installed: run `pip install espeakng-loader` (it bundles the library and voices)"
            ) from exc
        library = espeakng_loader.get_library_path()
        data = Path(espeakng_loader.get_data_path())  # .../espeak-ng-data; Initialize wants its parent
        try:
            self.lib = ctypes.CDLL(str(library))
        except OSError as exc:
            raise DataError(f"cannot load the eSpeak NG library at {library}: {exc}") from exc
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetVoiceByName.restype = ctypes.c_int
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_SetParameter.restype = ctypes.c_int
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]
        self.lib.espeak_Synth.restype = ctypes.c_int
        self.lib.espeak_Synchronize.restype = ctypes.c_int
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib.espeak_ng_SetRandSeed.restype = None
        self.lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))

        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data.parent).encode(), 0)
        if rate <= 0:
            raise DataError(f"eSpeak NG failed to initialise with its data folder {data} (code {rate})")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # keep a reference: the C side holds only a pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n: int, events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = go on synthesising

    def synthesize(self, text: str, voice: str, rate: int, pitch: int, seed: Optional[int]) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise DataError(f"unknown eSpeak NG voice {voice!r}; see tlcore.data.demos.espeak.list_voices()")
        self.lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
        if seed is not None:
            self.lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
        self._chunks = []
        encoded = text.encode("utf-8")
        code = self.lib.espeak_Synth(encoded, len(encoded) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        if code != 0:
            raise DataError(f"eSpeak NG could not synthesise {text!r} with voice {voice!r} (code {code})")
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        self._chunks = []
        return samples.astype(np.float32) / 32768.0

    def voices(self) -> list[str]:
        array = self.lib.espeak_ListVoices(None)
        names = []
        i = 0
        while array and array[i]:
            identifier = array[i].contents.identifier
            if identifier:
                names.append(identifier.decode("utf-8", "replace"))
            i += 1
        return sorted(names)


_LOCK = threading.Lock()
_ENGINE: Optional[_Engine] = None


def _engine() -> _Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def synthesize(
    text: str, voice: str, *, rate: int = 175, pitch: int = 50, seed: Optional[int] = None
) -> tuple[np.ndarray, int]:
    """Speak ``text`` with an eSpeak NG ``voice`` (e.g. ``"en-us"``, ``"en-gb-scotland+m3"``).

    ``rate`` is in words per minute (80-450), ``pitch`` 0-100; ``seed`` seeds the engine's noise generator
    (else it is seeded from the clock at start-up). Returns mono float32 samples in [-1, 1]
    and the engine's sample rate (22,050 Hz). Raises DataError if the library or the voice is missing.
    """
    with _LOCK:
        engine = _engine()
        return engine.synthesize(text, voice, rate, pitch, seed), engine.sample_rate


def list_voices() -> list[str]:
    """Identifiers of the installed voices, e.g. ``"gmw/en-GB-scotland"`` (usable without the folder part)."""
    with _LOCK:
        return _engine().voices()


def available() -> Optional[str]:
    """None when eSpeak NG looks usable here (package, library and voice data present; the engine is not
    started), else a message that says why not and how to fix it."""
    try:
        import espeakng_loader

        library, data = Path(espeakng_loader.get_library_path()), Path(espeakng_loader.get_data_path())
    except ImportError:
        return "eSpeak NG is not installed: run `pip install espeakng-loader`"
    if not library.is_file() or not (data / "phontab").is_file():
        return f"the eSpeak NG library or voice data is missing ({library}, {data}): reinstall espeakng-loader"
    return None


def synthesize_batch(jobs: Sequence[dict], *, timeout_s: float = 600.0) -> tuple[list[np.ndarray], int]:
    """Synthesize many utterances reproducibly, in a fresh process (see the module docstring).

    Each job is a dict with ``text``, ``voice`` and optionally ``rate``, ``pitch`` and ``seed`` (the keywords
    of :func:`synthesize`; ``seed`` defaults to the job's index). Returns the float32 clips in job order and the sample rate.
    """
    payload = json.dumps([dict(job) for job in jobs]).encode()
    package_root = str(Path(__file__).resolve().parents[3])  # so the child imports this same tlcore
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, "-m", "tlcore.data.demos.espeak"], input=payload, capture_output=True, env=env, timeout=timeout_s
    )
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DataError(f"eSpeak NG synthesis failed: {detail[-1] if detail else f'exit code {proc.returncode}'}")
    with np.load(io.BytesIO(proc.stdout)) as data:
        samples, ends, rate = data["samples"], data["ends"], int(data["rate"])
    starts = np.concatenate([[0], ends[:-1]]).astype(int)
    return [samples[a:b].astype(np.float32) / 32768.0 for a, b in zip(starts, ends)], rate


def _batch_main() -> None:
    """Child side of :func:`synthesize_batch`: jobs as JSON on stdin, an .npz of int16 samples on stdout."""
    jobs = json.loads(sys.stdin.buffer.read() or b"[]")
    clips, rate = [], 22050
    for index, job in enumerate(jobs):
        clip, rate = synthesize(
            job["text"], job["voice"], rate=job.get("rate", 175), pitch=job.get("pitch", 50),
            seed=job.get("seed", index),
        )
        clips.append(np.round(clip * 32768.0).clip(-32768, 32767).astype(np.int16))
    ends = np.cumsum([len(c) for c in clips]).astype(np.int64)
    samples = np.concatenate(clips) if clips else np.zeros(0, np.int16)
    buffer = io.BytesIO()
    np.savez(buffer, samples=samples, ends=ends, rate=np.int64(rate))
    sys.stdout.buffer.write(buffer.getvalue())


if __name__ == "__main__":
    try:
        _batch_main()
    except DataError as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(2)
