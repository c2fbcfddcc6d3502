"""Pooling primitives for (N, C, *spatial) tensors, 1-d to 3-d: max and average over sliding windows.

They share convolution's geometry and channels-last window views (``nerve.ops.conv``). Max pooling records
which kernel offset holds each window's maximum; its backward places gradients there (``MaxScatter``), whose
adjoint reads values there (``MaxGather``): linear ops naming each other, so every order is differentiable.
Average pooling and its adjoint (spreading over the window) pair up the same way.
"""
from __future__ import annotations

import itertools
import math

from nerve.autograd.function import Function, ShapeError
from nerve.backend import xp
from nerve.ops import streams
from nerve.ops.channels_last import channels_first, contiguous_last
from nerve.ops.conv import Geometry, ntuple, padded_last, unpadded, window_geometry, windows
from nerve.tensor import Tensor

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


def _pool_geometry(op: str, size: tuple, kernel, stride, padding, dilation, ceil_mode: bool) -> Geometry:
    """Window placement of a pooling layer; ``ceil_mode`` adds a last partial window on the right
    (dropped when it would start in the right padding, as in PyTorch), even over an input smaller than one
    window."""
    n = len(size)
    kernel = ntuple(kernel, n, "kernel_size", op)
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and not stride) \
        else ntuple(stride, n, "stride", op)
    pad, dilation = ntuple(padding, n, "padding", op), ntuple(dilation, n, "dilation", op)
    if min(kernel + stride + dilation) < 1 or min(pad) < 0:
        raise ValueError(f"{op}: kernel_size, stride, dilation must be positive and padding non-negative, "
                         f"got {kernel}, {stride}, {dilation}, {pad}")
    if any(2 * p > k for p, k in zip(pad, kernel)):
        raise ValueError(f"{op}: padding {pad} must be at most half the kernel size {kernel}")
    hi = []
    for s, k, st, p, d in zip(size, kernel, stride, pad, dilation):
        span = s + 2 * p - d * (k - 1) - 1
        out = (span + (st - 1 if ceil_mode else 0)) // st + 1
        if ceil_mode and (out - 1) * st >= s + p:
            out -= 1
        if out < 1:  # NOTE: with ceil_mode, a window may overhang a smaller input (PyTorch's rule)
            raise ShapeError(f"{op}: input of spatial size {tuple(size)} (padded by {pad}) is smaller than the "
                             f"window {kernel} (dilation {dilation})")
        hi.append(max(p, (out - 1) * st + d * (k - 1) + 1 - s - p))
    return window_geometry(op, tuple(size), kernel, stride, dilation, pad, tuple(hi))


def _max_forward(x, geom: Geometry):
    """Window maxima (channels-last) and, per output, the index of the kernel offset that holds it; parts of
    the batch on nerve's threads under ``streams.set_threads``."""
    nsp, kk = len(geom.out), math.prod(geom.kernel)
    shape = x.shape[:1] + geom.out + x.shape[1:2]
    best = xp.empty_like(x, shape=shape, order="C")
    arg = xp.zeros_like(x, shape=shape, dtype=xp.uint8 if kk < 256 else xp.int32, order="C")
    lead = (slice(None),) * (1 + nsp)

    def part(a: int, b: int) -> None:
        win = windows(padded_last(x[a:b], geom, -xp.inf), geom)
        top, where = best[a:b], arg[a:b]
        for k, offset in enumerate(itertools.product(*(range(n) for n in geom.kernel))):
            v = win[lead + offset]
            if k == 0:
                xp.copyto(top, v)
                continue
            # NOTE: strict ">" keeps the first of equal maxima (PyTorch's choice, and ReLU makes ties common);
            # offsets rise with k, so max(arg, k * new) records k where new; masked copyto is 20x slower.
            xp.maximum(where, xp.multiply(v > top, k, dtype=where.dtype), out=where)
            xp.maximum(top, v, out=top)  # NaN propagates
    streams.split(part, x.shape[0], streams.SPLIT_COST * kk * best.size, x)
    return best, arg


def _max_scatter(g, arg, geom: Geometry, shape: tuple):
    """Each output gradient added at its window's maximum (strided adds per kernel offset); parts of the
    batch on nerve's threads under ``streams.set_threads``."""
    overlap = any(s < d * (k - 1) + 1 for s, d, k in zip(geom.stride, geom.dilation, geom.kernel))
    tiled = all(s == k and d == 1 and o * s == p for s, k, d, o, p in
                zip(geom.stride, geom.kernel, geom.dilation, geom.out, geom.padded))
    shape_cl = (shape[0],) + geom.padded + (shape[1],)
    # windows that tile the input write every position once: no zero fill needed
    dxp = xp.empty_like(g, shape=shape_cl, order="C") if tiled else xp.zeros_like(g, shape=shape_cl, order="C")
    lead = (slice(None),)

    def part(a: int, b: int) -> None:
        gl = contiguous_last(g[a:b])  # read once per offset: channels-last pays (measured 2.0 -> 1.4 ms)
        target, where_k = dxp[a:b], arg[a:b]
        for k, where in enumerate(geom.offsets()):
            if overlap:
                target[lead + where] += gl * (where_k == k)
            else:  # disjoint windows: each position is written once
                xp.multiply(gl, where_k == k, out=target[lead + where])
    streams.split(part, shape[0], streams.SPLIT_COST * math.prod(geom.kernel) * g.size, g)
    return channels_first(unpadded(dxp, geom))


