"""Convolution layers (Conv1d/2d, ConvTranspose1d/2d), BatchNorm2d, Dropout2d and the CNN models: shapes,
parameters, init, state dicts, padding modes, errors, memory and small tasks. The convolution ops themselves
are checked against loop references in tests/ops/test_conv.py.
"""
import math

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn
from nerve.models import CNN1d, LeNet5, SmallCNN
from nerve.ops.conv import CHUNK_BYTES
from tests.helpers import T

RNG = np.random.default_rng(7)


def test_empty_batch_and_unbatched_input():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = nerve.zeros(0, 3, 5, 5, requires_grad=True)
    out = conv(x)
    assert out.shape == (0, 4, 5, 5)
    out.sum().backward()
    assert x.grad.shape == (0, 3, 5, 5) and conv.weight.grad.shape == (4, 3, 3, 3)
    single = nerve.randn(3, 5, 5)
    np.testing.assert_allclose(conv(single).numpy(), conv(single.unsqueeze(0)).numpy()[0], rtol=1e-6)


# --- padding modes -----------------------------------------------------------------------------------
def _same_pairs(kernel):
    total = [k - 1 for k in kernel]
    return [(t // 2, t - t // 2) for t in total]


@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
@pytest.mark.parametrize("padding", [1, (2, 1), "same"])
def test_padding_modes_pad_the_input_then_convolve(mode, np_mode, padding):
    nerve.manual_seed(0)
    conv = nn.Conv2d(2, 3, (3, 2), padding=padding, padding_mode=mode).double()
    x = T(RNG.standard_normal((2, 2, 5, 4)), True)
    pairs = _same_pairs((3, 2)) if padding == "same" else [(p, p) for p in (padding if isinstance(padding, tuple)
                                                                              else (padding, padding))]
    xpad = nerve.tensor(np.pad(x.numpy(), [(0, 0), (0, 0)] + pairs, mode=np_mode))
    np.testing.assert_allclose(conv(x).numpy(), F.conv2d(xpad, conv.weight, conv.bias).numpy(), rtol=1e-12)
    assert nerve.gradcheck(lambda x: conv(x), [x])


def test_conv1d_padding_mode():
    conv = nn.Conv1d(1, 2, 3, padding=2, padding_mode="reflect").double()
    x = T(RNG.standard_normal((1, 1, 6)))
    xpad = nerve.tensor(np.pad(x.numpy(), [(0, 0), (0, 0), (2, 2)], mode="reflect"))
    np.testing.assert_allclose(conv(x).numpy(), F.conv1d(xpad, conv.weight, conv.bias).numpy(), rtol=1e-12)


# --- layers --------------------------------------------------------------------------------------------
def test_conv2d_layer_shapes_parameters_init_and_state_dict():
    nerve.manual_seed(1)
    conv = nn.Conv2d(4, 6, (3, 5), stride=2, padding=(1, 2), groups=2)
    assert conv.weight.shape == (6, 2, 3, 5) and conv.bias.shape == (6,)
    assert sum(p.numel() for p in conv.parameters()) == 6 * 2 * 15 + 6
    bound = 1 / math.sqrt(2 * 15)  # kaiming_uniform(a=sqrt(5)) and the bias: both U(+-1/sqrt(fan_in))
    for p in (conv.weight, conv.bias):
        assert np.abs(p.numpy()).max() <= bound and np.abs(p.numpy()).max() > 0.8 * bound
    assert conv(nerve.randn(3, 4, 9, 10)).shape == (3, 6, 5, 5)
    assert set(conv.state_dict()) == {"weight", "bias"}
    other = nn.Conv2d(4, 6, (3, 5), stride=2, padding=(1, 2), groups=2)
    other.load_state_dict(conv.state_dict())
    x = nerve.randn(1, 4, 7, 7)
    np.testing.assert_array_equal(other(x).numpy(), conv(x).numpy())
    assert "Conv2d(4, 6, kernel_size=(3, 5), stride=(2, 2), padding=(1, 2), groups=2)" == repr(conv)
    assert nn.Conv2d(1, 2, 3, bias=False).bias is None


def test_conv_transpose_layer_shapes_and_output_size():
    up = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
    assert up.weight.shape == (8, 4, 4, 4)
    x = nerve.randn(2, 8, 5, 5)
    assert up(x).shape == (2, 4, 10, 10)
    down = nn.Conv2d(4, 8, 3, stride=2, padding=1)
    assert down(nerve.randn(1, 4, 10, 10)).shape == (1, 8, 5, 5)
    up3 = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1)
    assert up3(x).shape == (2, 4, 9, 9)
    assert up3(x, output_size=(10, 10)).shape == (2, 4, 10, 10)
    with pytest.raises(ValueError, match="output_size"):
        up3(x, output_size=(12, 12))
    assert nn.ConvTranspose1d(3, 2, 3, stride=2)(nerve.randn(1, 3, 4)).shape == (1, 2, 9)


def test_bad_inputs_name_the_layer_and_shapes():
    conv = nn.Conv2d(1, 32, 3)
    message = r"^Conv2d\(1 -> 32, k=3\): expected input \(N, 1, H, W\), got \(32, 28, 28\)$"
    with pytest.raises(RuntimeError, match=message):
        conv(nerve.randn(32, 28, 28))
    with pytest.raises(RuntimeError, match=r"Conv1d\(3 -> 4, k=5\): expected input \(N, 3, L\), got \(2, 3, 4, 5\)"):
        nn.Conv1d(3, 4, 5)(nerve.randn(2, 3, 4, 5))
    with pytest.raises(TypeError, match="dtype float64 but the weights are float32"):
        conv(nerve.randn(1, 1, 5, 5).double())
    with pytest.raises(ValueError, match=r"conv2d: input of spatial size \(2, 2\).*smaller than the kernel \(3, 3\)"):
        conv(nerve.randn(1, 1, 2, 2))
    with pytest.raises(ValueError, match="groups=2 must divide in_channels 3"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")


# --- BatchNorm2d and Dropout2d ----------------------------------------------------------------------------
def test_batchnorm2d_matches_reference_updates_stats_and_gradchecks():
    bn = nn.BatchNorm2d(3).double()
    x = RNG.standard_normal((4, 3, 5, 2)) * 3 + 1
    with nerve.no_grad():
        bn.weight.data[:] = [1.0, 2.0, -0.5]
        bn.bias.data[:] = [0.0, 1.0, 2.0]
    out = bn(T(x)).numpy()
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    want = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * bn.weight.numpy()[:, None, None] \
        + bn.bias.numpy()[:, None, None]
    np.testing.assert_allclose(out, want, rtol=1e-10)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mean, rtol=1e-10)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-10)
    assert int(bn.num_batches_tracked.item()) == 1
    bn.eval()
    want_eval = (x - bn.running_mean.numpy()[:, None, None]) / np.sqrt(bn.running_var.numpy()[:, None, None] + 1e-5) \
        * bn.weight.numpy()[:, None, None] + bn.bias.numpy()[:, None, None]
    np.testing.assert_allclose(bn(T(x)).numpy(), want_eval, rtol=1e-10)
    bn.train()
    small = T(RNG.standard_normal((2, 3, 2, 2)), True)
    assert nerve.gradcheck(lambda x, w, b: bn(x), [small, bn.weight, bn.bias])
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected input \(N, 3, H, W\), got \(2, 3, 4\)"):
        bn(nerve.randn(2, 3, 4).double())
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(nerve.randn(1, 3, 1, 1).double())


