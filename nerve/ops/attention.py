"""Fused transformer primitives: scaled dot-product attention and its packed self-attention form.

Attention is softmax(q k^T * scale + bias) v in one graph node. Forward keeps the attention matrix
(and a dropout mask, when there is dropout) and nothing else; ``backward`` backpropagates through it on raw
arrays, and ``reference`` composes the same attention from matmul and softmax, which ``create_graph=True``
differentiates. Masks of every kind (causal, boolean, additive, key padding) become one additive
bias of 0 and -inf. A row whose every key is masked attends to nothing: its weights and output are 0
(PyTorch 2's ``scaled_dot_product_attention`` gives the same).
"""
from __future__ import annotations

import math

from nerve import backend
from nerve.autograd.function import Function, ShapeError
from nerve.backend import xp
from nerve.ops import streams
from nerve.ops.reduce import softmax
from nerve.ops.shape import expand
from nerve.tensor import Tensor


def _swap(a):
    """The last two axes swapped (a view)."""
    return xp.swapaxes(a, -1, -2)


# --- masks --------------------------------------------------------------------------------------
_causal_cache: dict = {}


def causal_bias(length: int, source_length: int, dtype):
    """(L, S) additive mask: 0 where key j <= query i, -inf above (the top-left aligned lower triangle)."""
    key = (length, source_length, xp.dtype(dtype).str)
    bias = _causal_cache.get(key)
    if bias is None:
        bias = xp.triu(xp.full((length, source_length), -xp.inf, dtype=dtype), 1)
        bias.flags.writeable = False
        if len(_causal_cache) > 64:
            _causal_cache.clear()
        _causal_cache[key] = bias
    return bias


def mask_to_bias(op: str, mask, dtype, attend_when_true: bool = True):
    """A boolean mask or an additive float mask (array or Tensor) as an additive bias array of ``dtype``.

    ``attend_when_true``: True marks allowed positions (``scaled_dot_product_attention``), False marks
    masked-out ones (``MultiheadAttention``'s ``attn_mask`` and ``key_padding_mask``).
    """
    m = mask.data if isinstance(mask, Tensor) else xp.asarray(mask)
    if m.dtype == bool:
        allowed = m if attend_when_true else ~m
        return xp.where(allowed, xp.zeros((), dtype), xp.asarray(-xp.inf, dtype))
    if m.dtype.kind != "f":
        raise TypeError(f"{op}: a mask must be boolean or floating (additive), got dtype {m.dtype}")
    return m.astype(dtype, copy=False)


# --- kernels on raw arrays -------------------------------------------------------------------------
_TINY = math.exp(-60.0)


def _row_sums(e):
    """Sums over the last axis, (..., L, 1), as a matrix-vector product (several times faster than sum(-1))."""
    return xp.matmul(e, xp.ones((e.shape[-1], 1), dtype=e.dtype))


def _softmax_fast_(s, diagonal: bool) -> bool:
    """Softmax over the last axis of ``s`` in place with a cheap shift: each row's diagonal entry
    (``diagonal``, for causal attention, where a query always sees its own key), else each (L, S) matrix's
    maximum. Returns False, with ``s`` spoiled, when a row needs its own maximum instead.

    NOTE: L row maxima cost an order of magnitude more than these shifts. exp keeps full relative precision
    far below e^-60, so a row is exact unless its sum falls below e^-60 (it lies that far below the matrix
    maximum, or is fully masked) or overflows (an entry 88 above the diagonal); those redo it row by row.
    With the diagonal shift each row depends on its own allowed entries only, so future keys never change a
    causal output, not even by rounding.
    """
    if diagonal:
        m = xp.diagonal(s, axis1=-2, axis2=-1)[..., None].copy()
    else:
        m = s.reshape(s.shape[:-2] + (-1,)).max(axis=-1)[..., None, None]
    if not xp.isfinite(m).all():
        return False
    s -= m
    with xp.errstate(over="ignore"):
        xp.exp(s, out=s)
    total = _row_sums(s)
    if not (total.min() >= _TINY and xp.isfinite(total).all()):
        return False
    xp.reciprocal(total, out=total)
    s *= total
    return True


def _softmax_rows_(s):
    """Softmax over the last axis of ``s`` in place, each row shifted by its own maximum; rows that are all
    -inf become 0. Returns the boolean (..., L, 1) array of those dead rows, or None when there are none."""
    m = s.max(axis=-1, keepdims=True)
    dead = xp.isneginf(m)
    if dead.any():
        m[dead] = 0.0
    else:
        dead = None
    s -= m
    xp.exp(s, out=s)
    total = _row_sums(s)
    if dead is not None:
        total[dead] = 1.0
    xp.reciprocal(total, out=total)
    s *= total
    return dead


