"""nerve.linalg against NumPy/SciPy: norms (every ord, dim, keepdim), lstsq, matrix_rank, matrix_power, multi_dot,
solve_triangular, vander; PyTorch's return types, top-level aliases, errors; gradients of the compositions."""
import math

import numpy as np
import pytest
import scipy.linalg

import nerve
import nerve.linalg as LA

RNG = np.random.default_rng(0)
A = RNG.standard_normal((2, 4, 3))


def T(a, grad=False):
    return nerve.tensor(a, requires_grad=grad)


@pytest.mark.parametrize("ord", ["fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf])
@pytest.mark.parametrize("dim", [(-2, -1), (0, 2), (2, 1)])
def test_matrix_norm_matches_numpy(ord, dim):
    want = np.linalg.norm(A, ord, axis=dim)
    np.testing.assert_allclose(LA.matrix_norm(T(A), ord, dim).numpy(), want, rtol=1e-12)
    kept = LA.matrix_norm(T(A), ord, dim, keepdim=True)
    np.testing.assert_allclose(kept.numpy(), np.linalg.norm(A, ord, axis=dim, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(LA.norm(T(A), ord, dim).numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("ord", [0, 1, 2, 3, 0.5, -1, -2.5, math.inf, -math.inf])
@pytest.mark.parametrize("dim", [None, -1, (0, 2)])
def test_vector_norm_matches_numpy(ord, dim):
    flat = A.reshape(-1) if dim is None else A
    axis = None if dim is None else dim
    want = (np.linalg.norm(flat, ord) if dim is None else
            np.linalg.norm(A, ord, axis=dim) if isinstance(dim, int) else
            np.linalg.norm(np.moveaxis(A, dim, (-2, -1)).reshape(4, -1), ord, axis=-1))
    got = LA.vector_norm(T(A), ord, axis)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_norm_defaults_follow_pytorch():
    x = T(A)
    np.testing.assert_allclose(LA.norm(x).item(), np.sqrt((A ** 2).sum()))  # flattened 2-norm
    np.testing.assert_allclose(LA.norm(x[0], 2).item(), np.linalg.norm(A[0], 2))  # 2-D with ord: matrix norm
    np.testing.assert_allclose(LA.norm(x[0, 0], 1).item(), np.abs(A[0, 0]).sum())
    with pytest.raises(RuntimeError, match=r"linalg.norm.*1-D or 2-D.*\(2, 4, 3\)"):
        LA.norm(x, 2)
    with pytest.raises(ValueError, match="matrix_norm: order 3"):
        LA.matrix_norm(x, 3)


@pytest.mark.parametrize("ord", ["fro", "nuc", 2, -2, 1, math.inf])
def test_matrix_norm_gradients(ord):
    assert nerve.gradcheck(lambda a: LA.matrix_norm(a, ord), [T(A, True)])


@pytest.mark.parametrize("ord", [2, 3, -1, math.inf])
def test_vector_norm_gradients(ord):
    assert nerve.gradcheck(lambda a: LA.vector_norm(a, ord, dim=-1), [T(A, True)])


def test_vector_norm_gradient_at_zero_is_zero():
    x = nerve.zeros(3, dtype=nerve.float64, requires_grad=True)
    LA.vector_norm(x).backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]


def test_lstsq_matches_numpy_and_returns_pytorch_fields():
    B = RNG.standard_normal((2, 4, 2))
    out = LA.lstsq(T(A), T(B))
    assert out._fields == ("solution", "residuals", "rank", "singular_values")
    for b in range(2):
        x, res, rank, s = np.linalg.lstsq(A[b], B[b], rcond=None)
        np.testing.assert_allclose(out.solution[b].numpy(), x, rtol=1e-10)
        assert out.rank[b].item() == rank
    assert out.residuals.shape == (0,) and out.singular_values.shape == (0,)  # gelsy, as PyTorch on the CPU
    gelsd = LA.lstsq(T(A), T(B), driver="gelsd")
    want = [np.linalg.lstsq(A[b], B[b], rcond=None)[1] for b in range(2)]
    np.testing.assert_allclose(gelsd.residuals.numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(gelsd.singular_values.numpy(), np.linalg.svd(A, compute_uv=False), rtol=1e-12)
    assert nerve.gradcheck(lambda a, b: LA.lstsq(a, b).solution, [T(A, True), T(B, True)])
    with pytest.raises(ValueError, match="driver"):
        LA.lstsq(T(A), T(B), driver="nope")


def test_matrix_rank():
    low = RNG.standard_normal((5, 2)) @ RNG.standard_normal((2, 4))
    assert LA.matrix_rank(T(low)).item() == 2 == np.linalg.matrix_rank(low)
    assert LA.matrix_rank(T(low @ low.T), hermitian=True).item() == 2
    assert LA.matrix_rank(T(A)).tolist() == [3, 3] and LA.matrix_rank(T(A)).dtype == nerve.int64
    assert LA.matrix_rank(T(low), atol=1e9).item() == 0


@pytest.mark.parametrize("n", [0, 1, 2, 5, -1, -3])
def test_matrix_power(n):
    a = RNG.standard_normal((2, 3, 3)) + 3 * np.eye(3)
    np.testing.assert_allclose(LA.matrix_power(T(a), n).numpy(), np.linalg.matrix_power(a, n), rtol=1e-10)
    np.testing.assert_allclose(nerve.matrix_power(T(a), n).numpy(), np.linalg.matrix_power(a, n), rtol=1e-10)
    if n:
        assert nerve.gradcheck(lambda x: LA.matrix_power(x, n), [T(a, True)])


def test_multi_dot_orders_and_vectors():
    ms = [RNG.standard_normal(s) for s in [(3,), (3, 10), (10, 2), (2, 5), (5,)]]
    np.testing.assert_allclose(LA.multi_dot([T(m) for m in ms]).numpy(), np.linalg.multi_dot(ms), rtol=1e-12)
    mats = ms[1:4]
    assert nerve.gradcheck(lambda *x: LA.multi_dot(x), [T(m, True) for m in mats])
    with pytest.raises(RuntimeError, match=r"tensors 0 and 1 of shapes \(3, 10\) and \(2, 5\)"):
        LA.multi_dot([T(ms[1]), T(ms[3])])


@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("left", [True, False])
def test_solve_triangular_matches_scipy(upper, left):
    a = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
    b = RNG.standard_normal((3, 2) if left else (2, 3))
    got = LA.solve_triangular(T(a), T(b), upper=upper, left=left).numpy()
    if left:
        want = scipy.linalg.solve_triangular(a, b, lower=not upper)
    else:
        want = scipy.linalg.solve_triangular(a.T, b.T, lower=upper).T
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_small_compositions():
    x, y = RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3))
    np.testing.assert_allclose(LA.vecdot(T(x), T(y)).numpy(), (x * y).sum(-1))
    np.testing.assert_allclose(LA.cross(T(x), T(y)).numpy(), np.cross(x, y))
    np.testing.assert_allclose(LA.diagonal(T(A)).numpy(), np.diagonal(A, axis1=-2, axis2=-1))
    np.testing.assert_allclose(LA.vander(T(x[0])).numpy(), np.vander(x[0], increasing=True))
    np.testing.assert_allclose(LA.vander(T(x[0]), N=5).numpy(), np.vander(x[0], 5, increasing=True))
    np.testing.assert_allclose(LA.matmul(T(x), T(y.T)).numpy(), x @ y.T)


def test_return_types_and_top_level_aliases():
    a = RNG.standard_normal((4, 3))
    u, s, vh = LA.svd(T(a))
    assert u.shape == (4, 4) and vh.shape == (3, 3)  # full_matrices=True by default, as PyTorch
    assert LA.svd(T(a), full_matrices=False).U.shape == (4, 3)
    old = nerve.svd(T(a))  # torch.svd: reduced by default, V rather than Vh
    np.testing.assert_allclose((old.U * old.S) @ old.V.mT, a, atol=1e-12)
    assert nerve.svd(T(a), some=False).U.shape == (4, 4)
    assert LA.qr(T(a)).Q.shape == (4, 3) and LA.qr(T(a), mode="complete").Q.shape == (4, 4)
    assert LA.qr(T(a), mode="r").Q.shape == (0,)
    np.testing.assert_allclose(np.abs(LA.qr(T(a), mode="r").R.numpy()), np.abs(np.linalg.qr(a, mode="r")))
    assert nerve.qr(T(a), some=False).R.shape == (4, 3)
    spd = a.T @ a + np.eye(3)
    w, v = LA.eigh(T(spd))
    assert LA.eigh(T(spd)).eigenvalues is not None and LA.eigh(T(spd))._fields == ("eigenvalues", "eigenvectors")
    np.testing.assert_allclose((v * w) @ v.mT, spd, atol=1e-12)
    sign, logabs = LA.slogdet(T(-spd))
    assert sign.item() == -1.0 and abs(logabs.item() - np.log(np.linalg.det(spd))) < 1e-12
    assert math.isnan(nerve.logdet(T(-spd)).item())
    np.testing.assert_allclose(nerve.inverse(T(spd)).numpy(), np.linalg.inv(spd), rtol=1e-12)
    np.testing.assert_allclose(nerve.cholesky(T(spd), upper=True).numpy(), np.linalg.cholesky(spd).T, rtol=1e-12)
    np.testing.assert_allclose(nerve.pinverse(T(a)).numpy(), np.linalg.pinv(a), rtol=1e-10)
    np.testing.assert_allclose(T(spd).det().item(), np.linalg.det(spd))
    low, info = LA.cholesky_ex(T(-spd))
    assert info.item() == 1
    inv_, info = LA.inv_ex(T(np.zeros((2, 2))))
    assert info.item() == 1 and np.isnan(inv_.numpy()).all()


def test_errors_name_function_and_shapes():
    with pytest.raises(RuntimeError, match=r"linalg.inv: A must be batches of square matrices, but they are 4 by 3"):
        LA.inv(T(A))
    with pytest.raises(LA.LinAlgError, match=r"linalg.inv: the input of shape \(2, 2\) is singular"):
        LA.inv(T(np.ones((2, 2))))
    bad = np.diag([1.0, -1.0, 2.0])
    with pytest.raises(RuntimeError, match="leading minor of order 2 is not positive-definite"):
        LA.cholesky(T(bad))
    with pytest.raises(LA.LinAlgError, match=r"Batch element 1"):
        LA.cholesky(T(np.stack([np.eye(3), bad])))
    with pytest.raises(RuntimeError, match=r"linalg.solve: incompatible shapes.*\(3, 3\) and \(4,\)"):
        LA.solve(T(np.eye(3)), T(np.ones(4)))
    with pytest.raises(RuntimeError, match="mode='r'"):
        LA.qr(T(A, True), mode="r")
    with pytest.raises(TypeError, match="linalg.det: expected a floating point"):
        LA.det(nerve.tensor([[1, 2], [3, 4]]))
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        LA.svd(T(np.ones(3)))
    with pytest.raises(ValueError, match="UPLO"):
        LA.eigh(T(np.eye(2)), UPLO="X")
    with pytest.raises(RuntimeError, match="not differentiable when mode='complete' and nrows > ncols"):
        LA.qr(T(A[0], True), mode="complete").Q.sum().backward()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_degenerate_eigenvalues_give_nonfinite_gradients_as_pytorch():
    """PyTorch documents that eigenvector gradients are not defined at repeated eigenvalues (they come out inf
    or nan); eigenvalue gradients stay finite."""
    x = T(np.eye(3), True)
    w, v = LA.eigh(x)
    w.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.eye(3), atol=1e-12)
    x.grad = None
    _, v = LA.eigh(x)
    (v * T(RNG.standard_normal((3, 3)))).sum().backward()
    assert not np.isfinite(x.grad.numpy()).all()


def test_svdvals_gradient_is_finite_at_repeated_values():
    x = T(np.eye(3) * 2.0, True)
    LA.svdvals(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.eye(3), atol=1e-12)


def test_float32_inputs_stay_float32():
    a = nerve.tensor(RNG.standard_normal((3, 3)) + 3 * np.eye(3), dtype=nerve.float32)
    for fn in (LA.inv, LA.det, LA.svdvals, LA.pinv, lambda x: LA.eigh(x)[0], lambda x: LA.qr(x)[1]):
        assert fn(a).dtype == nerve.float32


@pytest.mark.parametrize("p", [None, "fro", "nuc", 1, -1, math.inf, -math.inf, 2, -2])
def test_cond_matches_numpy(p):
    a = RNG.standard_normal((2, 3, 3))
    np.testing.assert_allclose(LA.cond(T(a), p).numpy(), np.linalg.cond(a, p), rtol=1e-10)


def test_eig_is_forward_only_and_complex():
    a = RNG.standard_normal((3, 3))
    w, v = LA.eig(T(a))
    assert w.dtype == nerve.complex128 and LA.eig(T(a.astype(np.float32))).eigenvalues.dtype == nerve.complex64
    np.testing.assert_allclose(v.numpy() * w.numpy(), a @ v.numpy(), atol=1e-12)
    np.testing.assert_allclose(np.sort_complex(LA.eigvals(T(a)).numpy()), np.sort_complex(np.linalg.eigvals(a)))
    with pytest.raises(NotImplementedError, match="linalg.eig: the gradient"):
        LA.eig(T(a, True))


def test_det_gradient_at_singular_matrices_is_the_cofactor_matrix():
    """At a singular A the gradient of det is still the cofactor matrix (a loop of minors here, and finite
    differences); nerve takes it from the SVD. PyTorch's also stays finite (torch 2.14 returned zeros for this
    rank-2 matrix, which finite differences contradict)."""
    a = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.5, -1.0, 2.0]])  # rank 2
    cof = np.array([[(-1) ** (i + j) * np.linalg.det(np.delete(np.delete(a, i, 0), j, 1)) for j in range(3)]
                    for i in range(3)])
    x = T(np.stack([a, np.eye(3)]), True)
    LA.det(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[0], cof, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy()[1], np.eye(3), atol=1e-12)
    assert nerve.gradcheck(LA.det, [T(a, True)])
    z = T(np.zeros((3, 3)), True)  # rank 0: every cofactor is 0
    LA.det(z).backward()
    np.testing.assert_allclose(z.grad.numpy(), np.zeros((3, 3)), atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (5, 3), (3, 5)])