def test_batchnorm2d_on_conv_output():
    """On a convolution's channels-last output the rows are free views; results equal a contiguous input."""
    conv, bn = nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4)
    y = conv(nerve.randn(3, 2, 6, 6))
    np.testing.assert_allclose(bn(y).numpy(), nn.BatchNorm2d(4)(nerve.tensor(np.ascontiguousarray(y.numpy()))).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_dropout2d_drops_whole_channels():
    drop = nn.Dropout2d(0.5, generator=np.random.default_rng(0))
    x = nerve.ones(8, 16, 3, 3)
    out = drop(x).numpy()
    per_channel = out.reshape(8, 16, -1)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert (per_channel.min(axis=2) == per_channel.max(axis=2)).all()
    assert 0.3 < (per_channel[:, :, 0] == 0).mean() < 0.7
    drop.eval()
    assert drop(x) is x
    assert set(np.unique(nn.Dropout1d(0.5)(nerve.ones(4, 8, 5)).numpy().reshape(4, 8, 5).std(axis=2))) == {0.0}
    with pytest.raises(ValueError, match="Dropout2d: p must be in"):
        nn.Dropout2d(1.5)
    with pytest.raises(ValueError, match=r"dropout2d: expected input \(N, C, H, W\)"):
        drop.train()
        drop(nerve.ones(2, 3))


# --- models and learning ------------------------------------------------------------------------------------
def test_models_shapes_and_parameter_counts():
    assert SmallCNN()(nerve.randn(2, 1, 28, 28)).shape == (2, 10)
    assert sum(p.numel() for p in SmallCNN().parameters()) == 1_199_882  # PyTorch's MNIST example
    assert LeNet5()(nerve.randn(2, 1, 28, 28)).shape == (2, 10)
    assert sum(p.numel() for p in LeNet5().parameters()) == 61_706  # LeCun et al.'s count
    assert LeNet5(activation="tanh", pool="avg")(nerve.randn(1, 1, 28, 28)).shape == (1, 10)
    assert CNN1d()(nerve.randn(3, 1, 40)).shape == (3, 10)
    assert sum(p.numel() for p in CNN1d().parameters()) == 5210
    assert SmallCNN(in_channels=3, num_classes=5, image_size=32)(nerve.randn(1, 3, 32, 32)).shape == (1, 5)
    assert SmallCNN().get_config() == {"in_channels": 1, "num_classes": 10, "image_size": 28}


def _bars(n, rng):
    """8x8 images of a horizontal bar, a vertical bar, a diagonal or an anti-diagonal, anywhere, with noise."""
    y = rng.integers(0, 4, n)
    x = rng.normal(0, 0.3, (n, 1, 8, 8))
    for i, (label, r, c) in enumerate(zip(y, rng.integers(1, 7, n), rng.integers(1, 7, n))):
        if label == 0:
            x[i, 0, r, max(c - 2, 0):c + 2] += 1
        elif label == 1:
            x[i, 0, max(r - 2, 0):r + 2, c] += 1
        else:
            for k in range(-1, 2):
                rr, cc = r + k, c + (k if label == 2 else -k)
                if 0 <= rr < 8 and 0 <= cc < 8:
                    x[i, 0, rr, cc] += 1
    return x.astype(np.float32), y


def test_small_cnn_learns_bar_orientations():
    nerve.manual_seed(0)
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(16, 4))
    opt = nerve.optim.Adam(model.parameters(), lr=0.02)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(70):
        xb, yb = _bars(64, rng)
        opt.zero_grad()
        loss_fn(model(nerve.tensor(xb)), nerve.tensor(yb)).backward()
        opt.step()
    model.eval()
    xt, yt = _bars(400, np.random.default_rng(1))
    accuracy = (model(nerve.tensor(xt)).numpy().argmax(1) == yt).mean()
    assert accuracy > 0.95, accuracy


