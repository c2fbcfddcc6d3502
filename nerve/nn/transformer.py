"""Transformer blocks with PyTorch's names and arguments: encoder and decoder layers, their stacks, and
positional encodings (sinusoidal or learned) that tell attention where each token sits."""
from __future__ import annotations

import copy
import math
from typing import Callable

from nerve import backend, functional as F
from nerve.backend import xp
from nerve.nn import init
from nerve.nn.attention import MultiheadAttention
from nerve.nn.containers import ModuleList
from nerve.nn.dropout import Dropout
from nerve.nn.linear import Linear, _empty
from nerve.nn.module import Module
from nerve.nn.normalization import LayerNorm
from nerve.ops import linear_gelu
from nerve.tensor import Tensor

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def _activation(name: str, activation) -> Callable:
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError(f"{name}: activation must be 'relu', 'gelu' or a callable, got {activation!r}")
        return _ACTIVATIONS[activation]
    if not callable(activation):
        raise TypeError(f"{name}: activation must be 'relu', 'gelu' or a callable, got {type(activation).__name__}")
    return activation


class _FeedForward(Module):
    """The position-wise MLP shared by both layers: linear1 -> activation -> dropout -> linear2 -> dropout."""

    def _ff_init(self, d_model: int, dim_feedforward: int, dropout: float, activation, bias: bool, device,
                 dtype) -> None:
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, device=device, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, device=device, dtype=dtype)
        self.activation = _activation(type(self).__name__, activation)

    def _ff_block(self, x: Tensor) -> Tensor:
        if self.activation is F.gelu:  # one fused node, and a fast erf in float32
            h = linear_gelu(x, self.linear1.weight, self.linear1.bias)
        else:
            h = self.activation(self.linear1(x))
        return self.linear2(self.dropout(h))


def _check_input(name: str, x: Tensor, d_model: int, what: str) -> None:
    if x.ndim not in (2, 3) or x.shape[-1] != d_model:
        raise ValueError(f"{name}: expected {what} (L, N, {d_model}), (N, L, {d_model}) with batch_first, or "
                         f"unbatched (L, {d_model}), got {tuple(x.shape)}")


class TransformerEncoderLayer(_FeedForward):
    """Self-attention then a feed-forward MLP, each with a residual connection and LayerNorm.

    Post-norm (``norm_first=False``, the original Transformer): x = norm(x + block(x)); pre-norm:
    x = x + block(norm(x)), which trains deep stacks more stably.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            device=device, dtype=dtype)
        self._ff_init(d_model, dim_feedforward, dropout, activation, bias, device, dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, device=device, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, device=device, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.config = {"d_model": d_model, "nhead": nhead, "dim_feedforward": dim_feedforward, "dropout": dropout,
                       "activation": activation if isinstance(activation, str) else "custom",
                       "layer_norm_eps": layer_norm_eps, "batch_first": batch_first, "norm_first": norm_first,
                       "bias": bias}

    def forward(self, src: Tensor, src_mask=None, src_key_padding_mask=None, is_causal: bool = False) -> Tensor:
        """Encode ``src`` (masks as in ``MultiheadAttention``: boolean True = may not attend)."""
        _check_input(type(self).__name__, src, self.self_attn.embed_dim, "src")
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self.dropout2(self._ff_block(self.norm2(x)))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self.dropout2(self._ff_block(x)))

    def _sa_block(self, x: Tensor, attn_mask, key_padding_mask, is_causal: bool) -> Tensor:
        out = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                             is_causal=is_causal)[0]
        return self.dropout1(out)

    def get_config(self) -> dict:
        return dict(self.config)


class TransformerDecoderLayer(_FeedForward):
    """Masked self-attention, attention over the encoder's output (``memory``), then a feed-forward MLP;
    each with a residual connection and LayerNorm (post-norm, or pre-norm with ``norm_first``)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            device=device, dtype=dtype)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, device=device, dtype=dtype)
        self._ff_init(d_model, dim_feedforward, dropout, activation, bias, device, dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, device=device, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, device=device, dtype=dtype)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, device=device, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.config = {"d_model": d_model, "nhead": nhead, "dim_feedforward": dim_feedforward, "dropout": dropout,
                       "activation": activation if isinstance(activation, str) else "custom",
                       "layer_norm_eps": layer_norm_eps, "batch_first": batch_first, "norm_first": norm_first,
                       "bias": bias}

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool = False, memory_is_causal: bool = False) -> Tensor:
        """Decode ``tgt`` attending to ``memory`` (masks as in ``MultiheadAttention``)."""
        name = type(self).__name__
        _check_input(name, tgt, self.self_attn.embed_dim, "tgt")
        _check_input(name, memory, self.self_attn.embed_dim, "memory")
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            return x + self.dropout3(self._ff_block(self.norm3(x)))
        x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
        return self.norm3(x + self.dropout3(self._ff_block(x)))

    def _sa_block(self, x: Tensor, attn_mask, key_padding_mask, is_causal: bool) -> Tensor:
        out = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                             is_causal=is_causal)[0]
        return self.dropout1(out)

    def _mha_block(self, x: Tensor, mem: Tensor, attn_mask, key_padding_mask, is_causal: bool) -> Tensor:
        out = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                  need_weights=False, is_causal=is_causal)[0]
        return self.dropout2(out)

    def get_config(self) -> dict:
        return dict(self.config)


