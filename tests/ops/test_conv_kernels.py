"""nerve.ops.conv_kernels (compiled im2col fills of row chunks for conv.py's forward and weight gradient): the
fills against columns gathered by plain NumPy indexing (both layouts, chunks cut inside output rows, stride,
dilation, padding wider than the kernel, asymmetric padding); conv1d/conv2d forward and weight gradient through
them equal the NumPy im2col path (float32 within round-off, float64 to 1e-12) and the nested-loop reference
(odd sizes, 1x1 images, channels 1, batch 1, non-square kernels, channels-first, channels-last and strided
inputs); gradcheck and gradgradcheck with them; the faces they do not take; batch parts on threads; numba
missing falls back; memory held does not grow over training steps."""
import itertools
import sys

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn
from nerve.ops import conv, conv_kernels, streams, workers
from tests.ops.test_conv import ref_conv, ref_conv_grads
from tests.ops.test_streams import training_bytes_growth

pytest.importorskip("numba")  # without numba conv.py's NumPy im2col runs alone (tested in test_conv.py)


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Chunks of 7 rows, so that they start and end inside output rows and images."""
    monkeypatch.setattr(conv_kernels, "SMALL_GEMM", 0)
    monkeypatch.setattr(conv_kernels, "MIN_ROWS", 7)
    monkeypatch.setattr(conv_kernels, "CHUNK_BYTES", 1)


@pytest.fixture
def calls(monkeypatch):
    """The list of Columns built (one per face that ran through the compiled fills)."""
    seen = []
    real = conv_kernels.Columns

    class Spy(real):
        def __init__(self, *args, **kwargs):
            seen.append(args[1])
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(conv_kernels, "Columns", Spy)
    return seen


def _layout(x, layout: str):
    """x (N, C, *S) with the same values in channels-first, channels-last or strided (non-contiguous) memory."""
    if layout == "last":
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
    if layout == "strided":
        wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    return np.ascontiguousarray(x)


def _gathered(x, geom):
    """Columns (rows, KK*C) by NumPy indexing: row (n, i, j), column (a, b, c) = x[n, c, i s - lo + a d, ...]."""
    n, c = x.shape[:2]
    xpad = np.pad(x, [(0, 0), (0, 0)] + [(a, max(0, h)) for a, h in zip(geom.lo, geom.hi)])
    rows = []
    for img, pos in itertools.product(range(n), itertools.product(*map(range, geom.out))):
        row = []
        for k in itertools.product(*map(range, geom.kernel)):
            at = tuple(p * s + i * d for p, s, i, d in zip(pos, geom.stride, k, geom.dilation))
            row.extend(xpad[(img, slice(None)) + at])
        rows.append(row)
    return np.array(rows).reshape(n * int(np.prod(geom.out)), -1)


GEOMETRIES = [  # (size, kernel, stride, padding, dilation)
    ((7, 9), (3, 2), (2, 1), (1, 2), (1, 2)),
    ((9, 11), (3, 2), (2, 3), (4, 0), (2, 1)),
    ((1, 1), (1, 1), (2, 2), (1, 1), (1, 1)),
    ((5, 5), (5, 5), (1, 1), (6, 6), (1, 1)),
    ((6, 4), (2, 2), (1, 1), "same", (1, 1)),
    ((10,), (3,), (2,), (1,), (1,)),
    ((8,), (3,), (1,), (5,), (2,)),
]


@pytest.mark.parametrize("layout", ["first", "last"])
@pytest.mark.parametrize("size,kernel,stride,padding,dilation", GEOMETRIES)
def test_fills_equal_numpy_gathered_columns(tiny_chunks, layout, size, kernel, stride, padding, dilation):
    """Every chunk's columns equal NumPy's gathering, chunks of 7 rows cut inside output rows."""
    rng = np.random.default_rng(0)
    for c in (1, 3):
        x = _layout(rng.standard_normal((2, c) + size), layout)
        geom = conv.conv_geometry("t", size, kernel, stride, padding, dilation)
        cols = conv_kernels.Columns(x, geom, 5, conv.last_memory)
        assert cols.kmajor == (c == 1 or (layout == "first" and np.prod(size) > 1))  # both contiguous: rows
        rows = 2 * int(np.prod(geom.out))
        chunks = cols.chunks(0, rows)
        assert chunks[0][0] == 0 and chunks[-1][1] == rows and all(b - a <= 8 for a, b in chunks)
        buffer = np.empty(max(b - a for a, b in chunks) * cols.width)
        got = np.concatenate([cols.fill(buffer, a, b).copy() for a, b in chunks])
        np.testing.assert_array_equal(got, _gathered(x, geom))


def test_bias_rows_kernel():
    y, b = np.arange(12.0).reshape(4, 3), np.array([1.0, 2.0, 3.0])
    want = y.copy()
    want[1:3] += b
    conv_kernels.kernels().add_rows(y, b, 1, 3)
    np.testing.assert_array_equal(y, want)


def _faces(x, w, b, stride, padding, dilation, g):
    """conv's forward and weight gradient through conv.py's face functions on raw arrays."""
    geom = conv.conv_geometry("t", x.shape[2:], w.shape[2:], stride, padding, dilation)
    y = np.array(conv.conv_forward(x, w, b, geom))
    dw = conv.conv_weight_grad(x, g.reshape(-1, w.shape[0]), geom, w.shape)
    return y, dw, geom


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("layout", ["first", "last", "strided"])
@pytest.mark.parametrize("n,c,o,size,kernel,stride,padding,dilation", [
    (3, 3, 4, (9, 11), (3, 2), (2, 1), (1, 2), (1, 2)),   # odd, non-square, dilated
    (1, 1, 2, (1, 1), (1, 1), (2, 2), (1, 1), (1, 1)),    # batch 1, a 1x1 image, padding only
    (2, 1, 5, (28, 28), (3, 3), (1, 1), (0, 0), (1, 1)),  # SmallCNN's conv1 (channels 1)
    (2, 6, 7, (9, 8), (3, 3), (2, 2), (1, 1), (1, 1)),    # stride 2
    (2, 3, 4, (7, 7), (5, 5), (1, 1), (2, 2), (1, 1)),    # 5x5
    (2, 2, 3, (4, 4), (3, 3), (1, 1), (5, 5), (1, 1)),    # padding wider than the kernel
    (2, 4, 3, (11,), (3,), (2,), (1,), (2,)),             # 1-d
])
def test_faces_equal_numpy_im2col_and_loops(monkeypatch, calls, tiny_chunks, dtype, tol, layout, n, c, o, size,
                                            kernel, stride, padding, dilation):
    """conv_forward and conv_weight_grad through the fills equal NumPy's im2col and the nested loops."""
    rng = np.random.default_rng(1)
    x = _layout(rng.standard_normal((n, c) + size).astype(dtype), layout)
    w, b = rng.standard_normal((o, c) + kernel).astype(dtype), rng.standard_normal(o).astype(dtype)
    geom = conv.conv_geometry("t", size, kernel, stride, padding, dilation)
    g = _layout(rng.standard_normal((n, o) + geom.out).astype(dtype), "last")
    g_rows = np.ascontiguousarray(np.moveaxis(g, 1, -1))
    y, dw, _ = _faces(x, w, b, stride, padding, dilation, g_rows)
    assert len(calls) == 2
    monkeypatch.setattr(conv_kernels, "ENABLED", False)
    y0, dw0, _ = _faces(x, w, b, stride, padding, dilation, g_rows)
    assert len(calls) == 2
    scale = max(1.0, np.abs(y0).max())
    np.testing.assert_allclose(y, y0, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(dw, dw0, rtol=tol, atol=tol * max(1.0, np.abs(dw0).max()))
    x64, w64 = np.asarray(x, np.float64), w.astype(np.float64)
    ref = ref_conv(x64, w64, b.astype(np.float64), geom.stride, geom.lo, geom.hi, geom.dilation, 1)
    np.testing.assert_allclose(y, ref, rtol=tol * 10, atol=tol * 10 * scale)
    _, ref_dw, _ = ref_conv_grads(x64, w64, np.asarray(g, np.float64), geom.stride, geom.lo, geom.hi,
                                  geom.dilation, 1)
    np.testing.assert_allclose(dw, ref_dw, rtol=tol * 10, atol=tol * 10 * max(1.0, np.abs(ref_dw).max()))


def test_layers_train_through_them(calls):
    """conv1d, conv2d and conv_transpose2d (its weight gradient and input-gradient forward) with bias, float32
    in a training step: gradients equal those of the NumPy path."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 7)).astype(np.float32)
    results = []
    for enabled in (True, False):
        conv_kernels.ENABLED = enabled
        try:
            nerve.manual_seed(0)
            net = nn.Sequential(nn.Conv2d(3, 5, (3, 2), stride=2, padding=1), nn.ReLU(),
                                nn.ConvTranspose2d(5, 2, 3, stride=2))
            xt = nerve.tensor(x, requires_grad=True)
            loss = net(xt).square().mean()
            loss.backward()
            results.append([loss.numpy()] + [p.grad.numpy() for p in net.parameters()] + [xt.grad.numpy()])
        finally:
            conv_kernels.ENABLED = True
    assert calls
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_gradcheck_and_gradgradcheck(tiny_chunks, calls):
    """Float64, the fills forced into chunks of 7 rows: conv2d (stride 2, dilation, bias) and conv1d."""
    rng = np.random.default_rng(3)
    x = nerve.tensor(rng.standard_normal((2, 2, 6, 5)), requires_grad=True)
    w = nerve.tensor(rng.standard_normal((3, 2, 3, 2)), requires_grad=True)
    b = nerve.tensor(rng.standard_normal(3), requires_grad=True)

    def f(x, w, b):
        return F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2))
    assert nerve.gradcheck(f, (x, w, b))
    assert nerve.gradgradcheck(f, (x, w, b))
    x1 = nerve.tensor(rng.standard_normal((2, 3, 9)), requires_grad=True)
    w1 = nerve.tensor(rng.standard_normal((2, 3, 3)), requires_grad=True)
    assert nerve.gradcheck(lambda x, w: F.conv1d(x, w, stride=2, padding=2), (x1, w1))
    assert nerve.gradgradcheck(lambda x, w: F.conv1d(x, w, stride=2, padding=2), (x1, w1))
    assert len(calls) > 10


@pytest.mark.parametrize("case", ["groups", "3d", "mixed dtypes", "float16", "1x1"])
def test_faces_they_do_not_take(calls, case):
    """Groups, 3-d, mixed (the forward) or other dtypes and the plain 1x1 GEMM stay on conv.py's own paths (and
    still agree with the loops)."""
    rng = np.random.default_rng(4)
    c, groups, kernel, size, dtype, wdtype = 4, 1, (3, 3), (6, 5), np.float64, np.float64
    if case == "groups":
        groups = 2
    elif case == "3d":
        kernel, size = (2, 2, 2), (3, 4, 3)
    elif case == "mixed dtypes":
        wdtype = np.float32
    elif case == "float16":
        dtype = wdtype = np.float16
    else:
        kernel = (1, 1)
    x = rng.standard_normal((2, c) + size).astype(dtype)
    w = rng.standard_normal((4, c // groups) + kernel).astype(wdtype)
    y = F.conv2d if len(size) == 2 else F.conv3d
    xt, wt = nerve.tensor(x, requires_grad=True), nerve.tensor(w, requires_grad=True)
    out = y(xt, wt, padding=1 if case != "1x1" else 0, groups=groups)
    assert calls == []
    out.sum().backward()  # the weight gradient of mixed dtypes has x and g of one dtype: it may take the fills
    assert calls == [] or case == "mixed dtypes"
    geom = conv.conv_geometry("t", size, kernel, 1, 1 if case != "1x1" else 0, 1, groups)
    ref = ref_conv(x.astype(np.float64), w.astype(np.float64), None, geom.stride, geom.lo, geom.hi, geom.dilation,
                   groups)
    tol = 1e-2 if case == "float16" else 1e-5
    np.testing.assert_allclose(out.numpy().astype(np.float64), ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("parts", [2, 3])
def test_batch_parts_on_threads_equal_one_part(monkeypatch, tiny_chunks, parts, native):
    """Parts of the batch on threads take blocks of chunks as they go: the forward and the weight gradient are
    bit for bit those of one part, whether the workers run them as native parts (no GIL) or through Python."""
    monkeypatch.setattr(workers, "NATIVE", native)
    rng = np.random.default_rng(5)
    x = _layout(rng.standard_normal((5, 3, 8, 7)), "last")
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    geom = conv.conv_geometry("t", (8, 7), (3, 3), 2, 1)
    g = rng.standard_normal((5 * int(np.prod(geom.out)), 4))
    monkeypatch.setattr(streams, "STREAMS", 1)
    y1, dw1, _ = _faces(x, w, b, 2, 1, 1, g)
    monkeypatch.setattr(streams, "STREAMS", parts)
    monkeypatch.setattr(streams, "MIN_FLOPS", 0)
    y2, dw2, _ = _faces(x, w, b, 2, 1, 1, g)
    np.testing.assert_array_equal(y2, y1)  # blocks of chunks: the same sums whichever thread takes them
    np.testing.assert_array_equal(dw2, dw1)


def test_without_numba_conv_runs_numpy_im2col(monkeypatch, calls):
    """numba missing (its import fails): kernels() is None, the fills are not used, same results."""
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3))
    g = rng.standard_normal((2 * 4 * 3, 4))
    want = _faces(x, w, None, 2, 1, 1, g)[:2]
    assert len(calls) == 2
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now raises ImportError
    monkeypatch.setattr(conv_kernels, "_state", {})
    assert conv_kernels.kernels() is None and not conv_kernels.applies(x, w, conv.conv_geometry("t", (7, 6), 3))
    got = _faces(x, w, None, 2, 1, 1, g)[:2]
    assert len(calls) == 2
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_memory_per_step_does_not_grow(calls):
    """Bytes of NumPy array buffers held (tracemalloc's NumPy domain) after 6 more training steps equal those
    after the first, through the compiled fills."""
    nerve.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 5, padding=2))
    x = nerve.tensor(np.random.default_rng(0).standard_normal((3, 1, 9, 7)).astype(np.float32))
    assert training_bytes_growth(net, x) == 0
    assert len(calls) > 6


@pytest.mark.parametrize("bias_dtype", [np.float64, np.float16, np.int64])
def test_bias_of_another_dtype(calls, bias_dtype):
    """A bias whose dtype differs from x and w is cast into the output, as the NumPy path's ``y += b``."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    w, b = rng.standard_normal((4, 3, 3, 3)).astype(np.float32), np.arange(4).astype(bias_dtype)
    geom = conv.conv_geometry("t", (7, 7), 3, 2, 1)
    y = np.array(conv.conv_forward(x, w, b, geom))
    conv_kernels.ENABLED = False
    try:
        want = np.array(conv.conv_forward(x, w, b, geom))
    finally:
        conv_kernels.ENABLED = True
    assert len(calls) == 1 and y.dtype == want.dtype == np.float32
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)


