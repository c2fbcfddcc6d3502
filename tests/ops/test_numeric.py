"""nerve/ops/numeric.py: forward against NumPy (or a loop of the formula), gradcheck/gradgradcheck in float64 of the
differentiable compositions; the non-differentiable helpers and windows against NumPy; stft against a plain loop
of its definition and istft as its inverse."""
import math

import numpy as np
import pytest

import nerve
from tests.ops.table import Case, table_tests

T = nerve.tensor


def _np_cumtrapz(y, dx):
    return np.cumsum((y[..., 1:] + y[..., :-1]) * dx / 2, axis=-1)


def _cases():
    yield Case("diff", lambda x: nerve.diff(x), np.diff, [(3, 5)], second=True)
    yield Case("diff_n2_dim0", lambda x: nerve.diff(x, n=2, dim=0), lambda x: np.diff(x, n=2, axis=0), [(5, 3)])
    yield Case("diff_prepend_append", lambda x, p, a: nerve.diff(x, prepend=p, append=a),
               lambda x, p, a: np.diff(x, prepend=p, append=a), [(2, 4), (2, 1), (2, 3)], second=True)
    yield Case("diff_n_past_length", lambda x: nerve.diff(x, n=5), lambda x: np.diff(x, n=5), [(3,)])
    yield Case("trapezoid", lambda y: nerve.trapezoid(y), np.trapezoid, [(3, 6)], second=True)
    yield Case("trapezoid_x", lambda y, x: nerve.trapezoid(y, x), lambda y, x: np.trapezoid(y, x), [(2, 5), (5,)])
    yield Case("trapezoid_dx_dim0", lambda y: nerve.trapezoid(y, dx=0.3, dim=0),
               lambda y: np.trapezoid(y, dx=0.3, axis=0), [(4, 2)])
    yield Case("trapz", lambda y: nerve.trapz(y, dx=2.0), lambda y: np.trapezoid(y, dx=2.0), [(5,)])
    yield Case("cumulative_trapezoid", lambda y: nerve.cumulative_trapezoid(y, dx=0.5),
               lambda y: _np_cumtrapz(y, 0.5), [(2, 5)], second=True)
    yield Case("cov", nerve.cov, np.cov, [(3, 6)], second=True)
    yield Case("cov_1d", nerve.cov, np.cov, [(6,)])
    yield Case("cov_one_row", nerve.cov, np.cov, [(1, 6)])
    yield Case("cov_weights", lambda x: nerve.cov(x, correction=0, fweights=T([1, 2, 1, 3, 1]),
                                                  aweights=T([0.5, 1.0, 2.0, 0.3, 1.2], dtype=nerve.float64)),
               lambda x: np.cov(x, ddof=0, fweights=[1, 2, 1, 3, 1], aweights=[0.5, 1.0, 2.0, 0.3, 1.2]), [(2, 5)])
    yield Case("cov_aweights_bessel", lambda x: nerve.cov(x, aweights=T([0.5, 1.0, 2.0, 0.3, 1.2],
                                                                        dtype=nerve.float64)),
               lambda x: np.cov(x, aweights=[0.5, 1.0, 2.0, 0.3, 1.2]), [(2, 5)])
    yield Case("corrcoef", nerve.corrcoef, np.corrcoef, [(3, 6)], second=True)
    yield Case("nanquantile", lambda x: nerve.nanquantile(x, 0.3, dim=1), lambda x: np.nanquantile(x, 0.3, axis=1),
               [(3, 5)])
    yield Case("nanquantile_nan_keepdim", lambda x: nerve.nanquantile(x, T([0.2, 0.75]), dim=0, keepdim=True),
               lambda x: np.nanquantile(x, [0.2, 0.75], axis=0, keepdims=True), [(5, 3)],
               make=lambda rng: [np.where(rng.uniform(size=(5, 3)) < 0.3, np.nan, rng.normal(size=(5, 3)))],
               rtol=1e-6, check_grad=False)
    for mode in ("lower", "higher", "midpoint", "nearest"):
        yield Case(f"nanquantile_{mode}", lambda x, mode=mode: nerve.nanquantile(x, 0.4, interpolation=mode),
                   lambda x, mode=mode: np.nanquantile(x, 0.4, method=mode), [(7,)])
    yield Case("vander", lambda x: nerve.vander(x, 4), lambda x: np.vander(x, 4), [(3,)], second=True)
    yield Case("vander_increasing", lambda x: nerve.vander(x, increasing=True), lambda x: np.vander(x, increasing=True),
               [(4,)])
    yield Case("linalg_vander_batched", lambda x: nerve.linalg.vander(x, N=3),
               lambda x: np.stack([np.vander(r, 3, increasing=True) for r in x]), [(2, 4)])
    yield Case("inner", nerve.inner, np.inner, [(2, 3, 4), (5, 4)], second=True)
    yield Case("inner_1d", nerve.inner, np.inner, [(4,), (4,)])
    yield Case("vdot", nerve.vdot, np.vdot, [(4,), (4,)])
    yield Case("addr", lambda i, a, b: nerve.addr(i, a, b, beta=0.5, alpha=2.0),
               lambda i, a, b: 0.5 * i + 2.0 * np.outer(a, b), [(3, 2), (3,), (2,)], second=True)
    yield Case("ger", nerve.ger, np.outer, [(3,), (2,)])
    yield Case("chain_matmul", lambda a, b, c: nerve.chain_matmul(a, b, c), lambda a, b, c: a @ b @ c,
               [(2, 3), (3, 4), (4, 2)])
    yield Case("dist_2", nerve.dist, lambda a, b: np.linalg.norm((a - b).ravel()), [(3, 2), (2,)], second=True)
    yield Case("dist_3", lambda a, b: nerve.dist(a, b, 3), lambda a, b: np.linalg.norm((a - b).ravel(), 3),
               [(4,), (4,)])
    yield Case("cholesky_solve", lambda b, x: nerve.cholesky_solve(b, nerve.linalg.cholesky(x @ x.mT + T(np.eye(3)))),
               lambda b, x: np.linalg.solve(x @ x.T + np.eye(3), b), [(3, 2), (3, 3)], second=True)
    yield Case("cholesky_inverse_upper", lambda x: nerve.cholesky_inverse(
        nerve.linalg.cholesky(x @ x.mT + T(np.eye(3)), upper=True), upper=True),
        lambda x: np.linalg.inv(x @ x.T + np.eye(3)), [(3, 3)])
    yield Case("nuclear_norm", nerve.nuclear_norm, lambda x: np.linalg.norm(x, "nuc"), [(3, 4)])
    yield Case("frobenius_norm", nerve.frobenius_norm, lambda x: np.linalg.norm(x, axis=(-2, -1)), [(2, 3, 4)])
    yield Case("float_power", nerve.float_power, np.float_power, [(3,), (3,)], low=0.5)
    yield Case("ldexp", lambda x: nerve.ldexp(x, T([1, -2, 3])), lambda x: np.ldexp(x, [1, -2, 3]), [(3,)])
    yield Case("logaddexp2", nerve.logaddexp2, np.logaddexp2, [(4,), (4,)], second=True)
    yield Case("adjoint", nerve.adjoint, lambda x: np.swapaxes(x, -1, -2), [(2, 3, 4)])