def _scores(q, k, bias, scale, out=None):
    """q k^T * scale + bias, (..., L, S) (in ``out`` when given and the bias does not widen it)."""
    s = xp.matmul(q * scale, _swap(k), out=out)
    if bias is not None:
        if xp.broadcast_shapes(s.shape, bias.shape) == s.shape:
            s += bias
        else:
            s = s + bias
    return s


def _attention_forward(q, k, v, bias, scale, keep, causal, out=None, scores=None):
    """(P~ v, P, dead) with P = softmax(q k^T scale + bias) and P~ = P * keep (dropout), or P; P is computed in
    ``scores`` when given (and fits)."""
    s = _scores(q, k, bias, scale, scores)
    dead = None
    if s.size and not _softmax_fast_(s, causal and s.shape[-1] == s.shape[-2]):
        s = _scores(q, k, bias, scale, scores)
        dead = _softmax_rows_(s)
    pd = s if keep is None else s * keep
    if out is None:
        return xp.matmul(pd, v), s, dead
    xp.matmul(pd, v, out=out)
    return out, s, dead


def _attention_grads(g, q, k, v, p, keep, scale, needs, outs=(None, None, None)):
    """Raw-array gradients (dq, dk, dv, dS), before undoing broadcasting; dS, the scores' gradient, is also
    the additive mask's (``needs`` has a fourth flag for it); ``outs`` are optional buffers."""
    nq, nk, nv = needs[:3]
    nb = len(needs) > 3 and needs[3]
    dq = dk = dv = ds = None
    if nv:
        pd = p if keep is None else p * keep
        dv = xp.matmul(_swap(pd), g, out=outs[2])
    if nq or nk or nb:
        ds = xp.matmul(g, _swap(v))
        if keep is not None:
            ds *= keep
        # dS = P (dP - rowsum(dP P)) is the softmax's backward; the scale is applied to dq, dk (smaller)
        rowsum = xp.einsum("...ij,...ij->...i", ds, p)[..., None]
        ds -= rowsum
        ds *= p
        if nq:
            dq = xp.matmul(ds, k, out=outs[0])
            dq *= scale
        if nk:
            dk = xp.matmul(_swap(ds), q, out=outs[1])
            dk *= scale
    return dq, dk, dv, ds


# --- the same attention composed from primitives (the kernels' reference) -----------------------------------
def _weights_composed(s: Tensor, bias, dead) -> Tensor:
    """softmax(s + bias) over the last axis (``bias`` an array or a Tensor); the rows in ``dead`` (every key
    masked) are 0, as in the kernel."""
    if bias is None:
        return softmax(s, -1)
    if dead is None:
        return softmax(s + bias, -1)
    logits = (s + bias).masked_fill(dead, 0.0)  # a row of -inf only would give NaN
    return softmax(logits, -1) * (~dead).astype(s.dtype)


def _attention_composed(q: Tensor, k: Tensor, v: Tensor, bias, dead, keep, scale: float) -> Tensor:
    """P~ v, P = softmax(q k^T scale + bias), P~ = P * keep (the dropout multiplier) or P, from primitives."""
    p = _weights_composed((q * scale) @ k.mT, bias, dead)
    return (p if keep is None else p * keep) @ v


def _dropout_keep(shape: tuple, p: float, dtype):
    """The dropout multiplier of the attention weights: 0 with probability p, else 1 / (1 - p)."""
    keep = backend.default_generator().random(shape, dtype=xp.float32) >= p
    return xp.multiply(keep, 1.0 / (1.0 - p), dtype=dtype)


# --- scaled dot-product attention --------------------------------------------------------------------
def _attention_flops(q, k, v) -> float:
    """Multiply-adds x 2 of q k^T and P v."""
    return 2.0 * q.size * k.shape[-2] + 2.0 * q.size // q.shape[-1] * k.shape[-2] * v.shape[-1]


def _cut_on_threads(q, k, v) -> bool:
    """Whether attention runs in parts of its leading batch dim on nerve's own threads (set_threads): NumPy
    arrays of the same batch shape (none broadcast) with enough work."""
    return bool(streams.THREADS) and q.ndim >= 3 and q.shape[0] > 1 and q.shape[:-2] == k.shape[:-2] == v.shape[:-2] \
        and q.__class__ is backend.ndarray and _attention_flops(q, k, v) >= streams.SPLIT_FLOPS


