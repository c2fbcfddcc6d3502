"""Recurrent layers as fused primitives: one graph node runs one direction of one RNN, LSTM or GRU layer
over a whole sequence, and single-step cells composed from ops.

Forward: the input-to-hidden products of all steps in one GEMM, then per step one GEMM for all the gates
(h W_hh^T) with the activations applied in place. ``backward``: backpropagation through time by hand on raw
arrays, each weight gradient summed over all steps by one GEMM at the end. ``reference``: the same layer
composed step by step from primitives, which ``create_graph=True`` differentiates, so second derivatives
work. The batch's sequences are independent: both loops run through ``nerve.ops.streams``. With numba
installed, each LSTM/GRU step's element-wise passes run as compiled loops (``nerve.ops.fused_rnn``). Gates follow
PyTorch: LSTM rows i, f, g, o; GRU rows r, z, n with
n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).

The node's output is one flat array: the outputs (T, B, H) ((B, T, H) with ``batch_first``), then h_n
(B, H), then c_n (B, H) for an LSTM; ``recurrent_layer`` cuts it into tensors. A ``mask`` (T, B) marks the
real steps: a masked step keeps the state and outputs zeros, so padding never changes the results of the
real steps and the final state is the one after each sequence's last real step.
"""
from __future__ import annotations

import time

from nerve.autograd.deferred import RowProduct
from nerve.autograd.function import Function, ShapeError
from nerve.backend import xp
from nerve.ops import fused_rnn, persistent_rnn, step_gemm, streams
from nerve.ops.activation import relu
from nerve.ops.elementwise import sigmoid, tanh, where
from nerve.ops.embedding import looked_up, row_sums
from nerve.ops.linalg import linear
from nerve.ops.shape import cat, stack
from nerve.tensor import Tensor

MODES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
#: a layer fed straight by an embedding multiplies the table once, not every position's row (``RecurrentLayer``)
LOOKUP = True


def _data(t):
    return t.data if isinstance(t, Tensor) else t


def _half_rows(mode: str, hidden: int, dtype):
    """Per-gate-row factor: 0.5 for sigmoid gates, 1 for tanh ones.

    NOTE: sigmoid(a) = (1 + tanh(a / 2)) / 2, and NumPy's tanh is several times faster than SciPy's
    expit; halving those weight rows once lets one tanh call activate all the gates of a step.
    """
    k = MODES[mode]
    s = xp.full(k * hidden, 0.5, dtype=dtype)
    s[(2 if mode == "lstm" else k - 1) * hidden:(3 if mode == "lstm" else k) * hidden] = 1.0
    return s


def _rows_times(rows, right, batch_first: bool, T: int, B: int):
    """``rows @ right`` for time-major rows, laid out as the input ((B, T, I) with ``batch_first``)."""
    out = streams.matmul(rows, right).reshape(T, B, -1)
    return out.swapaxes(0, 1) if batch_first else out


def _time(a, batch_first: bool):
    """A (T, B, ...) view of an array laid out like the input."""
    return a.swapaxes(0, 1) if batch_first else a


