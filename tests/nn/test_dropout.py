"""Dropout: mask, scale, train/eval modes, seeded generators, the gradient's mask, a network that still learns."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
import nerve.nn as nn
from tests.helpers import T

RNG = np.random.default_rng(1)


def test_dropout_mask_scale_modes_and_generators():
    x = nerve.ones(200, 100)
    layer = nn.Dropout(0.3)
    out = layer(x).numpy()
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    layer.eval()
    assert layer(x) is x
    assert F.dropout(x, 0.0) is x and np.all(F.dropout(x, 1.0).numpy() == 0)
    a = nn.Dropout(0.5, generator=np.random.default_rng(4))(x).numpy()
    b = nn.Dropout(0.5, generator=np.random.default_rng(4))(x).numpy()
    np.testing.assert_array_equal(a, b)
    nerve.manual_seed(9)
    c = F.dropout(x, 0.5).numpy()
    nerve.manual_seed(9)
    np.testing.assert_array_equal(c, F.dropout(x, 0.5).numpy())
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)


def test_dropout_gradient_uses_the_same_mask():
    x = T(RNG.standard_normal((6, 5)), True)
    assert nerve.gradcheck(lambda t: F.dropout(t, 0.4, generator=np.random.default_rng(0)), [x])
    out = F.dropout(x, 0.4)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), (out.numpy() != 0) / 0.6)


def test_dropout_network_still_learns():
    nerve.manual_seed(1)
    x = nerve.randn(64, 4)
    y = nerve.tensor((x.numpy() @ np.array([1.0, -2.0, 0.5, 1.5]) > 0).astype(np.int64))
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 2))
    for _ in range(150):
        loss = F.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        with nerve.no_grad():
            for p in model.parameters():
                p -= p.grad * 0.3
    model.eval()
    assert (model(x).numpy().argmax(1) == y.numpy()).mean() > 0.95
