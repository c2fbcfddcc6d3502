"""NumPy's own BLAS GEMM, called from compiled (numba) code without the GIL.

Why: a worker thread that runs its GEMM part through Python must take the GIL first; waiting for it puts the
thread to sleep, and the scheduler then often wakes it on its caller's core, where the two share one core
for milliseconds. A worker that calls BLAS itself never touches the GIL. The library is the one NumPy links
(found through NumPy's extension module), so its thread count is NumPy's (``threadpoolctl`` sets it) and its
results are NumPy's. Row-major CBLAS: ``C = A B`` or ``C += A B`` with either operand transposed.
"""
from __future__ import annotations

import ctypes

#: CBLAS's row-major order and its no-transpose / transpose codes
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
#: (sgemm, dgemm, integer bits): the names NumPy's BLAS may export them under, tried in turn
_NAMES = (("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", 64), ("cblas_sgemm64_", "cblas_dgemm64_", 64),
          ("scipy_cblas_sgemm", "scipy_cblas_dgemm", 32), ("cblas_sgemm", "cblas_dgemm", 32))
#: OpenBLAS cores with small-matrix kernels, which multiply a product of at most ``SMALL`` multiply-adds without
#: packing its operands when B is not transposed (one core here: 112-115 GFLOP/s against 94-102 packed, for K and
#: N of 64-256); a transposed B takes that path only up to 1,024 outputs as well (``nerve.ops.step_gemm``)
SMALL_CORES = ("SkylakeX", "Cooperlake", "SapphireRapids")
SMALL = 1 << 19
_state: dict = {}


def _numpy_library():
    """NumPy's extension module as a C library (dlsym through it searches the libraries it links), or None."""
    try:
        from numpy._core import _multiarray_umath as module
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath as module
    try:
        return ctypes.CDLL(module.__file__)
    except OSError:
        return None


def numpy_gemm():
    """``(sgemm address, dgemm address, integer bits)`` of the BLAS NumPy uses, or None when it has no CBLAS
    GEMM under a known name (e.g. Accelerate's)."""
    if "gemm" not in _state:
        _state["gemm"] = None
        lib = _numpy_library()
        if lib is None:
            return None
        for s, d, bits in _NAMES:
            try:
                addresses = [ctypes.cast(getattr(lib, name), ctypes.c_void_p).value for name in (s, d)]
            except AttributeError:
                continue
            _state["gemm"] = (*addresses, bits)
            break
    return _state["gemm"]


def corename() -> str:
    """The core OpenBLAS chose for NumPy's BLAS (``openblas_get_corename``), or '' where that is not OpenBLAS."""
    if "core" not in _state:
        _state["core"] = ""
        lib = _numpy_library()
        for name in ("scipy_openblas_get_corename64_", "openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename"):
            fn = getattr(lib, name, None) if lib is not None else None
            if fn is not None:
                fn.restype = ctypes.c_char_p
                _state["core"] = fn().decode()
                break
    return _state["core"]


def small_rows(n: int, k: int, align: int = 8) -> int:
    """Rows of A for each GEMM (rows x k) @ (k x n), B not transposed, to take OpenBLAS's small-matrix path: whole
    ``align``s within ``SMALL``; 0 where there is no such path, or it would take fewer than ``align`` rows."""
    rows = SMALL // max(n * k, 1) // align * align
    return rows if rows and corename() in SMALL_CORES else 0


def gemm_address(dtype) -> int:
    """The address of NumPy's CBLAS GEMM for float32 or float64 ``dtype`` (``numpy_gemm`` found one)."""
    return numpy_gemm()[dtype.char == "d"]


def layout(a):
    """``(transpose code, leading dimension)`` of a 2-D float array for row-major CBLAS, or None when its
    strides fit neither a row-major nor a column-major matrix."""
    if a.ndim != 2:
        return None
    item, (r, c), (sr, sc) = a.itemsize, a.shape, a.strides
    if (sc == item or c == 1) and sr % item == 0 and sr // item >= max(1, c):
        return NO_TRANS, sr // item
    if (sr == item or r == 1) and sc % item == 0 and sc // item >= max(1, r):
        return TRANS, sc // item
    return None


def caller(real_bits: int, int_bits: int):
    """A numba intrinsic ``call(fn, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc)`` (all int64; pointers as
    addresses) that calls the row-major CBLAS GEMM at address ``fn`` with alpha 1 and beta 0 or 1."""
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    from nerve.ops import compiled

    @intrinsic
    def call(typingctx, fn, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc):
        def codegen(context, builder, signature, args):
            i32, ix = ir.IntType(32), ir.IntType(int_bits)
            real = ir.DoubleType() if real_bits == 64 else ir.FloatType()
            ptr = ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, ix, ix, ix, real, ptr, ix, ptr, ix, real, ptr, ix])
            f, ta_, tb_, m_, n_, k_, a_, lda_, b_, ldb_, beta_, c_, ldc_ = args

            def num(v):
                return v if int_bits == 64 else builder.trunc(v, ix)
            builder.call(builder.inttoptr(f, fnty.as_pointer()), [
                ir.Constant(i32, ROW_MAJOR), builder.trunc(ta_, i32), builder.trunc(tb_, i32), num(m_), num(n_),
                num(k_), ir.Constant(real, 1.0), builder.inttoptr(a_, ptr), num(lda_), builder.inttoptr(b_, ptr),
                num(ldb_), builder.sitofp(beta_, real), builder.inttoptr(c_, ptr), num(ldc_)])
            return context.get_dummy_value()
        return types.void(*([types.int64] * 13)), codegen
    return compiled.named(call, f"cblas.gemm{real_bits}.{int_bits}")


def dispatcher(int_bits: int):
    """An inline numba function ``gemm(fn, double, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc)``: ``caller``'s
    GEMM in float64 when ``double`` (fn: dgemm's address) else float32 (sgemm's), with a fixed identity."""
    from numba import njit

    from nerve.ops import compiled
    s_gemm, d_gemm = caller(32, int_bits), caller(64, int_bits)

    @njit(nogil=True, inline="always")
    def gemm(fn, double, ta, tb, m, n, kd, a, lda, b, ldb, beta, c, ldc):
        if double:
            d_gemm(fn, ta, tb, m, n, kd, a, lda, b, ldb, beta, c, ldc)
        else:
            s_gemm(fn, ta, tb, m, n, kd, a, lda, b, ldb, beta, c, ldc)
    return compiled.named(gemm, f"cblas.gemm.{int_bits}")


def rows_dispatcher(int_bits: int):
    """An inline numba function ``gemm_rows(fn, double, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc, rows)``:
    ``dispatcher``'s GEMM cut into products of ``rows`` rows of op(A) and C (``small_rows``; 0: one product)."""
    from numba import njit

    from nerve.ops import compiled
    gemm = dispatcher(int_bits)

    @njit(nogil=True, inline="always")
    def gemm_rows(fn, double, ta, tb, m, n, kd, a, lda, b, ldb, beta, c, ldc, rows):
        if rows <= 0 or rows >= m:
            gemm(fn, double, ta, tb, m, n, kd, a, lda, b, ldb, beta, c, ldc)
            return
        size = 8 if double else 4
        row_a = size * (lda if ta == NO_TRANS else 1)  # bytes between two rows of op(A)
        for i in range(0, m, rows):
            gemm(fn, double, ta, tb, min(rows, m - i), n, kd, a + i * row_a, lda, b, ldb, beta, c + i * ldc * size, ldc)
    return compiled.named(gemm_rows, f"cblas.gemm_rows.{int_bits}")
