"""Extra layers with PyTorch's names: activations (PReLU, Hardtanh, ReLU6, Mish, Hardswish, Hardsigmoid, SELU,
CELU, Softsign, Tanhshrink, LogSigmoid), GroupNorm, InstanceNorm1d/2d, ParameterList/ParameterDict."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
import nerve.nn as nn

RNG = np.random.default_rng(7)
F64 = nerve.float64
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def T(a, requires_grad=False):
    return nerve.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def away_from_kinks(shape, kinks=(-3.0, -1.0, 0.0, 1.0, 3.0, 6.0), gap=0.05):
    """Random values in [-5, 8] at least ``gap`` from the points where a piecewise activation bends."""
    x = RNG.uniform(-5, 8, size=shape)
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] = k + np.where(x[near] >= k, gap, -gap)
    return x


def _softplus(x):
    return np.logaddexp(0, x)


# name -> (module, functional, NumPy reference)
ACTIVATIONS = {
    "hardtanh": (nn.Hardtanh(), F.hardtanh, lambda x: np.clip(x, -1, 1)),
    "hardtanh_range": (nn.Hardtanh(-3.0, 6.0), lambda x: F.hardtanh(x, -3.0, 6.0), lambda x: np.clip(x, -3, 6)),
    "relu6": (nn.ReLU6(), F.relu6, lambda x: np.minimum(np.maximum(x, 0), 6)),
    "mish": (nn.Mish(), F.mish, lambda x: x * np.tanh(_softplus(x))),
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


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_numpy_and_differentiates_twice(name):
    module, fn, ref = ACTIVATIONS[name]
    x = away_from_kinks((3, 5))
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


# --- PReLU --------------------------------------------------------------------------------------------
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


# --- GroupNorm ----------------------------------------------------------------------------------------
def group_norm_reference(x, groups, weight, bias, eps):
    n, c = x.shape[:2]
    g = x.reshape(n, groups, -1)
    mean = g.mean(axis=2, keepdims=True)
    var = ((g - mean) ** 2).mean(axis=2, keepdims=True)  # biased
    out = ((g - mean) / np.sqrt(var + eps)).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return out * weight.reshape(shape) + bias.reshape(shape)


@pytest.mark.parametrize("shape,groups", [((2, 6, 5), 3), ((2, 4, 3, 3), 2), ((3, 4), 1), ((2, 4, 2, 3), 4)])
def test_group_norm_matches_numpy(shape, groups):
    layer = nn.GroupNorm(groups, shape[1], eps=1e-3, dtype=F64)
    layer.weight.data[...] = RNG.standard_normal(shape[1])
    layer.bias.data[...] = RNG.standard_normal(shape[1])
    x = RNG.standard_normal(shape) * 3 + 1
    want = group_norm_reference(x, groups, layer.weight.numpy(), layer.bias.numpy(), 1e-3)
    np.testing.assert_allclose(layer(T(x)).numpy(), want, rtol=1e-10, atol=1e-12)
    layer.eval()
    np.testing.assert_allclose(layer(T(x)).numpy(), want, rtol=1e-10, atol=1e-12)
    plain = nn.GroupNorm(groups, shape[1], affine=False, dtype=F64)
    np.testing.assert_allclose(plain(T(x)).numpy(), group_norm_reference(x, groups, np.ones(shape[1]),
                                                                          np.zeros(shape[1]), 1e-5), rtol=1e-10,
                               atol=1e-12)


def test_group_norm_parameters_state_dict_and_gradients():
    layer = nn.GroupNorm(2, 6)
    assert list(layer.state_dict()) == ["weight", "bias"]
    np.testing.assert_array_equal(layer.weight.numpy(), np.ones(6))
    np.testing.assert_array_equal(layer.bias.numpy(), np.zeros(6))
    assert list(nn.GroupNorm(2, 6, affine=False).state_dict()) == []
    twin = nn.GroupNorm(2, 6)
    layer.weight.data[...] = 2.0
    twin.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(twin.weight.numpy(), layer.weight.numpy())
    x, w, b = (T(RNG.standard_normal(s), True) for s in [(2, 6, 3), (6,), (6,)])
    fn = lambda x, w, b: F.group_norm(x, 3, w, b)  # noqa: E731
    assert nerve.gradcheck(fn, [x, w, b]) and nerve.gradgradcheck(fn, [x, w, b])


def test_group_norm_errors():
    with pytest.raises(ValueError, match=r"GroupNorm: num_channels \(6\) must be divisible by num_groups \(4\)"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 6\): expected input \(N, 6, \*\), got \(2, 4, 3\)"):
        nn.GroupNorm(2, 6)(nerve.randn(2, 4, 3))
    with pytest.raises(ValueError, match=r"group_norm: 5 channels of input \(2, 5\)"):
        F.group_norm(nerve.randn(2, 5), 2)
    with pytest.raises(ValueError, match=r"group_norm: weight must have shape \(4,\), got \(3,\)"):
        F.group_norm(nerve.randn(2, 4), 2, nerve.ones(3))


# --- InstanceNorm -------------------------------------------------------------------------------------
def instance_norm_reference(x, weight, bias, eps):
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)  # biased
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    return (x - mean) / np.sqrt(var + eps) * weight.reshape(shape) + bias.reshape(shape)


@pytest.mark.parametrize("cls,shape", [(nn.InstanceNorm1d, (2, 3, 7)), (nn.InstanceNorm2d, (2, 3, 4, 5))])
def test_instance_norm_matches_numpy(cls, shape):
    c = shape[1]
    x = RNG.standard_normal(shape) * 2 - 1
    plain = cls(c, dtype=F64)
    assert list(plain.state_dict()) == [] and plain.affine is False and plain.track_running_stats is False
    want = instance_norm_reference(x, np.ones(c), np.zeros(c), 1e-5)
    np.testing.assert_allclose(plain(T(x)).numpy(), want, rtol=1e-10, atol=1e-12)
    plain.eval()  # without running statistics, evaluation also uses each instance's statistics
    np.testing.assert_allclose(plain(T(x)).numpy(), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(plain(T(x[0])).numpy(), want[0], rtol=1e-10, atol=1e-12)  # unbatched

    affine = cls(c, eps=1e-2, affine=True, dtype=F64)
    assert list(affine.state_dict()) == ["weight", "bias"]
    affine.weight.data[...] = RNG.standard_normal(c)
    affine.bias.data[...] = RNG.standard_normal(c)
    np.testing.assert_allclose(affine(T(x)).numpy(),
                               instance_norm_reference(x, affine.weight.numpy(), affine.bias.numpy(), 1e-2),
                               rtol=1e-10, atol=1e-12)


def test_instance_norm_running_stats():
    layer = nn.InstanceNorm2d(3, momentum=0.2, track_running_stats=True, dtype=F64)
    assert list(layer.state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]
    x = RNG.standard_normal((4, 3, 2, 5)) * 1.5 + 0.5
    out = layer(T(x))
    np.testing.assert_allclose(out.numpy(), instance_norm_reference(x, np.ones(3), np.zeros(3), 1e-5),
                               rtol=1e-10, atol=1e-12)
    mean = x.mean(axis=(2, 3)).mean(axis=0)
    var = x.var(axis=(2, 3), ddof=1).mean(axis=0)  # unbiased per instance, averaged over the batch
    np.testing.assert_allclose(layer.running_mean.numpy(), 0.2 * mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var.numpy(), 0.8 + 0.2 * var, rtol=1e-12)
    assert int(layer.num_batches_tracked.item()) == 1
    layer.eval()
    rm, rv = layer.running_mean.numpy(), layer.running_var.numpy()
    want = (x - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(layer(T(x)).numpy(), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(layer.running_mean.numpy(), rm)  # eval leaves them alone


def test_instance_norm_gradients_and_errors():
    x, w, b = (T(RNG.standard_normal(s), True) for s in [(2, 3, 4), (3,), (3,)])
    fn = lambda x, w, b: F.instance_norm(x, weight=w, bias=b)  # noqa: E731
    assert nerve.gradcheck(fn, [x, w, b]) and nerve.gradgradcheck(fn, [x, w, b])
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(3\): expected input \(N, 3, H, W\) or \(3, H, W\), "
                                         r"got \(2, 4, 5, 5\)"):
        nn.InstanceNorm2d(3)(nerve.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match=r"InstanceNorm1d\(3\): expected input \(N, 3, L\) or \(3, L\), got \(2, 3\)"):
        nn.InstanceNorm1d(3)(nerve.randn(2, 3))
    with pytest.raises(ValueError, match="instance_norm: expected more than 1 value per channel"):
        nn.InstanceNorm1d(3)(nerve.randn(2, 3, 1))


def test_batch_norm_still_counts_batches_after_refactor():
    bn = nn.BatchNorm1d(3, momentum=None)
    bn(nerve.randn(4, 3))
    bn(nerve.randn(4, 3))
    assert int(bn.num_batches_tracked.item()) == 2
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


# --- ParameterList / ParameterDict ---------------------------------------------------------------------
def test_parameter_list_registration():
    plist = nn.ParameterList([nn.Parameter(nerve.ones(2)), nerve.zeros(3)])
    plist.append(nerve.randn(1, 2))
    assert len(plist) == 3 and all(isinstance(p, nn.Parameter) for p in plist)
    assert list(plist.state_dict()) == ["0", "1", "2"]
    assert [tuple(p.shape) for p in plist.parameters()] == [(2,), (3,), (1, 2)]
    assert plist[-1] is plist[2] and len(plist[1:]) == 2

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = nn.ParameterList([nerve.ones(2), nerve.ones(2)])

        def forward(self, x):
            return x * self.scales[0] * self.scales[1]

    model = Holder()
    assert list(model.state_dict()) == ["scales.0", "scales.1"]
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    model(T([1.0, 2.0])).sum().backward()
    np.testing.assert_allclose(model.scales[0].grad.numpy(), [1.0, 2.0])
    twin = Holder()
    model.scales[1].data[...] = 3.0
    twin.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(twin.scales[1].numpy(), [3.0, 3.0])
    with pytest.raises(TypeError, match="ParameterList holds Parameters or Tensors, got int"):
        plist.append(3)
    with pytest.raises(IndexError):
        plist[5]


def test_parameter_dict_registration():
    pdict = nn.ParameterDict({"alpha": nerve.ones(2), "beta": nn.Parameter(nerve.zeros(3))})
    pdict["gamma"] = nerve.ones(1)
    assert list(pdict.keys()) == ["alpha", "beta", "gamma"] and "beta" in pdict and len(pdict) == 3
    assert list(pdict.state_dict()) == ["alpha", "beta", "gamma"]
    assert isinstance(pdict["alpha"], nn.Parameter) and len(list(pdict.parameters())) == 3
    del pdict["beta"]
    assert list(pdict.state_dict()) == ["alpha", "gamma"] and "beta" not in pdict
    assert pdict.pop("gamma").shape == (1,) and list(pdict) == ["alpha"]
    pdict.to(F64)
    assert pdict["alpha"].dtype == np.float64
    with pytest.raises(KeyError):
        del pdict["missing"]
    with pytest.raises(TypeError, match="ParameterDict holds Parameters or Tensors, got list"):
        pdict["x"] = [1.0]
