"""Domain adaptation on features: each method against a synthetic shift where source-only provably fails.

The shifted problem: 3 Gaussian classes in 20-D. Dims 0–2 carry the class (mean 3 on the class's own
axis) in both domains. In the source, dims 3–5 carry the class as well (a spurious cue), so a source
classifier leans on them; in the target that block is shifted onto class 0's cue for every item
(x_t[3:6] = noise + (3, 0, 0)). Source-only heads therefore call much of the target "class 0"
(≈ 0.66 accuracy), while a target-labelled oracle gets ≈ 0.98. Target labels are used only to score.
"""

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from tlcore.adaptation import (
    METHODS,
    AdapterResult,
    GradientReversalLayer,
    adabn,
    coral_align,
    deep_coral_loss,
    domain_adversarial_loss,
    grl_coefficient,
    mcc_loss,
    reverse_gradient,
    select_pseudo_labels,
    self_train,
    train_adapter,
)
from tlcore.adaptation import trainer as trainer_mod
from tlcore.adaptation.trainer import _fold_standardisation, select_trade_off

MARGIN = 0.10   # every method gains ≥ 0.14 over source-only on seeds 0–4 of this problem; 0.10 leaves slack


def shifted_problem(n=150, d=20, c=3, sep=3.0, spur=3.0, seed=0):
    rng = np.random.default_rng(seed)

    def draw(target):
        y = np.repeat(np.arange(c), n)
        x = rng.normal(size=(len(y), d))
        x[np.arange(len(y)), y] += sep
        if target:
            x[:, c] += spur                      # spurious block collapsed onto class 0's cue
        else:
            x[np.arange(len(y)), c + y] += spur  # spurious block agrees with the class
        return x.astype(np.float32), y

    xs, ys = draw(False)
    xt, yt = draw(True)
    return xs, ys, xt, yt


@pytest.fixture(scope="module")
def problem():
    return shifted_problem()


def accuracy(head: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((head(torch.as_tensor(x)).argmax(1).numpy() == y).mean())


@pytest.fixture(scope="module")
def lr_source_only(problem):
    xs, ys, xt, yt = problem
    return float((LogisticRegression(max_iter=2000).fit(xs, ys).predict(xt) == yt).mean())


@pytest.fixture(scope="module")
def mlp_source_only(problem):
    xs, ys, xt, yt = problem
    return accuracy(train_adapter(xs, ys, xt, 3, method="source_only", seed=0).head, xt, yt)


def test_problem_is_shifted_but_learnable(problem, lr_source_only, mlp_source_only):
    xs, ys, xt, yt = problem
    oracle = (LogisticRegression(max_iter=2000).fit(xt, yt).predict(xt) == yt).mean()
    assert oracle > 0.95
    assert lr_source_only < 0.75 and mlp_source_only < 0.75


# --- CORAL -------------------------------------------------------------------------------------------------

def test_coral_align_matches_target_moments():
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(500, 4)) @ rng.normal(size=(4, 4))
    xt = rng.normal(size=(400, 4)) @ rng.normal(size=(4, 4)) + 5.0
    aligned = coral_align(xs, xt, eps=1e-8).astype(np.float64)
    np.testing.assert_allclose(aligned.mean(0), xt.mean(0), atol=1e-4)
    np.testing.assert_allclose(np.cov(aligned, rowvar=False), np.cov(xt, rowvar=False), rtol=1e-3, atol=1e-3)


def test_coral_align_is_scale_invariant_and_validates():
    rng = np.random.default_rng(2)
    xs, xt = rng.normal(size=(50, 3)), rng.normal(size=(60, 3)) * 2
    np.testing.assert_allclose(coral_align(xs * 1000, xt * 1000), coral_align(xs, xt) * 1000, rtol=1e-4, atol=1e-2)
    with pytest.raises(ValueError, match="different dimensions"):
        coral_align(xs, xt[:, :2])
    with pytest.raises(ValueError, match="eps"):
        coral_align(xs, xt, eps=0)


def test_coral_align_beats_source_only(problem, lr_source_only):
    xs, ys, xt, yt = problem
    acc = (LogisticRegression(max_iter=2000).fit(coral_align(xs, xt), ys).predict(xt) == yt).mean()
    assert acc >= lr_source_only + MARGIN          # 0.84 vs 0.66


