"""Built-in demo data sets, generated offline from installed packages, each showing one domain shift.

Every demo writes the DESIGN.md formats into one folder: ``source`` (labeled source domain), ``target``
(small labeled target set), ``eval`` (labeled held-out target set, disjoint from ``target``) and
``unlabeled`` (target-domain items without labels, disjoint from ``eval``), plus ``demo.json``
(name, seed, size, counts per split and class, license). Generation is seeded: the same seed gives
byte-identical files. It happens in a temporary folder that is renamed into place when complete, so a
folder is either a finished demo or absent.

    make_demo("digits", "demo-out", seed=0)   # writes demo-out/{source,target,eval,unlabeled,demo.json}
    demo_dir("digits")                        # the same, cached under cache_dir("demos", ...)

One module per demo (``emoji``, ``digits``, ``fashion``, ``sentiment``, ``spoken_digits``, ``accent_asr``,
``ner_shift``) registers its :class:`DemoSpec` into :data:`DEMOS` on import; the shared writers live in
``_common`` and the eSpeak NG binding in ``espeak``. Heavy libraries are imported only when a demo is made.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from tlcore.data.demos._common import (
    DEMOS,
    DIGIT_NAMES,
    FORMAT_VERSION,
    MANIFEST,
    SIZES,
    SPLITS,
    SPOKEN_RATE,
    DemoSpec,
    _count_split,
    _is_finished,
    _move_into_place,
    _read_manifest,
)
from tlcore.errors import ConfigError, DataError
from tlcore.paths import cache_dir

# Each module registers its demo on import, so this order is list_demos() order: keep it (emoji is the first
# image demo).
# isort: off
from tlcore.data.demos import emoji, digits, fashion, sentiment, spoken_digits  # noqa: F401
from tlcore.data.demos import accent_asr, ner_shift  # noqa: F401
from tlcore.data.demos import digit_strips  # noqa: F401
# isort: on

__all__ = [
    "DEFAULT_DEMOS", "DEMOS", "DIGIT_NAMES", "FORMAT_VERSION", "MANIFEST", "SIZES", "SPLITS", "SPOKEN_RATE",
    "DemoSpec", "demo_dir", "list_demos", "make_demo",
]

#: The demo a first-time user meets for each modality (the app's Home cards; its worker makes their data ahead).
DEFAULT_DEMOS = {"image": "emoji", "text": "sentiment", "audio": "spoken-digits"}


def list_demos() -> list[DemoSpec]:
    """All registered demos, in registration order."""
    return [DEMOS.get(name) for name in DEMOS.names()]


def make_demo(name: str, out: Path | str, *, seed: int = 0, size: str = "default") -> Path:
    """Write demo ``name`` into ``out`` and return ``out``.

    A finished demo of the same name, seed and size already in ``out`` is kept as is. ``out`` may be
    absent or an empty folder; anything else raises DataError (nothing of the user's is deleted).
    """
    spec = DEMOS.get(name)
    if size not in SIZES:
        raise ConfigError(f"unknown demo size {size!r}; use one of {', '.join(SIZES)}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"the demo seed must be a non-negative integer, not {seed!r}")
    out = Path(out).expanduser()
    if _is_finished(out, name, seed, size):
        return out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(
            f"{out} already exists and is not the {name!r} demo (seed {seed}, size {size}); "
            "choose a new or empty folder (nothing was changed)"
        )
    why_not = spec.available()
    if why_not:
        raise DataError(f"demo {name!r} is not available: {why_not}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        spec.make(partial, seed, size)
        manifest = {
            "name": name, "modality": spec.modality, "task": spec.task, "seed": seed, "size": size,
            "version": FORMAT_VERSION, "description": spec.description, "license": spec.license,
            "counts": {split: _count_split(partial / split, spec) for split in SPLITS},
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _move_into_place(partial, out)
    except DataError:
        shutil.rmtree(partial, ignore_errors=True)
        if _is_finished(out, name, seed, size):  # another process finished the same demo first
            return out
        raise
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out


def demo_dir(name: str, *, seed: int = 0, size: str = "default") -> Path:
    """The cached copy of a demo under ``cache_dir("demos", "<name>-<size>-s<seed>")``, made on first use."""
    DEMOS.get(name)
    path = cache_dir("demos", f"{name}-{size}-s{seed}")
    if _is_finished(path, name, seed, size):
        return path
    # Another process making the same demo (the worker prepares the Home demos while the app starts): wait for it
    # rather than making it a second time beside it. filelock comes with torch; the lock goes with its process.
    from filelock import FileLock

    with FileLock(str(path.parent / f".{path.name}.lock")):
        manifest = _read_manifest(path)
        if manifest and manifest.get("version") != FORMAT_VERSION:
            shutil.rmtree(path)  # our own cache, made by an older generator
        return make_demo(name, path, seed=seed, size=size)
