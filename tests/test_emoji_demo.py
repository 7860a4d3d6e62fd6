"""The ``emoji`` demo: layout, held-out glyphs, a real style shift (colour vs line art), determinism, fonts missing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tlcore.data.demos import DEMOS, SPLITS, emoji, list_demos, make_demo
from tlcore.errors import DataError

LABELED = ("source", "target", "eval")


def _require_fonts() -> None:
    why_not = emoji._emoji_available()
    if why_not:
        pytest.skip(why_not)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The small demo: twice with seed 0, once with seed 1 (made lazily, once each)."""
    cache: dict = {}

    def get(seed: int = 0, copy: int = 0) -> Path:
        _require_fonts()
        if (seed, copy) not in cache:
            cache[seed, copy] = make_demo("emoji", tmp_path_factory.mktemp(f"emoji-s{seed}-{copy}") / "demo",
                                          seed=seed, size="small")
        return cache[seed, copy]

    return get


def _code_points(folder: Path) -> dict[str, set[str]]:
    """{label: code points} from the labeled file names ``<label>_<n>_<code point>.png``."""
    out: dict[str, set[str]] = {}
    for path in folder.rglob("*.png"):
        label, number, cp = path.stem.rsplit("_", 2)
        assert label == path.parent.name and number.isdigit()
        out.setdefault(label, set()).add(cp)
    return out


def _saturation(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("HSV"), dtype=np.float32)[..., 1] / 255


def test_registered_first_among_image_demos():
    images = [spec.name for spec in list_demos() if spec.modality == "image"]
    assert images[0] == "emoji" and {"digits", "fashion-shift"} <= set(images)
    spec = DEMOS.get("emoji")
    assert "SIL Open Font License 1.1" in spec.license and "Symbola" in spec.license


def test_every_listed_glyph_is_drawn_by_both_fonts():
    _require_fonts()
    noto, symbola, dropped = emoji._glyphs(emoji.NOTO_FONT, emoji.SYMBOLA_FONT)
    assert dropped == (), f"glyphs a font lacks or draws blank: {[emoji.code_name(c) for c in dropped]}"
    listed = [cp for cps in emoji.CATEGORIES.values() for cp in cps]
    assert len(listed) == len(set(listed)) and 220 <= len(listed) <= 270  # no glyph in two categories
    assert set(noto) == set(symbola) == set(listed)
    assert all(len(cps) >= 9 for cps in emoji.usable_glyphs().values())


def test_glyph_split_holds_out_glyphs_per_category():
    glyphs = {cat: list(cps) for cat, cps in emoji.CATEGORIES.items()}
    split = emoji.split_glyphs(glyphs, np.random.default_rng(0))
    for cat, parts in split.items():
        assert len(parts["eval"]) >= 2 and len(parts["train"]) >= 2
        assert not set(parts["eval"]) & set(parts["train"])
        assert sorted(parts["eval"] + parts["train"]) == sorted(glyphs[cat])
    assert split != emoji.split_glyphs(glyphs, np.random.default_rng(1))
    with pytest.raises(DataError, match="only 3 glyphs"):
        emoji.split_glyphs({"tiny": [1, 2, 3]}, np.random.default_rng(0))


def test_small_demo_layout(made):
    from PIL import Image

    out = made()
    manifest = json.loads((out / "demo.json").read_text())
    sizes = emoji._EMOJI_SIZES["small"]
    for split in LABELED:
        assert sorted(d.name for d in (out / split).iterdir() if d.is_dir()) == sorted(emoji.CATEGORIES)
        assert (out / split / "groups.csv").is_file()
        assert manifest["counts"][split]["per_class"] == {c: getattr(sizes, split) for c in sorted(emoji.CATEGORIES)}
    unlabeled = sorted((out / "unlabeled").iterdir())
    assert all(p.is_file() and p.name.startswith("img_") for p in unlabeled)
    assert len(unlabeled) == sizes.unlabeled * len(emoji.CATEGORIES) == manifest["counts"]["unlabeled"]["total"]
    for path in [*(out / "eval").rglob("*.png")][:5] + unlabeled[:5]:
        with Image.open(path) as im:
            assert (im.format, im.mode, im.size) == ("PNG", "RGB", (emoji.IMAGE_SIZE, emoji.IMAGE_SIZE))


