"""The kinds of speech recognizer the ASR task takes, one registry line each, found from the model's config:
Whisper (``model_type == "whisper"``) and encoders with a CTC head (an ``...ForCTC`` architecture: wav2vec2, HuBERT,
WavLM, ...). A folder's config is its ``config.json``; a hub id's is read with ``AutoConfig`` (online users); the
bundled Whisper is known by its name. Nothing here loads weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from transformers import AutoConfig

from tlcore.errors import ConfigError, first_line
from tlcore.registry import Registry
from tlcore.tasks.asr.ctc import CtcRecognizer
from tlcore.tasks.asr.model import BUNDLED_NAMES, resolve_backbone
from tlcore.tasks.asr.recognizer import Recognizer
from tlcore.tasks.asr.whisper import WhisperRecognizer

KINDS: Registry[type[Recognizer]] = Registry("speech recognizer kind")
KINDS.register(WhisperRecognizer.kind, WhisperRecognizer)
KINDS.register(CtcRecognizer.kind, CtcRecognizer)


def read_config(source: Path | str) -> dict:
    """The model config of a folder (its ``config.json``) or a hub id (``AutoConfig``), as a dict."""
    folder = Path(str(source))
    try:
        if folder.is_dir():
            return json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return AutoConfig.from_pretrained(str(source)).to_dict()
    except (OSError, ValueError) as exc:   # a damaged file, an unknown id, no connection
        raise ConfigError(f"cannot read the model config of the speech recognition backbone {str(source)!r} "
                          f"({first_line(exc)[:200]}); check the folder or the model id (hub ids need "
                          "a connection)") from None


def kind_of_config(config: dict, name: str) -> type[Recognizer]:
    """The recognizer kind of a model with ``config``; ConfigError naming what the model is when no kind takes it."""
    for kind in map(KINDS.get, KINDS.names()):
        if kind.matches(config):
            return kind
    what = ", ".join(map(str, config.get("architectures") or [])) or f"{config.get('model_type', 'unknown')!r} model"
    raise ConfigError(f"{name} is a {what}: speech recognition takes a Whisper model or an encoder with a CTC head "
                      "saved with its processor (e.g. Wav2Vec2ForCTC with its Wav2Vec2Processor); a speech encoder "
                      "without a CTC head (and its character vocabulary) cannot transcribe")


def kind_of(source: Path | str, name: str) -> type[Recognizer]:
    return kind_of_config(read_config(source), name)


def local_kind(backbone: Optional[str]) -> Optional[type[Recognizer]]:
    """The kind of ``backbone`` when it can be told without the network (the bundled Whisper, a local folder);
    None for a hub id, whose config is read when the run starts."""
    if backbone in BUNDLED_NAMES:
        return WhisperRecognizer
    if not Path(str(backbone)).expanduser().is_dir():
        return None
    return kind_of(*resolve_backbone(backbone))


def check_strategy(kind: type[Recognizer], strategy: str, name: str) -> None:
    """ConfigError in one line when ``kind`` cannot train with ``strategy``."""
    if strategy not in kind.strategies:
        why = kind.refusals.get(strategy)
        raise ConfigError(f"strategy {strategy!r} is not available for {name}, a {kind.title}"
                          f"{': ' + why if why else ''}; use --strategy {' or '.join(kind.strategies)}")


def recognizer_for(backbone: Optional[str]) -> tuple[Recognizer, str]:
    """The pretrained recognizer ``backbone`` names (loaded) and its display name."""
    source, name = resolve_backbone(backbone)
    return kind_of(source, name).load(source), name


def loaded_recognizer(model: Any, processor: Any) -> Recognizer:
    """A recognizer around a model already loaded (a run's cached ``(model, processor)``), its kind from its config."""
    config = model.config.to_dict()
    config["architectures"] = config.get("architectures") or [type(model).__name__]
    return kind_of_config(config, type(model).__name__)(model, processor)
