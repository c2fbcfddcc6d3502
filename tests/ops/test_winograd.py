"""nerve.ops.winograd (F(2x2, 3x3) for stride-1 3x3 convolutions, compiled transforms): the transform matrices
against a direct correlation (and, transposed, F(3x3, 2x2) for the weight gradient); conv2d's forward, input
gradient and weight gradient and conv_transpose2d with the Winograd path forced equal the im2col path (float32
within round-off, float64 to 1e-12) and the nested-loop reference for odd sizes (1x1, 2x2 and odd images with
clipped tiles, channels 1, batch 1, non-square, paddings 0-3 and "same"); gradcheck and gradgradcheck through it;
the shapes it does not take; parts of the batch on threads; numba missing falls back to im2col; memory held does
not grow over training steps."""
import sys

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn
from nerve.ops import conv, streams, winograd, workers
from tests.ops.test_conv import ref_conv
from tests.ops.test_streams import training_bytes_growth

pytest.importorskip("numba")  # without numba conv.py's im2col path runs alone (tested in test_conv.py)

# F(2, 3) as in Lavin & Gray (2016), written out independently of the module's compiled loops
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float)


def _spy(monkeypatch, seen: list, name: str) -> None:
    real = getattr(winograd, name)

    def spy(*args, **kwargs):
        seen.append(name)
        return real(*args, **kwargs)
    monkeypatch.setattr(winograd, name, spy)


@pytest.fixture
def calls(monkeypatch):
    """Winograd forced for any channel count; the list of its kernels' calls (``correlate``: forward and input
    gradient, ``weight_grad``), to check that it ran."""
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)
    seen = []
    _spy(monkeypatch, seen, "correlate")
    _spy(monkeypatch, seen, "weight_grad")
    return seen


def _faces(n, c, o, size, padding, dtype, seed=0, bias=True):
    """conv2d's output, its input gradient and its weight gradient for a random output gradient."""
    rng = np.random.default_rng(seed)
    x = nerve.tensor(rng.standard_normal((n, c) + size).astype(dtype), requires_grad=True)
    w = nerve.tensor(rng.standard_normal((o, c, 3, 3)).astype(dtype), requires_grad=True)
    b = nerve.tensor(rng.standard_normal(o).astype(dtype)) if bias else None
    y = F.conv2d(x, w, b, padding=padding)
    gx, gw = nerve.grad(y, [x, w], nerve.tensor(rng.standard_normal(y.shape).astype(dtype)))
    return y.numpy(), gx.numpy(), gw.numpy()


def test_transform_matrices_give_the_correlation():
    """A^T [(G g G^T) * (B^T d B)] A over a 4x4 tile is the 2x2 valid correlation of the tile with g (1-d too)."""
    rng = np.random.default_rng(1)
    d, g = rng.standard_normal(4), rng.standard_normal(3)
    np.testing.assert_allclose(AT @ ((G @ g) * (BT @ d)), [d[0:3] @ g, d[1:4] @ g], rtol=1e-14)
    d, g = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
    want = [[(d[i:i + 3, j:j + 3] * g).sum() for j in range(2)] for i in range(2)]
    np.testing.assert_allclose(AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T, want, rtol=1e-13)
    w = rng.standard_normal((2, 3, 3, 3))
    u = winograd.filter_transform(w).reshape(4, 4, 3, 2)
    np.testing.assert_allclose(u[:, :, 1, 0], G @ w[0, 1] @ G.T, rtol=1e-15)


def test_transposed_matrices_give_the_weight_gradient():
    """F(3x3, 2x2) by transposition: G^T [(A q A^T) * (B^T d B)] G is the 3x3 correlation of a 4x4 tile d with
    a 2x2 output-gradient tile q (the weight gradient's share of that tile)."""
    rng = np.random.default_rng(2)
    d, q = rng.standard_normal((4, 4)), rng.standard_normal((2, 2))
    want = [[(d[i:i + 2, j:j + 2] * q).sum() for j in range(3)] for i in range(3)]
    np.testing.assert_allclose(G.T @ ((AT.T @ q @ AT) * (BT @ d @ BT.T)) @ G, want, rtol=1e-13, atol=1e-14)


