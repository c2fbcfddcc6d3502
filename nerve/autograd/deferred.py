"""``RowProduct``: a gradient handed on unevaluated, as the product ``rows @ right`` it would be computed from.

Why: a recurrent layer fed by an embedding would spend a (T*B, G) x (G, I) GEMM on its input's gradient only for
the embedding to sum its rows by token; summing the rows of ``rows`` by token first and multiplying the (V, G)
sums by ``right`` gives the table's gradient for a V-row product. The engine hands the product to a rule that
declares ``takes_products`` and evaluates it everywhere else (hooks, ``retain_grad``, a captured input, a leaf,
a second consumer), so the gradient any user sees is the same array it always was.
"""
from __future__ import annotations


class RowProduct:
    """The gradient ``compute()`` (of ``shape``, ``dtype``) that equals ``rows @ right`` laid out as the input:
    row r of ``rows`` belongs to position r of the input read in ``order`` ('C', or 'TB' for a batch-first
    (B, T, ...) input whose rows run time-major)."""

    __slots__ = ("rows", "right", "order", "shape", "compute", "sums")
    #: unlike any array's dtype (NOTE: not None, which NumPy reads as float64), so the engine's dtype check is
    #: where it notices a product (no test of its own on the common path)
    dtype = "RowProduct"
    #: NumPy defers to ``__radd__`` (an array plus a product)
    __array_ufunc__ = None

    def __init__(self, rows, right, order: str, shape: tuple, compute, sums=None) -> None:
        self.rows, self.right, self.order = rows, right, order
        self.shape = tuple(shape)
        self.compute = compute
        #: optional ``(indices, sums)``: the rows already summed by token, for the lookup whose index array is
        #: ``indices`` (the very object: sums by token do not depend on the order of the rows)
        self.sums = sums

    def __add__(self, other):  # a second gradient for the same input: the values
        return self.compute() + value(other)

    __radd__ = __add__


def value(g):
    """``g`` as an array: a ``RowProduct`` is computed, anything else returned as it is."""
    return g.compute() if g.__class__ is RowProduct else g