CASES = list(_cases())
test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree, \
    test_rule_reads_only_its_namespace = table_tests(CASES)


def test_helpers_without_gradient_match_numpy():
    x = np.array([3.0, -0.1, 0.0, 1e-300])
    m, e = nerve.frexp(T(x))
    np.testing.assert_array_equal(m.numpy(), np.frexp(x)[0])
    assert e.dtype == nerve.int32 and e.tolist() == np.frexp(x)[1].tolist()
    a, b = T([12, 18, -8]), T([8, 27, 6])
    assert nerve.gcd(a, b).tolist() == [4, 9, 2] and nerve.lcm(a, b).tolist() == [24, 54, 24]
    assert nerve.nextafter(T([1.0]), T([2.0])).item() == np.nextafter(np.float32(1), np.float32(2))
    assert nerve.isreal(T(np.array([1 + 0j, 1 + 1j]))).tolist() == [True, False]
    assert nerve.isreal(T([1.0])).tolist() == [True] and nerve.is_complex(T(np.array([1j])))
    assert [c.tolist() for c in nerve.unravel_index(T([5, 7]), (2, 4))] == [[1, 1], [1, 3]]
    hist, edges = nerve.histogram(T([1.0, 2.0, 2.5, 4.0]), 3, range=(0.0, 6.0), weight=T([1.0, 2.0, 1.0, 0.5]))
    want = np.histogram([1.0, 2.0, 2.5, 4.0], 3, range=(0.0, 6.0), weights=[1.0, 2.0, 1.0, 0.5])
    np.testing.assert_allclose(hist.numpy(), want[0]) and np.testing.assert_allclose(edges.numpy(), want[1])
    assert nerve.histogram(T([1.0, 2.0]), T([0.0, 1.5, 3.0])).hist.tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match="gcd: not implemented for dtypes float32"):
        nerve.gcd(T([1.0]), T([2.0]))
    with pytest.raises(RuntimeError, match=r"diff: prepend of shape \(3, 1\) must match input of shape \(2, 4\)"):
        nerve.diff(T(np.ones((2, 4))), prepend=T(np.ones((3, 1))))
    with pytest.raises(RuntimeError, match="cov: expected input to have two or fewer dimensions"):
        nerve.cov(T(np.ones((2, 2, 2))))