def test_eval_glyphs_are_unseen_in_every_training_split(made):
    out = made()
    key = json.loads((out / "glyphs.json").read_text())
    by_split = {split: _code_points(out / split) for split in LABELED}
    for split, per_label in by_split.items():
        for label, cps in per_label.items():  # each file's glyph belongs to its label's category
            assert cps <= {emoji.code_name(cp) for cp in emoji.CATEGORIES[label]}, (split, label)
            part = "eval" if split == "eval" else "train"
            assert cps <= set(key["categories"][label][part]), (split, label)
    eval_cps = set().union(*by_split["eval"].values())
    for split in ("source", "target"):
        assert not eval_cps & set().union(*by_split[split].values()), split
    assert len(key["unlabeled"]) == len(list((out / "unlabeled").iterdir()))
    assert not eval_cps & set(key["unlabeled"])


def test_the_two_domains_differ_in_colour(made):
    """Noto Color Emoji is colourful; Symbola is black ink on light, nearly colourless backgrounds."""
    out = made()
    colourful = {split: [float((_saturation(p) > 0.3).mean()) for p in sorted((out / split).rglob("*.png"))]
                 for split in ("source", "target", "eval", "unlabeled")}
    assert np.mean(colourful["source"]) > 0.15
    assert np.mean([share > 0.02 for share in colourful["source"]]) > 0.8
    for split in ("target", "eval", "unlabeled"):
        assert max(colourful[split]) == 0.0, split


def test_same_seed_same_bytes_other_seed_differs(made):
    def hashes(root: Path) -> dict[str, str]:
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    first, again, other = made(), made(copy=1), made(seed=1)
    assert hashes(first) == hashes(again)
    assert json.loads((other / "glyphs.json").read_text())["categories"] != \
        json.loads((first / "glyphs.json").read_text())["categories"]
    for split in SPLITS:
        assert set(hashes(first / split).values()) != set(hashes(other / split).values())


@pytest.mark.parametrize("missing", [("NOTO_FONT",), ("SYMBOLA_FONT",), ("NOTO_FONT", "SYMBOLA_FONT")])
def test_unavailable_without_the_fonts_names_the_packages(tmp_path, monkeypatch, missing):
    packages = {"NOTO_FONT": "fonts-noto-color-emoji", "SYMBOLA_FONT": "fonts-symbola"}
    for name in missing:
        monkeypatch.setattr(emoji, name, tmp_path / "no-such-font.ttf")
    why_not = DEMOS.get("emoji").available()
    assert why_not and "sudo apt-get install" in why_not and "scripts/system-deps.sh" in why_not
    assert all((packages[name] in why_not) == (name in missing) for name in packages)
    with pytest.raises(DataError, match="apt-get install"):
        make_demo("emoji", tmp_path / "demo", size="small")
    assert not (tmp_path / "demo").exists()


def test_every_labeled_split_declares_its_glyphs_as_groups(made):
    """Each drawing's group is its glyph (groups.csv), so intervals resample glyphs, not renderings of one glyph."""
    from tlcore.data.loaders import load_dataset

    demo = made()
    for part in ("source", "target", "eval"):
        ds = load_dataset(demo / part, "image")
        assert ds.groups is not None and len(ds.groups) == len(ds)
        assert ds.groups == [Path(item).stem.rsplit("_", 1)[1] for item in ds.items]
    eval_groups = load_dataset(demo / "eval", "image").groups
    assert len(set(eval_groups)) < len(eval_groups)   # several drawings per eval glyph: that is why groups matter
    assert load_dataset(demo / "unlabeled", "image").groups is None
