"""recurrent_layer (the fused RecurrentLayer node: RNN tanh/relu, LSTM, GRU; reversed, batch-first, lengths, masks with
holes, no bias, zero state) and the cells through the op table: forward against a NumPy loop over each sequence,
gradcheck, gradgradcheck (through the reference), kernel against reference, rules read only their namespace; the
backward against a hand-written NumPy backpropagation through time; the reference's forward against the kernel's."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve.ops import fused_rnn, streams
from nerve.ops.recurrent import RecurrentLayer
from tests.helpers import T, ref_rnn_layer, ref_rnn_sequence
from tests.ops.table import Case, make_inputs, table_tests

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
STEPS, BATCH, IN, HID = 3, 2, 2, 2
LENGTHS = F.lengths_to_mask([3, 1], STEPS)  # (T, B): the second sequence has one real step
HOLES = np.array([[True, False], [False, True], [True, True]])  # masked steps anywhere, not only at the end


def _layer_case(mode, reverse=False, batch_first=False, mask=None, bias=True, state=True, second=False, tag=""):
    """recurrent_layer on (x, w_ih, w_hh[, b_ih, b_hh][, h0[, c0]]), outputs (out, h_n[, c_n])."""
    k, lstm = GATES[mode], mode == "lstm"
    x_shape = (BATCH, STEPS, IN) if batch_first else (STEPS, BATCH, IN)
    n_states = (2 if lstm else 1) if state else 0
    shapes = [x_shape, (k * HID, IN), (k * HID, HID)] + [(k * HID,)] * (2 * bias) + [(BATCH, HID)] * n_states
    layout_mask = None if mask is None else (mask.T if batch_first else mask)

    def make(rng):
        return ([rng.standard_normal(x_shape)] + [rng.uniform(-0.8, 0.8, s) for s in shapes[1:len(shapes) - n_states]]
                + [rng.standard_normal(s) for s in shapes[len(shapes) - n_states:]])

    def split(args):
        x, w_ih, w_hh, *rest = args
        b_ih, b_hh = rest[:2] if bias else (None, None)
        states = rest[2 * bias:]
        return x, w_ih, w_hh, b_ih, b_hh, (tuple(states) if lstm else states[0]) if state else None

    def fn(*args):
        x, w_ih, w_hh, b_ih, b_hh, hx = split(args)
        out, s = nerve.recurrent_layer(mode, x, w_ih, w_hh, b_ih, b_hh, hx=hx, mask=layout_mask, reverse=reverse,
                                       batch_first=batch_first)
        return (out, *s) if lstm else (out, s)

    def ref(*args):
        x, w_ih, w_hh, b_ih, b_hh, hx = split(args)
        h0, c0 = (hx if lstm else (hx, None)) if state else (None, None)
        out, h, c, _ = ref_rnn_layer(mode, x.swapaxes(0, 1) if batch_first else x, [w_ih, w_hh, b_ih, b_hh], h0, c0,
                                     mask, reverse)
        out = out.swapaxes(0, 1) if batch_first else out
        return (out, h, c) if lstm else (out, h)

    return Case(f"recurrent_layer[{mode}{tag}]", fn, ref, shapes, make=make, second=second, rtol=1e-12, atol=1e-13)


def _cell_case(mode):
    """One step of a cell on (x, h[, c], w_ih, w_hh, b_ih, b_hh)."""
    k, lstm = GATES[mode], mode == "lstm"
    cell = {"rnn_tanh": F.rnn_tanh_cell, "rnn_relu": F.rnn_relu_cell, "lstm": F.lstm_cell, "gru": F.gru_cell}[mode]
    shapes = [(3, IN)] + [(3, HID)] * (2 if lstm else 1) + [(k * HID, IN), (k * HID, HID), (k * HID,), (k * HID,)]

    def fn(x, *args):
        return cell(x, (args[0], args[1]), *args[2:]) if lstm else cell(x, *args)

    def ref(x, h, *args):
        c, params = (args[0], args[1:]) if lstm else (np.zeros_like(h), args)
        rows = [ref_rnn_sequence(mode, x[b:b + 1], *params, h[b], c[b]) for b in range(len(x))]
        hs = np.array([r[1] for r in rows])
        return (hs, np.array([r[2] for r in rows])) if lstm else hs

    return Case(f"{mode}_cell", fn, ref, shapes, second=True, rtol=1e-12, atol=1e-13)


def _cases():
    for mode in GATES:
        yield _layer_case(mode, second=True)
        yield _layer_case(mode, reverse=True, mask=LENGTHS, second=True, tag=",reverse,lengths")
        yield _layer_case(mode, batch_first=True, mask=HOLES, tag=",batch_first,holes")
        yield _layer_case(mode, reverse=True, batch_first=True, mask=LENGTHS, bias=False, state=False,
                          tag=",reverse,batch_first,lengths,no bias,zero state")
        yield _cell_case(mode)


CASES = list(_cases())

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


def _reference_apply(*inputs, **options):
    """RecurrentLayer's reference in place of the kernel: its forward composed from primitives."""
    return RecurrentLayer().reference(*inputs, **options)