class RecurrentLayer(Function):
    """One direction of one recurrent layer over a whole sequence (see the module docstring).

    Inputs: x, w_ih, w_hh, b_ih, b_hh, h0, c0 (None unless LSTM), mask (None or bool (T, B)), and the
    constants mode, reverse, batch_first, and ``lookup``: None, or ``(table, indices)`` when x is
    ``table[indices]`` (an embedding's output, ``nerve.ops.embedding.looked_up``). Then the input products are
    rows of ``table @ W_ih^T``, W_ih's gradient is summed by token, and x's gradient leaves as an unevaluated
    ``RowProduct`` that the embedding's rule sums by token before it multiplies (``nerve.autograd.deferred``).
    """

    def forward(self, x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, mode, reverse, batch_first, lookup=None):
        hidden = w_hh.shape[1]
        T, B = (x.shape[1], x.shape[0]) if batch_first else x.shape[:2]
        self.lookup = None
        if lookup is not None:  # the table, the tokens time-major (as the work arrays), the lookup's own indices
            # NOTE: a copy (at most half of x's size): W_ih's gradient reads it, and an in-place change of the
            # embedding's weight before backward must not reach it (the per-position path keeps x itself)
            tokens = xp.ascontiguousarray(lookup[1].T if batch_first else lookup[1]).reshape(-1)
            self.lookup = (lookup[0].copy(), tokens, lookup[1])
        # NOTE: the work arrays are time-major whatever the layout: a step then reads contiguous rows
        # (strided batch-first rows measured 2-3 ms slower per LSTM layer of 64 x 32 x 256).
        elif batch_first:
            x = xp.ascontiguousarray(x.swapaxes(0, 1))
        if mask is not None:
            x = xp.where(mask[..., None], x, 0)  # NaN padding must not reach the GEMMs
        self.x = None if self.lookup is not None else x  # (the lookup's product needs no x)
        self.mode, self.mask, self.reverse, self.batch_first = mode, mask, reverse, batch_first
        self.steps = range(T - 1, -1, -1) if reverse else range(T)
        self.full = None if mask is None else mask.all(axis=1)
        rows = None if mode.startswith("rnn") else _half_rows(mode, hidden, x.dtype)
        w_in = w_ih if rows is None else w_ih * rows[:, None]
        if self.lookup is None:
            xw = streams.matmul(x.reshape(T * B, -1), w_in.T)  # cut on nerve's threads when they are on
        else:  # one product per token of the table, then its rows
            xw = xp.take(streams.matmul(self.lookup[0], w_in.T), self.lookup[1], axis=0)
        # with the compiled step kernels (nerve.ops.fused_rnn) each step adds the bias, not a pass over all steps
        self.fk = fused_rnn.kernels() if rows is not None and fused_rnn.usable(xw) else None
        fused = self.fk is not None
        self.bias = xp.zeros(w_hh.shape[0], dtype=xw.dtype) if fused else None
        if b_ih is not None:
            bias = b_ih + b_hh if mode != "gru" else xp.concatenate([b_ih[:2 * hidden] + b_hh[:2 * hidden],
                                                                    b_ih[2 * hidden:]])
            bias = bias if rows is None else bias * rows
            if fused:
                self.bias = bias
            else:
                xw += bias
        acts = xw.reshape(T, B, -1)
        n_states = 2 if mode == "lstm" else 1
        flat = xp.empty((T * B + n_states * B) * hidden, dtype=x.dtype)
        out3 = flat[:T * B * hidden].reshape((B, T, hidden) if batch_first else (T, B, hidden))  # in x's layout
        out = _time(out3, batch_first)
        self.hp = xp.empty((T, B, hidden), dtype=x.dtype)  # the state before each step
        # NOTE: each step computes its gates transposed, (G, B) = W_hh h^T: OpenBLAS runs this orientation
        # about 1.3x faster than h W_hh^T for the small batch of a step, which pays for a transposed add.
        work, site = 2.0 * T * B * w_hh.size, None
        if mode == "lstm":
            self.acts = acts
            self.cs = xp.empty((T, B, hidden), dtype=x.dtype)  # the cell states
            self.tc = xp.empty((T, B, hidden), dtype=x.dtype)  # their tanh
            if fused and w_hh.dtype == xw.dtype and (k := persistent_rnn.parts(xw, hidden, mask, work)):
                site = ("forward", k, x.shape, w_hh.shape)  # the loops cut by hidden units where they are faster
                if persistent_rnn.choose(site):
                    start = time.perf_counter()
                    self.hp[self.steps[0]] = h0
                    h_n, c_n = persistent_rnn.lstm_forward(acts, self.bias, w_hh, rows, self.hp, self.cs, self.tc,
                                                           out3, batch_first, xp.ascontiguousarray(c0), reverse)
                    flat[T * B * hidden:(T + 1) * B * hidden] = h_n.reshape(-1)
                    flat[(T + 1) * B * hidden:] = c_n.reshape(-1)
                    persistent_rnn.record(site, True, start)
                    return flat
        start = time.perf_counter()
        w_rec = w_hh if rows is None else w_hh * rows[:, None]
        if mode == "lstm":
            loop = lambda sl: self._lstm(sl, out, out3, w_rec, h0[sl], c0[sl], rows)  # noqa: E731
        elif mode == "gru":
            self.acts = acts
            self.hn = xp.empty((T, B, hidden), dtype=x.dtype)  # W_hn h + b_hn
            loop = lambda sl: self._gru(sl, out, w_rec, h0[sl], None if b_hh is None else b_hh[2 * hidden:])  # noqa
        else:
            self.out = out  # its own derivative: tanh' = 1 - out^2, relu' = [out > 0]
            loop = lambda sl: self._rnn(sl, acts, out, w_rec, h0[sl], mode == "rnn_relu")  # noqa: E731
        # the sequences of the batch are independent: parts of it run as streams (nerve.ops.streams)
        parts = streams.run(lambda a, z: loop(slice(a, z)), B, work, x, site=("recurrent", mode, x.shape, w_hh.shape))
        if site is not None:
            persistent_rnn.record(site, False, start)
        flat[T * B * hidden:(T + 1) * B * hidden] = xp.concatenate([h for h, _ in parts]).reshape(-1)
        if mode == "lstm":
            flat[(T + 1) * B * hidden:] = xp.concatenate([c for _, c in parts]).reshape(-1)
        return flat

    def _masked(self, t) -> bool:
        return self.full is not None and not self.full[t]

    def _carry(self, t, sl, out, old):
        """At a partly masked step: the new state (in ``out``) where the mask is set, else the old one;
        then the masked outputs are zeroed (``sl``: the part of the batch)."""
        m = self.mask[t, sl][:, None]
        state = xp.where(m, out, old)
        xp.copyto(out, 0, where=~m)
        return state

    # --- forward loops ----------------------------------------------------------------------------
    # each loop runs the sequences ``sl`` of the batch (a stream's part) and returns their final state
    def _rnn(self, sl, acts, out, w_rec, h, use_relu):
        acts, out, hp = acts[:, sl], out[:, sl], self.hp[:, sl]
        tmp = xp.empty((w_rec.shape[0], h.shape[0]), dtype=out.dtype)
        gates = step_gemm.gates(w_rec, h, tmp)
        for t in self.steps:
            hp[t] = h
            ho = out[t]
            gates(h)
            xp.add(acts[t], tmp.T, out=ho)
            if use_relu:
                xp.maximum(ho, 0, out=ho)
            else:
                xp.tanh(ho, out=ho)
            h = self._carry(t, sl, ho, h) if self._masked(t) else ho
        return h, None

    def _lstm(self, sl, out, out3, w_rec, h, c, rows):
        acts, out, hp, cs, tc = self.acts[:, sl], out[:, sl], self.hp[:, sl], self.cs[:, sl], self.tc[:, sl]
        T, B, H = out.shape
        tmp = xp.empty((4 * H, B), dtype=out.dtype)
        fk = self.fk  # chosen once in forward, with the bias
        if fk is not None and out.dtype == xp.float32:
            return self._lstm32(sl, acts, out, out3, hp, cs, tc, tmp, w_rec, h, c)
        ig = xp.empty((B, H), dtype=out.dtype)
        shift = 1.0 - rows
        half = out.dtype.type(0.5)
        gates = step_gemm.gates(w_rec, h, tmp)
        for t in self.steps:
            hp[t] = h
            a, cn, ho = acts[t], cs[t], out[t]
            gates(h)
            if fk is not None:  # the same passes, fused around NumPy's tanh (nerve.ops.fused_rnn)
                fk.add_gates(a, self.bias, tmp)
                xp.tanh(a, out=a)
                fk.lstm_cell(a, c, cn, half)
                xp.tanh(cn, out=tc[t])
                fk.lstm_out(a, tc[t], ho)
            else:
                a += tmp.T
                xp.tanh(a, out=a)
                a *= rows  # i, f, o: (1 + tanh(a/2)) / 2 = sigmoid(a); g: tanh(a)
                a += shift
                xp.multiply(a[:, H:2 * H], c, out=cn)
                xp.multiply(a[:, :H], a[:, 2 * H:3 * H], out=ig)
                cn += ig
                xp.tanh(cn, out=tc[t])
                xp.multiply(a[:, 3 * H:], tc[t], out=ho)
            if self._masked(t):
                xp.copyto(cn, c, where=~self.mask[t, sl][:, None])
                h = self._carry(t, sl, ho, h)
            else:
                h = ho
            c = cn
        return h, c

    def _lstm32(self, sl, acts, out, out3, hp, cs, tc, tmp, w_rec, h, c):
        """_lstm's loop in float32 with the compiled kernels: after the gates' tanh, one pass (fused_rnn's
        lstm_cell_out) makes the cell, its tanh, the output and the next step's state, which it writes
        straight into hp (no copy of the state per step)."""
        fk, steps, bias = self.fk, self.steps, self.bias
        half = tmp.dtype.type(0.5)
        last = xp.empty_like(h)  # the state after the last step
        hp[steps[0]] = h
        b0 = sl.start or 0
        gates = step_gemm.gates(w_rec, h, tmp)
        for p, t in enumerate(steps):
            a, cn, hn = acts[t], cs[t], hp[steps[p + 1]] if p + 1 < len(steps) else last
            gates(hp[t])
            fk.add_gates(a, bias, tmp)
            xp.tanh(a, out=a)
            fk.lstm_cell_out(a, c, cn, tc[t], out3, t, b0, self.batch_first, hn, half)
            if self._masked(t):
                m = self.mask[t, sl][:, None]
                xp.copyto(cn, c, where=~m)
                xp.copyto(hn, hp[t], where=~m)
                xp.copyto(out[t], 0, where=~m)
            c = cn
        return last, c

    def _gru(self, sl, out, w_rec, h, b_hn):
        acts, out, hp, hns = self.acts[:, sl], out[:, sl], self.hp[:, sl], self.hn[:, sl]
        T, B, H = out.shape
        hw_t = xp.empty((3 * H, B), dtype=out.dtype)
        hw = xp.empty((B, 3 * H), dtype=out.dtype)
        tmp = xp.empty((B, H), dtype=out.dtype)
        fk = self.fk  # chosen once in forward, with the bias
        if fk is not None:
            half = out.dtype.type(0.5)
            b_hn = xp.zeros(H, dtype=out.dtype) if b_hn is None else b_hn
        gates = step_gemm.gates(w_rec, h, hw_t)
        for t in self.steps:
            hp[t] = h
            a, hn, ho = acts[t], hns[t], out[t]
            gates(h)
            if fk is not None:  # the same passes, fused around NumPy's tanh (nerve.ops.fused_rnn)
                fk.gru_pre(a, self.bias, hw_t, b_hn, hn)
                xp.tanh(a[:, :2 * H], out=a[:, :2 * H])
                fk.gru_mid(a, hn, half)
                xp.tanh(a[:, 2 * H:], out=a[:, 2 * H:])
                fk.gru_out(a, h, ho)
                h = self._carry(t, sl, ho, h) if self._masked(t) else ho
                continue
            hw[...] = hw_t.T
            rz = a[:, :2 * H]
            rz += hw[:, :2 * H]
            xp.tanh(rz, out=rz)
            rz *= 0.5  # sigmoid from the halved rows (see _half_rows)
            rz += 0.5
            r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
            if b_hn is None:
                hn[...] = hw[:, 2 * H:]
            else:
                xp.add(hw[:, 2 * H:], b_hn, out=hn)
            xp.multiply(r, hn, out=tmp)
            n += tmp
            xp.tanh(n, out=n)
            xp.subtract(h, n, out=tmp)
            tmp *= z
            xp.add(n, tmp, out=ho)
            h = self._carry(t, sl, ho, h) if self._masked(t) else ho
        return h, None

    # --- backward through time on raw arrays --------------------------------------------------------
    def backward(self, g, m):  # hand-written BPTT; the derivative of each step is written in its loop
        _, w_ih, w_hh, _, _, _, c0 = m.inputs(self)[:7]
        need = self.needs_input_grad
        bf = self.batch_first
        T, B, H = self.hp.shape
        TBH = self.hp.size
        d_out = g[:TBH].reshape((B, T, H) if bf else (T, B, H))
        if bf:  # one bulk copy (rows of H stay contiguous) beats NumPy's passes reading strided rows at every step
            d_out = d_out.swapaxes(0, 1)
            if self.mode not in ("lstm", "gru") or not fused_rnn.usable(d_out):  # a compiled step reads them as fast
                d_out = xp.ascontiguousarray(d_out)
        dh = g[TBH:TBH + B * H].reshape(B, H).copy()
        dc = g[TBH + B * H:].reshape(B, H).copy() if self.mode == "lstm" else None
        dg = xp.empty((T, B, w_hh.shape[0]), dtype=dh.dtype)
        dgh = xp.empty_like(dg) if self.mode == "gru" else None
        work, site, start = 2.0 * T * B * w_hh.size, None, time.perf_counter()
        if self.mode == "lstm" and w_hh.dtype == dg.dtype and (k := persistent_rnn.parts(dg, H, self.mask, work)):
            site = ("backward", k, dg.shape, bf)  # the loops cut by hidden units where they are faster
            if persistent_rnn.choose(site):
                d3 = xp.ascontiguousarray(g[:TBH]).reshape((B, T, H) if bf else (T, B, H))
                persistent_rnn.lstm_backward(self.acts, self.tc, self.cs, xp.ascontiguousarray(c0), d3, bf, dh, dc, dg,
                                             w_hh, self.reverse)
                persistent_rnn.record(site, True, start)
                return self._grads(need, dg, None, w_ih, dh, dc)
        if self.mode == "lstm":
            loop = lambda sl: self._lstm_back(sl, d_out, dh[sl], dc[sl], dg, w_hh, c0[sl])  # noqa: E731
        elif self.mode == "gru":
            loop = lambda sl: self._gru_back(sl, d_out, dh[sl], dg, dgh, w_hh)  # noqa: E731
        else:
            loop = lambda sl: self._rnn_back(sl, d_out, dh[sl], dg, w_hh)  # noqa: E731
        parts = streams.run(lambda a, z: loop(slice(a, z)), B, work, dh,
                            site=("recurrent_backward", self.mode, dg.shape, w_hh.shape))
        if site is not None:
            persistent_rnn.record(site, False, start)
        dh = xp.concatenate([h for h, _ in parts])
        dc = xp.concatenate([c for _, c in parts]) if self.mode == "lstm" else None
        return self._grads(need, dg, dgh, w_ih, dh, dc)

    def _grads(self, need, dg, dgh, w_ih, dh, dc):
        """The inputs' gradients from the gates' gradients dg (dgh: GRU's hidden side) and the initial state's."""
        T, B, H = self.hp.shape
        bf = self.batch_first
        k = dg.shape[-1]
        g2 = dg.reshape(-1, k)
        gh2 = g2 if self.mode != "gru" else dgh.reshape(-1, k)
        dx = dw_ih = None
        if self.lookup is not None:
            table, tokens, indices = self.lookup
            sums = row_sums(g2, tokens, table.shape[0]) if need[1] or need[0] else None
            if need[0]:
                shape = (B, T, table.shape[1]) if bf else (T, B, table.shape[1])
                dx = RowProduct(g2, w_ih, "TB" if bf else "C", shape, lambda: _rows_times(g2, w_ih, bf, T, B),
                                sums=(indices, sums))
            if need[1]:
                dw_ih = streams.matmul(sums.T, table)
        else:
            if need[0]:
                dx = _rows_times(g2, w_ih, bf, T, B)
            if need[1]:
                dw_ih = streams.matmul(g2.T, self.x.reshape(T * B, -1))
        dw_hh = streams.matmul(gh2.T, self.hp.reshape(-1, H)) if need[2] else None
        db_ih = g2.sum(0) if need[3] else None
        # the two biases add up before the gates (except GRU's b_hn): the same gradient, summed once
        db_hh = (db_ih if gh2 is g2 and db_ih is not None else gh2.sum(0)) if need[4] else None
        return (dx, dw_ih, dw_hh, db_ih, db_hh, dh if need[5] else None, dc if need[6] else None,
                None, None, None, None)

    def _split_masked(self, t, sl, dh, d_out_t, dc=None):
        """At a partly masked step: the gradient reaching the step's result, and what passes it by."""
        m = self.mask[t, sl][:, None]
        passed = (xp.where(m, 0, dh), None if dc is None else xp.where(m, 0, dc))
        dh = xp.where(m, dh + d_out_t, 0)
        if dc is not None:
            dc = xp.where(m, dc, 0)
        return dh, dc, passed

    # each loop runs the sequences ``sl`` of the batch backwards, writes their rows of the gates' gradients
    # dg (and dgh) and returns the gradients of their initial state
    def _rnn_back(self, sl, d_out, dh, dg, w_hh):
        out, d_out, dg = self.out[:, sl], d_out[:, sl], dg[:, sl]
        relu_mode = self.mode == "rnn_relu"
        back = step_gemm.state_grad(dg[0], w_hh)
        for t in reversed(self.steps):
            masked = self._masked(t)
            if masked:
                dh, _, passed = self._split_masked(t, sl, dh, d_out[t])
            else:
                dh += d_out[t]
            y, da = out[t], dg[t]
            if relu_mode:  # y = relu(a): da = dy [y > 0]
                xp.multiply(dh, y > 0, out=da)
            else:  # y = tanh(a): da = dy (1 - y^2)
                xp.multiply(y, y, out=da)
                xp.subtract(1, da, out=da)
                da *= dh
            dh = back(da)
            if masked:
                dh += passed[0]
        return dh, None

    def _lstm_back(self, sl, d_out, dh, dc, dg, w_hh, c0):
        acts, cs, tcs, d_out, dg = self.acts[:, sl], self.cs[:, sl], self.tc[:, sl], d_out[:, sl], dg[:, sl]
        B, H = dh.shape
        deriv = xp.empty((B, 4 * H), dtype=dh.dtype)
        tmp = xp.empty((B, H), dtype=dh.dtype)
        steps = self.steps
        fk = fused_rnn.kernels() if fused_rnn.usable(dh) else None
        zeros = xp.zeros_like(dh) if fk is not None and self.full is not None else None
        half = dh.dtype.type(0.5)
        back = step_gemm.state_grad(dg[0], w_hh)
        for p in range(len(steps) - 1, -1, -1):
            t = steps[p]
            c_prev = cs[steps[p - 1]] if p else c0
            masked = self._masked(t)
            a, da, tc = acts[t], dg[t], tcs[t]
            if masked:
                dh, dc, passed = self._split_masked(t, sl, dh, d_out[t], dc)
            if fk is not None:  # _lstm_back_step's passes in one compiled loop (nerve.ops.fused_rnn)
                fk.lstm_back(a, tc, c_prev, dh, zeros if masked else d_out[t], dc, da, half)
            else:
                self._lstm_back_step(dh if masked else xp.add(dh, d_out[t], out=dh), dc, a, tc, c_prev, da, tmp,
                                     deriv)
            dh = back(da)
            if masked:
                dh += passed[0]
                dc += passed[1]
        return dh, dc

    @staticmethod
    def _lstm_back_step(dh, dc, a, tc, c_prev, da, tmp, deriv):
        """NumPy's passes of one LSTM step back: da from dh and dc; dc becomes the previous cell's gradient."""
        H = dh.shape[1]
        i, f, gg, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        # h = o tanh(c), c = f c_prev + i g: do = dh tanh(c); dc += dh o (1 - tanh^2 c)
        xp.multiply(dh, tc, out=da[:, 3 * H:])
        xp.multiply(tc, tc, out=tmp)
        xp.subtract(1, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc += tmp
        xp.multiply(dc, gg, out=da[:, :H])
        xp.multiply(dc, c_prev, out=da[:, H:2 * H])
        xp.multiply(dc, i, out=da[:, 2 * H:3 * H])
        # through the activations: sigmoid' = s (1 - s) for i, f, o; tanh' = 1 - g^2 for g
        xp.subtract(1, a, out=deriv)
        deriv *= a
        dgate = deriv[:, 2 * H:3 * H]
        xp.multiply(gg, gg, out=dgate)
        xp.subtract(1, dgate, out=dgate)
        da *= deriv
        dc *= f

    def _gru_back(self, sl, d_out, dh, dgx, dgh, w_hh):
        acts, hp, hns = self.acts[:, sl], self.hp[:, sl], self.hn[:, sl]
        d_out, dgx, dgh = d_out[:, sl], dgx[:, sl], dgh[:, sl]
        B, H = dh.shape
        tmp = xp.empty((B, H), dtype=dh.dtype)
        deriv = xp.empty((B, 2 * H), dtype=dh.dtype)
        fk = fused_rnn.kernels() if fused_rnn.usable(dh) else None
        zeros = xp.zeros_like(dh) if fk is not None and self.full is not None else None
        half = dh.dtype.type(0.5)
        back = step_gemm.state_grad(dgh[0], w_hh)
        for t in reversed(self.steps):
            masked = self._masked(t)
            a, gx, gh = acts[t], dgx[t], dgh[t]
            if masked:
                dh, _, passed = self._split_masked(t, sl, dh, d_out[t])
            if fk is not None:  # _gru_back_step's passes in one compiled loop (nerve.ops.fused_rnn)
                fk.gru_back(a, hp[t], hns[t], dh, zeros if masked else d_out[t], gx, gh, tmp, half)
            else:
                self._gru_back_step(dh if masked else xp.add(dh, d_out[t], out=dh), a, hp[t], hns[t], gx, gh,
                                    tmp, deriv)
            dh = back(gh)
            dh += tmp
            if masked:
                dh += passed[0]
        return dh, None

    @staticmethod
    def _gru_back_step(dh, a, hp, hn, gx, gh, tmp, deriv):
        """NumPy's passes of one GRU step back: gx, gh from dh, and tmp = dh z (what bypasses W_hh)."""
        H = dh.shape[1]
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        # h = n + z (h_prev - n): dn = dh (1 - z), dz = dh (h_prev - n), dh_prev = dh z + ...
        dan = gx[:, 2 * H:]
        xp.subtract(1, z, out=tmp)
        tmp *= dh
        xp.multiply(n, n, out=dan)
        xp.subtract(1, dan, out=dan)
        dan *= tmp  # n = tanh(a_n): da_n = dn (1 - n^2)
        xp.subtract(hp, n, out=gh[:, H:2 * H])
        gh[:, H:2 * H] *= dh
        # a_n = x_n + r hn: dr = da_n hn, dhn = da_n r
        xp.multiply(dan, hn, out=gh[:, :H])
        xp.multiply(dan, r, out=gh[:, 2 * H:])
        rz = a[:, :2 * H]
        xp.subtract(1, rz, out=deriv)
        deriv *= rz
        gh[:, :2 * H] *= deriv
        gx[:, :2 * H] = gh[:, :2 * H]
        xp.multiply(dh, z, out=tmp)

    def reference(self, x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, mode, reverse, batch_first, lookup=None):
        """The flat result composed step by step from primitives (the cells below)."""
        if batch_first:
            x = x.transpose(0, 1)
        T = x.shape[0]
        if mask is not None:
            x = where(mask[..., None], x, 0.0)
        xw = linear(x, w_ih, b_ih)
        h = h0 if isinstance(h0, Tensor) else Tensor._make(h0, None)
        c = c0 if c0 is None or isinstance(c0, Tensor) else Tensor._make(c0, None)
        outs = [None] * T
        for t in (range(T - 1, -1, -1) if reverse else range(T)):
            if mode == "lstm":
                h_new, c_new = _lstm_step(xw[t], h, c, w_hh, b_hh)
            elif mode == "gru":
                h_new, c_new = _gru_step(xw[t], h, w_hh, b_hh), None
            else:
                h_new, c_new = _rnn_step(xw[t], h, w_hh, b_hh, mode == "rnn_relu"), None
            if mask is not None and not mask[t].all():
                real = mask[t][:, None]
                outs[t] = where(real, h_new, 0.0)
                h = where(real, h_new, h)
                c = None if c_new is None else where(real, c_new, c)
            else:
                outs[t], h, c = h_new, h_new, c_new
        out = stack(outs, 0)
        if batch_first:
            out = out.transpose(0, 1)
        pieces = [out.reshape(-1), h.reshape(-1)] + ([c.reshape(-1)] if c is not None else [])
        return cat(pieces, 0)


# --- single steps composed from primitives: the cells, and the steps of the reference -------------------
def _rnn_step(xw: Tensor, h: Tensor, w_hh: Tensor, b_hh, use_relu: bool) -> Tensor:
    a = xw + linear(h, w_hh, b_hh)
    return relu(a) if use_relu else tanh(a)


def _lstm_step(xw: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh) -> tuple:
    gates = xw + linear(h, w_hh, b_hh)
    i, f, g, o = gates.chunk(4, -1)
    c = sigmoid(f) * c + sigmoid(i) * tanh(g)
    return sigmoid(o) * tanh(c), c


def _gru_step(xw: Tensor, h: Tensor, w_hh: Tensor, b_hh) -> Tensor:
    xr, xz, xn = xw.chunk(3, -1)
    hr, hz, hn = linear(h, w_hh, b_hh).chunk(3, -1)
    r = sigmoid(xr + hr)
    z = sigmoid(xz + hz)
    n = tanh(xn + r * hn)
    return n + z * (h - n)


# --- public functions ---------------------------------------------------------------------------------
def _check_cell(op: str, input: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, gates: int) -> None:
    hidden = w_hh.shape[1]
    if tuple(w_ih.shape[:1]) != (gates * hidden,) or tuple(w_hh.shape) != (gates * hidden, hidden):
        raise ShapeError(f"{op}: weights of shapes {tuple(w_ih.shape)} and {tuple(w_hh.shape)} do not fit "
                         f"{gates} gates: expected ({gates}*H, input_size) and ({gates}*H, H)")
    if input.shape[-1:] != w_ih.shape[1:] or tuple(h.shape) != tuple(input.shape[:-1]) + (hidden,):
        raise ShapeError(f"{op}: expected input (..., {w_ih.shape[1]}) and state (..., {hidden}) with the same "
                         f"batch shape, got {tuple(input.shape)} and {tuple(h.shape)}")


def rnn_tanh_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih=None, b_hh=None) -> Tensor:
    """One Elman step: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    _check_cell("rnn_tanh_cell", input, hx, w_ih, w_hh, 1)
    return _rnn_step(linear(input, w_ih, b_ih), hx, w_hh, b_hh, False)


def rnn_relu_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih=None, b_hh=None) -> Tensor:
    """One Elman step with ReLU: h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    _check_cell("rnn_relu_cell", input, hx, w_ih, w_hh, 1)
    return _rnn_step(linear(input, w_ih, b_ih), hx, w_hh, b_hh, True)


