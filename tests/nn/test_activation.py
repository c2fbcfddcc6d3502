"""Activation layers and their functional forms against NumPy, to second order where they are smooth; PReLU's
learned slopes; settings in repr and config; bad arguments."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
import nerve.nn as nn
from tests.helpers import T, away_from_kinks, n_params, np_gelu, np_gelu_tanh, np_sigmoid, np_softmax, np_softplus

RNG = np.random.default_rng(7)
F64 = nerve.float64
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

# module -> NumPy reference
MODULES = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.ELU(0.7), lambda x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1))),
    (nn.GELU(), np_gelu),
    (nn.GELU("tanh"), np_gelu_tanh),
    (nn.SiLU(), lambda x: x * np_sigmoid(x)),
    (nn.Sigmoid(), np_sigmoid),
    (nn.Tanh(), np.tanh),
    (nn.Softmax(1), lambda x: np_softmax(x, 1)),
    (nn.LogSoftmax(), lambda x: np.log(np_softmax(x, -1))),
    (nn.Softplus(2.0), lambda x: np.log1p(np.exp(2 * x)) / 2),
]

# name -> (module, functional, NumPy reference)
ACTIVATIONS = {
    "hardtanh": (nn.Hardtanh(), F.hardtanh, lambda x: np.clip(x, -1, 1)),
    "hardtanh_range": (nn.Hardtanh(-3.0, 6.0), lambda x: F.hardtanh(x, -3.0, 6.0), lambda x: np.clip(x, -3, 6)),
    "relu6": (nn.ReLU6(), F.relu6, lambda x: np.minimum(np.maximum(x, 0), 6)),
    "mish": (nn.Mish(), F.mish, lambda x: x * np.tanh(np_softplus(x))),
    "hardswish": (nn.Hardswish(), F.hardswish, lambda x: x * np.minimum(np.maximum(x + 3, 0), 6) / 6),
    "hardsigmoid": (nn.Hardsigmoid(), F.hardsigmoid, lambda x: np.minimum(np.maximum(x + 3, 0), 6) / 6),
    "selu": (nn.SELU(), F.selu,
             lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(np.minimum(x, 0)) - 1))),
    "celu": (nn.CELU(0.7), lambda x: F.celu(x, 0.7),
             lambda x: np.maximum(x, 0) + np.minimum(0, 0.7 * (np.exp(np.minimum(x, 0) / 0.7) - 1))),
    "softsign": (nn.Softsign(), F.softsign, lambda x: x / (1 + np.abs(x))),
    "tanhshrink": (nn.Tanhshrink(), F.tanhshrink, lambda x: x - np.tanh(x)),
    "logsigmoid": (nn.LogSigmoid(), F.logsigmoid, lambda x: -np.logaddexp(0, -x)),
}


@pytest.mark.parametrize("module,ref", MODULES, ids=lambda v: repr(v) if isinstance(v, nn.Module) else "")
def test_activation_modules(module, ref):
    x = away_from_kinks(RNG, (4, 5), kinks=(0.0,), low=-3.0, high=3.0)
    out = module(T(x))
    assert out.shape == x.shape and n_params(module) == 0 and module.state_dict() == {}
    np.testing.assert_allclose(out.numpy(), ref(x), rtol=1e-10, atol=1e-12)
    assert nerve.gradcheck(module, [T(x, True)])


def test_activation_settings_in_repr_and_config():
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert nn.GELU("tanh").get_config() == {"approximate": "tanh"}
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        nn.GELU("fast")
    nn.ReLU(inplace=True)  # accepted for PyTorch compatibility


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_numpy_and_differentiates_twice(name):
    module, fn, ref = ACTIVATIONS[name]
    x = away_from_kinks(RNG, (3, 5))
    np.testing.assert_allclose(module(T(x)).numpy(), ref(x), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fn(T(x)).numpy(), ref(x), rtol=1e-12, atol=1e-14)
    assert module(T(x)).dtype == np.float64 and module(nerve.tensor(x.astype(np.float32))).dtype == np.float32
    xt = T(x, True)
    assert nerve.gradcheck(fn, [xt]) and nerve.gradgradcheck(fn, [xt])


def test_logsigmoid_is_stable_for_large_inputs():
    out = F.logsigmoid(T([-1000.0, -30.0, 0.0, 30.0, 1000.0])).numpy()
    np.testing.assert_allclose(out, [-1000.0, -30.0, -np.log(2), -np.exp(-30.0), 0.0], rtol=1e-12, atol=1e-300)


def test_activation_bad_arguments():
    with pytest.raises(ValueError, match="Hardtanh: max_val"):
        nn.Hardtanh(1.0, -1.0)
    with pytest.raises(ValueError, match="CELU: alpha"):
        nn.CELU(0.0)
    assert "min_val=-2.0, max_val=2.0" in repr(nn.Hardtanh(-2.0, 2.0)) and repr(nn.ReLU6()) == "ReLU6()"


def test_prelu_shared_and_per_channel_match_numpy():
    shared = nn.PReLU(dtype=F64)
    assert [(k, tuple(v.shape)) for k, v in shared.state_dict().items()] == [("weight", (1,))]
    np.testing.assert_array_equal(shared.weight.numpy(), [0.25])
    x = RNG.standard_normal((2, 3, 4))
    np.testing.assert_allclose(shared(T(x)).numpy(), np.where(x > 0, x, 0.25 * x), rtol=1e-15)

    per_channel = nn.PReLU(3, init=0.1, dtype=F64)
    a = np.array([0.1, -0.5, 2.0])
    per_channel.weight.data[...] = a
    want = np.where(x > 0, x, a[None, :, None] * x)
    np.testing.assert_allclose(per_channel(T(x)).numpy(), want, rtol=1e-15)
    np.testing.assert_allclose(F.prelu(T(x), T(a)).numpy(), want, rtol=1e-15)
    with pytest.raises(ValueError, match=r"prelu: weight has 3 elements.*\(2, 4, 3\)"):
        per_channel(T(RNG.standard_normal((2, 4, 3))))


def test_prelu_gradients():
    x = T(RNG.standard_normal((2, 3, 4)) + 0.05, True)
    for w in (T([0.3], True), T([0.1, -0.4, 0.7], True)):
        assert nerve.gradcheck(F.prelu, [x, w]) and nerve.gradgradcheck(F.prelu, [x, w])


def test_prelu_learns():
    layer = nn.PReLU(2, dtype=F64)
    x = T(-np.abs(RNG.standard_normal((8, 2))))  # all negative: output = slope * x
    target = T(x.numpy() * np.array([0.9, -0.2]))
    opt = nerve.optim.SGD(layer.parameters(), lr=0.5)
    before = layer.weight.numpy().copy()
    loss = F.mse_loss(layer(x), target)
    loss.backward()
    assert layer.weight.grad is not None and np.all(layer.weight.grad.numpy() != 0)
    opt.step()
    assert not np.allclose(layer.weight.numpy(), before)
    for _ in range(200):
        opt.zero_grad()
        F.mse_loss(layer(x), target).backward()
        opt.step()
    np.testing.assert_allclose(layer.weight.numpy(), [0.9, -0.2], atol=1e-3)


def test_softmin_is_the_softmax_of_the_negated_input():
    """Softmin(dim)(x) = exp(-x) / sum exp(-x) along dim: a NumPy reference, config, gradcheck."""
    x = T(np.random.default_rng(5).standard_normal((3, 4, 2)), True)
    layer = nn.Softmin(dim=1)
    np.testing.assert_allclose(layer(x).numpy(), np_softmax(-x.numpy(), axis=1), rtol=1e-12)
    assert layer.get_config() == {"dim": 1} and "dim=1" in repr(layer)
    assert nerve.gradcheck(layer, [x]) and nerve.gradgradcheck(layer, [x])
