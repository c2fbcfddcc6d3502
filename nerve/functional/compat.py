"""The rest of PyTorch's functional names, composed from ops: in-place activations (``relu_``, ...),
``*_with_indices`` pooling, the deprecated ``upsample*`` spellings of ``interpolate``, ``pdist``, power-average
pooling (``lp_pool1d/2d/3d``), ``multilabel_margin_loss``, ``triplet_margin_with_distance_loss`` and
``embedding_bag``."""
from __future__ import annotations

import math
from typing import Callable

from nerve.autograd import ShapeError
from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.functional.activation import celu, elu, hardtanh, leaky_relu, rrelu, selu, threshold
from nerve.functional.distance import pairwise_distance
from nerve.functional.spatial import adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d, interpolate
from nerve import ops
from nerve.ops import (
    avg_pool1d, avg_pool2d, avg_pool3d, check_reduction, conv1d, max_pool1d, max_pool2d, max_pool3d, minimum,
    norm, ntuple, relu, where,
)
from nerve.tensor import Tensor

__all__ = ["relu_", "elu_", "leaky_relu_", "hardtanh_", "celu_", "selu_", "rrelu_", "threshold_",
           "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
           "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d_with_indices",
           "upsample", "upsample_nearest", "upsample_bilinear", "pdist", "lp_pool1d", "lp_pool2d", "lp_pool3d",
           "multilabel_margin_loss", "triplet_margin_with_distance_loss", "embedding_bag", "conv_tbc"]


def _in_place(fn: Callable, name: str) -> Callable:
    def op(input: Tensor, *args, **kwargs) -> Tensor:
        with no_grad():
            value = fn(input, *args, **kwargs).data
        input._check_inplace(name)
        input.data[...] = value
        return input
    op.__name__ = name
    op.__doc__ = f"``{fn.__name__}`` written into ``input`` (no graph through the change, as nerve's in-place ops)."
    return op


relu_, elu_, leaky_relu_ = _in_place(relu, "relu_"), _in_place(elu, "elu_"), _in_place(leaky_relu, "leaky_relu_")
hardtanh_, celu_, selu_ = _in_place(hardtanh, "hardtanh_"), _in_place(celu, "celu_"), _in_place(selu, "selu_")
rrelu_, threshold_ = _in_place(rrelu, "rrelu_"), _in_place(threshold, "threshold_")


def _with_indices(fn: Callable, name: str) -> Callable:
    def op(input: Tensor, *args, **kwargs) -> tuple:
        kwargs["return_indices"] = True
        return fn(input, *args, **kwargs)
    op.__name__ = name
    op.__doc__ = f"``{fn.__name__}(..., return_indices=True)``: (output, indices)."
    return op


