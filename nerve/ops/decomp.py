"""Matrix decompositions and inverses with their derivative rules: inv, solve, det, slogdet, cholesky, qr, eigh,
eigvalsh, svd, svdvals, pinv (``torch.linalg``'s primitives; ``nerve.linalg`` composes the rest from these).

Batched over leading dimensions. A primitive with several outputs (qr, eigh, svd) returns them packed along one
last axis; the public function slices them apart, so each output's gradient reaches the one rule, which is written
with ``m`` (PyTorch's formulas, after Giles 2008) and so differentiates again. Gradients are for real inputs;
complex inputs run forward only. NumPy's ``linalg`` serves both NumPy and CuPy.
"""
from __future__ import annotations

from collections import namedtuple

from nerve.autograd.function import Function, ShapeError
from nerve.backend import xp
from nerve.ops.shape import _as_tensor
from nerve.tensor import Tensor


class LinAlgError(RuntimeError):
    """A singular or non-positive-definite matrix (PyTorch's ``torch.linalg.LinAlgError``, a RuntimeError)."""


SlogdetResult = namedtuple("slogdet", ["sign", "logabsdet"])
QRResult = namedtuple("qr", ["Q", "R"])
EighResult = namedtuple("eigh", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("svd", ["U", "S", "Vh"])


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _eye(n: int, like, k: int = 0, lower: bool = False):
    """The identity (or, with ``lower``, the lower triangle below diagonal ``k``) on ``like``'s device and dtype."""
    like = _raw(like)
    return xp.tri(n, k=k, dtype=like.dtype, like=like) if lower else xp.eye(n, dtype=like.dtype, like=like)


def _diag_embed(m, v):
    """Diagonal matrices from the last axis of ``v`` (works on arrays and Tensors)."""
    return v[..., None, :] * m.const(_eye(v.shape[-1], v))


def _invert(a, name: str):
    try:
        return xp.linalg.inv(a)
    except xp.linalg.LinAlgError:
        raise LinAlgError(f"{name}: the input of shape {tuple(a.shape)} is singular, the inversion could not be "
                          "completed") from None


class Inv(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return _invert(a, "linalg.inv")

    def backward(self, g, m):  # d(A^-1) = -A^-1 dA A^-1: gA = -Y^T g Y^T
        y = m.output(self)
        return -(y.mT @ g @ y.mT)


class Det(Function):
    saves_output = True

    def forward(self, a):
        return xp.linalg.det(a)

    def backward(self, g, m):  # d det A = tr(adj(A) dA): gA = g adj(A)^T = g det(A) A^-T
        (a,) = m.inputs(self)
        if not m.tensors:  # first order: a singular A takes the cofactors from its SVD, as PyTorch
            try:
                inv = xp.linalg.inv(a)
            except xp.linalg.LinAlgError:
                return g[..., None, None] * _cofactors(a)
            return (g * m.output(self))[..., None, None] * inv.mT
        return (g * m.output(self))[..., None, None] * m.apply(Inv, a).mT


def _cofactors(a):
    """The cofactor matrix adj(A)^T = det(U) det(Vh) U diag(prod_{j != i} s_j) Vh, finite for singular A."""
    u, s, vh = xp.linalg.svd(a)
    ones = xp.ones_like(s[..., :1])
    before = xp.cumprod(xp.concatenate([ones, s[..., :-1]], axis=-1), axis=-1)
    after = xp.flip(xp.cumprod(xp.concatenate([ones, xp.flip(s[..., 1:], axis=-1)], axis=-1), axis=-1), axis=-1)
    sign = xp.linalg.det(u) * xp.linalg.det(vh)
    return sign[..., None, None] * ((u * (before * after)[..., None, :]) @ vh)


class LogAbsDet(Function):
    def forward(self, a):
        return xp.linalg.slogdet(a)[1]

    def backward(self, g, m):  # d log|det A| = tr(A^-1 dA): gA = g A^-T
        (a,) = m.inputs(self)
        return g[..., None, None] * m.apply(Inv, a).mT


class Solve(Function):
    """X = A^-1 B for B of shape (..., n, k); batch dimensions broadcast."""

    saves_output = True

    def forward(self, a, b):
        try:
            return xp.linalg.solve(a, b)
        except xp.linalg.LinAlgError:
            raise LinAlgError(f"linalg.solve: the matrix A of shape {tuple(a.shape)} is singular, the solve could "
                              "not be completed") from None

    def backward(self, g, m):  # A X = B: gB = A^-T g, gA = -gB X^T (summed over broadcast batch dims)
        a, b = m.inputs(self)
        gb = m.apply(Solve, a.mT, g)
        ga = m.sum_to(-(gb @ m.output(self).mT), a.shape) if self.needs_input_grad[0] else None
        return ga, (m.sum_to(gb, b.shape) if self.needs_input_grad[1] else None)


class Cholesky(Function):
    """The lower factor L of A = L L^T (A's lower triangle is read)."""

    uses_inputs = False
    saves_output = True

    def forward(self, a):
        try:
            return xp.linalg.cholesky(a)
        except xp.linalg.LinAlgError:
            raise LinAlgError(_not_positive_definite(a)) from None

    def backward(self, g, m):  # PyTorch's rule: gA = L^-T Phi(tril(L^T gL)) L^-1, Phi halving the diagonal's share
        low = m.output(self)
        n = low.shape[-1]
        t = (low.mT @ g) * m.const(_eye(n, g, 0, lower=True))
        t = 0.5 * (t + (t * m.const(_eye(n, g, -1, lower=True))).mT)
        inv = m.apply(Inv, low)
        return inv.mT @ t @ inv


def _not_positive_definite(a) -> str:
    """PyTorch's message: the order of the first leading minor that is not positive-definite."""
    flat = a.reshape((-1,) + a.shape[-2:])
    for b, mat in enumerate(flat):
        for k in range(1, mat.shape[-1] + 1):
            try:
                xp.linalg.cholesky(mat[:k, :k])
            except xp.linalg.LinAlgError:
                where = f"(Batch element {b}): " if a.ndim > 2 else ""
                return (f"linalg.cholesky: {where}The factorization could not be completed because the input of "
                        f"shape {tuple(a.shape)} is not positive-definite (the leading minor of order {k} is not "
                        "positive-definite).")
    return f"linalg.cholesky: the input of shape {tuple(a.shape)} is not positive-definite"


def _any(g) -> bool:
    """Whether a gradient has a nonzero entry (an unused output's gradient arrives as zeros)."""
    return bool(xp.any((g.data if isinstance(g, Tensor) else g) != 0))


def _unpack(out, shapes):
    """Slices of the packed last axis, reshaped: works on arrays and Tensors."""
    batch, parts, at = out.shape[:-1], [], 0
    for shape in shapes:
        size = 1
        for d in shape:
            size *= d
        parts.append(out[..., at:at + size].reshape(batch + tuple(shape)))
        at += size
    return parts


def _pack(*parts):
    batch = parts[0].shape[:-2] if parts[0].ndim >= 2 else parts[0].shape[:-1]
    return xp.concatenate([p.reshape(batch + (-1,)) for p in parts], axis=-1)


def _tri_solve_right(m, b, r):
    """b R^-T for an invertible triangular R."""
    return b @ m.apply(Inv, r).mT


class QR(Function):
    """Q and R packed; ``complete`` gives the square Q."""

    uses_inputs = False
    saves_output = True

    def forward(self, a, complete):
        self.complete = complete
        rows, cols = a.shape[-2:]
        q, r = xp.linalg.qr(a, mode="complete" if complete else "reduced")
        self.shapes = [q.shape[-2:], r.shape[-2:]]
        self.rows, self.cols = rows, cols
        return _pack(q, r)

    def backward(self, g, m):  # PyTorch's rule: gA = [gQ + Q copyltu(gR R^T - Q^T gQ)] R^-T, wide A split in [X Y]
        q, r = _unpack(m.output(self), self.shapes)
        gq, gr = _unpack(g, self.shapes)
        if self.complete and self.rows > self.cols:
            raise RuntimeError(f"linalg.qr: the QR decomposition is not differentiable when mode='complete' and "
                               f"nrows > ncols (input of {self.rows} by {self.cols} matrices)")
        k = self.rows
        if self.cols <= k:
            return _qr_square_rule(m, q, r, gq, gr), None
        y, gr1, gy = r[..., :, k:], gr[..., :, :k], gr[..., :, k:]  # A = Q [R1 | R2], R2 = Q^T Y
        ay = q @ y
        gx = _qr_square_rule(m, q, r[..., :, :k], gq + ay @ gy.mT, gr1)
        return m.apply(_Concat, gx, q @ gy), None


def _qr_square_rule(m, q, r, gq, gr):
    n = r.shape[-1]
    mm = gr @ r.mT - q.mT @ gq
    up = mm * m.const(_eye(n, mm, 0, lower=True).T)
    sym = up + up.mT - up * m.const(_eye(n, mm))
    return _tri_solve_right(m, gq + q @ sym, r)


class _Concat(Function):
    """Two blocks side by side along the last axis (the wide QR rule's gradient)."""

    uses_inputs = False

    def forward(self, a, b):
        self.k = a.shape[-1]
        return xp.concatenate([a, b], axis=-1)

    def backward(self, g, m):  # the blocks' gradients are the matching slices
        return g[..., :self.k], g[..., self.k:]


class Eigh(Function):
    """Eigenvalues (ascending) and eigenvectors of symmetric matrices, packed."""

    uses_inputs = False
    saves_output = True

    def forward(self, a, upper):
        w, v = xp.linalg.eigh(a, UPLO="U" if upper else "L")
        self.n = w.shape[-1]
        return _pack(w[..., None, :], v)

    def backward(self, g, m):  # gA = V (skew(V^T gV) / E + diag(gL)) V^T, E_ij = l_j - l_i (PyTorch's rule)
        n = self.n
        w, v = _unpack(m.output(self), [(n,), (n, n)])
        gw, gv = _unpack(g, [(n,), (n, n)])
        inner = _diag_embed(m, gw)
        if _any(gv):  # as PyTorch, an unused V adds nothing (no 0/0 at repeated eigenvalues)
            vg = v.mT @ gv
            e = w[..., None, :] - w[..., :, None] + m.const(_eye(n, g))
            inner = inner + 0.5 * (vg - vg.mT) / e
        return v @ inner @ v.mT, None


class EigvalsH(Function):
    def forward(self, a, upper):
        self.upper = upper
        return xp.linalg.eigvalsh(a, UPLO="U" if upper else "L")

    def backward(self, g, m):  # d l_i = v_i^T dA v_i: gA = V diag(gL) V^T
        a = m.inputs(self)[0]
        n = a.shape[-1]
        _, v = _unpack(m.apply(Eigh, a, self.upper), [(n,), (n, n)])
        return (v * g[..., None, :]) @ v.mT, None


class SVD(Function):
    """U, S, Vh packed (reduced, or full with ``full_matrices``)."""

    uses_inputs = False
    saves_output = True

    def forward(self, a, full_matrices):
        u, s, vh = xp.linalg.svd(a, full_matrices=full_matrices)
        self.shapes = [u.shape[-2:], s.shape[-1:], vh.shape[-2:]]
        return _pack(u, s[..., None, :], vh)

    def backward(self, g, m):  # PyTorch's svd_backward (E_jk = s_k^2 - s_j^2); full matrices: the first k vectors
        u, s, vh = _unpack(m.output(self), self.shapes)
        gu, gs, gvh = _unpack(g, self.shapes)
        rows, cols = u.shape[-2], vh.shape[-1]
        k = s.shape[-1]
        u, gu, vh, gvh = u[..., :, :k], gu[..., :, :k], vh[..., :k, :], gvh[..., :k, :]
        eye = m.const(_eye(k, g))
        s2 = s * s
        e = s2[..., None, :] - s2[..., :, None] + eye
        ga = _diag_embed(m, gs)
        if _any(gu) or _any(gvh):  # as PyTorch, unused U and Vh add nothing (no 0/0 at repeated values)
            ug, vg = u.mT @ gu, vh @ gvh.mT
            ga = ga + ((ug - ug.mT) * s[..., None, :] + s[..., :, None] * (vg - vg.mT)) / e
        if rows > k:  # the part of gU outside U's span
            gus = gu / s[..., None, :]
            return (u @ ga + gus - u @ (u.mT @ gus)) @ vh, None
        if cols > k:
            sgv = gvh / s[..., :, None]
            return u @ (ga @ vh + sgv - (sgv @ vh.mT) @ vh), None
        return u @ ga @ vh, None


class SVDVals(Function):
    def forward(self, a):
        return xp.linalg.svd(a, compute_uv=False)

    def backward(self, g, m):  # d s_i = u_i^T dA v_i: gA = U diag(gS) Vh
        (a,) = m.inputs(self)
        k = min(a.shape[-2:])
        u, _, vh = _unpack(m.apply(SVD, a, False), [(a.shape[-2], k), (k,), (k, a.shape[-1])])
        return (u * g[..., None, :]) @ vh


class Pinv(Function):
    """The Moore-Penrose inverse, singular values below ``cutoff`` (per matrix) dropped."""

    saves_output = True

    def forward(self, a, atol, rtol, hermitian):
        if hermitian:
            w, v = xp.linalg.eigh(a)
            big = xp.abs(w) > xp.maximum(atol, rtol * xp.abs(w).max(axis=-1, keepdims=True))
            inv = xp.where(big, 1 / xp.where(big, w, 1), 0)
            return (v * inv[..., None, :]) @ v.conj().mT
        u, s, vh = xp.linalg.svd(a, full_matrices=False)
        big = s > xp.maximum(atol, rtol * (s[..., :1] if s.shape[-1] else s))
        inv = xp.where(big, 1 / xp.where(big, s, 1), 0)
        return (vh.conj().mT * inv[..., None, :]) @ u.conj().mT

    def backward(self, g, m):  # Golub & Pereyra: gA = -P^T g P^T + (I - A P) g^T P P^T + P^T P g^T (I - P A)
        a = m.inputs(self)[0]
        p = m.output(self)
        left = g.mT @ p @ p.mT
        right = p.mT @ p @ g.mT
        return -(p.mT @ g @ p.mT) + (left - a @ (p @ left)) + (right - (right @ p) @ a), None, None, None


class LU(Function):
    """L and U packed, A = P L U with partial pivoting (P kept as a constant; SciPy's LAPACK call)."""

    uses_inputs = False
    saves_output = True

    def forward(self, a, permutation: list):
        from scipy.linalg import lu  # NOTE: NumPy has no LU; SciPy's works on NumPy arrays only
        self.p, low, up = lu(a)
        permutation.append(self.p)  # NOTE: P is handed to the caller here: it is not an output of the graph
        self.shapes = [low.shape[-2:], up.shape[-2:]]
        return _pack(low, up)

    def backward(self, g, m):  # PyTorch's square rule: gA = P L^-T [tril(L^T gL, -1) + triu(gU U^T)] U^-T
        low, up = _unpack(m.output(self), self.shapes)
        gl, gu = _unpack(g, self.shapes)
        rows, cols = low.shape[-2], up.shape[-1]
        if rows != cols:
            raise NotImplementedError(f"linalg.lu: the gradient for non-square matrices ({rows} by {cols}) is not "
                                      "implemented in nerve")
        inner = ((low.mT @ gl) * m.const(_eye(rows, g, -1, lower=True))
                 + (gu @ up.mT) * m.const(_eye(rows, g, 0, lower=True).T))
        return m.const(self.p) @ (m.apply(Inv, low).mT @ inner @ m.apply(Inv, up).mT), None


class MatrixExp(Function):
    """exp(A) = sum A^k / k! (SciPy's Pade approximation; batched)."""

    def forward(self, a):
        from scipy.linalg import expm  # NOTE: NumPy has no matrix exponential; SciPy's works on NumPy arrays only
        return expm(a)

    def backward(self, g, m):  # Najfeld & Havel: gA = the upper-right block of exp([[A^T, G], [0, A^T]])
        a = m.inputs(self)[0]
        n = a.shape[-1]
        return m.apply(MatrixExp, m.apply(_Block, a.mT, g))[..., :n, n:]


class _Block(Function):
    """[[X, G], [0, X]]: the block matrix whose exponential carries the derivative of exp along G."""

    uses_inputs = False

    def forward(self, x, g):
        n = x.shape[-1]
        shape = xp.broadcast_shapes(x.shape, g.shape)
        out = xp.zeros_like(x, shape=shape[:-2] + (2 * n, 2 * n), dtype=xp.result_type(x, g))
        out[..., :n, :n] = x
        out[..., n:, n:] = x
        out[..., :n, n:] = g
        return out

    def backward(self, h, m):  # each block's gradient is its slice (X appears twice)
        n = h.shape[-1] // 2
        return h[..., :n, :n] + h[..., n:, n:], h[..., :n, n:]


# --- public functions ------------------------------------------------------------------------------------------------
def _matrix(name: str, a, square: bool = False) -> Tensor:
    """``a`` as a floating (or complex) tensor of matrices, checked: PyTorch's messages."""
    a = _as_tensor(a)
    if a.ndim < 2:
        raise ShapeError(f"{name}: the input tensor A must have at least 2 dimensions, got shape {tuple(a.shape)}")
    if square and a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"{name}: A must be batches of square matrices, but they are {a.shape[-2]} by "
                         f"{a.shape[-1]} matrices (shape {tuple(a.shape)})")
    if a.dtype.kind not in "fc":
        raise TypeError(f"{name}: expected a floating point or complex tensor as input, got {a.dtype} "
                        f"(shape {tuple(a.shape)})")
    if a.dtype.kind == "c" and a.requires_grad:
        raise NotImplementedError(f"{name}: gradients of complex matrices are not supported; real matrices are")
    return a


def linalg_inv(A) -> Tensor:
    """The inverse of square matrices (batched); a singular one raises ``LinAlgError``."""
    return Inv.apply(_matrix("linalg.inv", A, square=True))


def det(A) -> Tensor:
    """The determinant of square matrices (batched)."""
    return Det.apply(_matrix("linalg.det", A, square=True))


def slogdet(A) -> SlogdetResult:
    """(sign, log|det A|): the determinant's sign and the log of its absolute value; logabsdet is differentiable."""
    a = _matrix("linalg.slogdet", A, square=True)
    sign = Tensor._make(xp.linalg.slogdet(a.data)[0], None)
    return SlogdetResult(sign, LogAbsDet.apply(a))


def logdet(A) -> Tensor:
    """log det A: nan where det A < 0, -inf where it is 0 (PyTorch's ``torch.logdet``)."""
    sign, logabs = slogdet(A)
    with xp.errstate(divide="ignore", invalid="ignore"):
        return logabs + Tensor._make(xp.log(sign.data.astype(logabs.dtype)), None)


def _is_vector_rhs(a: Tensor, b: Tensor) -> bool:
    """PyTorch's rule: B is a batch of vectors when it is 1-D or has one dimension fewer than A and fits it."""
    return b.ndim == 1 or (b.ndim == a.ndim - 1 and tuple(b.shape) == tuple(a.shape[:-1]))


def linalg_solve(A, B, *, left: bool = True, out=None) -> Tensor:
    """X with A X = B (``left``) or X A = B; B may be a batch of vectors; batch dimensions broadcast."""
    a, b = _matrix("linalg.solve", A, square=True), _as_tensor(B)
    if out is not None:
        raise TypeError("linalg.solve: out= is not supported")
    vector = _is_vector_rhs(a, b)
    if not left:
        if vector:
            return linalg_solve(a.mT, b)
        return linalg_solve(a.mT, b.mT).mT
    rhs = b.unsqueeze(-1) if vector else b
    if rhs.shape[-2] != a.shape[-1]:
        raise ShapeError(f"linalg.solve: incompatible shapes of A and B for the equation AX = B "
                         f"({tuple(a.shape)} and {tuple(b.shape)})")
    if b.dtype != a.dtype:
        rhs = rhs.to(a.dtype)
    x = Solve.apply(a, rhs)
    return x.squeeze(-1) if vector else x


def linalg_cholesky(A, *, upper: bool = False) -> Tensor:
    """The Cholesky factor of symmetric positive-definite matrices (lower, or upper with ``upper``)."""
    low = Cholesky.apply(_matrix("linalg.cholesky", A, square=True))
    return low.mT if upper else low


def linalg_qr(A, mode: str = "reduced") -> QRResult:
    """(Q, R) with A = QR; ``mode``: 'reduced', 'complete' or 'r' (Q is then an empty tensor)."""
    a = _matrix("linalg.qr", A)
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"linalg.qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    if mode == "r":
        if a.requires_grad:
            raise RuntimeError("linalg.qr: the derivative of linalg.qr depends on Q, which is not computed when "
                               "mode='r'; use mode='reduced' to differentiate through linalg.qr")
        return QRResult(Tensor._make(xp.zeros((0,), dtype=a.dtype), None),
                        Tensor._make(xp.linalg.qr(a.data, mode="r"), None))
    rows, cols = a.shape[-2:]
    kq = rows if mode == "complete" else min(rows, cols)
    q, r = _unpack(QR.apply(a, mode == "complete"), [(rows, kq), (kq, cols)])
    return QRResult(q, r)


def _uplo(name: str, UPLO: str) -> bool:
    if UPLO not in ("L", "U"):
        raise ValueError(f"{name}: UPLO must be 'L' or 'U', got {UPLO!r}")
    return UPLO == "U"


def linalg_eigh(A, UPLO: str = "L") -> EighResult:
    """Eigenvalues (ascending) and orthonormal eigenvectors of symmetric matrices, from the ``UPLO`` triangle."""
    a = _matrix("linalg.eigh", A, square=True)
    n = a.shape[-1]
    w, v = _unpack(Eigh.apply(a, _uplo("linalg.eigh", UPLO)), [(n,), (n, n)])
    return EighResult(w, v)


def linalg_eigvalsh(A, UPLO: str = "L") -> Tensor:
    """The eigenvalues (ascending) of symmetric matrices."""
    return EigvalsH.apply(_matrix("linalg.eigvalsh", A, square=True), _uplo("linalg.eigvalsh", UPLO))


def linalg_svd(A, full_matrices: bool = True, *, driver=None) -> SVDResult:
    """(U, S, Vh) with A = U diag(S) Vh; singular values descending. ``driver`` (CUDA only) is accepted."""
    a = _matrix("linalg.svd", A)
    rows, cols = a.shape[-2:]
    k = min(rows, cols)
    ku, kv = (rows, cols) if full_matrices else (k, k)
    u, s, vh = _unpack(SVD.apply(a, bool(full_matrices)), [(rows, ku), (k,), (kv, cols)])
    return SVDResult(u, s, vh)


def linalg_svdvals(A, *, driver=None) -> Tensor:
    """The singular values, descending."""
    return SVDVals.apply(_matrix("linalg.svdvals", A))


def linalg_pinv(A, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:
    """The pseudo-inverse; singular values at or below max(atol, rtol * largest) count as zero.

    PyTorch's defaults: rtol = eps * max(rows, cols) when atol is not given or 0, else 0.
    """
    a = _matrix("linalg.pinv", A)
    atol_v = 0.0 if atol is None else float(atol)
    if rtol is None:
        rtol = xp.finfo(a.dtype).eps * max(a.shape[-2:]) if not atol_v else 0.0
    return Pinv.apply(a, atol_v, float(rtol), bool(hermitian))


LUResult = namedtuple("lu", ["P", "L", "U"])


def linalg_lu(A, *, pivot: bool = True) -> LUResult:
    """(P, L, U) with A = P L U, L unit lower triangular; differentiable for square matrices."""
    a = _matrix("linalg.lu", A)
    if not pivot:
        raise NotImplementedError("linalg.lu: LU without pivoting is not implemented on the CPU")
    rows, cols = a.shape[-2:]
    k = min(rows, cols)
    permutation: list = []
    low, up = _unpack(LU.apply(a, permutation), [(rows, k), (k, cols)])
    return LUResult(Tensor._make(permutation[0].astype(a.dtype), None), low, up)


def matrix_exp(A) -> Tensor:
    """The matrix exponential of square matrices (batched)."""
    return MatrixExp.apply(_matrix("linalg.matrix_exp", A, square=True))


EigResult = namedtuple("eig", ["eigenvalues", "eigenvectors"])


def linalg_eig(A) -> EigResult:
    """Eigenvalues and eigenvectors of general square matrices, complex (forward only: no gradient in nerve)."""
    a = _matrix("linalg.eig", A, square=True)
    if a.requires_grad:
        raise NotImplementedError("linalg.eig: the gradient of a general eigendecomposition is not implemented in "
                                  "nerve; use linalg.eigh for symmetric matrices")
    w, v = xp.linalg.eig(a.data)
    dtype = xp.complex64 if a.dtype in (xp.float32, xp.complex64) else xp.complex128
    return EigResult(Tensor._make(w.astype(dtype), None), Tensor._make(v.astype(dtype), None))


def linalg_eigvals(A) -> Tensor:
    """The eigenvalues of general square matrices, complex (forward only)."""
    return linalg_eig(A).eigenvalues


def cholesky(input, upper: bool = False) -> Tensor:
    """``torch.cholesky`` (the older spelling of ``linalg.cholesky``)."""
    return linalg_cholesky(input, upper=upper)


def svd(input, some: bool = True, compute_uv: bool = True):
    """``torch.svd``: (U, S, V) with V, not Vh; ``some`` for the reduced factors; zero U, V without ``compute_uv``."""
    if not compute_uv:
        a = _as_tensor(input)
        rows, cols = a.shape[-2:]
        k = min(rows, cols)

        def zeros(r, c):
            return Tensor._make(xp.zeros(a.shape[:-2] + (r, c), dtype=a.dtype), None)
        return _SVDOld(zeros(rows, k if some else rows), linalg_svdvals(a), zeros(cols, k if some else cols))
    u, s, vh = linalg_svd(input, full_matrices=not some)
    return _SVDOld(u, s, vh.mT)


def qr(input, some: bool = True) -> QRResult:
    """``torch.qr``: reduced factors with ``some``, complete ones without."""
    return linalg_qr(input, mode="reduced" if some else "complete")


def pinverse(input, rcond: float = 1e-15) -> Tensor:
    """``torch.pinverse``: singular values at or below rcond times the largest count as zero."""
    return linalg_pinv(input, rtol=rcond)


def matrix_power(input, n: int) -> Tensor:
    """A^n for an integer n (n = 0: the identity; n < 0: powers of the inverse), by repeated squaring."""
    a = _as_tensor(input)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"linalg.matrix_power: A must be batches of square matrices, got shape {tuple(a.shape)}")
    if int(n) != n:
        raise TypeError(f"linalg.matrix_power: n must be an integer, got {n!r}")
    n = int(n)
    if n == 0:
        return Tensor._make(xp.array(xp.broadcast_to(_eye(a.shape[-1], a), a.shape)), None)
    if n < 0:
        a, n = linalg_inv(a), -n
    result, base = None, a
    while n:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    return result


_SVDOld = namedtuple("svd", ["U", "S", "V"])
inverse = linalg_inv
# NOTE: the top-level names keep torch's older signatures (torch.svd returns V; torch.qr takes some=);
# nerve.linalg binds the linalg_ functions under their short names
__all__ = ["LinAlgError", "cholesky", "det", "inverse", "linalg_cholesky", "linalg_eig", "linalg_eigh",
           "linalg_eigvals", "linalg_eigvalsh", "linalg_inv", "linalg_lu", "matrix_exp", "linalg_pinv", "linalg_qr",
           "linalg_solve",
           "linalg_svd", "linalg_svdvals", "logdet", "matrix_power", "pinverse", "qr", "slogdet", "svd"]
METHODS = ["cholesky", "det", "inverse", "logdet", "matrix_exp", "matrix_power", "pinverse", "qr", "slogdet", "svd"]
