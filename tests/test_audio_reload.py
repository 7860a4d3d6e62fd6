"""A saved audio classifier on the real Whisper encoder predicts after it is loaded again (the saved feature
extractor stores its window as a float; the reloaded one must still pad by whole samples)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import write_wav
from tlcore.models.registry import build_backbone
from tlcore.models.transfer_model import TransferModel


def test_whisper_encoder_classifier_predicts_after_save_and_load(tmp_path, one_thread):
    try:
        backbone = build_backbone("whisper-tiny-en", "audio", pretrained=True)
    except Exception as exc:  # noqa: BLE001 - the weights package is optional here
        pytest.skip(f"whisper-tiny-en is not available: {exc}")
    clip = tmp_path / "a.wav"
    write_wav(clip, 440.0, seconds=0.7)
    model = TransferModel(backbone, ["a", "b"], backbone_name="whisper-tiny-en", strategy="linear_probe")
    expected = model.predict_proba([str(clip)])
    model.save_pretrained(tmp_path / "model")
    again = TransferModel.from_pretrained(tmp_path / "model")
    fe = again.backbone.feature_extractor
    assert isinstance(fe.n_samples, int) and isinstance(fe.nb_max_frames, int)
    assert np.allclose(again.predict_proba([str(clip)]), expected, atol=1e-5)
