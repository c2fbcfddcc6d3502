"""Decompositions and inverses (nerve/ops/decomp.py): forward against NumPy, gradcheck and gradgradcheck in float64,
both rule paths, no rule reading past its namespace. Eigen- and singular vectors are compared through products that
do not depend on their signs."""
import numpy as np
import scipy.linalg

import nerve
from tests.ops.table import Case, table_tests

LA = np.linalg


def _well(shape):
    """Matrices with a safe condition number: random plus a multiple of the identity."""
    def make(rng):
        return [rng.standard_normal(shape) + 3 * np.eye(shape[-1])]
    return make


def _spd_n(x):
    return x @ np.swapaxes(x, -1, -2) + 3 * np.eye(x.shape[-1])


def _spd(x):
    return x @ x.mT + nerve.tensor(3 * np.eye(x.shape[-1]))


def _sym(x):
    return 0.5 * (x + x.mT)


def _sym_n(x):
    return 0.5 * (x + np.swapaxes(x, -1, -2))


def _svd_n(a):
    u, s, vh = LA.svd(a, full_matrices=False)
    return s, u * np.swapaxes(vh, -1, -2)[..., :1, :], u @ (s[..., None] ** 2 * vh)


def _svd(a):
    u, s, vh = nerve.linalg_svd(a, full_matrices=False)
    return s, u * vh.mT[..., :1, :], u @ (s[..., None] ** 2 * vh)


def _eigh_n(a):
    w, v = LA.eigh(_sym_n(a))
    return w, v * v[..., :1, :]


def _eigh(a):
    w, v = nerve.linalg_eigh(_sym(a))
    return w, v * v[..., :1, :]


def _cases():
    for shape in [(3, 3), (2, 3, 3)]:
        yield Case("inv", nerve.linalg_inv, LA.inv, [shape], make=_well(shape), second=True)
        yield Case("det", nerve.det, LA.det, [shape], make=_well(shape), second=True)
        yield Case("slogdet", lambda a: nerve.slogdet(a).logabsdet, lambda a: LA.slogdet(a)[1], [shape],
                   make=_well(shape), second=True)
        yield Case("cholesky", lambda x: nerve.linalg_cholesky(_spd(x)), lambda x: LA.cholesky(_spd_n(x)), [shape],
                   second=True)
        yield Case("cholesky_upper", lambda x: nerve.linalg_cholesky(_spd(x), upper=True),
                   lambda x: np.swapaxes(LA.cholesky(_spd_n(x)), -1, -2), [shape])
        yield Case("eigh", _eigh, _eigh_n, [shape], second=True)
        yield Case("eigvalsh", lambda a: nerve.linalg_eigvalsh(_sym(a)), lambda a: LA.eigvalsh(_sym_n(a)), [shape],
                   second=True)
        yield Case("eigvalsh_U", lambda a: nerve.linalg_eigvalsh(a, UPLO="U"),
                   lambda a: LA.eigvalsh(a, UPLO="U"), [shape], check_grad=False)
    yield Case("logdet", lambda x: nerve.logdet(_spd(x)), lambda x: np.log(LA.det(_spd_n(x))), [(3, 3)],
               second=True)
    yield Case("solve", nerve.linalg_solve, LA.solve, [(2, 3, 3), (2, 3, 2)], make=lambda rng: [
        rng.standard_normal((2, 3, 3)) + 3 * np.eye(3), rng.standard_normal((2, 3, 2))], second=True)
    yield Case("solve_vector", nerve.linalg_solve, LA.solve, [(3, 3), (3,)], make=lambda rng: [
        rng.standard_normal((3, 3)) + 3 * np.eye(3), rng.standard_normal(3)], second=True)
    yield Case("solve_broadcast", nerve.linalg_solve, LA.solve, [(3, 3), (2, 3, 2)], make=lambda rng: [
        rng.standard_normal((3, 3)) + 3 * np.eye(3), rng.standard_normal((2, 3, 2))])
    yield Case("solve_right", lambda a, b: nerve.linalg_solve(a, b, left=False),
               lambda a, b: np.swapaxes(LA.solve(np.swapaxes(a, -1, -2), np.swapaxes(b, -1, -2)), -1, -2),
               [(3, 3), (2, 3)], make=lambda rng: [rng.standard_normal((3, 3)) + 3 * np.eye(3),
                                                   rng.standard_normal((2, 3))])
    for shape in [(4, 3), (3, 3), (2, 4, 3), (2, 4)]:
        yield Case("qr", lambda a: tuple(nerve.linalg_qr(a)), lambda a: tuple(LA.qr(a)), [shape],
                   second=shape == (4, 3))
    yield Case("qr_complete_square", lambda a: tuple(nerve.linalg_qr(a, mode="complete")),
               lambda a: tuple(LA.qr(a, mode="complete")), [(3, 3)])
    yield Case("qr_complete_wide", lambda a: tuple(nerve.linalg_qr(a, mode="complete")),
               lambda a: tuple(LA.qr(a, mode="complete")), [(2, 3)])
    for shape in [(4, 3), (3, 4), (3, 3), (2, 4, 3)]:
        yield Case("svd", _svd, _svd_n, [shape], second=shape == (3, 3))
        yield Case("svdvals", nerve.linalg_svdvals, lambda a: LA.svd(a, compute_uv=False), [shape], second=True)
        yield Case("pinv", nerve.linalg_pinv, LA.pinv, [shape], second=shape == (4, 3))
    yield Case("svd_full_first_k", lambda a: nerve.linalg_svd(a)[0][:, :3] * nerve.linalg_svd(a)[2][:, :1].mT,
               lambda a: LA.svd(a)[0][:, :3] * LA.svd(a)[2][:, :1].T, [(5, 3)])
    yield Case("lu", lambda a: tuple(nerve.linalg_lu(a)[1:]), lambda a: tuple(scipy.linalg.lu(a)[1:]), [(3, 3)],
               second=True)
    yield Case("lu_batched", lambda a: tuple(nerve.linalg_lu(a)), lambda a: tuple(scipy.linalg.lu(a)), [(2, 4, 4)])
    yield Case("lu_wide_forward", lambda a: tuple(nerve.linalg_lu(a)), lambda a: tuple(scipy.linalg.lu(a)), [(3, 5)],
               check_grad=False)
    yield Case("matrix_exp", nerve.matrix_exp, scipy.linalg.expm, [(3, 3)], second=True)
    yield Case("matrix_exp_batched", nerve.matrix_exp, scipy.linalg.expm, [(2, 3, 3)])
    yield Case("pinv_hermitian", lambda x: nerve.linalg_pinv(_spd(x), hermitian=True),
               lambda x: LA.pinv(_spd_n(x)), [(3, 3)])


CASES = list(_cases())
test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree, \
    test_rule_reads_only_its_namespace = table_tests(CASES)