@pytest.mark.parametrize("name,ref", [("hann_window", np.hanning), ("hamming_window", np.hamming),
                                      ("blackman_window", np.blackman), ("bartlett_window", np.bartlett),
                                      ("kaiser_window", lambda n: np.kaiser(n, 12.0))])
def test_windows_match_numpy(name, ref):
    fn = getattr(nerve, name)
    for n in (0, 1, 6, 9):
        np.testing.assert_allclose(fn(n, periodic=False, dtype=nerve.float64).numpy(), ref(n), atol=1e-12)
        np.testing.assert_allclose(fn(n, dtype=nerve.float64).numpy(), ref(n + 1)[:n] if n > 1 else np.ones(n),
                                   atol=1e-12)
    assert fn(5).dtype == nerve.get_default_dtype() and fn(4, requires_grad=True).requires_grad


def _stft_loop(x, n_fft, hop, window):
    """The definition: reflect-pad by n_fft // 2, frame t = x[t hop : t hop + n_fft] * window, its rfft."""
    p = n_fft // 2
    xp_ = np.pad(x, (p, p), mode="reflect")
    count = 1 + (len(xp_) - n_fft) // hop
    out = np.zeros((n_fft // 2 + 1, count), dtype=complex)
    for t in range(count):
        frame = xp_[t * hop:t * hop + n_fft] * window
        for k in range(n_fft // 2 + 1):
            out[k, t] = sum(frame[j] * np.exp(-2j * math.pi * k * j / n_fft) for j in range(n_fft))
    return out


def test_stft_matches_its_definition_and_istft_inverts_it():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(30)
    win = np.hanning(9)[:8]  # periodic Hann
    got = nerve.stft(T(x), 8, hop_length=2, window=nerve.hann_window(8, dtype=nerve.float64), return_complex=True)
    np.testing.assert_allclose(got.numpy(), _stft_loop(x, 8, 2, win), atol=1e-12)
    back = nerve.istft(got, 8, hop_length=2, window=nerve.hann_window(8, dtype=nerve.float64), length=30)
    np.testing.assert_allclose(back.numpy(), x, atol=1e-12)
    as_real = nerve.stft(T(x), 8, hop_length=2, return_complex=False)
    assert as_real.shape == (5, 16, 2)
    with pytest.raises(RuntimeError, match="stft requires the return_complex parameter"):
        nerve.stft(T(x), 8)
    xt = T(x, requires_grad=True)
    assert nerve.gradcheck(lambda v: nerve.stft(v, 8, 4, window=nerve.hann_window(8, dtype=nerve.float64),
                                                return_complex=True).abs(), [xt])