def test_deep_coral_loss_known_values():
    gen = torch.Generator().manual_seed(0)
    fs, ft = torch.randn(32, 5, generator=gen), torch.randn(40, 5, generator=gen) * 2
    assert float(deep_coral_loss(fs, fs)) == 0.0
    assert float(deep_coral_loss(fs, fs + 3.0)) == pytest.approx(0.0, abs=1e-6)   # a shift leaves covariances
    direct = ((np.cov(fs.numpy(), rowvar=False) - np.cov(ft.numpy(), rowvar=False)) ** 2).sum() / (4 * 5**2)
    assert float(deep_coral_loss(fs, ft)) == pytest.approx(direct, rel=1e-5)
    fs.requires_grad_(True)
    deep_coral_loss(fs, ft).backward()
    assert fs.grad is not None and fs.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        deep_coral_loss(fs, ft[:, :3])


# --- DANN --------------------------------------------------------------------------------------------------

def test_gradient_reversal_negates_gradient_times_lambda():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = reverse_gradient(x, 0.25)
    assert torch.equal(y, x)
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([-0.25, -0.5, -0.75]))
    layer = GradientReversalLayer(coeff=2.0)
    z = torch.ones(2, requires_grad=True)
    layer(z).sum().backward()
    assert torch.equal(z.grad, torch.full((2,), -2.0))


def test_grl_coefficient_schedule():
    assert grl_coefficient(0.0) == 0.0
    assert grl_coefficient(0.5) == pytest.approx(2 / (1 + np.exp(-5)) - 1)
    assert grl_coefficient(1.0) == pytest.approx(0.999909, abs=1e-6)
    values = [grl_coefficient(p) for p in np.linspace(0, 1, 11)]
    assert values == sorted(values)


def test_domain_adversarial_loss_reverses_feature_gradient():
    torch.manual_seed(0)
    disc = nn.Linear(3, 1)
    fs, ft = torch.randn(8, 3, requires_grad=True), torch.randn(8, 3)
    loss, acc = domain_adversarial_loss(disc, fs, ft, coeff=0.5)
    loss.backward()
    reversed_grad = fs.grad.clone()
    fs.grad = None
    ls = nn.functional.binary_cross_entropy_with_logits(disc(fs).squeeze(1), torch.ones(8))
    lt = nn.functional.binary_cross_entropy_with_logits(disc(ft).squeeze(1), torch.zeros(8))
    (0.5 * (ls + lt)).backward()
    assert torch.allclose(reversed_grad, -0.5 * fs.grad, atol=1e-6)
    assert 0.0 <= acc <= 1.0


# --- MCC ---------------------------------------------------------------------------------------------------

