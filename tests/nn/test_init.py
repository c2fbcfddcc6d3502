"""nn.init: PyTorch's formulas (bounds, spreads, gains), generators, each layer's default initialisation."""
import math

import numpy as np
import pytest

import nerve
import nerve.nn as nn
from nerve.nn import init


def test_calculate_gain_table():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")


def test_constant_fills_and_in_place():
    w = nn.Parameter(nerve.empty(3, 4))
    assert init.ones_(w) is w and np.all(w.numpy() == 1)
    init.zeros_(w)
    assert np.all(w.numpy() == 0) and w.requires_grad
    init.constant_(w, 2.5)
    assert np.all(w.numpy() == 2.5) and w.dtype == np.float32


def test_uniform_and_normal_moments_and_generator():
    w = nerve.empty(200, 300)
    init.uniform_(w, -2.0, 3.0, generator=np.random.default_rng(0))
    a = w.numpy()
    assert a.min() >= -2 and a.max() < 3 and abs(a.mean() - 0.5) < 0.02
    again = init.uniform_(nerve.empty(200, 300), -2.0, 3.0, generator=np.random.default_rng(0)).numpy()
    np.testing.assert_array_equal(a, again)
    init.normal_(w, 1.0, 0.5, generator=np.random.default_rng(1))
    assert abs(w.numpy().mean() - 1) < 0.01 and abs(w.numpy().std() - 0.5) < 0.01


@pytest.mark.parametrize("shape", [(256, 128), (64, 32, 3, 3)])
def test_xavier_and_kaiming_spreads(shape):
    receptive = int(np.prod(shape[2:]))
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    w = nerve.empty(*shape)
    init.xavier_uniform_(w, gain=2.0, generator=np.random.default_rng(0))
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    assert w.numpy().max() <= bound and w.numpy().max() > 0.98 * bound
    init.xavier_normal_(w, generator=np.random.default_rng(0))
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.03)
    init.kaiming_uniform_(w, a=0, nonlinearity="relu", generator=np.random.default_rng(0))
    bound = math.sqrt(2) * math.sqrt(3 / fan_in)
    assert w.numpy().max() <= bound and w.numpy().min() >= -bound and w.numpy().max() > 0.98 * bound
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", generator=np.random.default_rng(0))
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / fan_out), rel=0.03)


def test_fan_errors():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(nerve.empty(5))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_normal_(nerve.empty(2, 2), mode="fan")


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 2, 2)])
def test_orthogonal(shape):
    w = init.orthogonal_(nerve.empty(*shape, dtype=nerve.float64), gain=2.0, generator=np.random.default_rng(0))
    flat = w.numpy().reshape(shape[0], -1)
    small = min(flat.shape)
    gram = flat.T @ flat if flat.shape[0] > flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-12)


def test_default_layer_initialisation_is_pytorchs():
    nerve.manual_seed(3)
    fc = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = fc.weight.numpy(), fc.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.abs(b).max() <= bound and w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    emb = nn.Embedding(500, 200)
    assert emb.weight.numpy().std() == pytest.approx(1.0, rel=0.02)
    assert np.all(nn.Embedding(5, 3, padding_idx=-1).weight.numpy()[4] == 0)
    ln, bn = nn.LayerNorm(6), nn.BatchNorm1d(6)
    for layer in (ln, bn):
        assert np.all(layer.weight.numpy() == 1) and np.all(layer.bias.numpy() == 0)
    assert np.all(bn.running_mean.numpy() == 0) and np.all(bn.running_var.numpy() == 1)


def test_seeded_construction_repeats():
    nerve.manual_seed(7)
    a = nn.Linear(5, 4)
    nerve.manual_seed(7)
    b = nn.Linear(5, 4)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    np.testing.assert_array_equal(a.bias.numpy(), b.bias.numpy())