def _max_gather(a, arg, geom: Geometry):
    """The values of ``a`` (input-shaped) at each window's recorded maximum (the scatter's adjoint)."""
    win = windows(padded_last(a, geom), geom)
    nsp = len(geom.out)
    lead = (slice(None),) * (1 + nsp)
    out = xp.zeros_like(arg, dtype=a.dtype, order="C")
    for k, offset in enumerate(itertools.product(*(range(n) for n in geom.kernel))):
        out += win[lead + offset] * (arg == k)
    return channels_first(out)


class MaxPool(Function):
    """Maximum over each window; the gradient goes to the (first) maximum of the window.

    ``keep``, a list, receives the recorded offsets (for ``return_indices``).
    """

    uses_inputs = False

    def forward(self, x, geom, keep=None):
        best, self.arg = _max_forward(x, geom)
        self.geom, self.shape = geom, x.shape
        if keep is not None:
            keep.append(self.arg)
        return channels_first(best)

    def backward(self, g, m):  # linear in g with the recorded positions: g goes to each window's maximum
        return m.apply(MaxScatter, g, self.arg, self.geom, self.shape), None, None


class MaxScatter(Function):
    """Output gradients placed at the recorded window maxima (the backward of ``MaxPool``)."""

    uses_inputs = False

    def forward(self, g, arg, geom, shape):
        self.arg, self.geom, self.shape = arg, geom, shape
        return _max_scatter(g, arg, geom, shape)

    def backward(self, gg, m):  # linear: its adjoint reads gg at the recorded maxima
        return m.apply(MaxGather, gg, self.arg, self.geom, self.shape), None, None, None


class MaxGather(Function):
    """Input-shaped values read at the recorded window maxima (the adjoint of ``MaxScatter``)."""

    uses_inputs = False

    def forward(self, a, arg, geom, shape):
        self.arg, self.geom, self.shape = arg, geom, shape
        return _max_gather(a, arg, geom)

    def backward(self, g, m):  # linear: its adjoint places g at the recorded maxima
        return m.apply(MaxScatter, g, self.arg, self.geom, self.shape), None, None, None


def _flat_indices(arg, geom: Geometry):
    """PyTorch's return_indices: each maximum's flat position in its (unpadded) input plane."""
    nsp = len(geom.size)
    plane_strides = [math.prod(geom.size[i + 1:]) for i in range(nsp)]
    base = xp.zeros(geom.out, dtype=xp.int64)
    for i in range(nsp):
        pos = xp.arange(geom.out[i], dtype=xp.int64) * geom.stride[i] - geom.lo[i]
        base = base + (pos * plane_strides[i]).reshape((-1,) + (1,) * (nsp - 1 - i))
    table = xp.array([sum(k[i] * geom.dilation[i] * plane_strides[i] for i in range(nsp))
                      for k in itertools.product(*(range(n) for n in geom.kernel))], dtype=xp.int64)
    return xp.ascontiguousarray(channels_first(table[arg] + base[..., None]))


def batched_spatial(op: str, input: Tensor, n: int) -> tuple:
    """(input as a batch, whether it was one unbatched example), after checking its number of dims."""
    if input.ndim not in (n + 1, n + 2):
        raise ShapeError(f"{op}: expected input (N, C, {_SPATIAL[n]}) or (C, {_SPATIAL[n]}), got "
                         f"{tuple(input.shape)}")
    unbatched = input.ndim == n + 1
    return (input.unsqueeze(0) if unbatched else input), unbatched


def _max_pool_nd(op: str, n: int, input: Tensor, kernel_size, stride, padding, dilation, ceil_mode: bool,
                 return_indices: bool):
    x, unbatched = batched_spatial(op, input, n)
    geom = _pool_geometry(op, tuple(x.shape[2:]), kernel_size, stride, padding, dilation, ceil_mode)
    keep: list = []
    out = MaxPool.apply(x, geom, keep)
    out = out.squeeze(0) if unbatched else out
    if not return_indices:
        return out
    idx = _flat_indices(keep[0], geom)
    return out, Tensor(idx[0] if unbatched else idx)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Maximum over sliding windows of (N, C, L); ``return_indices`` also gives each maximum's position."""
    return _max_pool_nd("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                        return_indices)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Maximum over sliding windows of (N, C, H, W) (stride defaults to the kernel size); padding is -inf.

    ``return_indices`` also returns each maximum's flat index h * W + w in its input plane (PyTorch's).
    """
    return _max_pool_nd("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                        return_indices)


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Maximum over sliding windows of (N, C, D, H, W); indices are flat positions (d * H + h) * W + w."""
    return _max_pool_nd("max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode,
                        return_indices)


