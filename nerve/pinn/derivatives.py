"""Derivatives of a network's output with respect to its input points, for all points at once, built on
``nerve.grad(create_graph=True)`` so that the results can be differentiated again (training needs d/dθ of u_xx;
third and higher derivatives chain the same way).

``u`` is (N, m) (or (N,)): row n is the output at point ``x[n]``; ``x`` is (N, d) and requires grad. Points
are independent, so d(sum_n u_n)/dx gives every point's gradient in one backward pass: no loop over points.
"""
from __future__ import annotations

import nerve
from nerve.tensor import Tensor

__all__ = ["grad", "jacobian", "hessian", "laplacian"]


def _column(u: Tensor, component: int, who: str) -> Tensor:
    if not isinstance(u, Tensor):
        raise TypeError(f"{who}: u must be a Tensor, got {type(u).__name__}")
    if u.ndim == 1:
        u = u.reshape(-1, 1)
    if u.ndim != 2 or not 0 <= component < u.shape[1]:
        raise ValueError(f"{who}: expected u of shape (N, m) with 0 <= component < m, got shape {tuple(u.shape)} "
                         f"and component {component}")
    return u if u.shape[1] == 1 else u[:, component:component + 1]


def _grad_all(u: Tensor, x: Tensor, who: str, zero_if_unused: bool = False) -> Tensor:
    """d u / d x for a column u (N, 1): (N, d), with a graph. A u that does not depend on x is an error unless
    ``zero_if_unused`` (a derivative of a derivative, where a constant means a true zero)."""
    if not isinstance(x, Tensor) or not x.requires_grad:
        raise ValueError(f"{who}: x must be a Tensor with requires_grad=True (the points the network was "
                         f"evaluated at), got {type(x).__name__}"
                         f"{'' if not isinstance(x, Tensor) else ' without requires_grad'}")
    if x.ndim != 2 or u.shape[0] != x.shape[0]:
        raise ValueError(f"{who}: expected x of shape (N, d) and u with N rows, got x {tuple(x.shape)} and u "
                         f"{tuple(u.shape)}")
    if not u.requires_grad:
        if zero_if_unused:
            return nerve.zeros(x.shape, dtype=x.dtype)
        raise ValueError(f"{who}: u (shape {tuple(u.shape)}) does not depend on x (it carries no graph): its "
                         "derivative would be zero everywhere; was it computed from x under no_grad or detached?")
    (g,) = nerve.grad(u.sum(), x, create_graph=True, allow_unused=True)
    if g is None:
        if zero_if_unused:
            return nerve.zeros(x.shape, dtype=x.dtype)
        raise ValueError(f"{who}: u (shape {tuple(u.shape)}) does not depend on x {tuple(x.shape)}: its "
                         "derivative would be zero everywhere; was the network evaluated at these points?")
    return g


def grad(u: Tensor, x: Tensor, i: int | None = None, component: int = 0) -> Tensor:
    """du/dx_i at each point, (N, 1); all input dimensions (N, d) when ``i`` is None. ``component`` picks
    the output column of a multi-output u."""
    g = _grad_all(_column(u, component, "pinn.grad"), x, "pinn.grad")
    if i is None:
        return g
    if not -x.shape[1] <= i < x.shape[1]:
        raise ValueError(f"pinn.grad: input dimension i={i} out of range for x of shape {tuple(x.shape)}")
    i %= x.shape[1]
    return g[:, i:i + 1]


def jacobian(u: Tensor, x: Tensor, i: int | None = None, j: int | None = None) -> Tensor:
    """du_i/dx_j (DeepXDE's ``jacobian``): (N, m, d) for all, (N, d) for output i, (N, 1) for both i and j."""
    if u.ndim == 1:
        u = u.reshape(-1, 1)
    if i is not None:
        return grad(u, x, j, component=i)
    return nerve.stack([grad(u, x, component=c) for c in range(u.shape[1])], dim=1)


def hessian(u: Tensor, x: Tensor, component: int = 0, i: int | None = None, j: int | None = None) -> Tensor:
    """d2u/dx_i dx_j of output ``component``: (N, d, d), or (N, 1) when ``i`` and ``j`` are given."""
    g = grad(u, x, component=component)
    if i is not None and j is not None:
        return _grad_all(g[:, i:i + 1], x, "pinn.hessian", zero_if_unused=True)[:, j:j + 1]
    rows = [_grad_all(g[:, a:a + 1], x, "pinn.hessian", zero_if_unused=True) for a in range(x.shape[1])]
    return nerve.stack(rows, dim=1)


def laplacian(u: Tensor, x: Tensor, component: int = 0, dims: int | None = None) -> Tensor:
    """sum_i d2u/dx_i^2 over the first ``dims`` input dimensions (default all; pass d - 1 to leave out the time
    column of space-time points): (N, 1)."""
    g = grad(u, x, component=component)
    dims = x.shape[1] if dims is None else dims
    if not 1 <= dims <= x.shape[1]:
        raise ValueError(f"pinn.laplacian: dims={dims} out of range for x of shape {tuple(x.shape)}")
    total = None
    for a in range(dims):
        term = _grad_all(g[:, a:a + 1], x, "pinn.laplacian", zero_if_unused=True)[:, a:a + 1]
        total = term if total is None else total + term
    return total