def test_mcc_loss_prefers_confident_diagonal_predictions():
    confident = torch.eye(3).repeat(4, 1) * 10.0               # each item sure of one class, classes balanced
    confused = torch.tensor([[2.0, 2.0, 0.0], [0.0, 2.0, 2.0], [2.0, 0.0, 2.0]]).repeat(4, 1)
    assert float(mcc_loss(confident)) < float(mcc_loss(confused))
    assert float(mcc_loss(torch.eye(3) * 1000.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(mcc_loss(torch.zeros(6, 3))) == pytest.approx(2 / 3, abs=1e-6)   # uniform: (c − 1) / c
    with pytest.raises(ValueError):
        mcc_loss(torch.zeros(3))


# --- self-training -----------------------------------------------------------------------------------------

def test_select_pseudo_labels_threshold_and_class_cap():
    probs = np.array([[0.99, 0.01], [0.95, 0.05], [0.92, 0.08], [0.6, 0.4], [0.02, 0.98]])
    assert select_pseudo_labels(probs, 0.9, per_class_cap=10).tolist() == [0, 1, 2, 4]
    assert select_pseudo_labels(probs, 0.9, per_class_cap=2).tolist() == [0, 1, 4]   # class 0 can't take over


def test_self_train_beats_source_only(problem, lr_source_only):
    xs, ys, xt, yt = problem
    weight, bias, info = self_train(xs, ys, xt, 3, seed=0)
    assert weight.shape == (3, 20) and bias.shape == (3,)
    head = nn.Linear(20, 3)
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    acc = accuracy(head, xt, yt)
    assert acc >= lr_source_only + MARGIN          # 0.88 vs 0.66
    assert info["n_pseudo"] > 0 and 1 <= len(info["rounds"]) <= 5
    json.dumps(info)


def test_self_train_zero_rounds_is_source_only_logistic_regression(problem):
    xs, ys, xt, yt = problem
    weight, bias, info = self_train(xs, ys, xt, 3, rounds=0)
    pred = (torch.as_tensor(xt) @ weight.T + bias).argmax(1).numpy()
    pooled = np.concatenate([xs, xt]).astype(np.float64)
    mu, sd = pooled.mean(0), pooled.std(0) + 1e-6
    ref = LogisticRegression(max_iter=2000).fit((xs - mu) / sd, ys).predict((xt - mu) / sd)
    assert (pred == ref).mean() > 0.99 and info["n_pseudo"] == 0


# --- trainer -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["dann", "coral", "mcc"])
def test_train_adapter_beats_source_only(problem, mlp_source_only, method):
    xs, ys, xt, yt = problem
    result = train_adapter(xs, ys, xt, 3, method=method, seed=0)
    acc = accuracy(result.head, xt, yt)
    assert acc >= mlp_source_only + MARGIN         # dann 0.94, coral 0.83, mcc 0.94 vs 0.66
    assert result.source_val_accuracy > 0.9


def test_train_adapter_head_contract_and_determinism(problem):
    xs, ys, xt, _ = problem
    rng_state = torch.get_rng_state()
    calls = []
    a = train_adapter(xs, ys, xt, 3, method="dann", hidden=16, epochs=3, seed=3, progress=calls.append)
    with torch.no_grad():                                              # trains anyway
        b = train_adapter(xs, ys, xt, 3, method="dann", hidden=16, epochs=3, seed=3)
    assert torch.equal(torch.get_rng_state(), rng_state)               # caller's RNG untouched
    head = a.head
    assert isinstance(head, nn.Sequential) and [type(m) for m in head] == [nn.Linear, nn.ReLU, nn.Linear]
    assert not head.training and head[0].in_features == 20 and head[2].out_features == 3
    for k, v in a.head.state_dict().items():
        assert torch.equal(v, b.head.state_dict()[k])
    epoch_ends = [c for c in calls if c.message.endswith(" done")]     # the trainer's per-epoch events
    assert [c.metrics["epoch"] for c in epoch_ends] == [1, 2, 3] and calls[-1].stage == "adapt"
    assert all("source_val_accuracy" in c.metrics for c in epoch_ends)
    assert len(a.history) == 3 and "domain_accuracy" in a.history[0]
    d = a.to_dict()
    assert "head" not in d and d["hyper"]["method"] == "dann"
    json.dumps(d)


def test_fold_standardisation_gives_same_logits():
    torch.manual_seed(0)
    lin = nn.Linear(4, 3)
    x = torch.randn(10, 4) * 5 + 2
    mu, sd = x.mean(0), x.std(0)
    expected = lin((x - mu) / sd)
    _fold_standardisation(lin, mu, sd)
    assert torch.allclose(lin(x), expected, atol=1e-5)


def test_train_adapter_rejects_bad_input(problem):
    xs, ys, xt, _ = problem
    with pytest.raises(ValueError, match="known: " + ", ".join(METHODS)):
        train_adapter(xs, ys, xt, 3, method="magic")
    with pytest.raises(ValueError, match="labels"):
        train_adapter(xs, ys + 5, xt, 3)


def test_select_trade_off_keeps_largest_harmless_value(problem, monkeypatch):
    xs, ys, xt, _ = problem
    val = {0.3: 0.95, 1.0: 0.945, 3.0: 0.80}

    def fake(*args, trade_off, **kwargs):
        return AdapterResult(head=nn.Linear(1, 1), source_val_accuracy=val[trade_off], hyper={"trade_off": trade_off})

    monkeypatch.setattr(trainer_mod, "train_adapter", fake)
    chosen, scores = select_trade_off(xs, ys, xt, 3, method="dann")
    assert scores == val and chosen.hyper["trade_off"] == 1.0
    chosen, _ = select_trade_off(xs, ys, xt, 3, method="dann", tolerance=0.0)
    assert chosen.hyper["trade_off"] == 0.3


# --- AdaBN -------------------------------------------------------------------------------------------------

class TinyBNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(3)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(self.drop(self.bn(x)))


def test_adabn_sets_running_stats_to_target_statistics():
    torch.manual_seed(0)
    model = TinyBNNet().eval()
    target = torch.randn(400, 3) * torch.tensor([2.0, 0.5, 1.0]) + torch.tensor([5.0, -2.0, 1.0])
    fc_before = model.fc.weight.clone()
    n = adabn(model, [{"x": target[i:i + 100]} for i in range(0, 400, 100)])
    assert n == 1
    assert torch.allclose(model.bn.running_mean, target.mean(0), atol=1e-4)   # equal batches: exact mean
    assert torch.allclose(model.bn.running_var, target.var(0), rtol=0.05)
    assert not model.training and not model.bn.training and model.bn.momentum == 0.1
    assert torch.equal(model.fc.weight, fc_before)


def test_adabn_needs_batchnorm_and_batches():
    with pytest.raises(ValueError, match="efficientnet-lite0"):
        adabn(nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3)), [{"input": torch.zeros(2, 3)}])
    model = TinyBNNet().eval()
    before = model.bn.running_mean.clone()
    with pytest.raises(ValueError, match="no target batches"):
        adabn(model, [])
    assert torch.equal(model.bn.running_mean, before) and int(model.bn.num_batches_tracked) == 0