def test_cnn1d_learns_bump_shapes():
    """Sequences holding a narrow or a wide bump somewhere: a 1-d CNN tells them apart."""
    nerve.manual_seed(0)
    rng = np.random.default_rng(0)

    def data(n):
        y = rng.integers(0, 2, n)
        t = np.arange(40)
        centre = rng.integers(8, 32, n)[:, None]
        width = np.where(y == 0, 1.5, 5.0)[:, None]
        x = np.exp(-0.5 * ((t - centre) / width) ** 2) + rng.normal(0, 0.1, (n, 40))
        return x[:, None, :].astype(np.float32), y
    model = CNN1d(num_classes=2, channels=8)
    opt = nerve.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(100):
        xb, yb = data(64)
        opt.zero_grad()
        F.cross_entropy(model(nerve.tensor(xb)), nerve.tensor(yb)).backward()
        opt.step()
    xt, yt = data(300)
    assert (model(nerve.tensor(xt)).numpy().argmax(1) == yt).mean() > 0.95


@pytest.mark.parametrize("k", [1, 2])
def test_memory_stays_within_one_layers_columns_and_does_not_grow(k, monkeypatch):
    """Training steps of a conv layer allocate at most the activations, the gradients and one chunk of
    columns (CHUNK_BYTES) per stream beyond what they keep, and the peak is the same at step 8 as at step 2."""
    import tracemalloc

    from nerve.ops import streams
    monkeypatch.setattr(streams, "STREAMS", k)  # fixed, so every step cuts its batch the same way
    nerve.manual_seed(0)
    conv = nn.Conv2d(32, 16, 3, padding=1)
    opt = nerve.optim.Adam(conv.parameters())
    x = nerve.randn(16, 32, 32, 32)  # 2.1 MB; columns of the whole batch: 16 * 32 * 32 * 288 * 4 B = 18.9 MB
    act = 16 * 16 * 32 * 32 * 4  # one output (or output gradient): 1 MB

    def step():
        opt.zero_grad()
        conv(x).square().mean().backward()
        opt.step()
    peaks, kept = [], []
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for i in range(8):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            step()
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
            kept.append(tracemalloc.get_traced_memory()[0] - start)
    finally:
        tracemalloc.stop()
    whole_columns = 16 * 32 * 32 * 288 * 4
    assert max(peaks) < k * CHUNK_BYTES + 4 * act + x.data.nbytes < whole_columns, peaks
    # what a step keeps (gradients, Adam's moments) is there after step 2 and does not grow after it; the peak
    # itself varies with how the streams' chunks overlap in time
    assert kept[-1] <= kept[1] + 64 * 1024, kept