max_pool1d_with_indices = _with_indices(max_pool1d, "max_pool1d_with_indices")
max_pool2d_with_indices = _with_indices(max_pool2d, "max_pool2d_with_indices")
max_pool3d_with_indices = _with_indices(max_pool3d, "max_pool3d_with_indices")
adaptive_max_pool1d_with_indices = _with_indices(adaptive_max_pool1d, "adaptive_max_pool1d_with_indices")
adaptive_max_pool2d_with_indices = _with_indices(adaptive_max_pool2d, "adaptive_max_pool2d_with_indices")
adaptive_max_pool3d_with_indices = _with_indices(adaptive_max_pool3d, "adaptive_max_pool3d_with_indices")


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None) -> Tensor:
    """The deprecated name of ``interpolate``."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """The deprecated ``interpolate(mode='nearest')``."""
    return interpolate(input, size, scale_factor, "nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """The deprecated ``interpolate(mode='bilinear', align_corners=True)``."""
    return interpolate(input, size, scale_factor, "bilinear", True)


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """p-norm distances between the rows of (N, M) ``input``, for every pair i < j in row-major order
    (the condensed N (N - 1) / 2 vector of scipy's ``pdist``)."""
    if input.ndim != 2:
        raise ShapeError(f"pdist: expected a 2-d (N, M) input, got shape {tuple(input.shape)}")
    i, j = xp.triu_indices(input.shape[0], 1)
    return norm(input[i] - input[j], p, dim=1)


def _lp_pool(n: int, pool: Callable, input: Tensor, norm_type: float, kernel_size, stride, ceil_mode: bool) -> Tensor:
    kernel = ntuple(kernel_size, n, "kernel_size", f"lp_pool{n}d")
    out = pool(input ** norm_type, kernel, stride, 0, ceil_mode)
    return (out.sign() * relu(out.abs()) * math.prod(kernel)) ** (1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """(sum over each window of x^p)^(1/p) over (N, C, L) (p = inf is max pooling, p = 1 sum pooling)."""
    return _lp_pool(1, avg_pool1d, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """(sum over each window of x^p)^(1/p) over (N, C, H, W)."""
    return _lp_pool(2, avg_pool2d, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """(sum over each window of x^p)^(1/p) over (N, C, D, H, W)."""
    return _lp_pool(3, avg_pool3d, input, norm_type, kernel_size, stride, ceil_mode)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def multilabel_margin_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Multi-label hinge loss: for each target class j (``target`` lists them, ended by the first -1) and each
    non-target class i, max(0, 1 - (x[j] - x[i])), summed and divided by the number of classes."""
    check_reduction("multilabel_margin_loss", reduction)
    labels = xp.asarray(target.data if isinstance(target, Tensor) else target)
    x = input if input.ndim == 2 else input.reshape(1, -1)
    labels = labels.reshape(x.shape)
    if labels.dtype.kind not in "iu" or input.ndim not in (1, 2):
        raise ShapeError(f"multilabel_margin_loss: expected input (C) or (N, C) and an integer target of its shape, "
                         f"got {tuple(input.shape)} and {labels.dtype}")
    n, c = x.shape
    counts = xp.zeros((n, c))
    for row in range(n):
        for label in labels[row]:
            if label < 0:
                break
            if label >= c:
                raise IndexError(f"multilabel_margin_loss: target class {int(label)} out of range for {c} classes")
            counts[row, label] += 1
    pairs = counts[:, :, None] * (counts == 0)[:, None, :]  # (target j, other i)
    hinge = relu(1 - x.unsqueeze(2) + x.unsqueeze(1))
    loss = (hinge * Tensor(pairs.astype(x.dtype))).sum((1, 2)) / c
    return _reduce(loss if input.ndim == 2 else loss[0], reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function: Callable | None = None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:
    """max(d(anchor, positive) - d(anchor, negative) + margin, 0) with any distance (default the pairwise
    Euclidean one); ``swap`` uses the smaller of d(anchor, negative) and d(positive, negative)."""
    check_reduction("triplet_margin_with_distance_loss", reduction)
    if margin <= 0:
        raise ValueError(f"triplet_margin_with_distance_loss: margin must be > 0, got {margin}")
    dist = distance_function if distance_function is not None else pairwise_distance
    d_pos, d_neg = dist(anchor, positive), dist(anchor, negative)
    if swap:
        d_neg = minimum(d_neg, dist(positive, negative))
    return _reduce(relu(margin + d_pos - d_neg), reduction)


def embedding_bag(input: Tensor, weight: Tensor, offsets=None, max_norm=None, norm_type: float = 2,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    """Sum, mean or max of each bag's embedding rows: bags are the rows of a 2-d ``input``, or the slices of a
    1-d ``input`` starting at ``offsets``; ``padding_idx`` entries are left out; an empty bag gives zeros."""
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"embedding_bag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if max_norm is not None:
        raise ValueError("embedding_bag: max_norm is not supported; renormalise the weight explicitly")
    if per_sample_weights is not None and mode != "sum":
        raise ValueError(f"embedding_bag: per_sample_weights needs mode='sum', got mode={mode!r}")
    idx = xp.asarray(input.data if isinstance(input, Tensor) else input)
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("embedding_bag: offsets must be None when input is 2-d (each row is a bag)")
        bags, mask = idx, xp.ones(idx.shape, dtype=bool)
        position = xp.arange(idx.size).reshape(idx.shape)
    elif idx.ndim == 1 and offsets is not None:
        starts = xp.asarray(offsets.data if isinstance(offsets, Tensor) else offsets).astype(xp.int64)
        ends = xp.append(starts[1:], idx.shape[0])
        if include_last_offset:
            starts, ends = starts[:-1], starts[1:]
        if starts.size and (starts[0] != 0 or (ends < starts).any() or ends[-1] > idx.shape[0]):
            raise ValueError(f"embedding_bag: offsets must start at 0 and not decrease, got {starts.tolist()}")
        width = int((ends - starts).max()) if starts.size else 0
        position = starts[:, None] + xp.arange(width)[None, :]
        mask = position < ends[:, None]
        position = xp.where(mask, position, 0)
        bags = idx[position] if idx.size else xp.zeros(position.shape, dtype=xp.int64)
    else:
        raise ShapeError(f"embedding_bag: expected a 2-d input, or a 1-d input with offsets; got shape "
                         f"{tuple(idx.shape)} and offsets={'given' if offsets is not None else None}")
    if padding_idx is not None:
        mask = mask & (bags != (padding_idx % weight.shape[0]))
    rows = ops.embedding(Tensor(xp.where(mask, bags, 0)), weight)  # (B, L, D)
    keep = Tensor(mask[..., None].astype(weight.dtype))
    if mode == "max":
        best = where(mask[..., None], rows, -math.inf).max(1).values
        return where(mask.any(1)[:, None], best, 0.0)
    if per_sample_weights is not None:
        flat = per_sample_weights.reshape(-1)
        keep = keep * flat[Tensor(position)].unsqueeze(-1)
    total = (rows * keep).sum(1)
    if mode == "sum":
        return total
    return total / Tensor(xp.maximum(mask.sum(1), 1)[:, None].astype(weight.dtype))


def conv_tbc(input: Tensor, weight: Tensor, bias: Tensor, pad: int = 0) -> Tensor:
    """1-d convolution in (time, batch, channels) layout: input (T, B, C_in), weight (K, C_in, C_out), bias
    (C_out), ``pad`` zeros at both ends of time; output (T + 2 pad - K + 1, B, C_out)."""
    if input.ndim != 3 or weight.ndim != 3 or input.shape[2] != weight.shape[1]:
        raise ShapeError(f"conv_tbc: expected input (T, B, C_in) and weight (K, C_in, C_out), got "
                         f"{tuple(input.shape)} and {tuple(weight.shape)}")
    return conv1d(input.permute(1, 2, 0), weight.permute(2, 1, 0), bias, padding=pad).permute(2, 0, 1)
