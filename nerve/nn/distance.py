"""Distance and similarity modules (``nn.PairwiseDistance``, ``nn.CosineSimilarity``) over ``nerve.functional``."""
from __future__ import annotations

from nerve import functional as F
from nerve.nn.module import Module
from nerve.tensor import Tensor


class PairwiseDistance(Module):
    """The p-norm of x1 - x2 + eps along the last dim, per row."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)

    def get_config(self) -> dict:
        return {"p": self.norm, "eps": self.eps, "keepdim": self.keepdim}


class CosineSimilarity(Module):
    """cos(x1, x2) along ``dim``, with the norms floored at ``eps``."""

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.cosine_similarity(x1, x2, self.dim, self.eps)

    def get_config(self) -> dict:
        return {"dim": self.dim, "eps": self.eps}
