"""Preprocessing travels with the backbone: every backbone declares its preprocessing as data, a saved model folder
holds it as preprocessing.json, loading reads it back (editing it changes what the loaded model does), folders saved
before it existed load as before, and the ONNX export's preprocessing is rebuilt from the same config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_wav2vec2
from PIL import Image

from tlcore.errors import ConfigError
from tlcore.inference.onnx.families import describe, preprocessor
from tlcore.models.base import PREPROCESSING_FILE
from tlcore.models.efficientnet_lite import normalize_lite
from tlcore.models.registry import build_backbone
from tlcore.models.transfer_model import TransferModel
from tlcore.tasks import get_task
from tlcore.tasks.ner.model import TokenTagger

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"text": "tiny-text", "image": "tiny-image", "audio": "tiny-audio"}
LONG_TEXT = "the film was wonderful and the music was lovely from the first scene to the very last one"


def items_for(modality: str) -> list:
    rng = np.random.default_rng(0)
    if modality == "text":
        return ["a great film", LONG_TEXT, "terrible"]
    if modality == "image":
        return [Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)) for _ in range(3)]
    return [((0.1 * rng.standard_normal(n)).astype(np.float32), 16000) for n in (6000, 12000, 20000)]


def saved(folder: Path, backbone) -> tuple[TransferModel, Path]:
    model = TransferModel(backbone, ["a", "b", "c"], backbone_name="test", strategy="full")
    model.save_pretrained(folder)
    return model, folder


def edit(folder: Path, **changes) -> dict:
    path = folder / PREPROCESSING_FILE
    config = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps(config))
    return config


# ---------------------------------------------------------------- the saved config and the round trip

FACTS = {"text": {"kind": "hf_text", "max_length": 64, "padding": "longest", "truncation": True},
         "image": {"kind": "efficientnet_lite", "image_size": 32, "interpolation": "bilinear", "crop": None,
                   "keep_aspect_ratio": False, "mean": [127 / 255] * 3, "std": [128 / 255] * 3, "color": "RGB"},
         "audio": {"kind": "whisper_encoder", "sample_rate": 16000, "chunk_seconds": 1.0, "channels": "mono",
                   "mel_bins": 80, "hop_length": 160}}


@pytest.mark.parametrize("modality", ["text", "image", "audio"])
def test_a_saved_model_folder_holds_the_backbones_preprocessing_and_round_trips(tmp_path, modality):
    backbone = build_backbone(TINY[modality], modality)
    model, folder = saved(tmp_path / "model", backbone)
    config = json.loads((folder / PREPROCESSING_FILE).read_text())
    assert config == json.loads(json.dumps(backbone.preprocessing())) and config["modality"] == modality
    assert FACTS[modality].items() <= config.items()

    items = items_for(modality)
    loaded = TransferModel.from_pretrained(folder)
    assert loaded.backbone.preprocessing() == config
    assert np.array_equal(loaded.predict_proba(items), model.predict_proba(items))


@pytest.mark.parametrize("modality", ["text", "image", "audio"])
def test_a_folder_saved_before_preprocessing_json_still_loads_the_same(tmp_path, modality):
    model, folder = saved(tmp_path / "model", build_backbone(TINY[modality], modality))
    (folder / PREPROCESSING_FILE).unlink()
    loaded = TransferModel.from_pretrained(folder)
    items = items_for(modality)
    assert loaded.backbone.preprocessing() == model.backbone.preprocessing()
    assert np.array_equal(loaded.predict_proba(items), model.predict_proba(items))


def test_lite_normalisation_from_the_config_is_exactly_effnet_lites():
    backbone = build_backbone("tiny-image", "image")
    pixels = backbone.pixels(items_for("image"))
    assert torch.equal(backbone.normalize(pixels), normalize_lite(pixels))


# ---------------------------------------------------------------- the config is read back

def test_editing_max_length_changes_the_loaded_text_model(tmp_path):
    model, folder = saved(tmp_path / "model", build_backbone("tiny-text", "text"))
    edit(folder, max_length=6)
    loaded = TransferModel.from_pretrained(folder)
    assert loaded.backbone.max_length == 6
    assert loaded.backbone.preprocess([LONG_TEXT])["input_ids"].shape[1] == 6
    assert model.backbone.preprocess([LONG_TEXT])["input_ids"].shape[1] > 6
    assert not np.allclose(loaded.predict_proba([LONG_TEXT]), model.predict_proba([LONG_TEXT]))


def test_editing_the_image_size_and_normalisation_changes_the_loaded_image_model(tmp_path):
    model, folder = saved(tmp_path / "model", build_backbone("tiny-image", "image"))
    items = items_for("image")
    edit(folder, image_size=48)
    loaded = TransferModel.from_pretrained(folder)
    assert loaded.backbone.image_size == 48 and loaded.backbone.preprocess(items)["pixel_values"].shape[-2:] == (48, 48)
    edit(folder, image_size=32, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], interpolation="nearest")
    again = TransferModel.from_pretrained(folder)
    x = again.backbone.pixels(items)
    assert torch.allclose(again.backbone.normalize(x)[:, 0], (x[:, 0] - 0.485) / 0.229, atol=1e-5)
    assert not np.allclose(again.predict_proba(items), model.predict_proba(items))


def test_an_audio_config_the_saved_model_cannot_use_is_refused(tmp_path):
    _, folder = saved(tmp_path / "model", build_backbone("tiny-audio", "audio"))
    edit(folder, sample_rate=8000)
    with pytest.raises(ConfigError, match="sample_rate 8000 is not the feature extractor's"):
        TransferModel.from_pretrained(folder)
    edit(folder, sample_rate=16000, chunk_seconds=3.0)
    with pytest.raises(ConfigError, match="chunk_seconds 3 does not fit the saved encoder"):
        TransferModel.from_pretrained(folder)
    edit(folder, chunk_seconds=1.0, kind="hf_text")
    with pytest.raises(ConfigError, match="describes a 'hf_text' backbone"):
        TransferModel.from_pretrained(folder)


def test_the_ner_tagger_reads_its_saved_preprocessing(tmp_path):
    tagger = TokenTagger(build_backbone("tiny-text", "text"), ["O", "B-PER", "I-PER"], backbone_name="tiny-text")
    tagger.save_pretrained(tmp_path / "ner")
    assert json.loads((tmp_path / "ner" / PREPROCESSING_FILE).read_text())["max_length"] == 64
    edit(tmp_path / "ner", max_length=12)
    assert TokenTagger.from_pretrained(tmp_path / "ner").max_length == 12


# ---------------------------------------------------------------- Hugging Face folders (save_pretrained)

@pytest.fixture(scope="module")
def hf_image_folder(tmp_path_factory):
    """A tiny random ResNet with an image processor, saved as a local ``save_pretrained`` folder."""
    from transformers import ResNetConfig, ResNetModel, ViTImageProcessor

    folder = tmp_path_factory.mktemp("resnet") / "model"
    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1])).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def hf_audio_folder(tmp_path_factory):
    return make_tiny_wav2vec2(tmp_path_factory.mktemp("w2v") / "model")


def test_a_hugging_face_image_encoder_saves_its_processor_settings_and_reads_them_back(tmp_path, hf_image_folder):
    backbone = build_backbone(str(hf_image_folder), "image")
    model, folder = saved(tmp_path / "model", backbone)
    config = json.loads((folder / PREPROCESSING_FILE).read_text())
    assert config["kind"] == "hf_image" and config["processor"] == "ViTImageProcessor"
    assert config["size"] == {"height": 32, "width": 32} and config["image_mean"] == [0.5, 0.5, 0.5]
    items = items_for("image")
    assert np.array_equal(TransferModel.from_pretrained(folder).predict_proba(items), model.predict_proba(items))
    edit(folder, size={"height": 24, "width": 24}, image_mean=[0.4, 0.4, 0.4])
    loaded = TransferModel.from_pretrained(folder).backbone
    assert loaded.preprocess(items)["pixel_values"].shape[-2:] == (24, 24)
    assert loaded.preprocessing()["image_mean"] == [0.4, 0.4, 0.4] and list(loaded.processor.image_mean) == [0.4] * 3


def test_a_hugging_face_audio_encoder_round_trips(tmp_path, hf_audio_folder):
    backbone = build_backbone(str(hf_audio_folder), "audio")
    model, folder = saved(tmp_path / "model", backbone)
    config = json.loads((folder / PREPROCESSING_FILE).read_text())
    assert config == {"kind": "hf_audio", "modality": "audio", "feature_extractor": "Wav2Vec2FeatureExtractor",
                      "sample_rate": 16000, "channels": "mono", "padding": "longest"}
    items = items_for("audio")
    assert np.allclose(TransferModel.from_pretrained(folder).predict_proba(items), model.predict_proba(items), atol=1e-6)


# ---------------------------------------------------------------- the ONNX export reads the same config

@pytest.mark.parametrize("modality", ["text", "image", "audio"])
def test_the_export_preprocessing_is_rebuilt_from_the_backbones_config(tmp_path, modality):
    backbone = build_backbone(TINY[modality], modality)
    backbone.save_processor(tmp_path)
    config = json.loads(json.dumps(backbone.preprocessing()))
    items = items_for(modality)
    want = backbone.preprocess(items)
    got = preprocessor(config["kind"], tmp_path, config)(items)
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    # an export written before the whole config was saved holds only these attrs
    legacy = {"text": {"max_length": 64}, "image": {"image_size": 32}, "audio": {"sample_rate": 16000}}[modality]
    old = preprocessor(config["kind"], tmp_path, legacy)(items)
    assert all(torch.equal(want[k], old[k]) for k in want)

    doc = describe(config["kind"], config, get_task("classify"))
    if modality == "image":
        assert doc["image"]["normalize"].startswith("(x * 255 - 127) / 128") and doc["image"]["resize"]["width"] == 32
    if modality == "text":
        assert doc["text"]["max_length"] == 64 and "max_length=64" in doc["python"][-1]
    if modality == "audio":
        assert doc["audio"]["sample_rate"] == 16000 and doc["audio"]["clip_seconds"] == 1.0


def test_an_edited_config_reaches_the_export_description(tmp_path):
    backbone = build_backbone("tiny-image", "image")
    backbone.use_preprocessing({"image_size": 40, "interpolation": "bicubic"})
    doc = describe("efficientnet_lite", backbone.preprocessing(), get_task("classify"))
    assert doc["image"]["resize"]["width"] == 40 and "bicubic" in doc["steps"][0] and "Image.BICUBIC" in doc["python"][1]
    with pytest.raises(ConfigError, match="unknown backbone kind 'nope'"):
        preprocessor("nope", tmp_path, {})
