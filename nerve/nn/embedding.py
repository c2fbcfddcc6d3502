"""``Embedding``: a lookup table of learned vectors indexed by integer ids (tokens, categories)."""
from __future__ import annotations

from nerve import functional as F, ops
from nerve.autograd.grad_mode import no_grad
from nerve.nn import init
from nerve.nn.linear import _empty
from nerve.nn.module import Module
from nerve.nn.parameter import Parameter
from nerve.tensor import Tensor


class Embedding(Module):
    """Row i of ``weight`` (num_embeddings, embedding_dim) for each index i of the input.

    Initialised from N(0, 1) as in PyTorch; the ``padding_idx`` row starts at zero and gets no gradient.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 device=None, dtype=None) -> None:
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding({num_embeddings}, {embedding_dim}): padding_idx {padding_idx} "
                                 "is out of range")
            padding_idx %= num_embeddings
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.weight = _empty((num_embeddings, embedding_dim), device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """N(0, 1), with the padding row zeroed."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0.0

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        padding_idx: int | None = None) -> "Embedding":
        """An Embedding whose table is ``embeddings`` (2-D), frozen unless ``freeze=False``."""
        if embeddings.ndim != 2:
            raise ValueError("Embedding.from_pretrained: embeddings must be 2-D, got shape "
                             f"{tuple(embeddings.shape)}")
        layer = cls(embeddings.shape[0], embeddings.shape[1], padding_idx=padding_idx, dtype=embeddings.dtype)
        layer.weight = Parameter(embeddings.data.copy(), requires_grad=not freeze)
        return layer

    def forward(self, input: Tensor) -> Tensor:
        """The embedding vectors, shape input.shape + (embedding_dim,)."""
        indices = ops.check_indices(f"Embedding({self.num_embeddings}, {self.embedding_dim})", input,
                                    self.num_embeddings)
        return ops.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"

    def get_config(self) -> dict:
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim,
                "padding_idx": self.padding_idx}


class EmbeddingBag(Module):
    """Sum, mean or max of the embedding rows of each bag (rows of a 2-d input, or slices of a 1-d input at
    ``offsets``) without building the (bags, length, dim) tensor by hand: ``F.embedding_bag``. Initialised from
    N(0, 1); ``max_norm`` is not supported."""

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm=None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False, _weight=None,
                 include_last_offset: bool = False, padding_idx: int | None = None, device=None, dtype=None) -> None:
        super().__init__()
        if max_norm is not None:
            raise ValueError("EmbeddingBag: max_norm is not supported; renormalise the weight explicitly")
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"EmbeddingBag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"EmbeddingBag({num_embeddings}, {embedding_dim}): padding_idx {padding_idx} is "
                                 "out of range")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.mode = num_embeddings, embedding_dim, mode
        self.include_last_offset, self.padding_idx = include_last_offset, padding_idx
        if _weight is not None:
            self.weight = Parameter(_weight.data if isinstance(_weight, Tensor) else _weight)
        else:
            self.weight = _empty((num_embeddings, embedding_dim), device, dtype)
            init.normal_(self.weight)
            if padding_idx is not None:
                with no_grad():
                    self.weight[padding_idx] = 0.0

    def forward(self, input: Tensor, offsets=None, per_sample_weights: Tensor | None = None) -> Tensor:
        return F.embedding_bag(input, self.weight, offsets, mode=self.mode, per_sample_weights=per_sample_weights,
                               include_last_offset=self.include_last_offset, padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}"
