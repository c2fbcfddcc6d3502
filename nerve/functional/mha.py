"""``F.multi_head_attention_forward``: PyTorch's functional multi-head attention (what ``nn.MultiheadAttention``
computes, with every weight passed in; CLIP's attention pooling calls it), composed from ops."""
from __future__ import annotations

import math

from nerve.autograd import ShapeError
from nerve.backend import xp
from nerve.functional.dropout import dropout
from nerve.ops import cat, linear, matmul, pad, softmax
from nerve.tensor import Tensor

__all__ = ["multi_head_attention_forward"]


def _mask(mask, name: str, shape: tuple, dtype) -> Tensor | None:
    """A boolean mask (True = may not attend) as -inf, a float mask as it is; broadcastable to ``shape``."""
    if mask is None:
        return None
    data = mask.data if isinstance(mask, Tensor) else xp.asarray(mask)
    if data.dtype == bool:
        return Tensor(xp.where(data, -math.inf, 0.0).astype(dtype))
    if not xp.issubdtype(data.dtype, xp.floating):
        raise TypeError(f"multi_head_attention_forward: {name} must be bool or floating, got {data.dtype}")
    return mask if isinstance(mask, Tensor) else Tensor(data.astype(dtype))


def multi_head_attention_forward(query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight: Tensor | None, in_proj_bias: Tensor | None, bias_k: Tensor | None,
                                 bias_v: Tensor | None, add_zero_attn: bool, dropout_p: float,
                                 out_proj_weight: Tensor, out_proj_bias: Tensor | None, training: bool = True,
                                 key_padding_mask=None, need_weights: bool = True, attn_mask=None,
                                 use_separate_proj_weight: bool = False, q_proj_weight: Tensor | None = None,
                                 k_proj_weight: Tensor | None = None, v_proj_weight: Tensor | None = None,
                                 static_k: Tensor | None = None, static_v: Tensor | None = None,
                                 average_attn_weights: bool = True, is_causal: bool = False) -> tuple:
    """Multi-head attention of (L, N, E) queries over (S, N, E) keys and values (or unbatched (L, E)): returns
    (output (L, N, E), weights (N, L, S) averaged over heads, (N, H, L, S) otherwise, or None)."""
    unbatched = query.ndim == 2
    if unbatched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0) if isinstance(key_padding_mask, Tensor) \
                else xp.asarray(key_padding_mask)[None]
    tgt_len, bsz, embed_dim = query.shape
    if embed_dim != embed_dim_to_check or embed_dim % num_heads:
        raise ShapeError(f"multi_head_attention_forward: query of shape {tuple(query.shape)} needs embed_dim "
                         f"{embed_dim_to_check}, divisible by num_heads={num_heads}")
    if is_causal and attn_mask is None:
        raise RuntimeError("multi_head_attention_forward: is_causal is a hint and needs attn_mask as well, as in "
                           "PyTorch")
    head = embed_dim // num_heads
    if use_separate_proj_weight:
        weights = (q_proj_weight, k_proj_weight, v_proj_weight)
    else:
        weights = tuple(in_proj_weight[i * embed_dim:(i + 1) * embed_dim] for i in range(3))
    biases = (None,) * 3 if in_proj_bias is None else \
        tuple(in_proj_bias[i * embed_dim:(i + 1) * embed_dim] for i in range(3))
    q, k, v = (linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases))
    mask = _mask(attn_mask, "attn_mask", (), q.dtype)
    if mask is not None and mask.ndim == 2:
        mask = mask.unsqueeze(0)
    padding = None if key_padding_mask is None else _mask(key_padding_mask, "key_padding_mask", (), q.dtype)
    if bias_k is not None and bias_v is not None:
        k = cat([k, bias_k.reshape(1, 1, embed_dim).expand(1, bsz, embed_dim)])
        v = cat([v, bias_v.reshape(1, 1, embed_dim).expand(1, bsz, embed_dim)])
        mask = None if mask is None else pad(mask, (0, 1))
        padding = None if padding is None else pad(padding, (0, 1))
    q = q.reshape(tgt_len, bsz * num_heads, head).transpose(0, 1)
    k = static_k if static_k is not None else k.reshape(k.shape[0], bsz * num_heads, head).transpose(0, 1)
    v = static_v if static_v is not None else v.reshape(v.shape[0], bsz * num_heads, head).transpose(0, 1)
    if add_zero_attn:
        k = cat([k, Tensor(xp.zeros((bsz * num_heads, 1, head), dtype=k.dtype))], dim=1)
        v = cat([v, Tensor(xp.zeros((bsz * num_heads, 1, head), dtype=v.dtype))], dim=1)
        mask = None if mask is None else pad(mask, (0, 1))
        padding = None if padding is None else pad(padding, (0, 1))
    src_len = k.shape[1]
    scores = matmul(q * (1.0 / math.sqrt(head)), k.transpose(1, 2))  # (N H, L, S)
    if mask is not None:
        scores = scores + mask
    if padding is not None:
        scores = (scores.reshape(bsz, num_heads, tgt_len, src_len) + padding.reshape(bsz, 1, 1, src_len)) \
            .reshape(bsz * num_heads, tgt_len, src_len)
    weights_ = softmax(scores, -1)
    attended = dropout(weights_, dropout_p, training) if dropout_p > 0 else weights_
    out = matmul(attended, v).transpose(0, 1).reshape(tgt_len, bsz, embed_dim)
    out = linear(out, out_proj_weight, out_proj_bias)
    per_head = weights_.reshape(bsz, num_heads, tgt_len, src_len) if need_weights else None
    if per_head is not None and average_attn_weights:
        per_head = per_head.mean(1)
    if unbatched:
        return out.squeeze(1), None if per_head is None else per_head.squeeze(0)
    return out, per_head