@pytest.mark.parametrize("case", [c for c in CASES if c.name.startswith("recurrent_layer")], ids=str)
def test_reference_forward_equals_kernel(case, monkeypatch):
    tensors = [nerve.tensor(a) for a in make_inputs(case)]
    kernel = case.fn(*tensors)
    monkeypatch.setattr(RecurrentLayer, "apply", staticmethod(_reference_apply))
    for got, want in zip(case.fn(*tensors), kernel):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-13, atol=1e-14)


# --- the backward against backpropagation through time written out in NumPy --------------------------------------
def ref_sequence_backward(mode, cache, dhs, dh, dc, w_ih, w_hh):
    """Backpropagate dhs (L, H) and the final-state gradients through one sequence, last step first."""
    g_ih, g_hh, gb_ih, gb_hh = (np.zeros_like(w_ih), np.zeros_like(w_hh), np.zeros(w_hh.shape[0]),
                                np.zeros(w_hh.shape[0]))
    dxs = []
    for t in range(len(cache) - 1, -1, -1):
        dh = dh + dhs[t]
        if mode == "gru":
            x, h_prev, r, z, n, hn = cache[t]
            dan = dh * (1 - z) * (1 - n * n)
            dar = dan * hn * r * (1 - r)
            daz = dh * (h_prev - n) * z * (1 - z)
            dax, dah = np.concatenate([dar, daz, dan]), np.concatenate([dar, daz, dan * r])
            dh_prev = w_hh.T @ dah + dh * z
        else:
            if mode == "lstm":
                x, h_prev, c_prev, i, f, g, o = cache[t]
                tc = np.tanh(f * c_prev + i * g)
                dc = dc + dh * o * (1 - tc * tc)
                dax = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g),
                                      dh * tc * o * (1 - o)])
                dc = dc * f
            else:
                x, h_prev, a = cache[t]
                dax = dh * (1 - np.tanh(a) ** 2) if mode == "rnn_tanh" else dh * (a > 0)
            dah = dax
            dh_prev = w_hh.T @ dah
        g_ih += np.outer(dax, x)
        g_hh += np.outer(dah, h_prev)
        gb_ih += dax
        gb_hh += dah
        dxs.append(w_ih.T @ dax)
        dh = dh_prev
    return np.array(dxs[::-1]), g_ih, g_hh, gb_ih, gb_hh, dh, dc


