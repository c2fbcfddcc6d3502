"""A recurrent layer's per-step products with W_hh, cut into the blocks that OpenBLAS's small-matrix kernels take.

OpenBLAS's SkylakeX-family cores multiply small matrices without packing them. A step's whole product is too large
for that path: an LSTM's (1024 x 256) x (256 x 16) runs at 78-81 GFLOP/s on one core here, in blocks of 64 of W's
rows at 99-101; the backward's (16 x 1024) x (1024 x 256) in blocks of 128 of W's rows at 112 instead of 73. The
blocks are called through NumPy's own CBLAS from one compiled loop (``bench/rnn.py``'s "whole step GEMMs" rows
time the layer without them). Other cores (OpenBLAS's Haswell kernels run such blocks slower), NumPy without a
known CBLAS, CuPy arrays or no numba: plain matmul.
"""
from __future__ import annotations

from nerve import backend
from nerve.backend import xp
from nerve.ops import cblas, compiled

#: False: always plain matmul (to test or time that path)
ENABLED = True
#: OpenBLAS cores with the small-matrix kernels (``cblas.corename``)
CORES = cblas.SMALL_CORES
#: the forward's blocks (rows of W x batch) take the small path up to ``ROWS_BY_BATCH`` outputs and ``SMALL``
#: multiply-adds; the backward's (batch x columns of W x block of W's rows) up to ``SMALL``. Measured on one core
#: (float32 and float64 alike): 64 x 16 outputs of K = 256 run at 101 GFLOP/s, 128 x 16 at 70; 16 x 256 x 128
#: multiply-adds at 112, 16 x 256 x 256 at 83
ROWS_BY_BATCH = 1024
SMALL = cblas.SMALL
#: blocks are whole multiples of ``ALIGN`` rows, at most ``MOST`` (the largest measured)
ALIGN, MOST = 16, 128
_state: dict = {}


def kernels():
    """``(forward, backward, sgemm, dgemm)`` compiled block loops and GEMM addresses, or None when they do not
    apply here (see the module's docstring)."""
    if "k" not in _state:
        gemm = cblas.numpy_gemm()
        usable = gemm is not None and cblas.corename() in CORES
        _state["k"] = compiled.once(_state.setdefault("loops", {}), lambda cache: (*_compile(cache, gemm[2]),
                                                                                    *gemm[:2])) if usable else None
    return _state["k"]


def _rows(limit: int, total: int, *sizes: int) -> int:
    """Rows of a block: the most whole ``ALIGN``s within ``limit`` and ``MOST``; 0 when blocks would not help or
    one of the products' other ``sizes`` is 0."""
    rows = min(limit, MOST) // ALIGN * ALIGN if min(sizes) > 0 else 0
    return rows if 0 < rows < total else 0


def _plain(*arrays) -> bool:
    """Whether plain matmul serves: turned off, not all NumPy arrays of one dtype float32 or float64."""
    return (not ENABLED or any(type(a) is not backend.ndarray or a.dtype != arrays[0].dtype for a in arrays)
            or arrays[0].dtype.char not in "fd")


def gates(w, h, out):
    """A function of h (B, K) that sets ``out[...] = w @ h.T``, for w (R, K) and out (R, B), e.g. at each step of
    a layer (``h`` here: any of them, for its shape)."""
    k = None if _plain(w, h, out) else kernels()
    B, K = h.shape
    rows = _rows(min(ROWS_BY_BATCH // max(B, 1), SMALL // max(B * K, 1)), w.shape[0], B, K) if k is not None else 0
    if not rows or not (w.flags.c_contiguous and out.flags.c_contiguous):
        return lambda h: xp.matmul(w, h.T, out=out)
    loop, fn, double, item = k[0], k[2 + (w.dtype.char == "d")], w.dtype.char == "d", w.itemsize

    def product(h):
        if h.strides[1] == item:
            loop(fn, double, w, h, out, rows)
        else:
            xp.matmul(w, h.T, out=out)
    return product


def state_grad(g, w):
    """A function of g (B, R) that returns ``g @ w``, a new (B, K) array, for w (R, K), e.g. at each step of a
    layer back (``g`` here: any of them, for its shape)."""
    k = None if _plain(g, w) else kernels()
    B, K = g.shape[0], w.shape[1]
    rows = _rows(SMALL // max(B * K, 1), w.shape[0], B, K) if k is not None else 0
    if not rows or not w.flags.c_contiguous:
        return lambda g: xp.matmul(g, w)
    loop, fn, double, item = k[1], k[2 + (w.dtype.char == "d")], w.dtype.char == "d", w.itemsize

    def product(g):
        if g.strides[1] != item:
            return xp.matmul(g, w)
        out = xp.empty((B, K), dtype=w.dtype)
        loop(fn, double, g, w, out, rows)
        return out
    return product


def _compile(cache: bool, int_bits: int):
    from numba import njit
    gemm, gemm_rows = cblas.dispatcher(int_bits), cblas.rows_dispatcher(int_bits)
    nt, tr = cblas.NO_TRANS, cblas.TRANS

    @njit(nogil=True, cache=cache)
    def forward(fn, double, w, h, out, rows):  # out (R, B) = w (R, K) @ h (B, K)^T, by blocks of w's rows
        R, K = w.shape
        B = h.shape[0]
        gemm_rows(fn, double, nt, tr, R, B, K, w.ctypes.data, K, h.ctypes.data, h.strides[0] // w.itemsize, 0,
                  out.ctypes.data, B, rows)

    @njit(nogil=True, cache=cache)
    def backward(fn, double, g, w, out, rows):  # out (B, K) = g (B, R) @ w (R, K), summed over blocks of R
        B, R = g.shape
        K = w.shape[1]
        item = w.itemsize
        for i in range(0, R, rows):
            m = min(rows, R - i)
            gemm(fn, double, nt, nt, B, K, m, g.ctypes.data + i * item, g.strides[0] // item,
                 w.ctypes.data + i * K * item, K, 1 if i else 0, out.ctypes.data, K)
    return forward, backward