def test_lu_factor_and_unpack_match_scipy(shape):
    a = RNG.standard_normal(shape)
    packed, pivots = LA.lu_factor(T(a))
    assert pivots.dtype == nerve.int32
    for idx in np.ndindex(*shape[:-2]):
        lu_, piv = scipy.linalg.lu_factor(a[idx])
        np.testing.assert_allclose(packed.numpy()[idx], lu_, atol=1e-12)
        assert (pivots.numpy()[idx] == piv[:min(shape[-2:])] + 1).all()  # LAPACK's 1-based pivots
    p, low, up = nerve.lu_unpack(packed, pivots)
    np.testing.assert_allclose((p @ low @ up).numpy(), a, atol=1e-12)
    info = LA.lu_factor_ex(T(a)).info
    assert info.shape == shape[:-2] and not info.numpy().any()


@pytest.mark.parametrize("mode", [{}, {"adjoint": True}, {"left": False}])
def test_lu_solve_modes(mode):
    a, b = RNG.standard_normal((2, 3, 3)) + 3 * np.eye(3), RNG.standard_normal((2, 3, 2))
    packed, pivots = LA.lu_factor(T(a))
    if mode.get("left") is False:
        want = np.swapaxes(np.linalg.solve(np.swapaxes(a, -1, -2), b), -1, -2)
        got = LA.lu_solve(packed, pivots, T(np.swapaxes(b, -1, -2)), **mode)
        np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
        return
    want = np.linalg.solve(np.swapaxes(a, -1, -2) if mode else a, b)
    np.testing.assert_allclose(LA.lu_solve(packed, pivots, T(b), **mode).numpy(), want, atol=1e-12)
    x = T(a, True)
    assert nerve.gradcheck(lambda x, b: LA.lu_solve(*LA.lu_factor(x), b, **mode), [x, T(b, True)])