def lstm_cell(input: Tensor, hx: tuple, w_ih: Tensor, w_hh: Tensor, b_ih=None, b_hh=None) -> tuple:
    """One LSTM step from ``hx = (h, c)``; gate rows i, f, g, o as in PyTorch. Returns ``(h', c')``."""
    h, c = hx
    _check_cell("lstm_cell", input, h, w_ih, w_hh, 4)
    if tuple(c.shape) != tuple(h.shape):
        raise ShapeError(f"lstm_cell: h and c must have the same shape, got {tuple(h.shape)} and {tuple(c.shape)}")
    return _lstm_step(linear(input, w_ih, b_ih), h, c, w_hh, b_hh)


def gru_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih=None, b_hh=None) -> Tensor:
    """One GRU step; gate rows r, z, n and n = tanh(W_in x + b_in + r (W_hn h + b_hn)) as in PyTorch."""
    _check_cell("gru_cell", input, hx, w_ih, w_hh, 3)
    return _gru_step(linear(input, w_ih, b_ih), hx, w_hh, b_hh)


def lengths_to_mask(lengths, max_len: int, batch_first: bool = False):
    """A bool mask of the real steps from per-sequence lengths: (T, B), or (B, T) with ``batch_first``."""
    lengths = xp.asarray(_data(lengths)).reshape(-1)
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"lengths_to_mask: lengths must be integers, got dtype {lengths.dtype}")
    if lengths.size and (lengths.min() < 1 or lengths.max() > max_len):
        raise ValueError(f"lengths_to_mask: lengths must lie in [1, {max_len}] (the sequence length), got "
                         f"range [{lengths.min()}, {lengths.max()}]")
    mask = xp.arange(max_len)[:, None] < lengths[None, :]
    return mask.T if batch_first else mask


