"""nerve.ops.winograd_stride2 (stride-2 3x3 convolutions by a polyphase split and F(2, 2), compiled transforms):
the 5-point algorithm's matrices against a direct stride-2 correlation (and, transposed, its weight gradient);
conv2d's forward and weight gradient with the path forced equal the im2col path (float32 within round-off,
float64 to 1e-12) and the nested-loop references for odd sizes (1x1, 2x2 and odd images with clipped tiles,
channels 1, batch 1, non-square, paddings 0-2); conv_transpose2d (whose input gradient is this forward);
gradcheck and gradgradcheck through it; the shapes it does not take; blocks on threads equal one part bit for
bit; numba missing falls back to im2col; memory held does not grow over training steps."""
import sys

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn
from nerve.ops import cblas, streams, winograd_stride2 as ws, workers
from tests.ops.test_conv import ref_conv, ref_conv_grads
from tests.ops.test_streams import training_bytes_growth

pytest.importorskip("numba")  # without numba conv.py's im2col path runs alone (tested in test_conv.py)

# the 1-d algorithm of the module docstring, written out independently of the module's compiled loops
BT = np.array([[1, 0, -1, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, -1, 0, 1], [0, 0, 0, 1, 0]], float)
G = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1], [0, 1, 0]], float)
AT = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]], float)


def _spy(monkeypatch, seen: list, name: str) -> None:
    real = getattr(ws, name)

    def spy(*args, **kwargs):
        seen.append(name)
        return real(*args, **kwargs)
    monkeypatch.setattr(ws, name, spy)


@pytest.fixture
def calls(monkeypatch):
    """The path forced for any channel and tile count; the list of its faces' calls (``forward``,
    ``weight_grad``)."""
    monkeypatch.setattr(ws, "MIN_CHANNELS", 1)
    monkeypatch.setattr(ws, "MIN_CALL_TILES", 1)
    seen = []
    _spy(monkeypatch, seen, "forward")
    _spy(monkeypatch, seen, "weight_grad")
    return seen


def _faces(n, c, o, size, padding, dtype, seed=0, bias=True, channels_last=False):
    """conv2d's output (stride 2), its input gradient and its weight gradient for a random output gradient."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, c) + size).astype(dtype)
    x = nerve.tensor(data, requires_grad=True)
    if channels_last:  # another layer's output: channels-last memory
        x.data = np.ascontiguousarray(data.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    w = nerve.tensor(rng.standard_normal((o, c, 3, 3)).astype(dtype), requires_grad=True)
    b = nerve.tensor(rng.standard_normal(o).astype(dtype)) if bias else None
    y = F.conv2d(x, w, b, stride=2, padding=padding)
    gx, gw = nerve.grad(y, [x, w], nerve.tensor(rng.standard_normal(y.shape).astype(dtype)))
    return y.numpy(), gx.numpy(), gw.numpy()


def test_matrices_give_the_stride_2_correlation():
    """A^T [(G w) * (B^T d)] over 5 inputs is the two outputs 2 apart of a 3-tap correlation, and nested in 2-d
    the 2x2 output tile of a stride-2 3x3 correlation of a 5x5 tile; the points of F(2, 2) that A^T sums
    (columns of A^T alike) are the module's groups."""
    rng = np.random.default_rng(1)
    d, w = rng.standard_normal(5), rng.standard_normal(3)
    np.testing.assert_allclose(AT @ ((G @ w) * (BT @ d)), [d[0:3] @ w, d[2:5] @ w], rtol=1e-14)
    d, w = rng.standard_normal((5, 5)), rng.standard_normal((3, 3))
    want = [[(d[2 * i:2 * i + 3, 2 * j:2 * j + 3] * w).sum() for j in range(2)] for i in range(2)]
    np.testing.assert_allclose(AT @ ((G @ w @ G.T) * (BT @ d @ BT.T)) @ AT.T, want, rtol=1e-13)
    for group in ws._GROUPS:
        assert all((AT[:, k] == AT[:, group[0]]).all() for k in group)
    assert sorted(k for g in ws._GROUPS for k in g) == list(range(5))


