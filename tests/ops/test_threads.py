"""nerve's own threads (``streams.set_threads``): BLAS single-threaded, nerve cutting GEMMs, element-wise passes,
pooling and Adam steps in parts on its threads. Every split kernel must give what the unsplit one gives."""
import threading

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn
from nerve.models import SmallCNN
from nerve.ops import streams
from tests.ops.test_streams import _array_bytes_growth
from tests.test_scripts import number, run_script, without_torch  # noqa: F401  (without_torch: a fixture)

RNG = np.random.default_rng(0)


@pytest.fixture
def threads(monkeypatch):
    """set_threads(2) with every size worth splitting; BLAS's thread count given back afterwards."""
    monkeypatch.setattr(streams, "STREAMS", None)
    monkeypatch.setattr(streams, "MIN_FLOPS", 0)
    monkeypatch.setattr(streams, "SPLIT_FLOPS", 0)
    monkeypatch.setattr(streams, "GEMM_SPLIT_FLOPS", 0)
    monkeypatch.setattr(streams, "SPLIT_ELEMENTS", 0)
    streams.set_threads(2)
    yield
    streams.set_threads(None)


def _both(fn):
    """fn() with nerve's own threads off, then on (thresholds 0): the two results."""
    streams.set_threads(None)
    off = fn()
    streams.set_threads(2)
    return off, fn()


def test_set_threads_keeps_blas_single_threaded_and_gives_it_back(monkeypatch):
    pytest.importorskip("threadpoolctl")
    blas = streams._blas()
    assert blas, "threadpoolctl finds no BLAS library in this process"
    streams.set_threads(None)  # BLAS's own threads (the process may have started with nerve's)
    before = [c.num_threads for c in blas]
    streams.set_threads(3)
    try:
        assert streams.get_threads() == 3 and [c.num_threads for c in blas] == [1] * len(blas)
        monkeypatch.setattr(streams, "MIN_FLOPS", 0)
        assert streams.count(8, 1.0, np.zeros(1)) == 3 and streams.count(2, 1.0, np.zeros(1)) == 2
        streams.set_threads(2)  # a second call keeps the count from before the first
    finally:
        streams.set_threads(None)
    assert streams.get_threads() == 0 and [c.num_threads for c in blas] == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_threads_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="set_threads"):
        streams.set_threads(bad)


def test_split_runs_parts_on_threads_only_under_set_threads(threads, monkeypatch):
    seen = []

    def part(a, b):
        seen.append(threading.get_ident())
        return (a, b)
    assert streams.split(part, 5, 1.0, np.zeros(1)) == [(0, 2), (2, 5)] and len(set(seen)) == 2
    streams.set_threads(None)
    assert streams.split(part, 5, 1e12, np.zeros(1)) == [(0, 5)]
    streams.set_threads(2)
    monkeypatch.setattr(streams, "SPLIT_FLOPS", 10.0)
    assert streams.split(part, 5, 9.0, np.zeros(1)) == [(0, 5)]  # too little work for a hand-off


@pytest.mark.parametrize("a_shape,b_shape", [
    ((37, 11), (11, 5)),          # rows
    ((3, 40), (40, 50)),          # few rows: columns
    ((2, 3), (3, 2)),             # too small to cut either way
    ((4, 9, 6), (4, 6, 7)),       # a stack: its leading dim
    ((4, 9, 6), (1, 6, 7)),       # broadcast stack
    ((4, 9, 6), (6, 7)),          # stack times a matrix
    ((1, 33, 6), (6, 7)),         # a stack of one: rows
    ((2, 3, 17, 5), (3, 5, 4)),   # broadcast leading dims: rows
    ((5,), (5, 3)), ((4, 5), (5,)),  # 1-d operands: NumPy's own product
])
def test_matmul_parts_equal_numpy(threads, a_shape, b_shape):
    a, b = RNG.standard_normal(a_shape), RNG.standard_normal(b_shape)
    got = streams.matmul(a, b)
    np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-12, atol=1e-12)
    assert got.shape == np.matmul(a, b).shape
    assert streams.matmul(a.astype(np.float32), b).dtype == np.float64  # NumPy's promotion


def test_linear_and_matmul_gradients_equal_unsplit(threads):
    x, w, b = (RNG.standard_normal(s).astype(np.float32) for s in ((33, 20), (17, 20), (17,)))
    g = RNG.standard_normal((33, 17)).astype(np.float32)

    def run():
        xt, wt, bt = (nerve.tensor(v, requires_grad=True) for v in (x, w, b))
        outs = [F.linear(xt, wt, bt), xt @ wt.T]
        grads = nerve.grad(outs[0] * 2 + outs[1], (xt, wt, bt), nerve.tensor(g))
        return [o.numpy() for o in outs] + [v.numpy() for v in grads]
    for off, on in zip(*_both(run)):
        np.testing.assert_allclose(on, off, rtol=1e-5, atol=1e-5)


