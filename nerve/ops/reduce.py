"""Reductions: sum, mean, and ``sum_to``, the one place where broadcasting is undone."""
from __future__ import annotations

from nerve.autograd.function import Function
from nerve.backend import xp
from nerve.tensor import Tensor


def _norm_dims(dim, ndim: int, op: str):
    """Normalise ``dim`` (None, int or sequence) to a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dimensions")
        out.append(d % ndim if ndim else 0)
    return tuple(sorted(set(out)))


def _kept_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


class Sum(Function):
    uses_inputs = False

    def forward(self, a, axes, keepdim):
        self.axes = axes
        self.keepdim = keepdim
        return a.sum(axis=axes, keepdims=keepdim)

    def backward(self, g):  # every summed element gets the gradient of the sum
        shape = self.inputs[0].shape
        if not self.keepdim:
            g = g.reshape(_kept_shape(shape, self.axes))
        return g.expand(shape), None, None


def sum(a: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Sum over ``dim`` (all dimensions when None)."""
    return Sum.apply(a, _norm_dims(dim, a.ndim, "sum"), keepdim)


def mean(a: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Mean over ``dim`` (all dimensions when None)."""
    axes = _norm_dims(dim, a.ndim, "mean")
    count = 1
    for ax in axes:
        count *= a.shape[ax]
    return Sum.apply(a, axes, keepdim) * (1.0 / count if count else float("nan"))


def sum_to(g: Tensor, shape: tuple) -> Tensor:
    """Sum a broadcast gradient back to ``shape`` (the input's shape before broadcasting)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and g.shape[i + lead] != 1)
    out = Sum.apply(g, axes, False)
    return out if out.shape == shape else out.reshape(shape)


__all__ = ["sum", "mean", "sum_to"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["sum", "mean"]