def _window_sum(x, geom: Geometry):
    """Channels-last sums of every window (padding counts as zeros): one strided add per kernel offset."""
    win = windows(padded_last(x, geom), geom)
    lead = (slice(None),) * (1 + len(geom.out))
    offsets = list(itertools.product(*(range(n) for n in geom.kernel)))
    acc = win[lead + offsets[0]].copy()
    for offset in offsets[1:]:
        acc += win[lead + offset]
    return acc


def _window_spread(g, geom: Geometry, shape: tuple):
    """Each output value added to every input position of its window (the adjoint of a window sum)."""
    gl = contiguous_last(g)
    dxp = xp.zeros_like(gl, shape=(shape[0],) + geom.padded + (shape[1],), order="C")
    lead = (slice(None),)
    for where in geom.offsets():
        dxp[lead + where] += gl
    return channels_first(unpadded(dxp, geom))


class AvgPool(Function):
    """Window sums divided by ``divisor`` (a number or an array over the output positions)."""

    uses_inputs = False

    def forward(self, x, geom, divisor):
        self.geom, self.divisor, self.shape = geom, divisor, x.shape
        out = _window_sum(x, geom)
        out /= divisor
        return channels_first(out)

    def backward(self, g, m):  # linear: the adjoint spreads g / divisor over each window
        return m.apply(AvgPoolAdjoint, g, self.geom, self.divisor, self.shape), None, None


class AvgPoolAdjoint(Function):
    """g / divisor spread over every position of its window (the backward of ``AvgPool``)."""

    uses_inputs = False

    def forward(self, g, geom, divisor, shape):
        self.geom, self.divisor = geom, divisor
        return _window_spread(_scaled(g, divisor), geom, shape)

    def backward(self, gg, m):  # linear: the adjoint sums gg over each window, divided by divisor
        return m.apply(AvgPool, gg, self.geom, self.divisor), None, None, None


def _scaled(g, divisor):
    """g (channels-first) divided by a divisor given over channels-last output positions."""
    if isinstance(divisor, (int, float)):
        return g / divisor
    return g / divisor[..., 0]


def _divisor(geom: Geometry, count_include_pad: bool, divisor_override, pad: tuple):
    """The number each window sum is divided by: the window positions inside the input (and, with
    ``count_include_pad``, its user padding but not ceil_mode's overhang), or ``divisor_override``."""
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError("avg_pool: divisor_override must be non-zero")
        return float(divisor_override)
    counts = []
    for s, o, k, st, lo, p in zip(geom.size, geom.out, geom.kernel, geom.stride, geom.lo, pad):
        start = xp.arange(o)[:, None] * st - lo + xp.arange(k)
        low, high = (-p, s + p) if count_include_pad else (0, s)
        counts.append(((start >= low) & (start < high)).sum(axis=1))
    total = counts[0]
    for c in counts[1:]:
        total = total[..., None] * c
    if (total == math.prod(geom.kernel)).all():
        return float(math.prod(geom.kernel))
    return total[..., None]


def _avg_pool_nd(op: str, n: int, input: Tensor, kernel_size, stride, padding, ceil_mode: bool,
                 count_include_pad: bool, divisor_override=None) -> Tensor:
    x, unbatched = batched_spatial(op, input, n)
    geom = _pool_geometry(op, tuple(x.shape[2:]), kernel_size, stride, padding, 1, ceil_mode)
    divisor = _divisor(geom, count_include_pad, divisor_override, ntuple(padding, n, "padding", op))
    if not isinstance(divisor, float):
        divisor = divisor.astype(x.dtype)
    out = AvgPool.apply(x, geom, divisor)
    return out.squeeze(0) if unbatched else out


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Mean over sliding windows of (N, C, L) (zero padding counted unless ``count_include_pad=False``)."""
    return _avg_pool_nd("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over sliding windows of (N, C, H, W) (stride defaults to the kernel size)."""
    return _avg_pool_nd("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override)


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over sliding windows of (N, C, D, H, W) (stride defaults to the kernel size)."""
    return _avg_pool_nd("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override)


__all__ = ["avg_pool1d", "avg_pool2d", "avg_pool3d", "batched_spatial", "max_pool1d", "max_pool2d", "max_pool3d"]
#: functions that are also Tensor methods (none: these take layer arguments)
METHODS: list = []