SHAPES = [  # (batch, in channels, out channels, image size, padding)
    (2, 3, 4, (7, 5), 1),        # odd, non-square: clipped tiles on both edges
    (1, 1, 1, (3, 3), 0),        # one output, channels 1, batch 1
    (1, 2, 3, (1, 1), 1),        # 1x1 image
    (2, 2, 3, (2, 2), 2),        # 2x2 image, padding 2
    (3, 5, 2, (6, 9), 0),
    (2, 4, 6, (5, 4), "same"),
    (1, 3, 2, (4, 4), 3),        # padding beyond the kernel: the input gradient crops
    (2, 17, 19, (9, 8), 1),      # channels past SIMD widths
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_three_faces_equal_im2col(shape, dtype, calls, monkeypatch):
    n, c, o, size, padding = shape
    fast = _faces(n, c, o, size, padding, dtype)
    assert sorted(calls) == ["correlate", "correlate", "weight_grad"]  # forward, input and weight gradients
    monkeypatch.setattr(winograd, "ENABLED", False)
    plain = _faces(n, c, o, size, padding, dtype)
    assert len(calls) == 3
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for a, b in zip(fast, plain):
        assert a.dtype == dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("shape", SHAPES[:4], ids=str)
def test_forward_equals_the_loop_reference(shape, calls):
    n, c, o, size, padding = shape
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((n, c) + size), rng.standard_normal((o, c, 3, 3)), rng.standard_normal(o)
    got = F.conv2d(nerve.tensor(x), nerve.tensor(w), nerve.tensor(b), padding=padding).numpy()
    assert calls
    np.testing.assert_allclose(got, ref_conv(x, w, b, (1, 1), (padding,) * 2, (padding,) * 2, (1, 1), 1),
                               rtol=1e-12, atol=1e-12)


def test_float32_relative_error_against_float64():
    """At the benchmark's conv2 shape (32 -> 64 channels, Winograd's default threshold) both paths' float32
    results are as far from the float64 result (max error over max magnitude < 1e-6)."""
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((4, 32, 26, 26)), rng.standard_normal((64, 32, 3, 3)) * 0.1
    exact = F.conv2d(nerve.tensor(x), nerve.tensor(w)).numpy()
    fast = F.conv2d(nerve.tensor(x.astype(np.float32)), nerve.tensor(w.astype(np.float32))).numpy()
    scale = np.abs(exact).max()
    assert np.abs(fast - exact).max() / scale < 1e-6


@pytest.mark.parametrize("padding", [0, 1])
def test_conv_transpose_equals_im2col(padding, calls, monkeypatch):
    """conv_transpose2d with stride 1 is the input-gradient face: the same kernel, output_padding 0."""
    rng = np.random.default_rng(5)
    y = rng.standard_normal((2, 4, 5, 6))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(3)
    fast = F.conv_transpose2d(nerve.tensor(y), nerve.tensor(w), nerve.tensor(b), padding=padding).numpy()
    assert calls
    monkeypatch.setattr(winograd, "ENABLED", False)
    plain = F.conv_transpose2d(nerve.tensor(y), nerve.tensor(w), nerve.tensor(b), padding=padding).numpy()
    np.testing.assert_allclose(fast, plain, rtol=1e-12, atol=1e-12)


def test_gradcheck_and_gradgradcheck(calls):
    rng = np.random.default_rng(6)
    x = nerve.tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    w = nerve.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = nerve.tensor(rng.standard_normal(3), requires_grad=True)

    def fn(x, w, b):
        return F.conv2d(x, w, b, padding=1)
    assert nerve.gradcheck(fn, [x, w, b])
    assert nerve.gradgradcheck(fn, [x, w, b])
    assert len(calls) > 4


@pytest.mark.parametrize("kwargs", [dict(stride=2), dict(dilation=2), dict(groups=2)], ids=str)
def test_other_convolutions_stay_im2col(kwargs, calls):
    rng = np.random.default_rng(7)
    x = nerve.tensor(rng.standard_normal((1, 4, 8, 8)), requires_grad=True)
    w = nerve.tensor(rng.standard_normal((4, 4 // kwargs.get("groups", 1), 3, 3)))
    F.conv2d(x, w, padding=1, **kwargs).sum().backward()
    F.conv2d(x, nerve.tensor(rng.standard_normal((4, 4, 5, 5))), padding=2).sum().backward()
    F.conv2d(x.float(), nerve.tensor(rng.standard_normal((4, 4, 3, 3))))  # float32 input, float64 weight
    assert calls == []


def test_channel_threshold(monkeypatch):
    rng = np.random.default_rng(8)
    seen = []
    _spy(monkeypatch, seen, "correlate")
    _spy(monkeypatch, seen, "weight_grad")
    x = nerve.tensor(rng.standard_normal((1, winograd.MIN_CHANNELS, 6, 6)), requires_grad=True)
    for out in (winograd.MIN_CHANNELS - 1, winograd.MIN_CHANNELS):
        w = nerve.tensor(rng.standard_normal((out, winograd.MIN_CHANNELS, 3, 3)), requires_grad=True)
        F.conv2d(x, w).sum().backward()
        assert len(seen) == (0 if out < winograd.MIN_CHANNELS else 3)


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("own", [False, True])
def test_parts_of_the_batch_on_threads(own, native, calls, monkeypatch):
    """The batch cut in parts (streams, or nerve's own threads; the workers' parts native or through Python)
    gives the results of one part."""
    monkeypatch.setattr(workers, "NATIVE", native)
    monkeypatch.setattr(streams, "STREAMS", 1)
    one = [_faces(5, 3, 4, (7, 6), padding, np.float64) for padding in (1, (1, 0))]
    monkeypatch.setattr(streams, "STREAMS", None)
    monkeypatch.setattr(streams, "MIN_FLOPS", 0)
    if own:
        streams.set_threads(2)  # (conftest gives back the mode the process started with)
    else:
        monkeypatch.setattr(streams, "STREAMS", 3)
    split = [_faces(5, 3, 4, (7, 6), padding, np.float64) for padding in (1, (1, 0))]
    for a, b in zip(sum(one, ()), sum(split, ())):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_without_numba_conv_runs_im2col(monkeypatch):
    """numba missing (its import fails): kernels() is None, nothing is sent to Winograd, same results."""
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)
    want = _faces(2, 3, 4, (6, 5), 1, np.float64)
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now raises ImportError
    monkeypatch.setattr(winograd, "_state", {})
    x = np.zeros((1, 2, 2, 3))
    assert winograd.kernels() is None and not winograd.usable(x, x)
    got = _faces(2, 3, 4, (6, 5), 1, np.float64)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_memory_per_step_does_not_grow(calls):
    """Bytes of NumPy array buffers held (tracemalloc's NumPy domain) after 6 more training steps equal those
    after the first, with the Winograd path."""
    nerve.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3))
    x = nerve.tensor(np.random.default_rng(0).standard_normal((3, 2, 9, 7)).astype(np.float32))
    assert training_bytes_growth(net, x) == 0
    assert len(calls) > 6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_chunk_loops_equal_the_python_loops_bit_for_bit(dtype, monkeypatch):
    """With NumPy's CBLAS found, a part's chunk loop is one compiled call (the 16 GEMMs by address): the same
    GEMM calls as the Python loop's matmul, so the same bits; tiny chunks, odd sizes, a bias, padding 1."""
    monkeypatch.setattr(winograd, "MIN_TILES", 3)
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 1)
    rng = np.random.default_rng(3)
    x = np.ascontiguousarray(rng.standard_normal((3, 9, 11, 5)).astype(dtype))
    w, b = rng.standard_normal((6, 5, 3, 3)).astype(dtype), rng.standard_normal(6).astype(dtype)
    geom = conv.conv_geometry("t", (9, 11), 3, 1, 1)
    g = np.ascontiguousarray(rng.standard_normal((3,) + geom.out + (6,)).astype(dtype))
    ran = []
    real = winograd._loops

    def spy():
        loops = real()
        ran.append(loops is not None)
        return loops
    monkeypatch.setattr(winograd, "_loops", spy)
    compiled = [winograd.forward(x, w, b, geom), winograd.input_grad(g, w, geom), winograd.weight_grad(x, g, geom)]
    assert ran == [True] * 3
    monkeypatch.setattr(winograd, "_loops", lambda: None)
    python = [winograd.forward(x, w, b, geom), winograd.input_grad(g, w, geom), winograd.weight_grad(x, g, geom)]
    for a, c in zip(compiled, python):
        np.testing.assert_array_equal(a, c)


def test_empty_batch(calls):
    """No images: an empty output and input gradient and a zero weight gradient through the Winograd faces."""
    x = nerve.tensor(np.zeros((0, 16, 8, 8), np.float32), requires_grad=True)
    w = nerve.tensor(np.ones((16, 16, 3, 3), np.float32), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    gx, gw = nerve.grad(y, [x, w], nerve.tensor(np.zeros(y.shape, np.float32)))
    assert y.shape == (0, 16, 8, 8) and gx.shape == x.shape
    np.testing.assert_array_equal(gw.numpy(), np.zeros((16, 16, 3, 3)))
    assert len(calls) == 3
