"""Embedding: rows of a table picked by integer indices, one node whose backward scatter-adds into the table.

Its rule also takes its gradient as an unevaluated product ``rows @ right`` (``nerve.autograd.deferred``): it
sums ``rows`` by token, then multiplies V rows instead of one per position. ``looked_up`` tells a layer that its
input is such a lookup, so the layer can multiply the table once instead of every position's row.
"""
from __future__ import annotations

from nerve import backend
from nerve.autograd.deferred import RowProduct
from nerve.autograd.function import Function
from nerve.backend import xp
from nerve.ops import compiled, streams
from nerve.ops.elementwise import where
from nerve.ops.index import _index_add, index, index_backward_array
from nerve.tensor import Tensor


class Embedding(Function):
    """Rows of a table picked by integer indices; the ``padding_idx`` row gets no gradient."""

    uses_inputs = False
    takes_products = True

    def forward(self, weight, indices, padding_idx):
        self.indices, self.padding_idx = indices, padding_idx
        return xp.take(weight, indices, axis=0)

    def backward(self, g, m):  # rows scatter-add back into the table; the padding row gets nothing
        if g.__class__ is RowProduct:  # sum the product's rows by token, then one (V, G) @ (G, I) product
            sums = g.sums[1] if g.sums is not None and g.sums[0] is self.indices else None
            if sums is None:
                idx = self.indices.swapaxes(0, 1) if g.order == "TB" else self.indices
                sums = row_sums(g.rows, idx.reshape(-1), self.inputs[0].shape[0])
            if self.padding_idx is not None:
                sums = sums.copy() if g.sums is not None else sums
                sums[self.padding_idx] = 0
            return streams.matmul(sums, g.right), None, None
        if self.padding_idx is not None:
            g = g * (self.indices != self.padding_idx)[..., None]
        return index_backward_array(g, self.inputs[0].shape, self.indices), None, None

    def reference(self, weight, indices, padding_idx):
        rows = index(weight, indices)
        if padding_idx is None:
            return rows
        return where((indices != padding_idx)[..., None], rows, rows.detach())


def looked_up(t: Tensor):
    """``(table, indices)`` when ``t`` is the output of an ``embedding`` lookup recorded in the graph (its values
    are ``table[indices]``), else None."""
    fn = t.grad_fn
    if fn.__class__ is not Embedding or getattr(fn, "inputs", None) is None:
        return None
    return fn.inputs[0].data, fn.indices


def row_sums(rows, idx, n: int):
    """(n, G) sums of the rows of ``rows`` (m, G) by ``idx`` (m,) in [0, n): compiled, the columns cut on nerve's
    threads, where numba is installed; sorted runs summed by NumPy otherwise."""
    out = xp.zeros((n, rows.shape[1]), dtype=rows.dtype)
    k = _kernels() if type(rows) is backend.ndarray and rows.dtype.char in "fd" else None
    if k is None:
        _index_add(out[None], idx, rows[None])
        return out
    idx = xp.ascontiguousarray(idx, dtype=xp.int64)
    rows = xp.ascontiguousarray(rows)
    streams.split(lambda a, b: k(out, idx, rows, a, b), rows.shape[1], rows.size * streams.SPLIT_COST, rows)
    return out


_state: dict = {}


def _kernels():
    return compiled.once(_state, _compile)


def _compile(cache: bool):
    from numba import njit

    @njit(nogil=True, cache=cache)
    def add_rows(out, idx, rows, c0, c1):  # out[idx[r], c0:c1] += rows[r, c0:c1], row by row in order
        for r in range(rows.shape[0]):
            o = idx[r]
            for c in range(c0, c1):
                out[o, c] += rows[r, c]
    return add_rows


def check_indices(op: str, input, n: int):
    """The integer index array of ``input``, after checking that every index is in [0, n)."""
    indices = input.data if isinstance(input, Tensor) else input
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected integer indices, got dtype {indices.dtype}")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        value = int(indices[(indices < 0) | (indices >= n)].reshape(-1)[0])
        raise IndexError(f"{op}: index {value} is out of range for {n} embeddings (expected 0..{n - 1})")
    return indices


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` picked by the integer ``input``; the ``padding_idx`` row gets no gradient."""
    indices = check_indices("embedding", input, weight.shape[0])
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    return Embedding.apply(weight, indices, padding_idx)


__all__ = ["check_indices", "embedding", "looked_up", "row_sums"]
#: functions that are also Tensor methods (none: the table comes second)
METHODS: list = []
