"""The recurrent layers' per-step products in blocks (``nerve.ops.step_gemm``): each product against float64
matmul (odd sizes, a remainder block, batch 1, strided and transposed operands), and every cell's outputs and
gradients with the blocks against plain matmul, gradcheck / gradgradcheck in float64. The blocks run wherever
NumPy's CBLAS and numba are found: the tests accept this machine's OpenBLAS core as one with small kernels."""
import numpy as np
import pytest

import nerve
from nerve import nn, ops
from nerve.ops import cblas, step_gemm

RNG = np.random.default_rng(0)


@pytest.fixture
def calls(monkeypatch):
    """The blocked loops' calls (forward, backward), with the blocks turned on for this machine's core."""
    pytest.importorskip("numba")
    if cblas.numpy_gemm() is None:
        pytest.skip("NumPy's BLAS has no CBLAS GEMM under a known name: step_gemm uses plain matmul")
    monkeypatch.setattr(step_gemm, "CORES", (cblas.corename(),))
    monkeypatch.setattr(step_gemm, "_state", {})
    forward, backward, *addresses = step_gemm.kernels()
    seen = {"forward": 0, "backward": 0}

    def count(name, loop):
        def run(*args):
            seen[name] += 1
            return loop(*args)
        return run
    step_gemm._state["k"] = (count("forward", forward), count("backward", backward), *addresses)
    return seen


@pytest.fixture
def tiny_blocks(monkeypatch, calls):
    """Blocks of at most 4 rows, so the tests' small layers are cut too."""
    monkeypatch.setattr(step_gemm, "ALIGN", 2)
    monkeypatch.setattr(step_gemm, "MOST", 4)
    return calls