def test_solve_ex_tensorinv_tensorsolve():
    result, info = LA.solve_ex(T(np.eye(2) * 2), T(np.ones(2)))
    assert result.tolist() == [0.5, 0.5] and info.item() == 0
    result, info = LA.solve_ex(T(np.zeros((2, 2))), T(np.ones(2)))
    assert info.item() == 1 and np.isnan(result.numpy()).all()
    with pytest.raises(LA.LinAlgError):
        LA.solve_ex(T(np.zeros((2, 2))), T(np.ones(2)), check_errors=True)
    t = RNG.standard_normal((2, 3, 6))
    np.testing.assert_allclose(LA.tensorinv(T(t)).numpy(), np.linalg.tensorinv(t), atol=1e-12)
    a, b = RNG.standard_normal((2, 3, 6)), RNG.standard_normal((2, 3))
    np.testing.assert_allclose(LA.tensorsolve(T(a), T(b)).numpy(), np.linalg.tensorsolve(a, b), atol=1e-12)
    a4 = RNG.standard_normal((6, 2, 3))
    np.testing.assert_allclose(LA.tensorsolve(T(a4), T(b), dims=(0,)).numpy(),
                               np.linalg.tensorsolve(a4, b, axes=(0,)), atol=1e-12)
    with pytest.raises(RuntimeError, match="tensorinv: the product of the first 2 dims"):
        LA.tensorinv(T(np.ones((2, 3, 4))))


@pytest.mark.parametrize("upper,transpose", [(True, False), (False, False), (True, True), (False, True)])
def test_older_triangular_solve_and_lu(upper, transpose):
    a, b = RNG.standard_normal((3, 3)) + 3 * np.eye(3), RNG.standard_normal((3, 2))
    tri = np.triu(a) if upper else np.tril(a)
    solution, coefficient = nerve.triangular_solve(T(b), T(a), upper=upper, transpose=transpose)
    np.testing.assert_allclose(solution.numpy(), np.linalg.solve(tri.T if transpose else tri, b), atol=1e-12)
    np.testing.assert_allclose(coefficient.numpy(), a)
    packed, pivots, info = nerve.lu(T(a), get_infos=True)
    lu_, piv = scipy.linalg.lu_factor(a)
    np.testing.assert_allclose(packed.numpy(), lu_, atol=1e-12)
    assert pivots.tolist() == (piv + 1).tolist() and info.item() == 0 and len(nerve.lu(T(a))) == 2
