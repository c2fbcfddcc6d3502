"""Embedding: rows of a table picked by integer indices, one node whose backward scatter-adds into the table."""
from __future__ import annotations

from nerve.autograd.function import Function
from nerve.backend import xp
from nerve.ops.elementwise import where
from nerve.ops.index import index, index_backward_array
from nerve.tensor import Tensor


class Embedding(Function):
    """Rows of a table picked by integer indices; the ``padding_idx`` row gets no gradient."""

    uses_inputs = False

    def forward(self, weight, indices, padding_idx):
        self.indices, self.padding_idx = indices, padding_idx
        return xp.take(weight, indices, axis=0)

    def backward(self, g, m):  # rows scatter-add back into the table; the padding row gets nothing
        if self.padding_idx is not None:
            g = g * (self.indices != self.padding_idx)[..., None]
        return index_backward_array(g, self.inputs[0].shape, self.indices), None, None

    def reference(self, weight, indices, padding_idx):
        rows = index(weight, indices)
        if padding_idx is None:
            return rows
        return where((indices != padding_idx)[..., None], rows, rows.detach())


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


__all__ = ["check_indices", "embedding"]
#: functions that are also Tensor methods (none: the table comes second)
METHODS: list = []