def _close(a, ref, dtype):
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(a, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("R,K,B", [(1024, 256, 16), (1030, 256, 16), (160, 40, 5), (600, 150, 1), (200, 64, 64)])
def test_gates_against_float64_matmul(R, K, B, dtype, calls):
    w = RNG.standard_normal((R, K)).astype(dtype)
    wide = RNG.standard_normal((B, K + 7)).astype(dtype)  # the states' rows are strided, as a slice of the batch
    h = wide[:, :K]
    out = np.full((R, B), np.nan, dtype)
    step_gemm.gates(w, h, out)(h)
    assert calls["forward"] == 1
    _close(out, w.astype(np.float64) @ h.T.astype(np.float64), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B,R,K", [(16, 1024, 256), (16, 1030, 256), (5, 160, 40), (1, 600, 150), (64, 200, 16)])
def test_state_grad_against_float64_matmul(B, R, K, dtype, calls):
    w = RNG.standard_normal((R, K)).astype(dtype)
    g = RNG.standard_normal((B, R + 3)).astype(dtype)[:, :R]
    out = step_gemm.state_grad(g, w)(g)
    assert calls["backward"] == 1 and out.shape == (B, K)
    _close(out, g.astype(np.float64) @ w.astype(np.float64), dtype)


def test_operands_the_blocks_cannot_take_go_to_matmul(calls):
    w = RNG.standard_normal((1024, 256)).astype(np.float32)
    h = RNG.standard_normal((256, 16)).astype(np.float32).T  # columns not contiguous
    out = np.empty((1024, 16), np.float32)
    step_gemm.gates(w, h, out)(h)
    _close(out, w.astype(np.float64) @ h.T.astype(np.float64), np.float32)
    g = RNG.standard_normal((1024, 16)).astype(np.float32).T
    _close(step_gemm.state_grad(g, w)(g), g.astype(np.float64) @ w.astype(np.float64), np.float32)
    wt = RNG.standard_normal((256, 1024)).astype(np.float32).T  # W not C-contiguous
    hc = np.ascontiguousarray(h)
    step_gemm.gates(wt, hc, out)(hc)
    _close(out, wt.astype(np.float64) @ hc.T.astype(np.float64), np.float32)
    small = RNG.standard_normal((64, 16)).astype(np.float32)  # one block's worth: nothing to cut
    step_gemm.gates(small, hc[:, :16], out[:64])(hc[:, :16])
    assert calls == {"forward": 0, "backward": 0}


def test_an_empty_batch_goes_to_matmul(calls):
    w = RNG.standard_normal((1024, 256)).astype(np.float32)
    h, out = np.zeros((0, 256), np.float32), np.zeros((1024, 0), np.float32)
    step_gemm.gates(w, h, out)(h)
    g = np.zeros((0, 1024), np.float32)
    assert step_gemm.state_grad(g, w)(g).shape == (0, 256)
    assert calls == {"forward": 0, "backward": 0}


def test_other_cores_and_switched_off_use_matmul(monkeypatch):
    monkeypatch.setattr(step_gemm, "CORES", ())
    monkeypatch.setattr(step_gemm, "_state", {})
    assert step_gemm.kernels() is None
    w = RNG.standard_normal((1024, 256)).astype(np.float32)
    h = RNG.standard_normal((16, 256)).astype(np.float32)
    out = np.empty((1024, 16), np.float32)
    step_gemm.gates(w, h, out)(h)
    np.testing.assert_array_equal(out, np.matmul(w, h.T))
    monkeypatch.setattr(step_gemm, "ENABLED", False)
    monkeypatch.setattr(step_gemm, "CORES", (cblas.corename(),))
    g = RNG.standard_normal((16, 1024)).astype(np.float32)
    np.testing.assert_array_equal(step_gemm.state_grad(g, w)(g), np.matmul(g, w))


def _layer(mode, dtype, blocks, monkeypatch, batch_first=False, mask=None, reverse=False):
    """Output, final state and every gradient of one layer, with the blocks on or off."""
    monkeypatch.setattr(step_gemm, "ENABLED", blocks)
    gates = {"lstm": 4, "gru": 3}.get(mode, 1)
    rng = np.random.default_rng(1)
    shapes = [(7, 3, 5), (gates * 6, 5), (gates * 6, 6), (gates * 6,), (gates * 6,)]
    x, w_ih, w_hh, b_ih, b_hh = [nerve.tensor((rng.standard_normal(s) * 0.5).astype(dtype), requires_grad=True)
                                 for s in shapes]
    out, state = ops.recurrent_layer(mode, x, w_ih, w_hh, b_ih, b_hh, mask=mask, reverse=reverse,
                                     batch_first=batch_first)
    last = state if isinstance(state, nerve.Tensor) else state[0] + state[1].square()
    (out.square().sum() + last.sum()).backward()
    return [out.data, last.data] + [t.grad.data for t in (x, w_ih, w_hh, b_ih, b_hh)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_layers_with_blocks_equal_plain_matmul(mode, dtype, tiny_blocks, monkeypatch):
    mask = np.ones((7, 3), bool)
    mask[5:, 1] = False
    for kw in ({}, {"batch_first": True}, {"mask": mask, "reverse": True}):
        tiny_blocks.update(forward=0, backward=0)
        got = _layer(mode, dtype, True, monkeypatch, **kw)
        assert tiny_blocks["forward"] > 0 and tiny_blocks["backward"] > 0
        for a, b in zip(got, _layer(mode, dtype, False, monkeypatch, **kw)):
            _close(a, b, dtype)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_gradcheck_and_gradgradcheck_with_blocks(mode, tiny_blocks):
    gates = 4 if mode == "lstm" else 3

    def fn(x, w_ih, w_hh, b_ih, b_hh):
        out, state = ops.recurrent_layer(mode, x, w_ih, w_hh, b_ih, b_hh)
        return out.square().sum() + (state[1].square().sum() if mode == "lstm" else state.sum())
    inputs = [nerve.tensor(RNG.standard_normal(s) * 0.5, requires_grad=True)
              for s in [(4, 2, 3), (gates * 5, 3), (gates * 5, 5), (gates * 5,), (gates * 5,)]]
    assert nerve.gradcheck(fn, inputs)
    assert tiny_blocks["forward"] > 0 and tiny_blocks["backward"] > 0
    assert nerve.gradgradcheck(fn, inputs)


def test_an_lstm_language_model_learns_with_blocks(calls):
    """A next-token LSTM (hidden 40: 160 gate rows, cut into two blocks) learns a repeating sequence."""
    nerve.manual_seed(0)
    emb, rnn, head = nn.Embedding(5, 8), nn.LSTM(8, 40, batch_first=True), nn.Linear(40, 5)
    params = list(emb.parameters()) + list(rnn.parameters()) + list(head.parameters())
    opt = nerve.optim.Adam(params, lr=0.02)
    seq = np.tile(np.array([0, 1, 2, 3, 4, 3, 2, 1]), 6)
    x, y = nerve.tensor(np.stack([seq[:-1]] * 4)), nerve.tensor(np.stack([seq[1:]] * 4).reshape(-1))
    for _ in range(60):
        opt.zero_grad()
        out, _ = rnn(emb(x))
        loss = nerve.functional.cross_entropy(head(out).reshape(-1, 5), y)
        loss.backward()
        opt.step()
    assert calls["forward"] > 0 and calls["backward"] > 0
    assert loss.item() < 0.1