def _clones(layer: Module, n: int) -> ModuleList:
    """``n`` independent deep copies of ``layer`` (PyTorch's stacks start from identical layers too)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"num_layers must be a positive int, got {n!r}")
    return ModuleList([copy.deepcopy(layer) for _ in range(n)])


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` applied in turn, then an optional final ``norm``."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: Module | None = None) -> None:
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Tensor, mask=None, src_key_padding_mask=None, is_causal: bool | None = None) -> Tensor:
        """Encode ``src`` through every layer with the same masks."""
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        return x if self.norm is None else self.norm(x)


class TransformerDecoder(Module):
    """``num_layers`` copies of ``decoder_layer`` applied in turn (each attending to ``memory``), then ``norm``."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Module | None = None) -> None:
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        """Decode ``tgt`` through every layer."""
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=bool(tgt_is_causal),
                      memory_is_causal=memory_is_causal)
        return x if self.norm is None else self.norm(x)


# --- positional encodings --------------------------------------------------------------------------------
class _PositionalEncoding(Module):
    """Adds a (max_len, d_model) table's first L rows to (L, N, d_model) or (N, L, d_model) inputs."""

    def _add(self, x: Tensor, table: Tensor) -> Tensor:
        name = type(self).__name__
        if x.ndim not in (2, 3) or x.shape[-1] != self.d_model:
            raise ValueError(f"{name}: expected input (L, N, {self.d_model}), (N, L, {self.d_model}) with "
                             f"batch_first, or (L, {self.d_model}), got {tuple(x.shape)}")
        length = x.shape[1] if (self.batch_first and x.ndim == 3) else x.shape[0]
        if length > self.max_len:
            raise ValueError(f"{name}: sequence length {length} exceeds max_len={self.max_len}")
        rows = table[:length]
        if x.ndim == 3 and not self.batch_first:
            rows = rows.unsqueeze(1)
        return self.dropout(x + rows)


class SinusoidalPositionalEncoding(_PositionalEncoding):
    """The fixed encoding of "Attention Is All You Need": pe[p, 2i] = sin(p / 10000^(2i/d)),
    pe[p, 2i+1] = cos(p / 10000^(2i/d)), added to the input, then dropout."""

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0, batch_first: bool = False,
                 dtype=None) -> None:
        super().__init__()
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first
        self.dropout = Dropout(dropout)
        position = xp.arange(max_len, dtype=xp.float64)[:, None]
        freq = xp.exp(xp.arange(0, d_model, 2, dtype=xp.float64) * (-math.log(10000.0) / d_model))
        pe = xp.zeros((max_len, d_model))
        pe[:, 0::2] = xp.sin(position * freq)
        pe[:, 1::2] = xp.cos(position * freq[: d_model // 2])
        self.register_buffer("pe", Tensor(pe, dtype=dtype or backend.get_default_dtype()), persistent=False)

    def forward(self, input: Tensor) -> Tensor:
        """``input`` plus the encoding of each position."""
        return self._add(input, self.pe.astype(input.dtype) if self.pe.dtype != input.dtype else self.pe)

    def extra_repr(self) -> str:
        return f"{self.d_model}, max_len={self.max_len}, batch_first={self.batch_first}"

    def get_config(self) -> dict:
        return {"d_model": self.d_model, "max_len": self.max_len, "dropout": self.dropout.p,
                "batch_first": self.batch_first}


class LearnedPositionalEncoding(_PositionalEncoding):
    """A learned vector per position (``weight``, (max_len, d_model), from N(0, 0.02) as in GPT-2), added to
    the input, then dropout."""

    def __init__(self, max_len: int, d_model: int, dropout: float = 0.0, batch_first: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first
        self.dropout = Dropout(dropout)
        self.weight = init.normal_(_empty((max_len, d_model), device, dtype), std=0.02)

    def forward(self, input: Tensor) -> Tensor:
        """``input`` plus the learned vector of each position."""
        return self._add(input, self.weight)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, d_model={self.d_model}, batch_first={self.batch_first}"

    def get_config(self) -> dict:
        return {"max_len": self.max_len, "d_model": self.d_model, "dropout": self.dropout.p,
                "batch_first": self.batch_first}
