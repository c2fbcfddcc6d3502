"""Similarity and distance (``F.normalize``, ``F.cosine_similarity``), composed from differentiable ops so that
their second derivatives come for free."""
from __future__ import annotations

from nerve.backend import xp
from nerve.ops import clamp, norm
from nerve.tensor import Tensor


def _dim(dim: int, ndim: int, op: str) -> int:
    """``dim`` as a non-negative axis, or an IndexError naming ``op``."""
    size = max(ndim, 1)
    if not isinstance(dim, (int, xp.integer)) or not -size <= dim < size:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return int(dim) % size


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """input / max(||input||_p, eps) along ``dim``: unit p-norm vectors, and zero vectors stay zero."""
    d = _dim(dim, input.ndim, "normalize")
    return input / clamp(norm(input, p, d, keepdim=True), min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """x1 . x2 / (max(||x1||, eps) max(||x2||, eps)) along ``dim``, after broadcasting x1 against x2.

    Each input is divided by its own clamped norm before the product (PyTorch's formula), which keeps the
    result within [-1, 1].
    """
    try:
        shape = xp.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ValueError(f"cosine_similarity: x1 {tuple(x1.shape)} and x2 {tuple(x2.shape)} do not "
                         "broadcast") from None
    d = _dim(dim, len(shape), "cosine_similarity")
    x1 = x1 if x1.shape == shape else x1.expand(shape)
    x2 = x2 if x2.shape == shape else x2.expand(shape)
    return (normalize(x1, 2.0, d, eps) * normalize(x2, 2.0, d, eps)).sum(d)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dim (PyTorch adds eps to the difference, so equal rows stay differentiable)."""
    return norm(x1 - x2 + eps, p, -1, keepdim=keepdim)


__all__ = ["cosine_similarity", "normalize", "pairwise_distance"]