def _rows(x, a: int, b: int, q):
    """Rows [a, b) of x's leading dim when x has q's batch dims there; else x, which broadcasts (or None)."""
    return x[a:b] if x is not None and x.ndim == q.ndim and x.shape[0] == q.shape[0] else x


class ScaledDotProductAttention(Function):
    """softmax(q k^T * scale + bias) v over the last two axes; batch axes broadcast. ``bias`` is an array, or a
    Tensor (a float ``attn_mask`` that requires grad) that receives dS summed to its shape."""

    def forward(self, q, k, v, bias, scale, dropout_p, causal):
        shape = xp.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2]) + (q.shape[-2], k.shape[-2])
        keep = _dropout_keep(shape, dropout_p, q.dtype) if dropout_p > 0.0 else None
        self.keep, self.scale = keep, scale
        if _cut_on_threads(q, k, v):
            out = xp.empty(q.shape[:-1] + v.shape[-1:], dtype=q.dtype)
            self.p = xp.empty(shape, dtype=q.dtype)

            def part(a: int, b: int) -> tuple:
                rows = self.p[a:b]
                _, p, dead = _attention_forward(q[a:b], k[a:b], v[a:b], _rows(bias, a, b, q), scale,
                                                _rows(keep, a, b, q), causal, out=out[a:b], scores=rows)
                if p is not rows:  # a bias that widened the scores
                    rows[...] = p
                return a, b, dead
            parts = streams.split(part, q.shape[0], _attention_flops(q, k, v), q)
            self.dead = None
            if any(dead is not None for _, _, dead in parts):
                self.dead = xp.zeros(shape[:-1] + (1,), dtype=bool)
                for a, b, dead in parts:
                    if dead is not None:
                        self.dead[a:b] = dead
            return out
        out, self.p, self.dead = _attention_forward(q, k, v, bias, scale, keep, causal)
        return out

    def backward(self, g, m):  # dv = P~^T g; dS = P (dP - rowsum(dP P)), dP = g v^T keep; dq = dS k s; dk = dS^T q s;
        q, k, v, bias = m.inputs(self)[:4]  # d bias = dS
        needs = self.needs_input_grad
        if not needs[3] and g.__class__ is backend.ndarray and _cut_on_threads(q, k, v):
            dq, dk, dv = (xp.empty_like(x) if need else None for x, need in zip((q, k, v), needs))

            def part(a: int, b: int) -> None:
                _attention_grads(g[a:b], q[a:b], k[a:b], v[a:b], self.p[a:b], _rows(self.keep, a, b, q), self.scale,
                                 needs[:3], tuple(None if d is None else d[a:b] for d in (dq, dk, dv)))
            streams.split(part, q.shape[0], 2.0 * _attention_flops(q, k, v), q)
            return dq, dk, dv, None, None, None, None
        grads = _attention_grads(g, q, k, v, self.p, self.keep, self.scale, self.needs_input_grad[:4])
        if not self.needs_input_grad[3]:
            grads = grads[:3] + (None,)
        return tuple(None if d is None else m.sum_to(d, x.shape)
                     for d, x in zip(grads, (q, k, v, bias))) + (None, None, None)

    def reference(self, q, k, v, bias, scale, dropout_p, causal):
        return _attention_composed(q, k, v, bias, self.dead, self.keep, scale)


def _check_mask_shape(op: str, bias, scores_shape: tuple, what: str) -> None:
    try:
        xp.broadcast_shapes(tuple(bias.shape), scores_shape)
    except ValueError:
        raise ShapeError(f"{op}: {what} of shape {tuple(bias.shape)} does not broadcast to the attention "
                         f"scores {scores_shape}") from None


def _repeat_heads(x: Tensor, repeats: int) -> Tensor:
    """(..., H, S, E) -> (..., H * repeats, S, E), each head repeated in place (repeat_interleave on dim -3)."""
    if repeats == 1:
        return x
    shape = tuple(x.shape)
    wide = expand(x.unsqueeze(-3), *(shape[:-2] + (repeats,) + shape[-2:]))
    return wide.reshape(shape[:-3] + (shape[-3] * repeats,) + shape[-2:])