def test_relu_forward_and_backward_equal_unsplit(threads):
    x = RNG.standard_normal((5, 3, 4, 4)).astype(np.float32)
    x[0, 0, 0, :2] = 0.0  # ties at zero get no gradient
    g = RNG.standard_normal(x.shape).astype(np.float32)

    def run():
        xt = nerve.tensor(x, requires_grad=True)
        y = F.relu(xt)
        return y.numpy(), nerve.grad(y, xt, nerve.tensor(g))[0].numpy()
    (y0, g0), (y1, g1) = _both(run)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(g1, g0)
    np.testing.assert_array_equal(y1, np.maximum(x, 0))
    np.testing.assert_array_equal(g1, g * (x > 0))


@pytest.mark.parametrize("shape,kernel,stride,padding,dilation", [
    ((5, 3, 8, 9), 2, 2, 0, 1),     # tiled windows
    ((3, 4, 7, 7), 3, 1, 1, 1),     # overlapping, padded
    ((2, 2, 9, 8), (3, 2), 2, 1, 2),  # non-square, dilated
    ((1, 1, 1, 1), 1, 1, 0, 1),     # a 1x1 image, batch 1
])
def test_max_pool_forward_and_backward_equal_unsplit(threads, shape, kernel, stride, padding, dilation):
    x = np.round(RNG.standard_normal(shape), 1)  # ties: the first maximum gets the gradient
    g = None

    def run():
        nonlocal g
        xt = nerve.tensor(x, requires_grad=True)
        y, idx = F.max_pool2d(xt, kernel, stride, padding, dilation, return_indices=True)
        if g is None:
            g = RNG.standard_normal(y.shape)
        return y.numpy(), idx.numpy(), nerve.grad(y, xt, nerve.tensor(g))[0].numpy()
    for off, on in zip(*_both(run)):
        np.testing.assert_array_equal(on, off)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_steps_equal_unsplit(threads, amsgrad):
    w0 = RNG.standard_normal((7, 5)).astype(np.float32)
    grads = [RNG.standard_normal((7, 5)).astype(np.float32) for _ in range(3)]

    def run():
        p = nn.Parameter(nerve.tensor(w0.copy()))
        q = nn.Parameter(nerve.tensor(w0.copy()))
        opt = nerve.optim.Adam([p, q], lr=0.1, amsgrad=amsgrad)
        for gr in grads:  # q's gradient is a transposed view: the kernel runs unsplit on it
            p.grad, q.grad = nerve.tensor(gr), nerve.tensor(np.ascontiguousarray(gr.T)).T
            assert not q.grad.data.flags.c_contiguous
            opt.step()
        return p.numpy(), q.numpy()
    (p0, q0), (p1, q1) = _both(run)
    np.testing.assert_array_equal(p1, p0)
    np.testing.assert_array_equal(q1, q0)
    np.testing.assert_array_equal(p1, q1)


