"""Optional compiled kernels for the recurrent layer's per-step element-wise work (numba, when installed).

Why: a step of an LSTM's backward is about ten NumPy passes over (batch, hidden) arrays, each a separate
call reading and writing memory; one compiled loop does them in one pass. The forward keeps NumPy's tanh
(vectorised; numba's scalar tanh is ~40x slower) and fuses the passes around it. Used by ``recurrent.py``
for NumPy arrays when numba imports; ``ENABLED = False`` forces NumPy's passes (the results agree within
round-off: the kernels do the same operations in the same order, in the arrays' dtype: ``half`` is 0.5
of that dtype, as a literal would promote float32 to float64). One exception, float32 only:
``lstm_cell_out`` does the cell, its tanh, the output and the next state in one pass, with a tanh of its own
(``_TANH``: a rational approximation evaluated in float64, which vectorises where numba's libm call does
not; over every float32 input its result is within 0.61 ulp of the exact tanh, i.e. faithfully rounded).
"""
from __future__ import annotations

from nerve import backend
from nerve.ops import compiled

#: False: never use the compiled kernels (NumPy's passes), e.g. to test or time that path
ENABLED = True
_state: dict = {}
#: tanh(x) ~ x P(x^2) / Q(x^2), x clamped to [-9, 9] (beyond, tanh is within 3.1e-8 of +-1): P's and Q's
#: coefficients, lowest first, fitted for least relative error (max 6.6e-9) by iteratively reweighted
#: least squares in float64; evaluated in float64 and rounded once, the float32 result is within 0.61 ulp
_TANH = ((0.9999999934028287, 0.1308401028599032, 0.0031039564024599535, 1.1154309950377257e-05,
          -2.0225231736397962e-08, 5.2779512206598743e-11, -8.488718383969481e-14),
         (1.0, 0.46417337391853203, 0.024495179190400434, 0.00025461454745086634))


def kernels():
    """The compiled kernels (a namespace), or None when numba is missing or ``ENABLED`` is False."""
    return compiled.once(_state, _compile) if ENABLED else None


def usable(a) -> bool:
    """Whether the kernels run on ``a``: installed, enabled, a NumPy array (not CuPy's) of float32/float64."""
    return type(a) is backend.ndarray and a.dtype.char in "fd" and kernels() is not None


