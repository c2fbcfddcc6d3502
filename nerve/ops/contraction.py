"""Tensor contractions composed from ``permute``, ``reshape`` and ``matmul`` (their rules give the gradients):
``tensordot``."""
from __future__ import annotations

from nerve.autograd.function import ShapeError
from nerve.ops.linalg import matmul
from nerve.ops.shape import normalize_dim
from nerve.tensor import Tensor


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Sum the products over ``dims``: an int (the last n of ``a`` with the first n of ``b``) or two lists of
    dims to pair."""
    if isinstance(dims, int):
        if dims < 0:
            raise ValueError(f"tensordot: dims must be non-negative, got {dims}")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
    da = [normalize_dim(d, a.ndim, "tensordot") for d in da]
    db = [normalize_dim(d, b.ndim, "tensordot") for d in db]
    if len(da) != len(db) or any(a.shape[i] != b.shape[j] for i, j in zip(da, db)):
        raise ShapeError(f"tensordot: dims {da} of a {tuple(a.shape)} and {db} of b {tuple(b.shape)} do not pair up")
    keep_a = [d for d in range(a.ndim) if d not in da]
    keep_b = [d for d in range(b.ndim) if d not in db]
    k = 1
    for d in da:
        k *= a.shape[d]
    left = a.permute(*keep_a, *da).reshape(-1, k)
    right = b.permute(*db, *keep_b).reshape(k, -1)
    return matmul(left, right).reshape(*[a.shape[d] for d in keep_a], *[b.shape[d] for d in keep_b])


__all__ = ["tensordot"]
METHODS: list = []