def test_empty_batch(calls):
    x = nerve.tensor(np.zeros((0, 3, 5, 5)), requires_grad=True)
    w = nerve.tensor(np.ones((2, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, stride=2, padding=1)
    y.sum().backward()
    assert y.shape == (0, 2, 3, 3) and x.grad.shape == (0, 3, 5, 5) and len(calls) == 2
    np.testing.assert_array_equal(w.grad.numpy(), 0)


def test_blocks_are_each_taken_once_in_order(monkeypatch):
    monkeypatch.setattr(conv_kernels, "BLOCKS", 8)
    x = np.zeros((3, 2, 9, 9))
    cols = conv_kernels.Columns(x, conv.conv_geometry("t", (9, 9), 3), 4, conv.last_memory)
    cols.step = 10
    blocks = conv_kernels.Blocks(cols, 3 * 49)
    assert len(blocks) == conv_kernels.BLOCKS
    assert [c for b in blocks.blocks for c in b] == cols.chunks(0, 3 * 49)
    first, second = blocks.take(), blocks.take()
    taken = [next(first)[0], next(second)[0], next(second)[0]] + [i for i, _ in first] + [i for i, _ in second]
    assert taken == list(range(len(blocks)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["first", "last"])
@pytest.mark.parametrize("n,c,o,size,kernel,stride,padding", [
    (2, 1, 5, (28, 28), (3, 3), (1, 1), (0, 0)),   # SmallCNN's conv1
    (2, 3, 4, (9, 7), (5, 5), (1, 1), (2, 2)),     # 5x5, odd sizes
    (3, 6, 7, (9, 8), (3, 3), (2, 2), (1, 1)),     # stride 2
    (2, 4, 3, (11,), (3,), (2,), (1,)),            # 1-d
])
def test_compiled_block_loops_equal_the_python_loops(monkeypatch, tiny_chunks, dtype, layout, n, c, o, size, kernel,
                                                     stride, padding):
    """With NumPy's CBLAS found, each part's whole chunk loop is one compiled call (fills, GEMMs through CBLAS,
    the bias): the same results as the Python loop over the chunks (np.dot, sums added), which runs where the
    GEMM cannot be called."""
    ran = []
    real = conv_kernels._loops

    class Spy:
        def __init__(self, bits):
            self.loops = real(bits)
            self.natives = self.loops.natives

        def forward(self, *args):
            ran.append("forward")
            return self.loops.forward(*args)

        def weight_grad(self, *args):
            ran.append("weight")
            return self.loops.weight_grad(*args)
    monkeypatch.setattr(conv_kernels, "_loops", Spy)
    rng = np.random.default_rng(2)
    x = _layout(rng.standard_normal((n, c) + size).astype(dtype), layout)
    w, b = rng.standard_normal((o, c) + kernel).astype(dtype), rng.standard_normal(o).astype(dtype)
    geom = conv.conv_geometry("t", size, kernel, stride, padding)
    g = rng.standard_normal((n * int(np.prod(geom.out)), o)).astype(dtype)
    y, dw, _ = _faces(x, w, b, stride, padding, 1, g)
    assert ran == ["forward", "weight"]
    monkeypatch.setattr(conv_kernels, "_gemm", lambda *arrays: None)  # no CBLAS: the Python loops
    y0, dw0, _ = _faces(x, w, b, stride, padding, 1, g)
    assert ran == ["forward", "weight"]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, y0, rtol=tol, atol=tol * max(1.0, np.abs(y0).max()))
    np.testing.assert_allclose(dw, dw0, rtol=tol, atol=tol * max(1.0, np.abs(dw0).max()))


def test_gemm_takes_only_unit_stride_rows():
    a = np.zeros((4, 6), np.float32)
    assert conv_kernels._gemm(a, a[:, :3]) is not None  # rows of a wider matrix: a leading dimension
    assert conv_kernels._gemm(a, a[:, ::2]) is None  # strided columns: the Python loop
    assert conv_kernels._gemm(a.T) is None
    found = conv_kernels._gemm(a.astype(np.float64))
    assert found is None or found[0] == conv_kernels.cblas.numpy_gemm()[1]  # dgemm for float64


def test_blocks_arrays_list_the_chunks_of_each_block(monkeypatch):
    """The compiled loops read the blocks as arrays: every chunk's bounds in block order and each block's span."""
    monkeypatch.setattr(conv_kernels, "BLOCKS", 5)
    cols = conv_kernels.Columns(np.zeros((3, 2, 9, 9)), conv.conv_geometry("t", (9, 9), 3), 4, conv.last_memory)
    cols.step = 10
    blocks = conv_kernels.Blocks(cols, 3 * 49)
    for (s, e), chunks in zip(blocks.spans.tolist(), blocks.blocks):
        assert [tuple(r) for r in blocks.bounds[s:e].tolist()] == chunks
    assert blocks.spans[-1, 1] == len(blocks.bounds) and blocks.counter.tolist() == [0]


@pytest.mark.parametrize("path", ["compiled", "native", "python"])
@pytest.mark.parametrize("layout", ["first", "last"])
def test_the_bias_gradient_summed_in_the_weight_loop(monkeypatch, tiny_chunks, layout, path):
    """conv_weight_grad's bias gradient, summed from the output gradient's rows in the same pass (each chunk's
    ones @ g2 into its block's sum), equals NumPy's column sums: one part (compiled loop), parts on threads (the
    workers' native parts), and the Python loop where no CBLAS GEMM is found; dW is unchanged."""
    monkeypatch.setattr(conv_kernels, "BLOCKS", 4)  # several chunks a block: their sums add up
    rng = np.random.default_rng(7)
    x = _layout(rng.standard_normal((3, 4, 9, 8)), layout)
    w = rng.standard_normal((5, 4, 3, 3))
    geom = conv.conv_geometry("t", (9, 8), (3, 3), 1, 1, 2)
    g2 = rng.standard_normal((3 * int(np.prod(geom.out)), 5))
    if path == "native":
        monkeypatch.setattr(streams, "STREAMS", 2)
        monkeypatch.setattr(streams, "MIN_FLOPS", 0)
    else:
        monkeypatch.setattr(streams, "STREAMS", 1)
    if path == "python":
        monkeypatch.setattr(conv_kernels, "_gemm", lambda *arrays: None)
    bias = []
    dw = conv.conv_weight_grad(x, g2, geom, w.shape, bias)
    np.testing.assert_allclose(bias[0], g2.sum(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, conv.conv_weight_grad(x, g2, geom, w.shape), rtol=1e-12, atol=1e-12)