def _grouped_heads(op: str, query: Tensor, key: Tensor, value: Tensor) -> tuple:
    """Key and value with their heads (dim -3) repeated to the query's number of heads (``enable_gqa``)."""
    if query.ndim < 3 or key.ndim < 3 or value.ndim < 3:
        raise ShapeError(f"{op}: enable_gqa=True needs heads at dim -3, (..., H, L, E), got query "
                         f"{tuple(query.shape)}, key {tuple(key.shape)} and value {tuple(value.shape)}")
    heads = query.shape[-3]
    if heads % key.shape[-3] or heads % value.shape[-3]:
        raise ShapeError(f"{op}: the number of heads in key ({key.shape[-3]}) and value ({value.shape[-3]}) must "
                         f"divide the number of heads in query ({heads})")
    return _repeat_heads(key, heads // key.shape[-3]), _repeat_heads(value, heads // value.shape[-3])


def _additive_mask(op: str, attn_mask, dtype):
    """The bias for ``attn_mask``: the Tensor itself when it is a float mask that requires grad (so it gets
    one), else an array (``mask_to_bias``)."""
    if isinstance(attn_mask, Tensor) and attn_mask.requires_grad:
        if attn_mask.dtype != dtype:
            raise TypeError(f"{op}: a float attn_mask that requires grad must have the query's dtype {dtype}, "
                            f"got {attn_mask.dtype}")
        return attn_mask
    return mask_to_bias(op, attn_mask, dtype)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None, enable_gqa: bool = False) -> Tensor:
    """softmax(query key^T * scale + mask) value, as one fused node (PyTorch's semantics).

    Shapes (..., L, E), (..., S, E), (..., S, Ev) -> (..., L, Ev), batch axes broadcast. ``attn_mask``:
    boolean (True = may attend) or additive float, broadcastable to (..., L, S); a float mask that requires
    grad receives one (a learned bias). ``is_causal`` masks keys after each query (top-left aligned);
    ``scale`` defaults to 1/sqrt(E); ``dropout_p`` drops attention weights (always, as in PyTorch: pass 0
    when evaluating); ``enable_gqa`` repeats key and value heads (dim -3) to the query's number of heads
    (grouped-query attention). Shape mismatches raise ``ShapeError``: a RuntimeError, as in PyTorch.
    """
    op = "scaled_dot_product_attention"
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ShapeError(f"{op}: query, key and value need at least 2 dimensions (..., length, features), got "
                         f"{tuple(query.shape)}, {tuple(key.shape)} and {tuple(value.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ShapeError(f"{op}: expected query (..., L, E), key (..., S, E), value (..., S, Ev), got "
                         f"{tuple(query.shape)}, {tuple(key.shape)} and {tuple(value.shape)}")
    if enable_gqa:
        key, value = _grouped_heads(op, query, key, value)
    try:
        batch = xp.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except ValueError:
        raise ShapeError(f"{op}: the batch dimensions of query {tuple(query.shape)}, key {tuple(key.shape)} "
                         f"and value {tuple(value.shape)} do not broadcast (different numbers of heads need "
                         "enable_gqa=True)") from None
    if query.dtype != key.dtype or query.dtype != value.dtype or query.dtype.kind != "f":
        raise TypeError(f"{op}: query, key and value must share one floating dtype, got {query.dtype}, "
                        f"{key.dtype} and {value.dtype}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1), got {dropout_p}")
    if is_causal and attn_mask is not None:
        raise RuntimeError(f"{op}: explicit attn_mask should not be set when is_causal=True (fold the causal "
                           "mask into attn_mask)")
    L, S = query.shape[-2], key.shape[-2]
    bias = None
    if is_causal:
        bias = causal_bias(L, S, query.dtype)
    elif attn_mask is not None:
        bias = _additive_mask(op, attn_mask, query.dtype)
        _check_mask_shape(op, bias, batch + (L, S), "attn_mask")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    return ScaledDotProductAttention.apply(query, key, value, bias, scale, float(dropout_p), bool(is_causal))


def attention_weights(query: Tensor, key: Tensor, attn_mask=None, is_causal: bool = False,
                      scale: float | None = None) -> Tensor:
    """The attention matrix softmax(query key^T * scale + mask), (..., L, S), built from Tensor ops.

    Same masks as ``scaled_dot_product_attention``; for inspecting attention or for layers that return it.
    """
    L, S = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    s = (query * scale) @ key.mT
    if is_causal:
        bias = causal_bias(L, S, query.dtype)
    elif attn_mask is not None:
        bias = mask_to_bias("attention_weights", attn_mask, query.dtype)
        _check_mask_shape("attention_weights", bias, tuple(s.shape), "attn_mask")
    else:
        return softmax(s, -1)
    dead = xp.isneginf(xp.broadcast_to(bias, s.shape)).all(axis=-1, keepdims=True)
    return _weights_composed(s, bias, dead if dead.any() else None)


