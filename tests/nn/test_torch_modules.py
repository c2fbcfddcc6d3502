"""The nn modules over the functional forms added for PyTorch parity: NumPy references, options, state."""
import numpy as np
import pytest

import nerve
from nerve import nn


def _np(t):
    return np.asarray(t.data)


def test_rmsnorm_matches_the_formula_and_learns_its_scale():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 4)).astype(np.float64)
    m = nn.RMSNorm(4, eps=1e-6).double()
    with nerve.no_grad():
        m.weight.data[...] = np.array([1.0, 2.0, 0.5, -1.0])
    want = x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6) * np.array([1.0, 2.0, 0.5, -1.0])
    np.testing.assert_allclose(_np(m(nerve.tensor(x))), want, rtol=1e-12)
    assert nn.RMSNorm((5, 4), elementwise_affine=False).weight is None
    # learn a target scale of 3 on every feature
    m = nn.RMSNorm(4)
    opt = nerve.optim.Adam(m.parameters(), lr=0.1)
    xs = nerve.tensor(rng.normal(size=(64, 4)).astype(np.float32))
    target = 3 * xs / (xs.pow(2).mean(-1, keepdim=True) + 1e-6).sqrt()
    for _ in range(150):
        opt.zero_grad()
        loss = ((m(xs) - target) ** 2).mean()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3
    np.testing.assert_allclose(_np(m.weight), 3.0, atol=0.05)


def test_bilinear_matches_einsum_and_initialises_within_pytorchs_bound():
    nerve.manual_seed(0)
    m = nn.Bilinear(3, 4, 5).double()
    bound = 1 / np.sqrt(3)
    assert np.abs(_np(m.weight)).max() <= bound and np.abs(_np(m.bias)).max() <= bound
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 3)), rng.normal(size=(6, 4))
    want = np.einsum("ni,kij,nj->nk", a, _np(m.weight), b) + _np(m.bias)
    np.testing.assert_allclose(_np(m(nerve.tensor(a), nerve.tensor(b))), want, rtol=1e-12)
    assert nn.Bilinear(3, 4, 5, bias=False).bias is None
    assert sorted(m.state_dict()) == ["bias", "weight"]


def test_activation_modules_follow_their_formulas():
    x = np.linspace(-2, 2, 9)
    t = nerve.tensor(x)
    np.testing.assert_allclose(_np(nn.Softshrink(0.5)(t)), np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0)))
    np.testing.assert_allclose(_np(nn.Hardshrink(0.5)(t)), np.where(np.abs(x) > 0.5, x, 0))
    np.testing.assert_allclose(_np(nn.Threshold(0.1, 20.0)(t)), np.where(x > 0.1, x, 20.0))
    pair = np.arange(8.0).reshape(2, 4)
    np.testing.assert_allclose(_np(nn.GLU()(nerve.tensor(pair))), pair[:, :2] / (1 + np.exp(-pair[:, 2:])))
    r = nn.RReLU(0.1, 0.3).eval()
    np.testing.assert_allclose(_np(r(t)), np.where(x >= 0, x, x * 0.2))
    slopes = _np(nn.RReLU(0.1, 0.3).train()(nerve.tensor(-np.ones(1000)))) * -1
    assert 0.1 <= slopes.min() and slopes.max() <= 0.3 and slopes.std() > 0.03
    with pytest.raises(ValueError, match="Softshrink"):
        nn.Softshrink(-1)
    with pytest.raises(ValueError, match="RReLU"):
        nn.RReLU(0.5, 0.1)


def test_distance_modules_and_alpha_dropout():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    np.testing.assert_allclose(_np(nn.PairwiseDistance()(nerve.tensor(a), nerve.tensor(b))),
                               np.linalg.norm(a - b + 1e-6, axis=-1), rtol=1e-12)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(_np(nn.CosineSimilarity()(nerve.tensor(a), nerve.tensor(b))), cos, rtol=1e-12)
    d = nn.AlphaDropout(0.2)
    x = nerve.tensor(rng.normal(size=(200, 500)))
    np.testing.assert_array_equal(_np(d.eval()(x)), _np(x))
    y = _np(d.train()(x))
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02  # SELU's fixed point kept


def test_loss_modules_follow_their_formulas():
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=6), rng.normal(size=6)
    y = np.array([1, -1, 1, 1, -1, -1.0])
    got = nn.MarginRankingLoss(0.3)(nerve.tensor(x1), nerve.tensor(x2), nerve.tensor(y)).item()
    assert got == pytest.approx(np.maximum(0, -y * (x1 - x2) + 0.3).mean())
    got = nn.HingeEmbeddingLoss(1.0, reduction="sum")(nerve.tensor(np.abs(x1)), nerve.tensor(y)).item()
    assert got == pytest.approx(np.where(y == 1, np.abs(x1), np.maximum(0, 1 - np.abs(x1))).sum())
    assert nn.SoftMarginLoss()(nerve.tensor(x1), nerve.tensor(y)).item() == pytest.approx(
        np.log1p(np.exp(-y * x1)).mean())
    logits, labels = rng.normal(size=(4, 3)), np.array([0, 2, 1, 2])
    hinge = np.maximum(0, 1 - logits[np.arange(4), labels][:, None] + logits)
    hinge[np.arange(4), labels] = 0
    assert nn.MultiMarginLoss()(nerve.tensor(logits), nerve.tensor(labels)).item() == pytest.approx(
        (hinge.sum(1) / 3).mean())
    a, p, n = (rng.normal(size=(4, 3)) for _ in range(3))
    d = lambda u, v: np.linalg.norm(u - v + 1e-6, axis=1)  # noqa: E731
    assert nn.TripletMarginLoss(margin=0.5)(nerve.tensor(a), nerve.tensor(p), nerve.tensor(n)).item() == \
        pytest.approx(np.maximum(d(a, p) - d(a, n) + 0.5, 0).mean())
    rate, counts = rng.normal(size=5), rng.poisson(2, size=5).astype(float)
    assert nn.PoissonNLLLoss()(nerve.tensor(rate), nerve.tensor(counts)).item() == pytest.approx(
        (np.exp(rate) - counts * rate).mean())
    var = rng.uniform(0.5, 2, size=5)
    assert nn.GaussianNLLLoss()(nerve.tensor(x1[:5]), nerve.tensor(x2[:5]), nerve.tensor(var)).item() == \
        pytest.approx((0.5 * (np.log(var) + (x1[:5] - x2[:5]) ** 2 / var)).mean())
    u, v = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    cos = (u * v).sum(1) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1)
    t = np.array([1, -1, 1, -1.0])
    assert nn.CosineEmbeddingLoss(0.1)(nerve.tensor(u), nerve.tensor(v), nerve.tensor(t)).item() == pytest.approx(
        np.where(t == 1, 1 - cos, np.maximum(0, cos - 0.1)).mean())
    multi = rng.integers(0, 2, size=(4, 3)).astype(float)
    sig = 1 / (1 + np.exp(-logits))
    want = -(multi * np.log(sig) + (1 - multi) * np.log(1 - sig)).mean(1).mean()
    assert nn.MultiLabelSoftMarginLoss()(nerve.tensor(logits), nerve.tensor(multi)).item() == pytest.approx(want)
    with pytest.raises(ValueError, match="MultiMarginLoss"):
        nn.MultiMarginLoss(p=3)
