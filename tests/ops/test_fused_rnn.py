"""nerve.ops.fused_rnn (the optional compiled per-step kernels of the recurrent layer): the layer with the kernels
equals the layer with NumPy's passes (forward and every gradient; float32 within round-off, float64 to 1e-12) in all
modes, reversed, batch-first, lengths and holes, batch 1 and odd sizes; without numba the layer runs NumPy's passes;
memory held does not grow over training steps. The kernels' own derivation is checked in test_recurrent.py (NumPy
BPTT, gradcheck and gradgradcheck run with them on and off)."""
import sys

import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve import nn
from nerve.ops import fused_rnn
from tests.ops.test_streams import training_bytes_growth

pytest.importorskip("numba")  # the NumPy path alone is tested in test_recurrent.py (and below, numba hidden)
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def _run(mode, dtype, steps, batch, inputs, hidden, reverse=False, batch_first=False, mask=None, seed=0):
    """(output, h_n[, c_n], and the gradients of x, the weights, the biases and the initial state) of a layer."""
    rng = np.random.default_rng(seed)
    k, lstm = GATES[mode], mode == "lstm"
    shape = (batch, steps, inputs) if batch_first else (steps, batch, inputs)
    x = nerve.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    params = [nerve.tensor(rng.uniform(-0.7, 0.7, s).astype(dtype), requires_grad=True)
              for s in ((k * hidden, inputs), (k * hidden, hidden), (k * hidden,), (k * hidden,))]
    states = [nerve.tensor(rng.standard_normal((batch, hidden)).astype(dtype), requires_grad=True)
              for _ in range(2 if lstm else 1)]
    out, s = F.recurrent_layer(mode, x, *params, hx=tuple(states) if lstm else states[0], mask=mask,
                               reverse=reverse, batch_first=batch_first)
    results = [out, *s] if lstm else [out, s]
    loss = sum((r * nerve.tensor(rng.standard_normal(r.shape).astype(dtype))).sum() for r in results)
    grads = nerve.grad(loss, [x, *params, *states])
    return [r.numpy() for r in results] + [g.numpy() for g in grads]


LAYOUTS = [  # (steps, batch, inputs, hidden, reverse, batch_first, lengths or a mask)
    (7, 5, 3, 9, False, False, None),
    (7, 5, 3, 9, True, True, [7, 2, 5, 1, 7]),
    (4, 1, 2, 3, False, True, None),                  # batch 1
    (1, 3, 1, 1, True, False, None),                  # one step, hidden 1
    (5, 2, 4, 6, False, False, np.array([[1, 0], [0, 1], [1, 1], [1, 0], [0, 1]], bool)),  # holes
]


