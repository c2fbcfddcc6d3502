"""NumPy's CBLAS GEMM cut into small products (``nerve.ops.cblas.small_rows`` / ``rows_dispatcher``): the rule,
the cut GEMM against NumPy for both layouts of A, a remainder, beta 0 and 1, and the convolution forwards that use
it (im2col fills, Winograd stride 1 and stride 2) with products of a few rows against one GEMM a chunk."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
from nerve.ops import cblas, winograd, winograd_stride2

pytest.importorskip("numba")
RNG = np.random.default_rng(0)


@pytest.fixture
def small(monkeypatch):
    """Small products taken on this machine's core, at most 8,192 multiply-adds: the tests' small layers are cut."""
    if cblas.numpy_gemm() is None:
        pytest.skip("NumPy's BLAS has no CBLAS GEMM under a known name: no compiled GEMMs")
    monkeypatch.setattr(cblas, "SMALL_CORES", (cblas.corename(),))
    monkeypatch.setattr(cblas, "SMALL", 8192)


def test_small_rows_rule(small, monkeypatch):
    assert cblas.small_rows(8, 16) == 64  # 8192 // 128
    assert cblas.small_rows(7, 5) == 232  # 234 rounded down to whole 8s
    assert cblas.small_rows(64, 64) == 0  # fewer than 8 rows
    assert cblas.small_rows(7, 125) == 8 and cblas.small_rows(9, 9, align=4) == 100
    monkeypatch.setattr(cblas, "SMALL_CORES", ())
    assert cblas.small_rows(8, 16) == 0  # a core without small kernels: one product


@pytest.fixture(scope="module")
def gemm_rows():
    from numba import njit
    call = cblas.rows_dispatcher(cblas.numpy_gemm()[2])

    @njit
    def run(fn, double, ta, m, n, k, a, lda, b, beta, c, rows):
        call(fn, double, ta, cblas.NO_TRANS, m, n, k, a.ctypes.data, lda, b.ctypes.data, n, beta, c.ctypes.data, n,
             rows)
    return run


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("m,rows", [(37, 8), (40, 8), (7, 8), (1, 8), (37, 0), (37, 36)])
def test_gemm_rows_against_numpy(m, rows, transposed, dtype, gemm_rows):
    if cblas.numpy_gemm() is None:
        pytest.skip("NumPy's BLAS has no CBLAS GEMM under a known name")
    n, k = 6, 11
    a = RNG.standard_normal((k, m) if transposed else (m, k)).astype(dtype)
    b = RNG.standard_normal((k, n)).astype(dtype)
    op_a = a.T if transposed else a
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-13)
    for beta in (0, 1):
        c = RNG.standard_normal((m, n)).astype(dtype)
        expected = op_a @ b + (c if beta else 0)
        gemm_rows(cblas.gemm_address(np.dtype(dtype)), dtype == np.float64,
                  cblas.TRANS if transposed else cblas.NO_TRANS, m, n, k, a, m if transposed else k, b, beta, c, rows)
        np.testing.assert_allclose(c, expected, **tol)


def _forward(x, w, stride, padding):
    return F.conv2d(nerve.tensor(x), nerve.tensor(w), nerve.tensor(np.ones(w.shape[0], x.dtype)), stride=stride,
                    padding=padding).numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel,stride,channels_last", [(3, 1, False), (3, 2, False), (5, 1, False),
                                                         (5, 1, True), (3, 1, True)])
def test_convolution_forwards_in_small_products(kernel, stride, channels_last, dtype, small, monkeypatch):
    """Each forward path (3x3 stride 1: Winograd; 3x3 stride 2: the polyphase split; 5x5: the im2col fills, from
    either memory layout) with products of a few rows equals the same path with one product a chunk."""
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)
    monkeypatch.setattr(winograd_stride2, "MIN_CHANNELS", 1)
    monkeypatch.setattr(winograd_stride2, "MIN_CALL_TILES", 1)
    x = RNG.standard_normal((3, 5, 19, 23)).astype(dtype)
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    w = RNG.standard_normal((7, 5, kernel, kernel)).astype(dtype)
    cut = _forward(x, w, stride, kernel // 2)
    monkeypatch.setattr(cblas, "SMALL_CORES", ())
    whole = _forward(x, w, stride, kernel // 2)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cut, whole, **tol)