def ref_layer_backward(mode, caches, d_out, d_hn, d_cn, params, shape_x):
    grads = [np.zeros(shape_x)] + [np.zeros_like(p) for p in params] + [np.zeros_like(d_hn), np.zeros_like(d_hn)]
    for b, (steps, cache) in enumerate(caches):
        dxs, *dw, dh0, dc0 = ref_sequence_backward(mode, cache, d_out[steps, b], d_hn[b], d_cn[b], *params[:2])
        grads[0][steps, b] = dxs
        for k in range(4):
            grads[1 + k] += dw[k]
        grads[5][b], grads[6][b] = dh0, dc0
    return grads


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("mode", sorted(GATES))
def test_layer_matches_numpy_bptt(mode, reverse, parts, fused, monkeypatch):
    """Against NumPy BPTT, with the batch of 3 run as 1, 2 (uneven) or 3 streams (nerve.ops.streams), with the
    compiled step kernels (nerve.ops.fused_rnn, when numba is installed) and with NumPy's passes."""
    monkeypatch.setattr(streams, "STREAMS", parts)
    monkeypatch.setattr(fused_rnn, "ENABLED", fused)
    rng = np.random.default_rng(7)
    k, H, lstm = GATES[mode], 4, mode == "lstm"
    params = [T(rng.uniform(-0.6, 0.6, s), True) for s in ((k * H, 3), (k * H, H), (k * H,), (k * H,))]
    x = T(rng.standard_normal((5, 3, 3)), True)
    h0, c0 = T(rng.standard_normal((3, H)), True), T(rng.standard_normal((3, H)), True)
    mask = F.lengths_to_mask(np.array([5, 2, 4]), 5)
    out, state = F.recurrent_layer(mode, x, *params, hx=(h0, c0) if lstm else h0, mask=mask, reverse=reverse)
    h_n, c_n = state if lstm else (state, None)
    raw = [p.numpy() for p in params]
    r_out, r_h, r_c, caches = ref_rnn_layer(mode, x.numpy(), raw, h0.numpy(), c0.numpy(), mask, reverse)
    np.testing.assert_allclose(out.numpy(), r_out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n.numpy(), r_h, rtol=1e-12, atol=1e-14)
    if lstm:
        np.testing.assert_allclose(c_n.numpy(), r_c, rtol=1e-12, atol=1e-14)
    w_out, w_h, w_c = rng.standard_normal(r_out.shape), rng.standard_normal(r_h.shape), rng.standard_normal(r_h.shape)
    loss = (out * T(w_out)).sum() + (h_n * T(w_h)).sum()
    if lstm:
        loss = loss + (c_n * T(w_c)).sum()
    inputs = [x, *params, h0] + ([c0] if lstm else [])
    want = ref_layer_backward(mode, caches, w_out, w_h, w_c if lstm else np.zeros_like(w_c), raw, x.shape)
    for create_graph in (False, True):  # the kernel's rule, then the reference's
        for g, w in zip(nerve.grad(loss, inputs, retain_graph=True, create_graph=create_graph), want):
            np.testing.assert_allclose(g.numpy(), w, rtol=1e-10, atol=1e-12)


def test_second_order_when_one_input_depends_on_another():
    """c0 = h0 / 2 and a weight shared by two stacked layers: the reference's gradients are the node's own partial
    derivatives, so nothing is counted twice through an input's history (gradgradcheck would not notice)."""
    rng = np.random.default_rng(3)
    x, h0 = T(rng.standard_normal((2, 1, 2)), True), T(rng.standard_normal((1, 2)), True)
    w_ih, w_hh = T(rng.uniform(-0.8, 0.8, (8, 2)), True), T(rng.uniform(-0.8, 0.8, (8, 2)), True)

    def fn(x, h0, w_ih, w_hh):
        out, _ = F.recurrent_layer("lstm", x, w_ih, w_hh, hx=(h0, h0 * 0.5))
        out, (h, c) = F.recurrent_layer("lstm", out, w_ih, w_hh, hx=(h0, h0 * 0.5))
        return (out.sum() + h.sum() + c.sum()) * 1.0
    fast = nerve.grad(fn(x, h0, w_ih, w_hh), [x, h0, w_ih, w_hh])
    graph = nerve.grad(fn(x, h0, w_ih, w_hh), [x, h0, w_ih, w_hh], create_graph=True)
    for a, b in zip(fast, graph):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12, atol=1e-13)
    assert nerve.gradcheck(fn, [x, h0, w_ih, w_hh])
    assert nerve.gradgradcheck(fn, [x, h0, w_ih, w_hh])


def test_lengths_to_mask():
    np.testing.assert_array_equal(F.lengths_to_mask([3, 1], 3), [[1, 1], [1, 0], [1, 0]])
    np.testing.assert_array_equal(F.lengths_to_mask(np.array([2, 3]), 3, batch_first=True), [[1, 1, 0], [1, 1, 1]])
    with pytest.raises(TypeError, match="lengths must be integers"):
        F.lengths_to_mask([1.5], 3)
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 3\]"):
        F.lengths_to_mask([0, 2], 3)


def test_shape_errors_are_runtime_errors():
    """Shape mismatches raise nerve.ShapeError: a RuntimeError as in PyTorch, and a ValueError as before."""
    x, w_ih, w_hh = nerve.randn(5, 2, 3), nerve.randn(8, 3), nerve.randn(8, 2)
    with pytest.raises(RuntimeError, match=r"recurrent_layer\(lstm\): weights \(8, 3\) and \(8, 2\) do not fit"):
        F.recurrent_layer("lstm", nerve.randn(5, 2, 4), w_ih, w_hh)
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 2\)"):
        F.recurrent_layer("lstm", x, w_ih, w_hh, hx=(nerve.randn(3, 2), nerve.randn(2, 2)))