def _compile(cache: bool):
    from types import SimpleNamespace

    from numba import njit
    jit = njit(nogil=True, cache=cache)
    # NOTE: numpy's error model (no ZeroDivisionError check) lets LLVM vectorise the division of tanh32
    vjit = njit(nogil=True, cache=cache, error_model="numpy")
    (p0, p1, p2, p3, p4, p5, p6), (q0, q1, q2, q3) = _TANH

    @njit(inline="always", error_model="numpy")
    def tanh32(x):  # float32 tanh within 0.61 ulp (see _TANH); NaN stays NaN
        v = float(x)
        v = min(max(v, -9.0), 9.0) if v == v else v
        s = v * v
        return v * ((((((p6 * s + p5) * s + p4) * s + p3) * s + p2) * s + p1) * s + p0) / (
            ((q3 * s + q2) * s + q1) * s + q0)
    compiled.named(tanh32, "fused_rnn.tanh32")  # held by lstm_cell_out's closure: a fixed identity keeps it cached

    @jit
    def add_gates(a, bias, tmp):  # a = (a + bias) + tmp.T: the step's gates, tmp from the transposed GEMM (G, B)
        for b in range(tmp.shape[1]):
            for j in range(tmp.shape[0]):
                a[b, j] = (a[b, j] + bias[j]) + tmp[j, b]

    @jit
    def lstm_cell(a, c, cn, half):
        """From a = tanh of the gates (i, f, o of halved rows): i, f, o = (1 + a) / 2 in place and
        cn = f c + i g."""
        H = c.shape[1]
        for b in range(c.shape[0]):
            for u in range(H):
                i = a[b, u] * half + half
                f = a[b, H + u] * half + half
                a[b, u] = i
                a[b, H + u] = f
                a[b, 3 * H + u] = a[b, 3 * H + u] * half + half
                cn[b, u] = f * c[b, u] + i * a[b, 2 * H + u]

    @jit
    def lstm_out(a, tc, h):  # h = o tanh(c)
        H = h.shape[1]
        for b in range(h.shape[0]):
            for u in range(H):
                h[b, u] = a[b, 3 * H + u] * tc[b, u]

    @jit
    def lstm_back(a, tc, c_prev, dh, d_out, dc, da, half):
        """One step back: da (the gates' pre-activation gradients) from dh + d_out and dc; dc becomes the
        previous cell's gradient (the same operations, in the same order, as the NumPy passes)."""
        H = dh.shape[1]
        one = half + half
        for b in range(dh.shape[0]):
            for u in range(H):
                i, f, g, o = a[b, u], a[b, H + u], a[b, 2 * H + u], a[b, 3 * H + u]
                t = tc[b, u]
                d = dh[b, u] + d_out[b, u]
                dcv = dc[b, u] + (one - t * t) * o * d
                da[b, u] = dcv * g * ((one - i) * i)
                da[b, H + u] = dcv * c_prev[b, u] * ((one - f) * f)
                da[b, 2 * H + u] = dcv * i * (one - g * g)
                da[b, 3 * H + u] = d * t * ((one - o) * o)
                dc[b, u] = dcv * f

    @jit
    def gru_pre(a, bias, hw_t, b_hn, hn):
        """a = (a + bias) + (W_hh h).T for r, z, a + bias for n, and hn = (W_hh h)[2H:].T + b_hn (hw_t: the
        transposed GEMM's (3H, B))."""
        H = hn.shape[1]
        for b in range(hn.shape[0]):
            for j in range(2 * H):
                a[b, j] = (a[b, j] + bias[j]) + hw_t[j, b]
            for u in range(H):
                a[b, 2 * H + u] += bias[2 * H + u]
                hn[b, u] = hw_t[2 * H + u, b] + b_hn[u]

    @jit
    def gru_mid(a, hn, half):  # r, z = (1 + a) / 2 in place (halved rows); a_n += r hn
        H = hn.shape[1]
        for b in range(hn.shape[0]):
            for u in range(H):
                r = a[b, u] * half + half
                a[b, u] = r
                a[b, H + u] = a[b, H + u] * half + half
                a[b, 2 * H + u] += r * hn[b, u]

    @jit
    def gru_out(a, h, ho):  # h' = n + z (h - n)
        H = h.shape[1]
        for b in range(h.shape[0]):
            for u in range(H):
                n = a[b, 2 * H + u]
                ho[b, u] = n + (h[b, u] - n) * a[b, H + u]

    @jit
    def gru_back(a, hp, hn, dh, d_out, gx, gh, dz, half):
        """One step back: the gradients of the input-side (gx) and hidden-side (gh) pre-activations from
        dh + d_out, and dz = (dh + d_out) z, the part of dh_prev that bypasses W_hh."""
        H = dh.shape[1]
        one = half + half
        for b in range(dh.shape[0]):
            for u in range(H):
                r, z, n = a[b, u], a[b, H + u], a[b, 2 * H + u]
                d = dh[b, u] + d_out[b, u]
                dan = (one - n * n) * ((one - z) * d)
                dr = (dan * hn[b, u]) * ((one - r) * r)
                dzz = ((hp[b, u] - n) * d) * ((one - z) * z)
                gx[b, u] = dr
                gx[b, H + u] = dzz
                gx[b, 2 * H + u] = dan
                gh[b, u] = dr
                gh[b, H + u] = dzz
                gh[b, 2 * H + u] = dan * r
                dz[b, u] = d * z

    @vjit
    def lstm_cell_out(a, c, cn, tc, out3, t, b0, batch_first, hn, half):
        """float32, lstm_cell and lstm_out in one pass: from a = tanh of the gates, i, f, o = (1 + a) / 2 in
        place, cn = f c + i g, tc = tanh(cn) (tanh32), h = o tc written to the output (out3's step t, batch rows
        from b0) and to hn (the next step's state)."""
        H = c.shape[1]
        for b in range(c.shape[0]):
            ar, cr, cnr, tcr, hnr = a[b], c[b], cn[b], tc[b], hn[b]
            ai, af, ag, ao = ar[:H], ar[H:2 * H], ar[2 * H:3 * H], ar[3 * H:]  # NOTE: row views: LLVM vectorises
            hor = out3[b0 + b, t] if batch_first else out3[t, b0 + b]
            for u in range(H):
                i = ai[u] * half + half
                f = af[u] * half + half
                o = ao[u] * half + half
                ai[u] = i
                af[u] = f
                ao[u] = o
                cv = f * cr[u] + i * ag[u]
                cnr[u] = cv
                tv = tanh32(cv)
                tcr[u] = tv
                hv = o * tv
                hor[u] = hv
                hnr[u] = hv

    @vjit
    def tanh_f32(x, out):  # tanh32 over a float32 array (tests, and the measure of its error)
        xf, of = x.reshape(-1), out.reshape(-1)
        for k in range(xf.size):
            of[k] = tanh32(xf[k])

    return SimpleNamespace(add_gates=add_gates, lstm_cell=lstm_cell, lstm_out=lstm_out, lstm_cell_out=lstm_cell_out,
                           tanh_f32=tanh_f32,
                           lstm_back=lstm_back, gru_pre=gru_pre, gru_mid=gru_mid, gru_out=gru_out, gru_back=gru_back)