# --- packed self-attention -----------------------------------------------------------------------------
class PackedSelfAttention(Function):
    """Multi-head attention on packed projections: qkv (B, T, 3E) -> (B, T, E), heads split and merged
    by strided views, so no transpose is ever copied (``batch_first=False`` takes (T, B, 3E))."""

    def forward(self, qkv, num_heads, bias, scale, dropout_p, causal, batch_first):
        self.layout = (0, 2, 1, 3) if batch_first else (1, 2, 0, 3)
        q, k, v = self._heads(qkv, num_heads)
        shape = q.shape[:-1] + (k.shape[-2],)
        keep = _dropout_keep(shape, dropout_p, qkv.dtype) if dropout_p > 0.0 else None
        out = xp.empty(qkv.shape[:-1] + (qkv.shape[-1] // 3,), dtype=qkv.dtype)
        merged = out.reshape(out.shape[:-1] + (num_heads, -1)).transpose(self.layout)
        _, p, dead = _attention_forward(q, k, v, bias, scale, keep, causal, merged)
        self.p, self.dead, self.keep, self.scale = p, dead, keep, scale
        self.num_heads = num_heads
        return out

    def _heads(self, qkv, num_heads: int):
        """q, k, v as (B, H, T, D) views of the packed array (Tensor or raw array)."""
        a, b, c = qkv.shape
        parts = qkv.reshape(a, b, 3, num_heads, c // (3 * num_heads))
        return tuple(parts[:, :, i].permute(*self.layout) if isinstance(parts, Tensor)
                     else parts[:, :, i].transpose(self.layout) for i in range(3))

    def backward(self, g, m):  # each head's attention rule, written into views of one packed gradient
        qkv = m.inputs(self)[0]
        q, k, v = self._heads(qkv, self.num_heads)
        gqkv = xp.empty_like(qkv)
        outs = self._heads(gqkv, self.num_heads)
        g = g.reshape(g.shape[:-1] + (self.num_heads, -1)).transpose(self.layout)
        _attention_grads(g, q, k, v, self.p, self.keep, self.scale, (True, True, True), outs)
        return gqkv, None, None, None, None, None, None

    def reference(self, qkv, num_heads, bias, scale, dropout_p, causal, batch_first):
        heads = _attention_composed(*self._heads(qkv, num_heads), bias, self.dead, self.keep, scale)
        inverse = [self.layout.index(i) for i in range(4)]
        return heads.permute(*inverse).reshape(tuple(qkv.shape[:-1]) + (qkv.shape[-1] // 3,))


def packed_self_attention(qkv: Tensor, num_heads: int, attn_mask=None, dropout_p: float = 0.0,
                          is_causal: bool = False, scale: float | None = None,
                          batch_first: bool = True) -> Tensor:
    """Multi-head self-attention of packed projections: (B, T, 3E) [q | k | v] -> (B, T, E), one node.

    Each of q, k, v splits into ``num_heads`` heads of E / num_heads features; the heads' outputs come
    back concatenated, ready for the output projection. Masks as in ``scaled_dot_product_attention``,
    broadcastable to (B, num_heads, T, T). ``batch_first=False`` takes and returns (T, B, ...).
    """
    op = "packed_self_attention"
    if qkv.ndim != 3 or qkv.shape[-1] % (3 * num_heads):
        raise ShapeError(f"{op}: expected qkv (batch, length, 3 * embed_dim) with embed_dim divisible by "
                         f"num_heads={num_heads}, got {tuple(qkv.shape)}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1), got {dropout_p}")
    if is_causal and attn_mask is not None:
        raise RuntimeError(f"{op}: explicit attn_mask should not be set when is_causal=True")
    T = qkv.shape[1] if batch_first else qkv.shape[0]
    B = qkv.shape[0] if batch_first else qkv.shape[1]
    bias = None
    if is_causal:
        bias = causal_bias(T, T, qkv.dtype)
    elif attn_mask is not None:
        bias = mask_to_bias(op, attn_mask, qkv.dtype)
        _check_mask_shape(op, bias, (B, num_heads, T, T), "attn_mask")
    head_dim = qkv.shape[-1] // (3 * num_heads)
    scale = 1.0 / math.sqrt(head_dim) if scale is None else float(scale)
    return PackedSelfAttention.apply(qkv, num_heads, bias, scale, float(dropout_p), bool(is_causal),
                                     batch_first)


__all__ = ["attention_weights", "causal_bias", "mask_to_bias", "packed_self_attention",
           "scaled_dot_product_attention"]
#: functions that are also Tensor methods (none here)
METHODS = []
