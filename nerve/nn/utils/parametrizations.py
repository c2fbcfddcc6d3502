"""PyTorch's ``nn.utils.parametrizations``: ``weight_norm``, ``spectral_norm`` and ``orthogonal`` as
parametrizations (``module.parametrizations.weight.original0/original1`` for g and v; ``original`` plus the
power-iteration buffers ``_u``, ``_v`` of the spectral norm, or the ``base`` of the orthogonal map), weight and
spectral norm sharing their arithmetic with the hook versions in ``nn.utils``."""
from __future__ import annotations

from nerve import ops
from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.nn.module import Module
from nerve.nn.utils.norms import _matrix, _power_iteration, _sigma, _start_vectors, norm_except_dim
from nerve.nn.utils.parametrize import register_parametrization
from nerve.tensor import Tensor

__all__ = ["weight_norm", "spectral_norm", "orthogonal"]


class _WeightNorm(Module):
    """weight = g * v / |v|; ``right_inverse`` splits a weight into (g, v) = (|w|, w)."""

    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return weight_v * (weight_g / norm_except_dim(weight_v, self.dim))

    def right_inverse(self, weight: Tensor) -> tuple:
        return norm_except_dim(weight, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Weight normalisation as a parametrization: ``module.<name>`` = g * v / |v|, g and v stored as
    ``module.parametrizations.<name>.original0`` and ``original1``."""
    return register_parametrization(module, name, _WeightNorm(dim), unsafe=True)


class _SpectralNorm(Module):
    """weight / sigma, sigma the largest singular value by power iteration on the buffers ``_u``, ``_v``
    (advanced in training mode); a 1-d weight is divided by its norm."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        super().__init__()
        if n_power_iterations < 1:
            raise ValueError(f"spectral_norm: n_power_iterations must be >= 1, got {n_power_iterations}")
        self.dim = dim + weight.ndim if dim < 0 else dim
        self.n_power_iterations, self.eps = n_power_iterations, eps
        if weight.ndim > 1:
            u, v = _start_vectors(weight, self.dim, eps)
            self.register_buffer("_u", Tensor(u))
            self.register_buffer("_v", Tensor(v))
            _power_iteration(_matrix(weight.data, self.dim), u, v, 15, eps)

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return weight / norm_except_dim(weight, None).clamp(min=self.eps)
        if self.training:
            _power_iteration(_matrix(weight.data, self.dim), self._u.data, self._v.data, self.n_power_iterations,
                             self.eps)
        return weight / _sigma(weight, self._u.data, self._v.data, self.dim)

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """Spectral normalisation as a parametrization (Miyato et al. 2018): ``module.<name>`` = W / sigma(W), the
    weight kept as ``module.parametrizations.<name>.original``; ``dim`` defaults to 1 for transposed
    convolutions, else 0."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter or buffer {name!r}")
    if dim is None:
        dim = 1 if getattr(module, "_transposed", False) else 0
    return register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))


def _householder(a: Tensor, n: int, k: int) -> Tensor:
    """The first k columns of H_1 ... H_k, H_i = I - tau_i v_i v_i^T, v_i column i of ``a`` below the diagonal
    with 1 on it, tau_i = 2 / |v_i|^2 (LAPACK's householder_product with PyTorch's taus)."""
    lower = ops.tril(a, -1) + Tensor(xp.eye(n, k, dtype=a.dtype))
    q = Tensor(xp.eye(n, k, dtype=a.dtype))
    for i in reversed(range(k)):
        v = lower[:, i:i + 1]
        q = q - (2 / (v * v).sum()) * ops.matmul(v, ops.matmul(v.transpose(0, 1), q))
    return q


def _make_orthogonal(a):
    """The Q of a's QR decomposition with R's diagonal made positive (array in, array out)."""
    q, r = xp.linalg.qr(a)
    return q * xp.where(xp.diag(r) < 0, -1.0, 1.0).astype(a.dtype)


class _Orthogonal(Module):
    """An orthogonal (or semi-orthogonal) matrix from an unconstrained one: the exponential or the Cayley map of
    its skew-symmetric part, or a product of Householder reflections; times ``base`` when trivialised."""

    def __init__(self, weight: Tensor, orthogonal_map: str, use_trivialization: bool = True) -> None:
        super().__init__()
        self.shape, self.orthogonal_map = tuple(weight.shape), orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, x: Tensor) -> Tensor:
        n, k = x.shape[-2], x.shape[-1]
        transposed = n < k
        if transposed:
            x, n, k = x.transpose(-2, -1), k, n
        if self.orthogonal_map == "householder":
            # NOTE: PyTorch scales by the original's diagonal cast to int (truncated; -1 at the start), a constant
            q = _householder(x, n, k) * Tensor(xp.trunc(ops.diagonal(x).data))
        else:
            x = ops.tril(x)
            if n != k:
                x = ops.cat([x, Tensor(xp.zeros((n, n - k), dtype=x.dtype))], dim=-1)
            a = x - x.transpose(-2, -1)
            if self.orthogonal_map == "matrix_exp":
                q = ops.matrix_exp(a)
            else:
                eye = Tensor(xp.eye(n, dtype=x.dtype))
                q = ops.linalg_solve(eye - 0.5 * a, eye + 0.5 * a)
            q = q[:, :k]
        if self.base is not None:
            q = ops.matmul(self.base, q)
        return q.transpose(-2, -1) if transposed else q

    def right_inverse(self, q: Tensor) -> Tensor:
        """Trivialisation: ``base`` becomes ``q`` made orthogonal (completed to n x n) and the original the value
        whose map is the identity."""
        if tuple(q.shape) != self.shape:
            raise ValueError(f"orthogonal: expected a matrix of shape {self.shape}, got {tuple(q.shape)}")
        if "base" not in self._buffers:
            raise NotImplementedError("orthogonal: assigning needs use_trivialization=True")
        a = q.data
        n, k = a.shape
        if n < k:
            a, n, k = a.T, k, n
        if n != k:
            gen = xp.random.default_rng(0)
            a = xp.concatenate([a, gen.standard_normal((n, n - k)).astype(a.dtype)], axis=1)
        self.base = Tensor(_make_orthogonal(a))
        neg_eye = xp.zeros(self.shape, dtype=q.dtype)
        xp.fill_diagonal(neg_eye, -1.0)  # the Householder map of -I is I; the other maps send it to I too
        return Tensor(neg_eye)


def orthogonal(module: Module, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Module:
    """Keep ``module.<name>`` (a matrix) orthogonal, or semi-orthogonal when not square: PyTorch's
    parametrization, ``orthogonal_map`` 'matrix_exp' (default for square), 'cayley' or 'householder' (default
    otherwise). With ``use_trivialization`` the weight starts as the orthogonal factor of its current value."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ValueError(f"orthogonal: {type(module).__name__}.{name} must be a matrix, got "
                         f"{None if weight is None else tuple(weight.shape)}")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[0] == weight.shape[1] else "householder"
    if orthogonal_map not in ("matrix_exp", "cayley", "householder"):
        raise ValueError(f"orthogonal: orthogonal_map must be 'matrix_exp', 'cayley' or 'householder', got "
                         f"{orthogonal_map!r}")
    if not use_trivialization:
        raise ValueError("orthogonal: only use_trivialization=True is supported")
    with no_grad():
        return register_parametrization(module, name, _Orthogonal(weight, orthogonal_map, use_trivialization),
                                        unsafe=True)
