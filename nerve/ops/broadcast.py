"""Broadcasting and its adjoint: ``expand`` and ``sum_to``, the only place broadcasting is undone.

Every binary op that broadcasts sums its gradient back to each input's shape with ``m.sum_to``;
the two primitives are each other's adjoint, so gradients of any order go through them.
"""
from __future__ import annotations

from nerve.autograd.function import Function
from nerve.autograd.rule_math import define
from nerve.backend import xp
from nerve.tensor import Tensor


def _summed_axes(shape: tuple, target: tuple) -> tuple:
    """The axes of ``shape`` that broadcasting from ``target`` added or stretched."""
    lead = len(shape) - len(target)
    return tuple(range(lead)) + tuple(i + lead for i, s in enumerate(target)
                                      if s == 1 and shape[i + lead] != 1)


def sum_to_array(g, shape: tuple):
    """Sum a broadcast array back to ``shape`` (the first-order fast path of ``sum_to``)."""
    if g.shape == shape:
        return g
    return g.sum(axis=_summed_axes(g.shape, shape)).reshape(shape)


class Expand(Function):
    """The primitive behind ``expand``/``broadcast_to``."""

    uses_inputs = False

    def forward(self, a, shape):
        self.in_shape = a.shape
        return xp.broadcast_to(a, shape)

    def backward(self, g, m):  # adjoint: sum back to the input's shape
        return m.sum_to(g, self.in_shape), None


class SumTo(Function):
    """Sum over the axes that broadcasting added or stretched."""

    uses_inputs = False

    def forward(self, a, shape):
        self.in_shape = a.shape
        return sum_to_array(a, shape)

    def backward(self, g, m):  # adjoint: broadcast back
        return m.expand(g, self.in_shape), None


def sum_to(g: Tensor, shape: tuple) -> Tensor:
    """Sum a broadcast gradient back to ``shape`` (the input's shape before broadcasting)."""
    shape = tuple(shape)
    return g if g.shape == shape else SumTo.apply(g, shape)


def broadcast_tensor(a: Tensor, shape: tuple) -> Tensor:
    """``a`` broadcast to ``shape`` (a no-op when it already has it)."""
    shape = tuple(shape)
    return a if a.shape == shape else Expand.apply(a, shape)


define("sum_to", sum_to_array, sum_to)
define("expand", xp.broadcast_to, broadcast_tensor)

def broadcast_shapes(*shapes) -> tuple:
    """The shape that ``shapes`` broadcast to (PyTorch's rule, NumPy's too)."""
    try:
        return tuple(xp.broadcast_shapes(*((s,) if isinstance(s, int) else tuple(s) for s in shapes)))
    except ValueError:
        raise ValueError(f"broadcast_shapes: shapes {list(shapes)} do not broadcast") from None


def broadcast_tensors(*tensors) -> tuple:
    """The tensors expanded to their common shape (views in the graph)."""
    shape = broadcast_shapes(*(tuple(t.shape) for t in tensors))
    return tuple(broadcast_tensor(t, shape) for t in tensors)


__all__ = ["sum_to", "broadcast_shapes", "broadcast_tensors"]
METHODS: list = []