@pytest.mark.parametrize("shape,out,kernel,stride,padding,dilation,groups", [
    ((3, 5, 7, 6), 4, (3, 2), 1, 1, 1, 1),
    ((3, 6, 4, 5), 7, 1, 1, 0, 1, 1),  # 1x1: one GEMM by parts
    ((2, 6, 9, 9), 4, 3, 2, 1, 2, 2),
    ((1, 1, 1, 1), 3, 3, 1, 1, 1, 1),
])
@pytest.mark.parametrize("last", [False, True])  # x in channels-last memory (1x1: one GEMM, workers in BLAS)
def test_conv_faces_equal_unsplit(threads, shape, out, kernel, stride, padding, dilation, groups, last):
    x = RNG.standard_normal(shape)
    if last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    w = RNG.standard_normal((out, shape[1] // groups) + k)
    g = None

    def run():
        nonlocal g
        xt, wt, bt = (nerve.tensor(v, requires_grad=True) for v in (x, w, np.arange(out, dtype=float)))
        y = F.conv2d(xt, wt, bt, stride, padding, dilation, groups)
        if g is None:
            g = RNG.standard_normal(y.shape)
        return [y.numpy()] + [v.numpy() for v in nerve.grad(y, (xt, wt, bt), nerve.tensor(g))]
    for off, on in zip(*_both(run)):
        np.testing.assert_allclose(on, off, rtol=1e-12, atol=1e-12)


def test_training_step_memory_does_not_grow_under_set_threads(threads):
    rng = np.random.default_rng(0)
    nerve.manual_seed(0)
    cnn = SmallCNN(image_size=12)
    opt = nerve.optim.Adam(cnn.parameters(), lr=1e-3)
    x, y = nerve.tensor(rng.random((4, 1, 12, 12), dtype=np.float32)), nerve.tensor(rng.integers(0, 10, 4))

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(cnn(x), y).backward()
        opt.step()
    assert _array_bytes_growth(step) == 0


def test_bench_cnn_runs_with_nerves_own_threads(without_torch):  # noqa: F811  (the fixture)
    out = run_script("bench/cnn.py", "--quick", "--convs", 1, "--nerve-threads", 2, env=without_torch)
    assert "nerve's own threads: 2" in out
    number(r"^nerve\s+(\S+)", out, 0.0)  # best ms of a training step
    number(r"^SmallCNN conv1\s+\S+\s+(\S+)", out, 0.0)  # forward ms


@pytest.mark.parametrize("name,fn,shapes", [
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, 1, 1), [(3, 5, 4, 5), (4, 5, 3, 2), (4,)]),
    ("conv2d stride 2, 1x1", lambda x, w: F.conv2d(x, w, None, 2).sum((2, 3)) + F.conv2d(x, w).sum((2, 3)),
     [(2, 3, 5, 5), (4, 3, 1, 1)]),
    ("max_pool2d", lambda x: F.max_pool2d(x, 2, 1, 1), [(2, 3, 4, 5)]),
    ("relu", lambda x: F.relu(x) * x, [(4, 3, 2)]),
    ("linear", lambda x, w, b: F.linear(x, w, b).tanh() @ w, [(6, 5), (7, 5), (7,)]),
    ("gelu", lambda x: F.gelu(x) * x + F.gelu(x, approximate="tanh"), [(5, 3)]),
    ("attention", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     [(3, 2, 4, 3), (3, 2, 4, 3), (3, 2, 4, 2)]),
])
def test_gradcheck_and_gradgradcheck_with_every_size_split(threads, name, fn, shapes):
    """First and second derivatives through the split kernels (set_threads(2), thresholds 0), in float64."""
    rng = np.random.default_rng(1)
    inputs = [nerve.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
    assert nerve.gradcheck(fn, inputs)
    assert nerve.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_split_gelu_equals_the_unsplit_one_bit_for_bit(dtype, approximate, monkeypatch):
    from nerve.ops.activation import gelu_slope
    monkeypatch.setattr(streams, "SPLIT_FLOPS", 0)
    monkeypatch.setattr(streams, "SPLIT_ELEMENTS", 0)
    x = RNG.standard_normal((7, 3, 5)).astype(dtype) * 4
    off, on = _both(lambda: gelu_slope(x, approximate))
    streams.set_threads(None)
    for a, b in zip(off, on):
        assert a.dtype == dtype and np.array_equal(a, b)


@pytest.mark.parametrize("case", ["plain", "causal", "batch mask", "broadcast mask", "dead rows", "dropout"])
def test_split_attention_equals_the_unsplit_one(case, monkeypatch):
    """Attention cut by its leading batch dim on nerve's threads: outputs, weights and gradients as unsplit."""
    monkeypatch.setattr(streams, "SPLIT_FLOPS", 0)
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal(s) for s in ((5, 2, 4, 3), (5, 2, 6, 3), (5, 2, 6, 2)))
    mask = None
    if case == "batch mask":
        mask = rng.random((5, 2, 4, 6)) > 0.3
    elif case == "broadcast mask":
        mask = rng.standard_normal((4, 6))
    elif case == "dead rows":
        mask = rng.random((5, 1, 4, 6)) > 0.3
        mask[1, :, 2] = False  # every key masked for one query of one batch element: a zero row
    g = rng.standard_normal((5, 2, 4, 2))

    def run():
        nerve.manual_seed(7)
        qt, kt, vt = (nerve.tensor(x, requires_grad=True) for x in (q, k, v))
        y = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=None if mask is None else nerve.tensor(mask),
                                           is_causal=case == "causal", dropout_p=0.3 if case == "dropout" else 0.0)
        return [y.numpy()] + [d.numpy() for d in nerve.grad(y, (qt, kt, vt), nerve.tensor(g))]
    for off, on in zip(*_both(run)):
        np.testing.assert_allclose(on, off, rtol=1e-12, atol=1e-12)
    if case == "dead rows":
        assert np.all(run()[0][1, :, 2] == 0)
