"""Padding layers, BatchNorm3d/InstanceNorm3d, Dropout3d, ChannelShuffle, LocalResponseNorm and Softmax2d
against NumPy definitions."""
import itertools

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn

RNG = np.random.default_rng(0)
NP_MODE = {"Zero": "constant", "Constant": "constant", "Reflection": "reflect", "Replication": "edge",
           "Circular": "wrap"}


@pytest.mark.parametrize("kind,n", list(itertools.product(NP_MODE, (1, 2, 3))))
def test_padding_layers_match_numpy_pad(kind, n):
    x = RNG.standard_normal((2, 3) + (4, 5, 6)[:n])
    widths = tuple(range(1, 2 * n + 1)) if kind in ("Zero", "Constant") else (1, 2, 2, 1, 3, 1)[:2 * n]
    args = (widths, 2.5) if kind == "Constant" else (widths,)
    layer = getattr(nn, f"{kind}Pad{n}d")(*args)
    pairs = [(0, 0), (0, 0)] + [(widths[2 * i], widths[2 * i + 1]) for i in reversed(range(n))]
    kw = {"constant_values": 2.5} if kind == "Constant" else {}
    np.testing.assert_allclose(layer(nerve.tensor(x)).numpy(), np.pad(x, pairs, NP_MODE[kind], **kw))
    np.testing.assert_allclose(layer(nerve.tensor(x[0])).numpy(), np.pad(x[0], pairs[1:], NP_MODE[kind], **kw))
    assert nn.ZeroPad2d(2).padding == (2, 2, 2, 2)
    with pytest.raises(ValueError, match=f"{kind}Pad{n}d: padding must be an int or {2 * n} ints"):
        getattr(nn, f"{kind}Pad{n}d")(*(((1,) * (2 * n + 1),) + args[1:]))


def test_batch_and_instance_norm_3d():
    x = RNG.standard_normal((2, 3, 2, 3, 4))
    bn = nn.BatchNorm3d(3, momentum=0.5, dtype=nerve.float64)
    mean, var = x.mean((0, 2, 3, 4), keepdims=True), x.var((0, 2, 3, 4), keepdims=True)
    np.testing.assert_allclose(bn(nerve.tensor(x)).numpy(), (x - mean) / np.sqrt(var + 1e-5), atol=1e-12)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.5 * mean.ravel())
    bn.eval()
    np.testing.assert_allclose(bn(nerve.tensor(x)).numpy(), (x - bn.running_mean.numpy()[:, None, None, None])
                               / np.sqrt(bn.running_var.numpy()[:, None, None, None] + 1e-5), atol=1e-12)
    inst = nn.InstanceNorm3d(3)
    m, v = x.mean((2, 3, 4), keepdims=True), x.var((2, 3, 4), keepdims=True)
    np.testing.assert_allclose(inst(nerve.tensor(x)).numpy(), (x - m) / np.sqrt(v + 1e-5), atol=1e-12)
    with pytest.raises(ValueError, match=r"BatchNorm3d\(3\): expected input \(N, 3, D, H, W\)"):
        bn(nerve.tensor(x[0]))
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.BatchNorm3d(3)))
    assert isinstance(sync[0], nn.SyncBatchNorm)


def test_dropout3d_drops_whole_volumes():
    nerve.manual_seed(0)
    out = nn.Dropout3d(0.5)(nerve.ones(8, 6, 2, 3, 2)).numpy()
    per_volume = out.reshape(8, 6, -1)
    assert np.all((per_volume == 0).all(-1) | (per_volume == 2.0).all(-1))
    assert 0.2 < (per_volume[..., 0] == 0).mean() < 0.8
    layer = nn.Dropout3d(0.5)
    layer.eval()
    assert np.all(layer(nerve.ones(1, 2, 2, 2, 2)).numpy() == 1)


def test_channel_shuffle_lrn_softmax2d():
    x = RNG.standard_normal((2, 6, 3, 4))
    out = nn.ChannelShuffle(3)(nerve.tensor(x)).numpy()
    for g, i in itertools.product(range(3), range(2)):  # channel i of group g moves to i * groups + g
        np.testing.assert_array_equal(out[:, i * 3 + g], x[:, g * 2 + i])
    size, alpha, beta, k = 3, 0.1, 0.6, 2.0
    ref = np.empty_like(x)
    for c in range(6):
        window = [j for j in range(c - size // 2, c + (size - 1) // 2 + 1) if 0 <= j < 6]
        ref[:, c] = x[:, c] / (k + alpha / size * (x[:, window] ** 2).sum(1)) ** beta
    np.testing.assert_allclose(nn.LocalResponseNorm(size, alpha, beta, k)(nerve.tensor(x)).numpy(), ref)
    xt = nerve.tensor(RNG.standard_normal((1, 4, 2, 2)), requires_grad=True)
    assert nerve.gradcheck(lambda a: F.local_response_norm(a, 2, 0.1, 0.75, 1.0), [xt])
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(nn.Softmax2d()(nerve.tensor(x)).numpy(), e / e.sum(1, keepdims=True))
    with pytest.raises(ValueError, match="channel_shuffle: expected .* C divisible by groups"):
        F.channel_shuffle(nerve.tensor(x), 4)


def test_feature_alpha_dropout_keeps_selu_statistics_per_channel():
    nerve.manual_seed(0)
    x = nerve.tensor(RNG.standard_normal((400, 50, 2, 2)))
    out = nn.FeatureAlphaDropout(0.2)(x).numpy()
    a = (0.8 * (1 + 0.2 * 1.7580993408473766 ** 2)) ** -0.5
    dropped = np.isclose(out, a * -1.7580993408473766 + a * 1.7580993408473766 * 0.2)
    per_channel = dropped.reshape(400, 50, -1)
    assert np.all(per_channel.all(-1) | ~per_channel.any(-1))  # whole channels
    assert abs(per_channel[..., 0].mean() - 0.2) < 0.01
    assert abs(out.mean()) < 0.02 and abs(out.std() - 1) < 0.02  # mean 0, variance 1 kept
    layer = nn.FeatureAlphaDropout(0.2)
    layer.eval()
    assert np.array_equal(layer(x).numpy(), x.numpy())
