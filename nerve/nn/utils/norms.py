"""What the weight reparametrisations share (the hook-style ``spectral_norm``/``weight_norm`` of
``nn.utils`` and the modules of ``nn.utils.parametrizations``): power iteration for the largest singular
value, and the norm over every dim but one."""
from __future__ import annotations

from nerve import backend, ops
from nerve.backend import xp
from nerve.tensor import Tensor


def _matrix(weight, dim: int):
    """A weight as a (size along dim) x (the rest) matrix: array or Tensor alike."""
    if dim != 0:
        weight = weight.transpose(dim, 0) if isinstance(weight, Tensor) else xp.swapaxes(weight, dim, 0)
    return weight.reshape(weight.shape[0], -1)


def _unit(a, eps: float):
    return a / max(float(xp.sqrt(xp.dot(a, a))), eps)


def _power_iteration(mat, u, v, iterations: int, eps: float) -> None:
    """Advance u, v (arrays, in place) by ``iterations`` steps of v <- W^T u / |W^T u|, u <- W v / |W v|."""
    for _ in range(iterations):
        v[...] = _unit(mat.T @ u, eps)
        u[...] = _unit(mat @ v, eps)


def _sigma(weight: Tensor, u, v, dim: int) -> Tensor:
    """u^T W v with u, v held constant (as PyTorch does): the largest singular value once they converged."""
    return (Tensor(u.copy()) * ops.matmul(_matrix(weight, dim), Tensor(v.copy()))).sum()


def _start_vectors(weight: Tensor, dim: int, eps: float) -> tuple:
    """Random unit vectors u (rows along dim) and v (the rest) of the weight's dtype."""
    rows = weight.shape[dim]
    gen = backend.default_generator()
    u = _unit(xp.asarray(gen.standard_normal(rows)).astype(weight.dtype), eps)
    v = _unit(xp.asarray(gen.standard_normal(weight.numel() // rows)).astype(weight.dtype), eps)
    return u, v


def norm_except_dim(v: Tensor, dim: int | None) -> Tensor:
    """The 2-norm of ``v`` over every dim but ``dim``, kept broadcastable; over the whole tensor (0-d) when
    ``dim`` is None or -1 (PyTorch's convention for weight norm)."""
    if dim is None or dim == -1:
        return (v * v).sum().sqrt()
    dim = dim + v.ndim if dim < 0 else dim
    return (v * v).sum(dim=tuple(i for i in range(v.ndim) if i != dim), keepdim=True).sqrt()
