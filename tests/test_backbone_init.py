"""Backbone initialisation: the random-init twin follows the run's seed, pretrained weights do not, and building
a backbone never touches the caller's global torch RNG."""

import pytest
import torch

from tlcore.config import FinetuneConfig
from tlcore.errors import ConfigError
from tlcore.models.registry import TINY_PRETRAINED_SEED, build_backbone
from tlcore.models.transfer_model import TransferModel

TINY = [("tiny-text", "text"), ("tiny-image", "image"), ("tiny-audio", "audio")]
# real backbones whose weights ship in pip packages (offline); all build in well under a second once installed
REAL = [("minilm-l6", "text"), ("efficientnet-lite0-128", "image"),
        pytest.param("whisper-tiny-en", "audio", marks=pytest.mark.slow)]   # converts a CTranslate2 export once


def _build(name, modality, **kw):
    try:
        return build_backbone(name, modality, **kw)
    except (ConfigError, ImportError) as exc:   # the real weights' package is not installed here
        pytest.skip(f"{name} not available: {exc}")


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# deterministic, not random, at init: Whisper's encoder position embeddings are fixed sinusoids
_NOT_RANDOM = ("embed_positions",)


def _assert_differ(a: dict, b: dict) -> None:
    """Every randomly initialised weight matrix / kernel (>= 2-D float tensor) differs between the two."""
    assert a.keys() == b.keys()
    weights = [k for k, v in a.items() if v.is_floating_point() and v.dim() >= 2 and v.numel() > 1
               and not any(n in k for n in _NOT_RANDOM)]
    assert weights
    same = [k for k in weights if torch.equal(a[k], b[k])]
    assert not same, f"identical weights: {same[:5]}"


@pytest.mark.parametrize("name,modality", TINY)
def test_tiny_random_init_differs_from_pretrained(name, modality):
    pre = _state(build_backbone(name, modality, pretrained=True))
    for seed in (None, 0, 1, 2):
        _assert_differ(pre, _state(build_backbone(name, modality, pretrained=False, seed=seed)))


@pytest.mark.parametrize("name,modality", TINY)
def test_tiny_random_init_follows_seed(name, modality):
    one = _state(build_backbone(name, modality, pretrained=False, seed=1))
    two = _state(build_backbone(name, modality, pretrained=False, seed=2))
    _assert_differ(one, two)
    assert _same(one, _state(build_backbone(name, modality, pretrained=False, seed=1)))
    # seed=None keeps the old default: the twin is the seed-0 network every time
    assert _same(_state(build_backbone(name, modality, pretrained=False)),
                 _state(build_backbone(name, modality, pretrained=False, seed=0)))
    # the NAME@random spelling is the same twin, and passes the seed through
    at_random = build_backbone(f"{name}@random", modality, seed=2)
    assert _same(two, _state(at_random))
    assert at_random.backbone_name == f"{name}@random" and at_random.pretrained is False


@pytest.mark.parametrize("name,modality", TINY)
def test_tiny_pretrained_weights_are_fixed(name, modality):
    """The tiny "pretrained" weights are one fixed network: independent of seed and of the caller's RNG."""
    torch.manual_seed(1)
    a = _state(build_backbone(name, modality, pretrained=True, seed=1))
    torch.manual_seed(2)
    torch.rand(10)
    b = _state(build_backbone(name, modality, pretrained=True, seed=2))
    assert _same(a, b)
    assert _same(a, _state(build_backbone(name, modality)))
    assert build_backbone(name, modality).pretrained is True
    assert TINY_PRETRAINED_SEED > 2**32   # no ordinary --seed reproduces them


@pytest.mark.parametrize("name,modality", TINY)
def test_random_init_ignores_callers_rng_state(name, modality):
    torch.manual_seed(5)
    a = _state(build_backbone(name, modality, pretrained=False, seed=3))
    torch.manual_seed(6)
    torch.rand(100)
    b = _state(build_backbone(name, modality, pretrained=False, seed=3))
    assert _same(a, b)