def recurrent_layer(mode: str, input: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
                    b_hh: Tensor | None = None, hx=None, mask=None, reverse: bool = False,
                    batch_first: bool = False):
    """One direction of one recurrent layer over a whole sequence as one fused graph node.

    ``mode`` is 'rnn_tanh', 'rnn_relu', 'lstm' or 'gru'; ``input`` is (T, B, I) ((B, T, I) with
    ``batch_first``); ``hx`` the initial state (B, H) ((h0, c0) for an LSTM; zeros when None); ``mask``
    a bool array of the input's first two dims marking real steps; ``reverse`` runs from the last step
    to the first. Returns ``(output, h_n)``, or ``(output, (h_n, c_n))`` for an LSTM.
    """
    if mode not in MODES:
        raise ValueError(f"recurrent_layer: mode must be one of {sorted(MODES)}, got {mode!r}")
    gates = MODES[mode]
    op = f"recurrent_layer({mode})"
    if input.ndim != 3:
        raise ShapeError(f"{op}: expected a 3-D input ({'B, T' if batch_first else 'T, B'}, input_size), "
                         f"got {tuple(input.shape)}")
    T, B = (input.shape[1], input.shape[0]) if batch_first else input.shape[:2]
    hidden = w_hh.shape[1]
    if T == 0:
        raise ValueError(f"{op}: the sequence is empty (input {tuple(input.shape)})")
    if tuple(w_ih.shape) != (gates * hidden, input.shape[2]) or tuple(w_hh.shape) != (gates * hidden, hidden):
        raise ShapeError(f"{op}: weights {tuple(w_ih.shape)} and {tuple(w_hh.shape)} do not fit input "
                         f"{tuple(input.shape)}: expected ({gates * hidden}, {input.shape[2]}) and "
                         f"({gates * hidden}, {hidden})")
    if (b_ih is None) != (b_hh is None):
        raise ValueError(f"{op}: give both biases or neither")
    h0, c0 = (hx if hx is not None else (None, None)) if mode == "lstm" else (hx, None)
    zeros = None
    for name, s in (("h0", h0), ("c0", c0)):
        if s is not None and tuple(s.shape) != (B, hidden):
            raise ShapeError(f"{op}: {name} must have shape ({B}, {hidden}), got {tuple(s.shape)}")
    if h0 is None or (mode == "lstm" and c0 is None):
        zeros = xp.zeros_like(input.data, shape=(B, hidden))
    h0 = zeros if h0 is None else h0
    c0 = (zeros if c0 is None else c0) if mode == "lstm" else None
    if mask is not None:
        mask = xp.asarray(_data(mask), dtype=bool)
        if mask.shape != tuple(input.shape[:2]):
            raise ShapeError(f"{op}: mask must have the input's first two dims {tuple(input.shape[:2])}, "
                             f"got {mask.shape}")
        mask = mask.T if batch_first else mask
        if mask.all():
            mask = None
    lookup = looked_up(input) if LOOKUP and mask is None else None
    if lookup is not None and not (2 * lookup[0].shape[0] <= T * B and lookup[0].dtype == input.dtype):
        lookup = None  # a table with more rows than half the positions: the positions' product is cheaper
    flat = RecurrentLayer.apply(input, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, mode, reverse, batch_first,
                                lookup=lookup)
    n = T * B * hidden
    out = flat[:n].reshape(tuple(input.shape[:2]) + (hidden,))
    h_n = flat[n:n + B * hidden].reshape(B, hidden)
    if mode != "lstm":
        return out, h_n
    return out, (h_n, flat[n + B * hidden:].reshape(B, hidden))


__all__ = ["gru_cell", "lengths_to_mask", "lstm_cell", "recurrent_layer", "rnn_relu_cell", "rnn_tanh_cell"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = []
