"""``torch.linalg``: norms, decompositions, inverses and solvers, batched over leading dimensions.

The decompositions are primitives in ``nerve.ops`` (their rules follow PyTorch's formulas); the norms, ``lstsq``,
``matrix_rank``, ``matrix_power``, ``multi_dot`` and the rest are compositions of ops, differentiable through them.
"""
from __future__ import annotations

import math
from collections import namedtuple
from typing import Sequence

from nerve import ops
from nerve.autograd.function import ShapeError
from nerve.backend import xp
from nerve.creation import as_tensor
from nerve.ops import (  # noqa: F401  (re-exported under torch.linalg's names)
    LinAlgError, det, linalg_cholesky as cholesky, linalg_eig as eig, linalg_eigh as eigh, linalg_eigvals as eigvals,
    linalg_eigvalsh as eigvalsh, linalg_inv as inv, linalg_lu as lu, linalg_pinv as pinv, linalg_qr as qr,
    linalg_solve as solve, linalg_svd as svd, linalg_svdvals as svdvals, linalg_vander as vander, matmul, matrix_exp,
    matrix_power, slogdet,
)
from nerve.tensor import Tensor

LstsqResult = namedtuple("lstsq", ["solution", "residuals", "rank", "singular_values"])
_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else as_tensor(x)


def _dims(dim, ndim: int, name: str) -> tuple:
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        if not -ndim <= d < max(ndim, 1):
            raise IndexError(f"{name}: dim {d} is out of range for a tensor of {ndim} dimensions")
        out.append(d % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: dim {dim} repeats a dimension")
    return tuple(out)


def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The ``ord``-norm of ``x`` seen as a vector over ``dim`` (all dimensions when None).

    ord: a real number, inf or -inf; 0 counts nonzero entries (no gradient); negative ord gives
    (sum |x|^ord)^(1/ord).
    """
    x = _tensor(x)
    if dtype is not None:
        x = x.to(dtype)
    if x.dtype.kind == "c":
        x = x.abs()
    elif x.dtype.kind not in "f":
        raise TypeError(f"linalg.vector_norm: expected a floating point or complex tensor as input, got {x.dtype}")
    if isinstance(ord, str):
        raise ValueError(f"linalg.vector_norm: ord must be a number, got {ord!r} (use matrix_norm for 'fro', 'nuc')")
    axes = tuple(range(x.ndim)) if dim is None else _dims(dim, x.ndim, "linalg.vector_norm")
    if x.ndim == 0:
        return x.abs()
    if ord == 0:
        return (x != 0).to(x.dtype).sum(dim=axes, keepdim=keepdim)
    if ord == math.inf or ord == -math.inf or ord > 0:
        return ops.norm(x, ord, dim=axes, keepdim=keepdim)
    return (x.abs() ** float(ord)).sum(dim=axes, keepdim=keepdim) ** (1.0 / ord)


def _move_last(a: Tensor, dims: tuple) -> Tensor:
    return ops.movedim(a, dims, (-2, -1))


def _restore(out: Tensor, dims: tuple, keepdim: bool) -> Tensor:
    """A reduction over the two matrix dims, put back as size-1 dims at ``dims`` when ``keepdim``."""
    if not keepdim:
        return out
    for d in sorted(dims):
        out = out.unsqueeze(d)
    return out


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:
    """A matrix norm over the two dims ``dim``: 'fro', 'nuc', inf, -inf, 1, -1, 2, -2."""
    a = _tensor(A)
    if dtype is not None:
        a = a.to(dtype)
    if a.ndim < 2:
        raise ShapeError(f"linalg.matrix_norm: the input tensor A must have at least 2 dimensions, got shape "
                         f"{tuple(a.shape)}")
    dims = _dims(dim, a.ndim, "linalg.matrix_norm")
    if len(dims) != 2:
        raise ValueError(f"linalg.matrix_norm: dim must be a 2-tuple, got {dim}")
    if ord == "fro":
        return vector_norm(a, 2, dims, keepdim)
    if ord in ("nuc", 2, -2):
        s = svdvals(_move_last(a, dims))
        out = s.sum(-1) if ord == "nuc" else s.amax(-1) if ord == 2 else s.amin(-1)
        return _restore(out, dims, keepdim)
    if ord in (1, -1, math.inf, -math.inf):
        summed, other = (dims[0], dims[1]) if ord in (1, -1) else (dims[1], dims[0])
        col = a.abs().sum(dim=summed, keepdim=True)
        out = col.amax(dim=other, keepdim=True) if ord > 0 else col.amin(dim=other, keepdim=True)
        return out if keepdim else out.squeeze(max(dims)).squeeze(min(dims))
    raise ValueError(f"linalg.matrix_norm: order {ord!r} not supported (use 'fro', 'nuc', inf, -inf, 1, -1, 2, -2)")


def norm(A, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """A vector norm (one dim, or 1-D input with ord) or a matrix norm (two dims, or 2-D input with ord).

    With neither ord nor dim, the 2-norm of the flattened input.
    """
    a = _tensor(A)
    if dim is not None:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        if len(dims) == 1:
            return vector_norm(a, 2 if ord is None else ord, dims, keepdim, dtype=dtype)
        if len(dims) == 2:
            return matrix_norm(a, "fro" if ord is None else ord, dims, keepdim, dtype=dtype)
        raise ValueError(f"linalg.norm: dim must be an int or a 2-tuple, got {dim}")
    if ord is None:
        return vector_norm(a, 2, None, keepdim, dtype=dtype)
    if a.ndim == 1:
        return vector_norm(a, ord, None, keepdim, dtype=dtype)
    if a.ndim == 2:
        return matrix_norm(a, ord, (-2, -1), keepdim, dtype=dtype)
    raise ShapeError(f"linalg.norm: with ord={ord!r} and dim=None the input must be 1-D or 2-D, got shape "
                     f"{tuple(a.shape)}")


def cond(A, p=None) -> Tensor:
    """The condition number: s_max / s_min for p None or 2 (s_min / s_max for -2), else
    matrix_norm(A, p) * matrix_norm(inv(A), p)."""
    a = _tensor(A)
    if p in (None, 2, -2):
        s = svdvals(a)
        return s[..., 0] / s[..., -1] if p != -2 else s[..., -1] / s[..., 0]
    return matrix_norm(a, p) * matrix_norm(inv(a), p)


def matrix_rank(A, *, atol=None, rtol=None, hermitian: bool = False, tol=None) -> Tensor:
    """The number of singular values above max(atol, rtol * largest) (int64, no gradient)."""
    a = _tensor(A)
    if a.ndim < 2:
        raise ShapeError(f"linalg.matrix_rank: the input tensor A must have at least 2 dimensions, got shape "
                         f"{tuple(a.shape)}")
    if tol is not None:
        atol, rtol = tol, 0.0
    atol_v = 0.0 if atol is None else float(atol)
    if rtol is None:
        rtol = xp.finfo(a.dtype).eps * max(a.shape[-2:]) if not atol_v else 0.0
    data = a.data if a.dtype.kind in "fc" else a.data.astype(xp.float64)
    s = xp.abs(xp.linalg.eigvalsh(data)) if hermitian else xp.linalg.svd(data, compute_uv=False)
    top = s.max(axis=-1, keepdims=True) if s.shape[-1] else xp.zeros(s.shape[:-1] + (1,), dtype=s.dtype)
    return Tensor._make((s > xp.maximum(atol_v, rtol * top)).sum(axis=-1).astype(xp.int64), None)


def lstsq(A, B, rcond=None, *, driver=None) -> LstsqResult:
    """The least-squares solution X of A X = B, with PyTorch's (solution, residuals, rank, singular_values).

    The solution is pinv(A) B (differentiable). As PyTorch on the CPU (default driver 'gelsy'): residuals when
    rows > cols and A has full rank, else empty; rank for every driver but 'gels'; singular values for 'gelsd' and
    'gelss' only.
    """
    a, b = _tensor(A), _tensor(B)
    driver = "gelsy" if driver is None else driver
    if driver not in _DRIVERS:
        raise ValueError(f"linalg.lstsq: driver must be one of {_DRIVERS}, got {driver!r}")
    if a.ndim < 2:
        raise ShapeError(f"linalg.lstsq: A must have at least 2 dimensions, got shape {tuple(a.shape)}")
    vector = b.ndim == a.ndim - 1
    rhs = b.unsqueeze(-1) if vector else b
    if rhs.ndim < 2 or rhs.shape[-2] != a.shape[-2]:
        raise ShapeError(f"linalg.lstsq: A of shape {tuple(a.shape)} and B of shape {tuple(b.shape)} do not fit "
                         f"(A.shape[-2] must equal B.shape[-2])")
    rows, cols = a.shape[-2:]
    rtol = xp.finfo(a.dtype).eps * max(rows, cols) if rcond is None or rcond < 0 else float(rcond)
    x = pinv(a, rtol=rtol) @ rhs
    rank = matrix_rank(a, rtol=rtol)
    empty = Tensor._make(xp.zeros((0,), dtype=a.dtype), None)
    residuals = empty
    if rows > cols and driver != "gelsy" and bool((rank.data == cols).all()):
        residuals = ((a @ x - rhs) ** 2).sum(-2)
        residuals = residuals.squeeze(-1) if vector else residuals
    return LstsqResult(x.squeeze(-1) if vector else x, residuals,
                       empty.to(xp.int64) if driver == "gels" else rank,
                       svdvals(a) if driver in ("gelsd", "gelss") else empty)


def multi_dot(tensors: Sequence) -> Tensor:
    """The product of a chain of matrices in the cheapest order; the first may be 1-D (a row), the last 1-D."""
    ts = [_tensor(t) for t in tensors]
    if len(ts) < 2:
        raise ValueError(f"linalg.multi_dot: expected at least 2 tensors, got {len(ts)}")
    first, last = ts[0].ndim == 1, ts[-1].ndim == 1
    mats = [ts[0].unsqueeze(0) if first else ts[0]] + ts[1:-1] + [ts[-1].unsqueeze(-1) if last else ts[-1]]
    for i, t in enumerate(mats):
        if t.ndim != 2:
            raise ShapeError(f"linalg.multi_dot: tensor {i} must be 2-D (the first and last may be 1-D), got shape "
                             f"{tuple(ts[i].shape)}")
    for i in range(len(mats) - 1):
        if mats[i].shape[1] != mats[i + 1].shape[0]:
            raise ShapeError(f"linalg.multi_dot: tensors {i} and {i + 1} of shapes {tuple(ts[i].shape)} and "
                             f"{tuple(ts[i + 1].shape)} cannot be multiplied")
    dims = [mats[0].shape[0]] + [t.shape[1] for t in mats]
    k = len(mats)
    cost = [[0] * k for _ in range(k)]
    split = [[0] * k for _ in range(k)]
    for length in range(1, k):  # the textbook matrix-chain order
        for i in range(k - length):
            j = i + length
            cost[i][j], split[i][j] = min((cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1], s)
                                          for s in range(i, j))

    def product(i, j):
        return mats[i] if i == j else product(i, split[i][j]) @ product(split[i][j] + 1, j)

    out = product(0, k - 1)
    if first:
        out = out.squeeze(0)
    return out.squeeze(-1) if last else out


def cross(input, other, *, dim: int = -1) -> Tensor:
    """Cross product of 3-vectors along ``dim`` (default the last, unlike the older ``torch.cross``)."""
    return ops.cross(input, other, dim=dim)


def vecdot(x, y, *, dim: int = -1) -> Tensor:
    """The dot product along ``dim`` (x conjugated when complex), broadcasting the rest."""
    x, y = _tensor(x), _tensor(y)
    if x.dtype.kind == "c":
        x = ops.conj(x)
    return (x * y).sum(dim)


def diagonal(A, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """The ``offset`` diagonal of the matrices in the last two dims (``torch.linalg.diagonal``)."""
    return ops.diagonal(_tensor(A), offset, dim1, dim2)


def solve_triangular(A, B, *, upper: bool, left: bool = True, unitriangular: bool = False) -> Tensor:
    """X with A X = B (or X A = B) reading only A's upper or lower triangle (its diagonal taken as 1 with
    ``unitriangular``)."""
    a = _tensor(A)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"linalg.solve_triangular: A must be batches of square matrices, got shape "
                         f"{tuple(a.shape)}")
    n = a.shape[-1]
    tri = ops.triu(a) if upper else ops.tril(a)
    if unitriangular:
        eye = Tensor._make(xp.eye(n, dtype=a.dtype, like=a.data), None)
        tri = tri * (1 - eye) + eye
    return solve(tri, B, left=left)


LUFactorResult = namedtuple("lu_factor", ["LU", "pivots"])
LUFactorExResult = namedtuple("lu_factor_ex", ["LU", "pivots", "info"])
LUUnpackResult = namedtuple("lu_unpack", ["P", "L", "U"])
SolveExResult = namedtuple("solve_ex", ["result", "info"])


def _pivots(perm):
    """LAPACK's 1-based row interchanges from permutation matrices P (A = P L U), per matrix."""
    rows = perm.shape[-1]
    flat = perm.reshape((-1, rows, rows))
    out = xp.zeros((flat.shape[0], rows), dtype=xp.int32)
    for b, p in enumerate(flat):
        order = xp.argmax(p, axis=0).tolist()  # the row of A at each position of P^T A
        current = list(range(rows))
        for i in range(rows):
            j = current.index(order[i])
            out[b, i] = j + 1
            current[i], current[j] = current[j], current[i]
    return out.reshape(perm.shape[:-2] + (rows,))


def lu_factor(A, *, pivot: bool = True) -> LUFactorResult:
    """(LU, pivots): L below the diagonal (its unit diagonal implied) and U on and above it, with LAPACK's 1-based
    pivots; differentiable in LU for square matrices."""
    P, L, U = lu(A, pivot=pivot)
    rows, cols = L.shape[-2], U.shape[-1]
    k = min(rows, cols)
    low = ops.pad(L, (0, cols - k)) if cols > k else L
    up = ops.pad(U, (0, 0, 0, rows - k)) if rows > k else U
    packed = ops.tril(low, -1) + ops.triu(up)
    return LUFactorResult(packed, Tensor._make(_pivots(P.data)[..., :k], None))


def lu_factor_ex(A, *, pivot: bool = True, check_errors: bool = False) -> LUFactorExResult:
    """``lu_factor`` with an info tensor (0: U has no zero on its diagonal, else the first such index, 1-based)."""
    packed, pivots = lu_factor(A, pivot=pivot)
    diag = xp.diagonal(packed.data, axis1=-2, axis2=-1)
    zero = diag == 0
    info = xp.where(zero.any(axis=-1), zero.argmax(axis=-1) + 1, 0).astype(xp.int32)
    if check_errors and bool(info.any()):
        raise LinAlgError(f"linalg.lu_factor_ex: U({int(info.max())},{int(info.max())}) is zero, singular U")
    return LUFactorExResult(packed, pivots, Tensor._make(info, None))


def lu_unpack(LU_data, LU_pivots, unpack_data: bool = True, unpack_pivots: bool = True) -> LUUnpackResult:
    """(P, L, U) from ``lu_factor``'s packed LU and 1-based pivots (L and U differentiable in LU_data)."""
    packed, piv = _tensor(LU_data), _tensor(LU_pivots)
    rows, cols = packed.shape[-2:]
    k = min(rows, cols)
    empty = Tensor._make(xp.zeros((0,), dtype=packed.dtype), None)
    low = up = perm = empty
    if unpack_data:
        eye = Tensor._make(xp.eye(rows, k, dtype=packed.dtype, like=packed.data), None)
        low = ops.tril(packed[..., :, :k], -1) + eye
        up = ops.triu(packed[..., :k, :])
    if unpack_pivots:
        swaps = piv.data.reshape((-1, piv.shape[-1])).astype(xp.int64) - 1
        mats = xp.zeros((swaps.shape[0], rows, rows), dtype=packed.dtype)
        for b, row in enumerate(swaps):
            order = list(range(rows))
            for i, j in enumerate(row.tolist()):
                order[i], order[j] = order[j], order[i]
            mats[b, order, list(range(rows))] = 1  # P^T A takes row order[i] of A to position i
        perm = Tensor._make(mats.reshape(tuple(piv.shape[:-1]) + (rows, rows)), None)
    return LUUnpackResult(perm, low, up)


def lu_solve(LU, pivots, B, *, left: bool = True, adjoint: bool = False) -> Tensor:
    """X with A X = B (A^T X = B with ``adjoint``; X A = B without ``left``) for A = P L U from ``lu_factor``."""
    perm, low, up = lu_unpack(LU, pivots)
    b = _tensor(B)
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return lu_solve(LU, pivots, b.mT, adjoint=not adjoint).mT
    if adjoint:  # A^T = U^T L^T P^T
        y = solve_triangular(low.mT, solve_triangular(up.mT, b, upper=False), upper=True, unitriangular=True)
        return perm @ y
    y = solve_triangular(low, perm.mT @ b, upper=False, unitriangular=True)
    return solve_triangular(up, y, upper=True)


TriangularSolveResult = namedtuple("triangular_solve", ["solution", "cloned_coefficient"])


def triangular_solve(b, A, upper: bool = True, transpose: bool = False,
                     unitriangular: bool = False) -> TriangularSolveResult:
    """``torch.triangular_solve`` (the older spelling): X with A X = b (A^T X = b with ``transpose``), and A."""
    a = _tensor(A)
    coef = a.mT if transpose else a
    solution = solve_triangular(coef, b, upper=upper != transpose, unitriangular=unitriangular)
    return TriangularSolveResult(solution, a.clone())


def lu_top(A, pivot: bool = True, get_infos: bool = False) -> tuple:
    """``torch.lu`` (the older spelling of ``lu_factor``): (LU, pivots) and, with ``get_infos``, the info tensor."""
    packed, pivots, info = lu_factor_ex(A, pivot=pivot)
    return (packed, pivots, info) if get_infos else (packed, pivots)


def solve_ex(A, B, *, left: bool = True, check_errors: bool = False) -> SolveExResult:
    """(result, info): ``solve``, with info 1 (and NaN results) where A is singular, unless ``check_errors``."""
    a = _tensor(A)
    try:
        return SolveExResult(solve(a, B, left=left), Tensor._make(xp.zeros(a.shape[:-2], dtype=xp.int32), None))
    except LinAlgError:
        if check_errors:
            raise
        shape = xp.broadcast_shapes(a.shape[:-1], _tensor(B).shape[:-1]) + (_tensor(B).shape[-1],)
        return SolveExResult(Tensor._make(xp.full(shape, xp.nan, dtype=a.dtype), None),
                             Tensor._make(xp.ones(a.shape[:-2], dtype=xp.int32), None))


def tensorinv(A, ind: int = 2) -> Tensor:
    """The inverse of A seen as a linear map from its last dims to its first ``ind`` dims."""
    a = _tensor(A)
    rows, cols = math.prod(a.shape[:ind]), math.prod(a.shape[ind:])
    if rows != cols:
        raise ShapeError(f"linalg.tensorinv: the product of the first {ind} dims ({rows}) must equal that of the "
                         f"rest ({cols}), shape {tuple(a.shape)}")
    return inv(a.reshape(rows, cols)).reshape(tuple(a.shape[ind:]) + tuple(a.shape[:ind]))


def tensorsolve(A, B, dims=None) -> Tensor:
    """X with tensordot(A, X, X.ndim) = B; ``dims`` of A move to the end first."""
    a, b = _tensor(A), _tensor(B)
    if dims is not None:
        a = ops.movedim(a, tuple(dims), tuple(range(a.ndim - len(dims), a.ndim)))
    rest = tuple(a.shape[b.ndim:])
    if math.prod(a.shape[:b.ndim]) != math.prod(rest) or tuple(a.shape[:b.ndim]) != tuple(b.shape):
        raise ShapeError(f"linalg.tensorsolve: A of shape {tuple(a.shape)} does not fit B of shape {tuple(b.shape)}")
    return solve(a.reshape(b.numel(), -1), b.reshape(-1)).reshape(rest)


inv_ex_result = namedtuple("inv_ex", ["inverse", "info"])
cholesky_ex_result = namedtuple("cholesky_ex", ["L", "info"])


def inv_ex(A, *, check_errors: bool = False):
    """(inverse, info): info 0 where A is invertible; raises only with ``check_errors``."""
    try:
        return inv_ex_result(inv(A), Tensor._make(xp.zeros(_tensor(A).shape[:-2], dtype=xp.int32), None))
    except LinAlgError:
        if check_errors:
            raise
        a = _tensor(A)
        return inv_ex_result(Tensor._make(xp.full(a.shape, xp.nan, dtype=a.dtype), None),
                             Tensor._make(xp.ones(a.shape[:-2], dtype=xp.int32), None))


def cholesky_ex(A, *, upper: bool = False, check_errors: bool = False):
    """(L, info): info 0 where A is positive-definite, else the order of the failing minor (per matrix)."""
    a = _tensor(A)
    try:
        return cholesky_ex_result(cholesky(a, upper=upper),
                                  Tensor._make(xp.zeros(a.shape[:-2], dtype=xp.int32), None))
    except LinAlgError:
        if check_errors:
            raise
    flat = a.data.reshape((-1,) + a.shape[-2:])
    info = xp.zeros(flat.shape[0], dtype=xp.int32)
    for b, mat in enumerate(flat):
        for k in range(1, mat.shape[-1] + 1):
            if not bool(xp.all(xp.linalg.eigvalsh(mat[:k, :k]) > 0)):
                info[b] = k
                break
    return cholesky_ex_result(Tensor._make(xp.zeros(a.shape, dtype=a.dtype), None),
                              Tensor._make(info.reshape(a.shape[:-2]), None))


__all__ = ["LinAlgError", "cholesky", "cholesky_ex", "cond", "cross", "det", "diagonal", "eig", "eigh", "eigvals",
           "eigvalsh", "inv", "inv_ex", "lstsq", "lu", "lu_factor", "lu_factor_ex", "lu_solve", "matmul", "matrix_exp",
           "matrix_norm", "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet", "solve",
           "solve_ex", "solve_triangular", "tensorinv", "tensorsolve", "svd", "svdvals", "vander", "vecdot",
           "vector_norm"]
