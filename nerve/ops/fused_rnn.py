"""Optional compiled kernels for the recurrent layer's per-step element-wise work (numba, when installed).

Why: a step of an LSTM's backward is about ten NumPy passes over (batch, hidden) arrays, each a separate
call reading and writing memory; one compiled loop does them in one pass. The forward keeps NumPy's tanh
(vectorised; numba's scalar tanh is ~40x slower) and fuses the passes around it. Used by ``recurrent.py``
for NumPy arrays when numba imports; ``ENABLED = False`` forces NumPy's passes (the results agree within
round-off: the kernels do the same operations in the same order, in the arrays' dtype: ``half`` is 0.5
of that dtype, as a literal would promote float32 to float64).
"""
from __future__ import annotations

from nerve import backend

#: False: never use the compiled kernels (NumPy's passes), e.g. to test or time that path
ENABLED = True
_state: dict = {}


def kernels():
    """The compiled kernels (a namespace), or None when numba is missing or ``ENABLED`` is False."""
    if not ENABLED:
        return None
    if "k" not in _state:
        try:
            _state["k"] = _compile(cache=True)
        except ImportError:  # numba is optional
            _state["k"] = None
        except RuntimeError:  # no writable place for numba's on-disk cache: compile in memory at each start
            _state["k"] = _compile(cache=False)
    return _state["k"]


def usable(a) -> bool:
    """Whether the kernels run on ``a``: installed, enabled, a NumPy array (not CuPy's) of float32/float64."""
    return type(a) is backend.ndarray and a.dtype.char in "fd" and kernels() is not None


def _compile(cache: bool):
    from types import SimpleNamespace

    from numba import njit
    jit = njit(nogil=True, cache=cache)

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

    return SimpleNamespace(add_gates=add_gates, lstm_cell=lstm_cell, lstm_out=lstm_out,
                           lstm_back=lstm_back, gru_pre=gru_pre, gru_mid=gru_mid, gru_out=gru_out, gru_back=gru_back)
