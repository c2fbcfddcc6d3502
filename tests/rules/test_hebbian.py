"""Hebb, Oja, Sanger and Krotov–Hopfield against per-sample NumPy loops of the published updates, and on the
principal components they must find."""
import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.optim import SGD
from nerve.rules import Hebbian, KrotovHopfield, Oja, Sanger
from nerve.train import fit


def per_sample(rule_name, w, v, **kw):
    """The batch mean of the published per-sample update ΔW at learning rate 1, one sample at a time."""
    total = np.zeros_like(w)
    for x in v:
        y = w @ x
        if rule_name == "hebb":
            d = np.outer(y, x)
        elif rule_name == "oja":
            d = np.array([[y[i] * (x[j] - y[i] * w[i, j]) for j in range(w.shape[1])] for i in range(w.shape[0])])
        elif rule_name == "sanger":
            d = np.zeros_like(w)
            for i in range(w.shape[0]):
                back = sum(y[k] * w[k] for k in range(i + 1))
                d[i] = y[i] * (x - back)
        else:
            p, k, delta = kw["p"], kw["k"], kw["delta"]
            current = np.array([np.sum(np.sign(wm) * np.abs(wm) ** (p - 1) * x) for wm in w])
            ranked = np.argsort(current)
            g = np.zeros(len(w))
            g[ranked[-1]], g[ranked[-k]] = 1.0, -delta
            d = np.array([g[m] * (x - current[m] * w[m]) for m in range(len(w))])
        total += d
    return total / len(v)


@pytest.mark.parametrize("name, make", [
    ("hebb", lambda m: Hebbian(m)), ("oja", lambda m: Oja(m)), ("sanger", lambda m: Sanger(m)),
    ("krotov", lambda m: KrotovHopfield(m, p=3, k=2, delta=0.4)),
])
def test_update_is_minus_the_published_rule(name, make):
    nerve.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4, bias=False), nn.ReLU(), nn.Linear(4, 3)).to(nerve.float64)
    v = np.random.default_rng(1).normal(size=(9, 6))
    rule = make(model)
    assert [n for n, _ in rule.layers] == ["0"]  # the Linear with a bias is not a Hebbian layer
    logs = rule.step(nerve.tensor(v))
    want = per_sample(name, model[0].weight.data, v, p=3, k=2, delta=0.4)
    np.testing.assert_allclose(-model[0].weight.grad.data, want, rtol=1e-10, atol=1e-12)
    assert model[2].weight.grad is None
    assert logs["update"] == pytest.approx(np.linalg.norm(want) * 1, rel=1e-9)
    before = model[0].weight.data.copy()
    SGD(model.parameters(), lr=0.1).step()
    np.testing.assert_allclose(model[0].weight.data, before + 0.1 * want)


def test_sgd_applies_the_rule_and_accumulates():
    nerve.manual_seed(0)
    model = nn.Linear(3, 2, bias=False).to(nerve.float64)
    v = nerve.randn(5, 3, dtype=nerve.float64)
    rule = Oja(model)
    rule.step(v)
    once = model.weight.grad.data.copy()
    rule.step(v)
    np.testing.assert_allclose(model.weight.grad.data, 2 * once)


def correlated(n=4000, seed=0):
    """Zero-mean data whose covariance has well separated eigenvalues 9, 4, 2, 1, 0.5, 0.25 (known axes)."""
    rng = np.random.default_rng(seed)
    axes, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    z = rng.normal(size=(n, 6)) * np.sqrt([9, 4, 2, 1, 0.5, 0.25])
    return (z @ axes.T).astype(np.float32), axes.T


def test_oja_finds_the_first_principal_component():
    x, axes = correlated()
    nerve.manual_seed(0)
    model = nn.Linear(6, 1, bias=False)
    fit(model, x, optimizer=SGD(model.parameters(), lr=0.005), epochs=3, batch_size=16, verbose=0, rule=Oja(model))
    w = model.weight.data[0]
    assert abs(w @ axes[0]) / np.linalg.norm(w) > 0.99
    assert np.linalg.norm(w) == pytest.approx(1.0, abs=0.05)  # Oja's normalisation


def test_sanger_finds_components_in_order():
    x, axes = correlated()
    nerve.manual_seed(0)
    model = nn.Linear(6, 3, bias=False)
    fit(model, x, optimizer=SGD(model.parameters(), lr=0.003), epochs=8, batch_size=16, verbose=0,
        rule=Sanger(model))
    w = model.weight.data
    cos = [abs(w[i] @ axes[i]) / np.linalg.norm(w[i]) for i in range(3)]
    assert min(cos) > 0.97, cos


def test_krotov_winners_reach_the_sphere_and_cover_the_data():
    """Units that win often end on the sphere of radius R, and their prototypes cover the data clusters far
    better than the random start (the mean best cosine between a sample and a unit: ~0.55 before)."""
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:4]
    x = (centres[rng.integers(0, 4, 2000)] + 0.1 * rng.normal(size=(2000, 8))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)

    def cover(w):
        return float((x @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T).max(1).mean())

    nerve.manual_seed(0)
    model = nn.Linear(8, 16, bias=False)
    start = cover(model.weight.data)
    fit(model, x, optimizer=SGD(model.parameters(), lr=0.05), epochs=5, batch_size=20, verbose=0,
        rule=KrotovHopfield(model, p=2, k=2, delta=0.1))
    w = model.weight.data
    wins = np.bincount((x @ w.T).argmax(1), minlength=16)
    np.testing.assert_allclose(np.linalg.norm(w[wins > 100], axis=1), 1.0, atol=0.01)
    assert cover(w) > max(0.8, start + 0.2)


def test_bad_input():
    with pytest.raises(ValueError, match="no bias-free Linear"):
        Oja(nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(ValueError, match=r"layers \['0'\] have a bias"):
        Oja(nn.Sequential(nn.Linear(3, 2)), layers=["0"])
    with pytest.raises(ValueError, match="rank k must be"):
        KrotovHopfield(nn.Linear(3, 2, bias=False), k=3)
    with pytest.raises(ValueError, match="one input batch"):
        Oja(nn.Linear(3, 2, bias=False)).step(nerve.zeros(2, 3), nerve.zeros(2))
    model = nn.Linear(3, 2, bias=False)
    with pytest.raises(FloatingPointError, match="layer 'Linear'"):
        Hebbian(model).step(nerve.tensor([[np.nan, 1.0, 1.0]]))