@pytest.mark.parametrize("pretrained,seed", [(True, None), (False, None), (False, 7)])
@pytest.mark.parametrize("name,modality", TINY)
def test_build_leaves_global_rng_alone(name, modality, pretrained, seed):
    torch.manual_seed(1234)
    torch.rand(3)   # a state that is not just the one right after seeding
    state, initial = torch.get_rng_state().clone(), torch.initial_seed()
    build_backbone(name, modality, pretrained=pretrained, seed=seed)
    assert torch.initial_seed() == initial == 1234
    assert torch.equal(torch.get_rng_state(), state)
    after_build = torch.rand(5)
    torch.set_rng_state(state)
    assert torch.equal(after_build, torch.rand(5))


@pytest.mark.parametrize("name,modality", REAL)
def test_real_backbone_random_twin(name, modality):
    torch.manual_seed(99)
    state = torch.get_rng_state().clone()
    pre = _state(_build(name, modality))
    one = _state(_build(f"{name}@random", modality, seed=1))
    assert torch.initial_seed() == 99 and torch.equal(torch.get_rng_state(), state)
    two = _state(_build(name, modality, pretrained=False, seed=2))
    _assert_differ(pre, one)
    _assert_differ(one, two)
    assert _same(one, _state(_build(name, modality, pretrained=False, seed=1)))
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name,modality", TINY)
def test_scratch_baseline_starts_from_random_weights(name, modality):
    """What ``pipeline.scratch_twin`` does: seed, build the random-init twin, wrap it as the "scratch" model."""
    pretrained = _state(build_backbone(name, modality, pretrained=True))
    twins = {}
    for seed in (0, 1):
        cfg = FinetuneConfig(modality=modality, backbone=name, strategy="full", seed=seed)
        torch.manual_seed(cfg.seed)
        state = torch.get_rng_state().clone()
        model = TransferModel(build_backbone(cfg.backbone, cfg.modality, pretrained=False, seed=cfg.seed),
                              ["a", "b"], strategy="scratch")
        assert model.backbone.pretrained is False
        _assert_differ(pretrained, _state(model.backbone))
        # the twin's init did not consume the run's RNG: the head is drawn exactly as if no backbone had been built
        torch.set_rng_state(state)
        head = torch.nn.Linear(model.backbone.feature_dim, 2)
        assert torch.equal(head.weight, model.head.weight)
        twins[seed] = _state(model.backbone)
    _assert_differ(twins[0], twins[1])
    # today's call (no seed) still gives a random twin, not the pretrained weights
    cfg = FinetuneConfig(modality=modality, backbone=name, seed=5)
    torch.manual_seed(cfg.seed)
    _assert_differ(pretrained, _state(build_backbone(cfg.backbone, cfg.modality, pretrained=False)))


def test_run_passes_its_seed_to_the_scratch_twin(tmp_path, monkeypatch):
    """End to end: the classification run builds its scratch twin with the run's --seed (was always seed 0)."""
    import tlcore.tasks.classification.scratch as inductive  # the scratch twin is built there
    from tlcore.config import FinetuneConfig
    from tlcore.settings.inductive import run_finetune

    data = tmp_path / "t.csv"
    data.write_text("text,label\n" + "".join(f"good thing {i},pos\nbad thing {i},neg\n" for i in range(6)))
    seen = []
    real = inductive.build_backbone

    def spy(name, modality, pretrained=True, **kw):
        seen.append((pretrained, kw.get("seed")))
        return real(name, modality, pretrained, **kw)

    monkeypatch.setattr(inductive, "build_backbone", spy)
    cfg = FinetuneConfig(modality="text", backbone="tiny-text", target=str(data), out=str(tmp_path / "run"),
                         strategy="linear_probe", epochs=1, seed=7, baselines=["scratch"])
    run_finetune(cfg)
    assert (False, 7) in seen
