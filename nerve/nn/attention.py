"""``MultiheadAttention``: attention in several subspaces at once, with PyTorch's parameters and arguments."""
from __future__ import annotations

from nerve import functional as F
from nerve.backend import xp
from nerve.nn import init
from nerve.nn.linear import Linear, _empty
from nerve.nn.module import Module
from nerve.ops import (
    attention_weights, causal_bias, mask_to_bias, packed_self_attention, scaled_dot_product_attention,
)
from nerve.tensor import Tensor


class MultiheadAttention(Module):
    """Project query, key and value, attend in ``num_heads`` heads of ``embed_dim // num_heads`` features,
    concatenate the heads and project again (``out_proj``).

    Parameters as in PyTorch: ``in_proj_weight`` (3E, E) and ``in_proj_bias`` (3E,) when key and value have
    ``embed_dim`` features, else ``q_proj_weight``, ``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim);
    inputs are (L, N, E), or (N, L, E) with ``batch_first``, or unbatched (L, E). Set ``save_attention``
    to keep the last per-head attention weights (N, H, L, S) in ``saved_attention`` (see nerve.explain).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be a positive multiple of "
                             f"num_heads ({num_heads})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim = embed_dim
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        if self._qkv_same_embed_dim:
            self.in_proj_weight = _empty((3 * embed_dim, embed_dim), device, dtype)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = _empty((embed_dim, embed_dim), device, dtype)
            self.k_proj_weight = _empty((embed_dim, self.kdim), device, dtype)
            self.v_proj_weight = _empty((embed_dim, self.vdim), device, dtype)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = _empty((3 * embed_dim,), device, dtype)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        self.save_attention = False
        self.saved_attention = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """PyTorch's initialisation: Xavier-uniform projections, zero biases (out_proj's weight as Linear)."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _name(self) -> str:
        return f"MultiheadAttention({self.embed_dim}, heads={self.num_heads})"

    def _bias(self, attn_mask, key_padding_mask, is_causal: bool, n: int, L: int, S: int, dtype):
        """attn_mask, key_padding_mask and causality merged into one additive array (N or 1, H or 1, L, S)."""
        name = self._name()
        bias = None
        if attn_mask is not None:
            bias = mask_to_bias(name, attn_mask, dtype, attend_when_true=False)
            if bias.shape == (n * self.num_heads, L, S):
                bias = bias.reshape(n, self.num_heads, L, S)
            elif bias.shape != (L, S):
                raise ValueError(f"{name}: attn_mask must have shape ({L}, {S}) or ({n * self.num_heads}, {L}, "
                                 f"{S}), got {tuple(bias.shape)}")
        elif is_causal:
            bias = causal_bias(L, S, dtype)
        if key_padding_mask is not None:
            pad = mask_to_bias(name, key_padding_mask, dtype, attend_when_true=False)
            if pad.shape != (n, S):
                raise ValueError(f"{name}: key_padding_mask must have shape ({n}, {S}) (batch, source length), "
                                 f"got {tuple(pad.shape)}")
            pad = pad.reshape(n, 1, 1, S)
            bias = pad if bias is None else bias + pad
        return bias

    def _heads(self, x: Tensor, n: int) -> Tensor:
        """(N, L, E) -> (N, H, L, D) (a strided view, no copy)."""
        return x.reshape(n, x.shape[1], self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False) -> tuple:
        """(output, weights): output shaped like ``query``; weights (N, L, S) averaged over the heads (or
        (N, H, L, S) with ``average_attn_weights=False``) when ``need_weights``, else None.

        Boolean masks mark positions that may NOT be attended (PyTorch's rule here); float masks are added
        to the scores. ``is_causal`` without ``attn_mask`` applies the causal mask.
        """
        name = self._name()
        batched = query.ndim == 3
        dims = (3, 3, 3) if batched else (2, 2, 2)
        if (query.ndim, key.ndim, value.ndim) != dims:
            raise ValueError(f"{name}: query, key and value must all be batched (3-D) or all unbatched (2-D), "
                             f"got shapes {tuple(query.shape)}, {tuple(key.shape)} and {tuple(value.shape)}")
        if query.shape[-1] != self.embed_dim or key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ValueError(f"{name}: expected query/key/value features ({self.embed_dim}, {self.kdim}, "
                             f"{self.vdim}), got shapes {tuple(query.shape)}, {tuple(key.shape)} and "
                             f"{tuple(value.shape)}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"{name}: key {tuple(key.shape)} and value {tuple(value.shape)} must have the same "
                             "length and batch")
        batch_axis = 0 if (self.batch_first or not batched) else 1
        if batched and query.shape[batch_axis] != key.shape[batch_axis]:
            raise ValueError(f"{name}: query {tuple(query.shape)} and key {tuple(key.shape)} have different "
                             f"batch sizes (batch_first={self.batch_first})")
        same = query is key and key is value
        if not batched:
            query, key, value = _each(lambda t: t.unsqueeze(0), query, key, value, same)
            if key_padding_mask is not None:
                key_padding_mask = xp.expand_dims(xp.asarray(_data(key_padding_mask)), 0)
        batch_first = self.batch_first or not batched
        n = query.shape[0] if batch_first else query.shape[1]
        L = query.shape[1] if batch_first else query.shape[0]
        S = key.shape[1] if batch_first else key.shape[0]
        # a causal mask alone goes to the kernels as is_causal (their exact and faster causal path)
        causal = is_causal and attn_mask is None and key_padding_mask is None and L == S
        bias = None if causal else self._bias(attn_mask, key_padding_mask, is_causal, n, L, S, query.dtype)
        p = self.dropout if self.training else 0.0
        want_weights = need_weights or self.save_attention
        if not want_weights and same and self._qkv_same_embed_dim:
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)
            out = self.out_proj(packed_self_attention(qkv, self.num_heads, bias, p, causal, batch_first=batch_first))
            return (out if batched else out.squeeze(0)), None
        if not batch_first:
            query, key, value = _each(lambda t: t.transpose(0, 1), query, key, value, same)
        q, k, v = (self._heads(t, n) for t in self._project(query, key, value, same))
        weights = None
        if want_weights:
            weights = attention_weights(q, k, bias, causal)
            if self.save_attention:
                self.saved_attention = weights.detach()
            weights = F.dropout(weights, p, self.training)  # PyTorch returns the weights after dropout
            heads = weights @ v
        else:
            heads = scaled_dot_product_attention(q, k, v, bias, p, causal)
        out = self.out_proj(heads.permute(0, 2, 1, 3).reshape(n, L, self.embed_dim))
        if not batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            weights = None
        elif average_attn_weights:
            weights = weights.mean(1)
        if not batched:
            out = out.squeeze(0)
            weights = None if weights is None else weights.squeeze(0)
        return out, weights

    def _project(self, query: Tensor, key: Tensor, value: Tensor, same: bool) -> tuple:
        """The three input projections (one GEMM for self-attention with packed weights)."""
        E = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        if not self._qkv_same_embed_dim:
            return (F.linear(query, self.q_proj_weight, bq), F.linear(key, self.k_proj_weight, bk),
                    F.linear(value, self.v_proj_weight, bv))
        w = self.in_proj_weight
        if same:
            return F.linear(query, w, b).split(E, -1)
        return F.linear(query, w[:E], bq), F.linear(key, w[E:2 * E], bk), F.linear(value, w[2 * E:], bv)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"kdim={self.kdim}, vdim={self.vdim}, batch_first={self.batch_first}")

    def get_config(self) -> dict:
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "dropout": self.dropout,
                "bias": self.in_proj_bias is not None, "kdim": self.kdim, "vdim": self.vdim,
                "batch_first": self.batch_first}


def _data(mask):
    return mask.data if isinstance(mask, Tensor) else mask


def _each(fn, query: Tensor, key: Tensor, value: Tensor, same: bool) -> tuple:
    """``fn`` applied to query, key and value, once when they are one tensor (self-attention stays detectable)."""
    if same:
        query = fn(query)
        return query, query, query
    return fn(query), fn(key), fn(value)
