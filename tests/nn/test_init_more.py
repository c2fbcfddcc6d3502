"""nn.init.trunc_normal_, eye_, dirac_, sparse_ against closed forms and their definitions."""
import math

import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.nn import init


def test_trunc_normal_moments_and_bounds():
    w = nerve.empty(200000, dtype=nerve.float64)
    init.trunc_normal_(w, mean=1.0, std=2.0, a=0.0, b=3.0, generator=np.random.default_rng(0))
    x = w.numpy()
    assert x.min() >= 0.0 and x.max() <= 3.0
    alpha, beta = -0.5, 1.0  # (a - mean) / std, (b - mean) / std

    def pdf(z):
        return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    def cdf(z):
        return (1 + math.erf(z / math.sqrt(2))) / 2
    mass = cdf(beta) - cdf(alpha)
    mean = 1.0 + 2.0 * (pdf(alpha) - pdf(beta)) / mass
    var = 4.0 * (1 + (alpha * pdf(alpha) - beta * pdf(beta)) / mass - ((pdf(alpha) - pdf(beta)) / mass) ** 2)
    assert abs(x.mean() - mean) < 0.01 and abs(x.var() - var) < 0.01
    for q in (0.5, 1.5, 2.5):  # the empirical CDF against the truncated normal's
        expected = (cdf((q - 1.0) / 2.0) - cdf(alpha)) / mass
        assert abs((x <= q).mean() - expected) < 0.005
    with pytest.raises(ValueError, match="trunc_normal_: expected a < b"):
        init.trunc_normal_(w, a=1.0, b=1.0)


def test_eye_dirac_sparse():
    np.testing.assert_array_equal(init.eye_(nerve.empty(2, 3)).numpy(), np.eye(2, 3))
    w = init.dirac_(nerve.empty(4, 2, 3, 3, dtype=nerve.float64), groups=2)
    conv = nn.Conv2d(2, 4, 3, padding=1, groups=1, bias=False, dtype=nerve.float64)
    conv.weight.data = w.data
    x = nerve.randn(1, 2, 5, 5, dtype=nerve.float64)
    out = conv(x).numpy()
    np.testing.assert_allclose(out[0, :2], x.numpy()[0])  # the identity in each group
    np.testing.assert_allclose(out[0, 2:], x.numpy()[0])
    s = init.sparse_(nerve.empty(10, 6, dtype=nerve.float64), sparsity=0.3, std=0.5).numpy()
    assert all((s[:, c] == 0).sum() == 3 for c in range(6))
    with pytest.raises(ValueError, match="dirac_: only 3-d, 4-d and 5-d"):
        init.dirac_(nerve.empty(3, 3))
    with pytest.raises(ValueError, match="eye_: only 2-d"):
        init.eye_(nerve.empty(3))