def test_transposed_matrices_give_the_weight_gradient():
    """G^T [(A q A^T) * (B^T d B)] G is the stride-2 3x3 correlation of a 5x5 tile d with a 2x2 output-gradient
    tile q (the weight gradient's share of that tile)."""
    rng = np.random.default_rng(2)
    d, q = rng.standard_normal((5, 5)), rng.standard_normal((2, 2))
    want = [[(d[a:a + 3:2, b:b + 3:2] * q).sum() for b in range(3)] for a in range(3)]
    np.testing.assert_allclose(G.T @ ((AT.T @ q @ AT) * (BT @ d @ BT.T)) @ G, want, rtol=1e-13, atol=1e-14)


def test_filter_transform_is_g_w_gt_by_points():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((2, 3, 3, 3))
    w5 = np.einsum("ka,ocab,lb->klco", G, w, G)
    corners, edges, centre = ws.filter_transform(w)
    mats = list(corners) + list(edges) + [centre]
    for (r, s), mat in zip(ws._ORDER, mats):
        rows, cols = ws._GROUPS[r], ws._GROUPS[s]
        np.testing.assert_allclose(mat, w5[np.ix_(rows, cols)].reshape(-1, 2), rtol=1e-15)


SHAPES = [  # (batch, in channels, out channels, image size, padding)
    (2, 3, 4, (7, 5), 1),        # odd, non-square: clipped tiles on both edges
    (1, 1, 1, (3, 3), 0),        # one output, channels 1, batch 1
    (1, 2, 3, (1, 1), 1),        # 1x1 image
    (2, 2, 3, (2, 2), 1),        # 2x2 image
    (3, 5, 2, (6, 9), 0),
    (2, 4, 3, (8, 8), 2),        # padding 2
    (1, 3, 2, (11, 4), (0, 1)),  # padding per dim
    (2, 17, 19, (9, 8), 1),      # channels past SIMD widths
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_faces_equal_im2col(shape, dtype, calls, monkeypatch):
    n, c, o, size, padding = shape
    for channels_last in (False, True):
        del calls[:]
        fast = _faces(n, c, o, size, padding, dtype, channels_last=channels_last)
        assert sorted(calls) == ["forward", "weight_grad"]
        monkeypatch.setattr(ws, "ENABLED", False)
        plain = _faces(n, c, o, size, padding, dtype, channels_last=channels_last)
        monkeypatch.setattr(ws, "ENABLED", True)
        assert len(calls) == 2
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
        for a, b in zip(fast, plain):
            assert a.dtype == dtype and a.shape == b.shape
            np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("shape", SHAPES[:4] + SHAPES[6:7], ids=str)
def test_faces_equal_the_loop_references(shape, calls):
    n, c, o, size, padding = shape
    pad = padding if isinstance(padding, tuple) else (padding,) * 2
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((n, c) + size), rng.standard_normal((o, c, 3, 3)), rng.standard_normal(o)
    wt = nerve.tensor(w, requires_grad=True)
    y = F.conv2d(nerve.tensor(x), wt, nerve.tensor(b), stride=2, padding=padding)
    np.testing.assert_allclose(y.numpy(), ref_conv(x, w, b, (2, 2), pad, pad, (1, 1), 1), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    (gw,) = nerve.grad(y, [wt], nerve.tensor(g))
    np.testing.assert_allclose(gw.numpy(), ref_conv_grads(x, w, g, (2, 2), pad, pad, (1, 1), 1)[1],
                               rtol=1e-12, atol=1e-12)
    assert sorted(calls) == ["forward", "weight_grad"]


def test_float32_relative_error_against_float64():
    """At the benchmark's stride-2 shape (64 -> 128 channels, fewer images) the float32 results of both paths
    are as far from the float64 result (max error over max magnitude < 1e-6)."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 64, 32, 32)), rng.standard_normal((128, 64, 3, 3)) * 0.1
    g = rng.standard_normal((2, 128, 16, 16))
    exact = _forward_and_weight_grad(x, w, g)
    fast = _forward_and_weight_grad(x.astype(np.float32), w.astype(np.float32), g.astype(np.float32))
    for a, b in zip(fast, exact):
        assert np.abs(a - b).max() / np.abs(b).max() < 1e-6


def _forward_and_weight_grad(x, w, g):
    wt = nerve.tensor(w, requires_grad=True)
    y = F.conv2d(nerve.tensor(x), wt, stride=2, padding=1)
    return y.numpy(), nerve.grad(y, [wt], nerve.tensor(g))[0].numpy()


@pytest.mark.parametrize("padding, output_padding", [(0, 0), (1, 1), (1, 0)])
def test_conv_transpose_gradients_equal_im2col(padding, output_padding, calls, monkeypatch):
    """conv_transpose2d with stride 2: its input gradient is a stride-2 convolution (this forward, with the
    transposed geometry's cropped end) and its weight gradient this weight gradient."""
    rng = np.random.default_rng(6)
    y0 = rng.standard_normal((2, 4, 5, 6))
    w0, b0 = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(3)

    def grads():
        y, w = nerve.tensor(y0, requires_grad=True), nerve.tensor(w0, requires_grad=True)
        out = F.conv_transpose2d(y, w, nerve.tensor(b0), stride=2, padding=padding, output_padding=output_padding)
        g = np.random.default_rng(7).standard_normal(out.shape)
        return [a.numpy() for a in [out] + list(nerve.grad(out, [y, w], nerve.tensor(g)))]
    fast = grads()
    assert sorted(calls) == ["forward", "weight_grad"]
    monkeypatch.setattr(ws, "ENABLED", False)
    for a, b in zip(fast, grads()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_gradcheck_and_gradgradcheck(calls):
    rng = np.random.default_rng(8)
    x = nerve.tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    w = nerve.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = nerve.tensor(rng.standard_normal(3), requires_grad=True)

    def fn(x, w, b):
        return F.conv2d(x, w, b, stride=2, padding=1)
    assert nerve.gradcheck(fn, [x, w, b])
    assert nerve.gradgradcheck(fn, [x, w, b])
    assert "forward" in calls and "weight_grad" in calls


@pytest.mark.parametrize("kwargs", [dict(stride=1), dict(stride=(2, 1)), dict(stride=2, dilation=2),
                                    dict(stride=2, groups=2), dict(stride=3)], ids=str)
def test_other_convolutions_stay_im2col(kwargs, calls):
    rng = np.random.default_rng(9)
    x = nerve.tensor(rng.standard_normal((1, 4, 9, 9)), requires_grad=True)
    w = nerve.tensor(rng.standard_normal((4, 4 // kwargs.get("groups", 1), 3, 3)), requires_grad=True)
    F.conv2d(x, w, padding=1, **kwargs).sum().backward()
    F.conv2d(x, nerve.tensor(rng.standard_normal((4, 4, 5, 5))), stride=2, padding=2).sum().backward()
    F.conv2d(x.float(), nerve.tensor(rng.standard_normal((4, 4, 3, 3))), stride=2)  # float32 input, float64 weight
    F.conv2d(x.half(), nerve.tensor(rng.standard_normal((4, 4, 3, 3))).half(), stride=2)
    F.conv1d(x[:, :, 0], nerve.tensor(rng.standard_normal((4, 4, 3))), stride=2)
    assert calls == []


def test_channel_and_tile_thresholds(monkeypatch):
    rng = np.random.default_rng(10)
    seen = []
    _spy(monkeypatch, seen, "forward")
    _spy(monkeypatch, seen, "weight_grad")
    m = ws.MIN_CHANNELS
    monkeypatch.setattr(ws, "MIN_CALL_TILES", 2 * 2 * 3)  # 2 images of 4x5 outputs: 2x3 tiles each
    for n, out, used in ((2, m - 1, False), (2, m, True), (1, m, False)):
        del seen[:]
        x = nerve.tensor(rng.standard_normal((n, m, 10, 12)), requires_grad=True)
        w = nerve.tensor(rng.standard_normal((out, m, 3, 3)), requires_grad=True)
        F.conv2d(x, w, stride=2).sum().backward()
        assert len(seen) == (2 if used else 0)


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("own", [False, True])
def test_blocks_on_threads_equal_one_part(own, native, calls, monkeypatch):
    """Blocks of tiles taken in turn by parts on threads (streams, or nerve's own threads; the workers' parts
    native or through Python) give the results of one part, the weight gradient bit for bit (its blocks' sums are
    added in block order)."""
    monkeypatch.setattr(workers, "NATIVE", native)
    monkeypatch.setattr(ws, "MIN_TILES", 4)
    monkeypatch.setattr(ws, "WEIGHT_TILES", 4)
    monkeypatch.setattr(ws, "CHUNK_BYTES", 1)
    monkeypatch.setattr(streams, "STREAMS", 1)
    one = _faces(5, 3, 4, (13, 11), 1, np.float64)
    monkeypatch.setattr(streams, "STREAMS", None)
    monkeypatch.setattr(streams, "MIN_FLOPS", 0)
    if own:
        streams.set_threads(2)  # (conftest gives back the mode the process started with)
    else:
        monkeypatch.setattr(streams, "STREAMS", 3)
    split = _faces(5, 3, 4, (13, 11), 1, np.float64)
    np.testing.assert_array_equal(one[2], split[2])
    np.testing.assert_allclose(one[0], split[0], rtol=1e-13, atol=1e-13)


def test_without_numba_conv_runs_im2col(monkeypatch):
    """numba missing (its import fails): kernels() is None, nothing is sent here, same results; likewise without
    a CBLAS GEMM found in NumPy's BLAS."""
    monkeypatch.setattr(ws, "MIN_CHANNELS", 1)
    monkeypatch.setattr(ws, "MIN_CALL_TILES", 1)
    want = _faces(2, 3, 4, (6, 5), 1, np.float64)
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now raises ImportError
    monkeypatch.setattr(ws, "_state", {})
    assert ws.kernels() is None
    seen = []
    _spy(monkeypatch, seen, "forward")
    got = _faces(2, 3, 4, (6, 5), 1, np.float64)
    assert seen == []
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_without_cblas_conv_runs_im2col(monkeypatch, calls):
    monkeypatch.setattr(cblas, "numpy_gemm", lambda: None)
    _faces(2, 3, 4, (6, 5), 1, np.float64)
    assert calls == []


def test_memory_per_step_does_not_grow(calls):
    """Bytes of NumPy array buffers held (tracemalloc's NumPy domain) after 6 more training steps equal those
    after the first, with the stride-2 path."""
    nerve.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, stride=2))
    x = nerve.tensor(np.random.default_rng(0).standard_normal((3, 2, 13, 11)).astype(np.float32))
    assert training_bytes_growth(net, x) == 0
    assert len(calls) > 6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_batch(dtype, calls, monkeypatch):
    """No images (sent here with no tile threshold): an empty output and input gradient, a zero weight gradient."""
    monkeypatch.setattr(ws, "MIN_CALL_TILES", 0)
    x = nerve.tensor(np.zeros((0, 3, 8, 8), dtype), requires_grad=True)
    w = nerve.tensor(np.ones((4, 3, 3, 3), dtype), requires_grad=True)
    y = F.conv2d(x, w, stride=2, padding=1)
    gx, gw = nerve.grad(y, [x, w], nerve.tensor(np.zeros(y.shape, dtype)))
    assert y.shape == (0, 4, 4, 4) and gx.shape == x.shape
    np.testing.assert_array_equal(gw.numpy(), np.zeros((4, 3, 3, 3)))
    assert sorted(calls) == ["forward", "weight_grad"]