@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", sorted(GATES))
def test_kernels_equal_numpy_passes(mode, dtype, layout, monkeypatch):
    steps, batch, inputs, hidden, reverse, batch_first, mask = layout
    if isinstance(mask, list):
        mask = F.lengths_to_mask(np.array(mask), steps, batch_first=batch_first)
    elif mask is not None and batch_first:
        mask = mask.T
    args = (mode, dtype, steps, batch, inputs, hidden, reverse, batch_first, mask)
    assert fused_rnn.kernels() is not None
    fused = _run(*args)
    monkeypatch.setattr(fused_rnn, "ENABLED", False)
    assert fused_rnn.kernels() is None
    plain = _run(*args)
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for a, b in zip(fused, plain):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("parts", [2, 3])
@pytest.mark.parametrize("layout", [LAYOUTS[0], LAYOUTS[1], LAYOUTS[4]], ids=str)
def test_float32_lstm_in_stream_parts_equals_numpy_passes(layout, parts, monkeypatch):
    """The float32 LSTM loop (its output and next state written by lstm_cell_out, rows offset by the part's start)
    with the batch cut in 2 or 3 parts on threads (nerve.ops.streams)."""
    from nerve.ops import streams
    steps, batch, inputs, hidden, reverse, batch_first, mask = layout
    if isinstance(mask, list):
        mask = F.lengths_to_mask(np.array(mask), steps, batch_first=batch_first)
    elif mask is not None and batch_first:
        mask = mask.T
    args = ("lstm", np.float32, steps, batch, inputs, hidden, reverse, batch_first, mask)
    monkeypatch.setattr(streams, "STREAMS", parts)
    fused = _run(*args)
    monkeypatch.setattr(fused_rnn, "ENABLED", False)
    for a, b in zip(fused, _run(*args)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_float32_tanh_is_faithfully_rounded():
    """lstm_cell_out's tanh (fused_rnn._TANH) against float64 tanh rounded to float32: within one ulp of the
    float32 result on a dense sample of [-12, 12] and at the edges (0, -0, tiny, the clamp at 9, +-inf); NaN stays
    NaN. (Over every float32 in [0, 10] the error is at most 0.61 ulp: /work/notes/issue-21-rnn7.md.)"""
    x = np.concatenate([np.linspace(-12, 12, 400_001), np.geomspace(1e-38, 12, 100_001),
                        [0.0, -0.0, 1e-45, 9.0, np.nextafter(9, 10), 8.99, np.inf, -np.inf]]).astype(np.float32)
    x = np.concatenate([x, -x])
    got = np.empty_like(x)
    fused_rnn.kernels().tanh_f32(x, got)
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert (np.abs(got - exact) <= ulp).all()
    assert np.array_equal(np.signbit(got), np.signbit(x))
    nan = np.array([np.nan], np.float32)
    fused_rnn.kernels().tanh_f32(nan, nan)
    assert np.isnan(nan).all()


def test_without_numba_the_layer_runs_numpy_passes(monkeypatch):
    """numba missing (its import fails): kernels() is None and the layer gives the same results."""
    want = _run("lstm", np.float64, 5, 3, 2, 4, mask=F.lengths_to_mask(np.array([5, 2, 4]), 5))
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now raises ImportError
    monkeypatch.setattr(fused_rnn, "_state", {})
    assert fused_rnn.kernels() is None and not fused_rnn.usable(np.zeros(2))
    got = _run("lstm", np.float64, 5, 3, 2, 4, mask=F.lengths_to_mask(np.array([5, 2, 4]), 5))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_usable_only_on_numpy_float_arrays():
    assert fused_rnn.usable(np.zeros((2, 2), np.float32)) and fused_rnn.usable(np.zeros(2))
    assert not fused_rnn.usable([0.0])
    assert not fused_rnn.usable(np.zeros((2, 2)).view(np.matrix))  # not a plain ndarray (CuPy's arrays neither)
    assert not fused_rnn.usable(np.zeros(2, np.float16))


def test_in_memory_compilation_when_the_cache_cannot_be_written(monkeypatch):
    """numba refuses ``cache=True`` where no cache directory is writable (RuntimeError): the kernels are then compiled
    without it, and they compute the same."""
    calls = []
    compile_ = fused_rnn._compile

    def refuse_cache(cache):
        calls.append(cache)
        if cache:
            raise RuntimeError("cannot cache function: no locator available")
        return compile_(cache)
    monkeypatch.setattr(fused_rnn, "_compile", refuse_cache)
    monkeypatch.setattr(fused_rnn, "_state", {})
    a, c, cn = np.tanh(np.arange(8.0).reshape(1, 8) / 8), np.ones((1, 2)), np.empty((1, 2))
    i, f, g = (a[0, :2] + 1) / 2, (a[0, 2:4] + 1) / 2, a[0, 4:6]
    fused_rnn.kernels().lstm_cell(a, c, cn, 0.5)
    assert calls == [True, False]
    np.testing.assert_allclose(cn[0], f * 1.0 + i * g, rtol=1e-15)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_memory_per_step_does_not_grow(cell):
    """Bytes of NumPy array buffers held (tracemalloc's NumPy domain) after 6 more training steps equal those after
    the first, with the compiled kernels."""
    nerve.manual_seed(0)
    rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(5, 8, batch_first=True)
    x = nerve.tensor(np.random.default_rng(0).standard_normal((3, 7, 5)).astype(np.float32))
    assert training_bytes_growth(rnn, x, output=lambda y: y[0]) == 0
