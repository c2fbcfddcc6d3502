"""BatchNorm1d, LayerNorm, GroupNorm, InstanceNorm1d/2d: NumPy references (training and eval, running
statistics), parameter counts, state-dict round trips, gradients to second order, bad input."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
import nerve.nn as nn
from tests.helpers import T, n_params, round_trip

RNG = np.random.default_rng(1)
F64 = nerve.float64


def ref_batch_norm(x, w, b, eps):
    axes = (0,) if x.ndim == 2 else (0, 2)
    shape = (1, -1) if x.ndim == 2 else (1, -1, 1)
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    out = (x - mean) / np.sqrt(var + eps) * w.reshape(shape) + b.reshape(shape)
    return out, mean.reshape(-1), var.reshape(-1)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5)])
def test_batch_norm_training_eval_and_running_statistics(shape):
    make = lambda: nn.BatchNorm1d(3, momentum=0.2, dtype=F64)  # noqa: E731
    bn = make()
    assert n_params(bn) == 6
    with nerve.no_grad():
        bn.weight.copy_(RNG.uniform(0.5, 2, 3))
        bn.bias.copy_(RNG.standard_normal(3))
    running_mean, running_var = np.zeros(3), np.ones(3)
    n = shape[0] * (shape[2] if len(shape) == 3 else 1)
    for _ in range(3):
        x = RNG.standard_normal(shape) * 3 + 2
        want, mean, var = ref_batch_norm(x, bn.weight.numpy(), bn.bias.numpy(), 1e-5)
        np.testing.assert_allclose(bn(T(x)).numpy(), want, rtol=1e-10, atol=1e-12)
        running_mean = 0.8 * running_mean + 0.2 * mean
        running_var = 0.8 * running_var + 0.2 * var * n / (n - 1)
    np.testing.assert_allclose(bn.running_mean.numpy(), running_mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), running_var, rtol=1e-12)
    assert bn.num_batches_tracked.item() == 3
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    bn.eval()
    x = RNG.standard_normal(shape)
    shape_c = (1, -1) if len(shape) == 2 else (1, -1, 1)
    want = ((x - running_mean.reshape(shape_c)) / np.sqrt(running_var.reshape(shape_c) + 1e-5)
            * bn.weight.numpy().reshape(shape_c) + bn.bias.numpy().reshape(shape_c))
    np.testing.assert_allclose(bn(T(x)).numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(bn.running_mean.numpy(), running_mean)  # eval leaves the statistics alone
    round_trip(bn, make, T(x))


def test_batch_norm_options():
    x = T(RNG.standard_normal((6, 2)) * 4 + 1)
    cumulative = nn.BatchNorm1d(2, momentum=None, dtype=F64)
    batches = [RNG.standard_normal((6, 2)) + i for i in range(3)]
    for b in batches:
        cumulative(T(b))
    np.testing.assert_allclose(cumulative.running_mean.numpy(), np.mean([b.mean(0) for b in batches], axis=0))
    plain = nn.BatchNorm1d(2, affine=False, track_running_stats=False, dtype=F64)
    assert n_params(plain) == 0 and plain.state_dict() == {}
    plain.eval()  # without running statistics, eval normalises with the batch's
    np.testing.assert_allclose(plain(x).numpy(), ref_batch_norm(x.numpy(), np.ones(2), np.zeros(2), 1e-5)[0])


def test_batch_norm_gradients():
    w, b = T(RNG.uniform(0.5, 2, 3), True), T(RNG.standard_normal(3), True)
    for shape in [(5, 3), (3, 3, 2)]:
        x = T(RNG.standard_normal(shape), True)

        def train_fn(x, w, b):
            return F.batch_norm(x, None, None, w, b, training=True)
        assert nerve.gradcheck(train_fn, [x, w, b]) and nerve.gradgradcheck(train_fn, [x, w, b])
        rm, rv = T(RNG.standard_normal(3)), T(RNG.uniform(0.5, 2, 3))
        assert nerve.gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b), [x, w, b])


def test_batch_norm_normalises_and_learns_running_statistics():
    nerve.manual_seed(2)
    bn = nn.BatchNorm1d(4)
    data = np.random.default_rng(5).normal([1.0, -2.0, 3.0, 0.5], [2.0, 0.5, 1.0, 3.0], size=(200, 64, 4))
    for batch in data:
        out = bn(nerve.tensor(batch.astype(np.float32))).numpy()
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 1, atol=1e-3)
    np.testing.assert_allclose(bn.running_mean.numpy(), [1.0, -2.0, 3.0, 0.5], atol=0.15)
    np.testing.assert_allclose(np.sqrt(bn.running_var.numpy()), [2.0, 0.5, 1.0, 3.0], rtol=0.06)


def test_batch_norm_bad_input():
    bn = nn.BatchNorm1d(16)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(16\): expected input \(N, 16\) or \(N, 16, L\), "
                                         r"got \(32, 8\)"):
        bn(nerve.zeros(32, 8))
    with pytest.raises(ValueError, match="expected more than 1 value per channel when training"):
        bn(nerve.zeros(1, 16))
    bn.eval()
    assert bn(nerve.zeros(1, 16)).shape == (1, 16)


def test_batch_norm_cumulative_momentum_counts_batches():
    bn = nn.BatchNorm1d(3, momentum=None)
    bn(nerve.randn(4, 3))
    bn(nerve.randn(4, 3))
    assert int(bn.num_batches_tracked.item()) == 2
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


def ref_layer_norm(x, w, b, k, eps=1e-5):
    out = np.empty_like(x)
    size = int(np.prod(x.shape[x.ndim - k:]))
    rows, flat = x.reshape(-1, size), out.reshape(-1, size)
    for i, row in enumerate(rows):
        mean = sum(row) / len(row)
        var = sum((v - mean) ** 2 for v in row) / len(row)
        flat[i] = [(v - mean) / np.sqrt(var + eps) for v in row]
    return out * w + b


@pytest.mark.parametrize("normalized_shape", [5, (3, 5)])
def test_layer_norm_reference_params_round_trip(normalized_shape):
    make = lambda: nn.LayerNorm(normalized_shape, dtype=F64)  # noqa: E731
    ln = make()
    k = 1 if isinstance(normalized_shape, int) else 2
    assert n_params(ln) == 2 * int(np.prod(normalized_shape))
    with nerve.no_grad():
        ln.weight.copy_(RNG.uniform(0.5, 2, ln.weight.shape))
        ln.bias.copy_(RNG.standard_normal(ln.weight.shape))
    x = RNG.standard_normal((2, 3, 5)) * 3 + 1
    out = ln(T(x))
    assert out.shape == x.shape
    want = ref_layer_norm(x, ln.weight.numpy(), ln.bias.numpy(), k)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10)
    round_trip(ln, make, T(x))
    bare = nn.LayerNorm(5, elementwise_affine=False, dtype=F64)
    assert n_params(bare) == 0
    normed = bare(T(x)).numpy()
    np.testing.assert_allclose(normed.mean(-1), 0, atol=1e-12)
    np.testing.assert_allclose(normed.var(-1), 1, rtol=1e-4)
    assert n_params(nn.LayerNorm(5, bias=False)) == 5


def test_layer_norm_gradients():
    x = T(RNG.standard_normal((3, 4)), True)
    w, b = T(RNG.uniform(0.5, 2, 4), True), T(RNG.standard_normal(4), True)
    fn = lambda x, w, b: F.layer_norm(x, 4, w, b)  # noqa: E731
    assert nerve.gradcheck(fn, [x, w, b]) and nerve.gradgradcheck(fn, [x, w, b])
    x3 = T(RNG.standard_normal((2, 2, 3)), True)
    assert nerve.gradcheck(lambda x: F.layer_norm(x, (2, 3)), [x3])
    assert nerve.gradgradcheck(lambda x: F.layer_norm(x, (2, 3)), [x3])


def test_layer_norm_bad_input():
    with pytest.raises(ValueError, match=r"LayerNorm\(\(64,\)\): expected input \(..., 64\), got \(32, 32\)"):
        nn.LayerNorm(64)(nerve.zeros(32, 32))


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
