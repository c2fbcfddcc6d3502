"""Spatial functions of (N, C, *spatial) tensors: the convolution and pooling primitives of ``nerve.ops``, and
what is composed from ops: padding modes, unpooling, adaptive pooling and ``interpolate``. The compositions gather along
each dim or reuse the pooling primitives, so every derivative exists."""
from __future__ import annotations

import math

from nerve.autograd import ShapeError
from nerve.backend import xp
from nerve.functional.vision import cubic_weights
from nerve.ops import (  # noqa: F401  (re-exported: the convolution and pooling primitives)
    avg_pool1d, avg_pool2d, avg_pool3d, batched_spatial, conv1d, conv2d, conv3d, conv_transpose1d,
    conv_transpose2d, conv_transpose3d, gather, index_select, matmul, max_pool1d, max_pool2d, max_pool3d, ntuple,
    pad as constant_pad, scatter,
)
from nerve.tensor import Tensor

_MAX_POOL = {1: max_pool1d, 2: max_pool2d, 3: max_pool3d}


# --- padding modes ----------------------------------------------------------------------------------
def _source_index(n: int, lo: int, hi: int, mode: str):
    """For each position of a dim of length n padded by (lo, hi), the input position it copies."""
    p = xp.arange(-lo, n + hi)
    if mode == "reflect":
        period = 2 * (n - 1)
        p = xp.abs(p) % period if period else xp.zeros_like(p)
        return xp.where(p >= n, period - p, p)
    if mode == "replicate":
        return xp.clip(p, 0, n - 1)
    return p % n


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """PyTorch's F.pad: ``pad`` = (left, right) of the last dim, then of the one before, ...

    Modes: "constant" (``value``), "reflect" (mirror without repeating the edge, width < size), "replicate"
    (repeat the edge), "circular" (wrap around, width <= size). Negative widths crop, in every mode, as in
    PyTorch: reflect and replicate index the whole input (output j reads input j - left, mirrored or clamped),
    circular crops first and wraps within what is left. The non-constant modes gather along each padded dim,
    so their backward adds border gradients back.
    """
    widths = tuple(int(p) for p in pad)
    if mode == "constant":
        return constant_pad(input, widths, 0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if len(widths) % 2 or len(widths) // 2 > input.ndim - 1:
        raise ValueError(f"pad: {mode} padding takes (left, right) pairs for at most {input.ndim - 1} trailing "
                         f"dims of an input of shape {tuple(input.shape)}, got {widths}")
    out = input
    for i in range(len(widths) // 2):
        dim = input.ndim - 1 - i
        lo, hi, n = widths[2 * i], widths[2 * i + 1], input.shape[dim]
        if n + lo + hi < 0:
            raise ValueError(f"pad: {mode} padding {(lo, hi)} of dim {dim} (size {n}) of input "
                             f"{tuple(input.shape)} crops more than the dim holds")
        if n + lo + hi == 0:  # cropped away
            index = xp.zeros(0, dtype=xp.int64)
        elif mode == "circular":  # crop, then wrap within the rest
            kept = n + min(lo, 0) + min(hi, 0)
            if max(lo, hi) > kept:
                raise ValueError(f"pad: circular padding {(lo, hi)} of dim {dim} (size {n}, {kept} after "
                                 f"cropping) of input {tuple(input.shape)} must be at most {kept}")
            index = max(-lo, 0) + _source_index(kept, max(lo, 0), max(hi, 0), mode)
        else:
            if mode == "reflect" and max(lo, hi) >= n:
                raise ValueError(f"pad: reflect padding {(lo, hi)} of dim {dim} (size {n}) of input "
                                 f"{tuple(input.shape)} must be smaller than the size")
            index = _source_index(n, lo, hi, mode)
        if lo or hi:
            out = index_select(out, dim, index)
    return out


# --- unpooling --------------------------------------------------------------------------------------
def _max_unpool_nd(op: str, n: int, input: Tensor, indices, kernel_size, stride, padding, output_size) -> Tensor:
    x, unbatched = batched_spatial(op, input, n)
    idx = xp.asarray(indices.data if isinstance(indices, Tensor) else indices)
    idx = idx[None] if unbatched else idx
    if tuple(idx.shape) != tuple(x.shape) or idx.dtype.kind not in "iu":
        raise ShapeError(f"{op}: indices must be integers of the input's shape {tuple(input.shape)}, got "
                         f"{idx.dtype} {tuple(xp.shape(indices))}")
    kernel = ntuple(kernel_size, n, "kernel_size", op)
    stride = kernel if stride is None else ntuple(stride, n, "stride", op)
    pads = ntuple(padding, n, "padding", op)
    default = tuple((s - 1) * st - 2 * p + k for s, st, p, k in zip(x.shape[2:], stride, pads, kernel))
    size = default
    if output_size is not None:
        size = tuple(int(s) for s in output_size)[-n:]
        if len(size) != n or any(not d - st < s < d + st for s, d, st in zip(size, default, stride)):
            raise ValueError(f"{op}: output_size {tuple(output_size)} must be within the stride {stride} of the "
                             f"default size {default}")
    plane = math.prod(size)
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= plane):
        raise RuntimeError(f"{op}: indices must lie in [0, {plane}) for the output size {size}, got values in "
                           f"[{int(idx.min())}, {int(idx.max())}]")
    zeros = Tensor._make(xp.zeros(x.shape[:2] + (plane,), dtype=x.dtype), None)
    out = scatter(zeros, 2, idx.reshape(idx.shape[:2] + (-1,)), x.reshape(x.shape[:2] + (-1,)))
    out = out.reshape(tuple(x.shape[:2]) + size)
    return out.squeeze(0) if unbatched else out


def max_unpool1d(input: Tensor, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """The inverse of ``max_pool1d``: each value put back at its index (from ``return_indices=True``), zeros
    elsewhere; output length (L - 1) stride - 2 padding + kernel_size unless ``output_size`` says."""
    return _max_unpool_nd("max_unpool1d", 1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input: Tensor, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """The inverse of ``max_pool2d``: each value of (N, C, H, W) put back at its flat index h * W_out + w in
    its output plane (from ``return_indices=True``), zeros elsewhere."""
    return _max_unpool_nd("max_unpool2d", 2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input: Tensor, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """The inverse of ``max_pool3d``: each value of (N, C, D, H, W) put back at its flat index, zeros elsewhere."""
    return _max_unpool_nd("max_unpool3d", 3, input, indices, kernel_size, stride, padding, output_size)


# --- adaptive pooling -------------------------------------------------------------------------------
def _adaptive_bins(size: int, out: int):
    """PyTorch's adaptive bins: [floor(i S / O), ceil((i + 1) S / O)) for each output i."""
    i = xp.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


def _adaptive_sizes(op: str, input: Tensor, n: int, output_size) -> tuple:
    """``output_size`` as n ints (None keeps the input's size), checked."""
    sizes = ntuple(output_size, n, "output_size", op) if not isinstance(output_size, (tuple, list)) \
        else tuple(input.shape[-n + i] if s is None else int(s) for i, s in enumerate(output_size))
    if len(sizes) != n or min(sizes) < 1:
        raise ValueError(f"{op}: output_size must be {n} positive ints (or None to keep a size), "
                         f"got {output_size!r}")
    if min(input.shape[-n:]) < 1:
        raise ValueError(f"{op}: input {tuple(input.shape)} has an empty spatial dim")
    return sizes


def _adaptive_avg_nd(op: str, n: int, input: Tensor, output_size) -> Tensor:
    x, unbatched = batched_spatial(op, input, n)
    sizes = _adaptive_sizes(op, x, n, output_size)
    spatial = tuple(x.shape[2:])
    if all(s % o == 0 for s, o in zip(spatial, sizes)):  # even bins: split each dim into (bins, bin size)
        split = x.shape[:2] + tuple(v for o, s in zip(sizes, spatial) for v in (o, s // o))
        out = x.reshape(split).mean(tuple(range(3, 3 + 2 * n, 2)))
    else:  # uneven bins: multiply by an averaging matrix along each dim
        out = x
        for i, (s, o) in enumerate(zip(spatial, sizes)):
            start, end = _adaptive_bins(s, o)
            pos = xp.arange(s)
            a = ((pos >= start[:, None]) & (pos < end[:, None])) / (end - start)[:, None]
            a = Tensor._make(a.T.astype(x.dtype), None)
            dim = 2 + i
            out = matmul(out.movedim(dim, -1), a).movedim(-1, dim)
    return out.squeeze(0) if unbatched else out


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Mean over ``output_size`` adaptive bins of (N, C, L) (PyTorch's bin edges)."""
    return _adaptive_avg_nd("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Mean over an (OH, OW) grid of adaptive bins of (N, C, H, W); 1 gives global average pooling."""
    return _adaptive_avg_nd("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    """Mean over an (OD, OH, OW) grid of adaptive bins of (N, C, D, H, W); 1 gives global average pooling."""
    return _adaptive_avg_nd("adaptive_avg_pool3d", 3, input, output_size)


def _adaptive_max_nd(op: str, n: int, input: Tensor, output_size, return_indices: bool):
    x, unbatched = batched_spatial(op, input, n)
    sizes = _adaptive_sizes(op, x, n, output_size)
    spatial = tuple(x.shape[2:])
    k = tuple(s // o for s, o in zip(spatial, sizes))
    if all(s % o == 0 for s, o in zip(spatial, sizes)) and math.prod(k) <= 16 and not return_indices:
        out = _MAX_POOL[n](x, k, k)
        return out.squeeze(0) if unbatched else out
    # uneven or large bins: each output's window as flat positions (bins padded to the longest by repeating
    # their last element)
    table = xp.zeros((1, 1), dtype=xp.int64)
    for i, (s, o) in enumerate(zip(spatial, sizes)):
        start, end = _adaptive_bins(s, o)
        length = int((end - start).max())
        pos = xp.minimum(start[:, None] + xp.arange(length), end[:, None] - 1) * math.prod(spatial[i + 1:])
        table = (table[:, None, :, None] + pos[None, :, None, :]).reshape(table.shape[0] * o, -1)
    flat = x.data.reshape(x.shape[:2] + (-1,))
    chosen = table[xp.arange(table.shape[0]), xp.argmax(flat[:, :, table], axis=-1)]
    out = gather(x.reshape(x.shape[:2] + (-1,)), 2, chosen).reshape(x.shape[:2] + sizes)
    if unbatched:
        out, chosen = out.squeeze(0), chosen[0]
    if return_indices:
        return out, Tensor(chosen.reshape(out.shape))
    return out


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """Maximum over ``output_size`` adaptive bins of (N, C, L)."""
    return _adaptive_max_nd("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Maximum over an (OH, OW) grid of adaptive bins of (N, C, H, W)."""
    return _adaptive_max_nd("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False):
    """Maximum over an (OD, OH, OW) grid of adaptive bins of (N, C, D, H, W)."""
    return _adaptive_max_nd("adaptive_max_pool3d", 3, input, output_size, return_indices)


# --- upsampling -------------------------------------------------------------------------------------
_INTERP_DIMS = {"nearest": (1, 2, 3), "nearest-exact": (1, 2, 3), "linear": (1,), "bilinear": (2,),
                "bicubic": (2,), "trilinear": (3,)}


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize the spatial dims of (N, C, *S) to ``size`` or ``S * scale_factor`` (PyTorch's coordinates).

    Modes: "nearest" (source floor(dst * scale)), "nearest-exact" (floor((dst + 0.5) * scale), no shift;
    1-3 spatial dims), "linear" (1), "bilinear" (2), "bicubic" (2; Keys' kernel, A = -0.75, edge taps
    repeated), "trilinear" (3); ``align_corners`` maps the corner pixels onto each other (linear and cubic
    modes only); ``recompute_scale_factor`` takes the scale from the output size. Built from gathers along each
    dim, so every derivative exists. ``antialias`` is not supported.
    """
    if antialias:
        raise ValueError("interpolate: antialias=True is not supported (resize without it, or blur first)")
    if mode not in _INTERP_DIMS:
        raise ValueError(f"interpolate: mode must be one of {sorted(_INTERP_DIMS)}, got {mode!r}")
    n = input.ndim - 2
    if n not in _INTERP_DIMS[mode]:
        raise ValueError(f"interpolate: mode {mode!r} takes inputs with "
                         f"{' or '.join(str(d + 2) for d in _INTERP_DIMS[mode])} dims, got {tuple(input.shape)}")
    if mode.startswith("nearest") and align_corners is not None:
        raise ValueError("interpolate: align_corners only applies to the linear modes")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    spatial = tuple(input.shape[2:])
    if size is not None:
        out = ntuple(size, n, "size", "interpolate")
        scales = tuple(s / o for s, o in zip(spatial, out))
    else:
        factors = tuple(float(f) for f in (scale_factor if isinstance(scale_factor, (tuple, list))
                                           else (scale_factor,) * n))
        if len(factors) != n or min(factors) <= 0:
            raise ValueError(f"interpolate: scale_factor must be {n} positive numbers, got {scale_factor!r}")
        out = tuple(int(math.floor(s * f)) for s, f in zip(spatial, factors))
        scales = tuple(s / o for s, o in zip(spatial, out)) if recompute_scale_factor else \
            tuple(1.0 / f for f in factors)
    if min(out) < 1 or min(spatial) < 1:
        raise ValueError(f"interpolate: input {tuple(input.shape)} resized to {out} has an empty dim")
    result = input
    for i, (s, o, scale) in enumerate(zip(spatial, out, scales)):
        dim = 2 + i
        dst = xp.arange(o, dtype=xp.float64)
        if mode == "nearest":
            result = index_select(result, dim, xp.minimum(xp.floor(dst * scale).astype(xp.int64), s - 1))
            continue
        if mode == "nearest-exact":
            result = index_select(result, dim, xp.minimum(xp.floor((dst + 0.5) * scale).astype(xp.int64), s - 1))
            continue
        if align_corners:
            src = dst * ((s - 1) / (o - 1) if o > 1 else 0.0)
        else:
            src = (dst + 0.5) * scale - 0.5
        if mode == "bicubic":  # four taps around floor(src), clamped into the image
            low = xp.floor(src)
            shape = (-1,) + (1,) * (n - 1 - i)
            taps = [index_select(result, dim, xp.clip(low + k - 1, 0, s - 1).astype(xp.int64)) for k in range(4)]
            weights = [Tensor._make(w.astype(input.dtype).reshape(shape), None) for w in cubic_weights(src - low)]
            result = sum(tap * w for tap, w in zip(taps[1:], weights[1:])) + taps[0] * weights[0]
            continue
        if not align_corners:
            src = xp.maximum(src, 0.0)
        i0 = xp.minimum(xp.floor(src).astype(xp.int64), s - 1)
        i1 = xp.minimum(i0 + 1, s - 1)
        lam = Tensor._make((src - i0).astype(input.dtype).reshape((-1,) + (1,) * (n - 1 - i)), None)
        result = index_select(result, dim, i0) * (1.0 - lam) + index_select(result, dim, i1) * lam
    return result


__all__ = [
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "adaptive_max_pool3d", "avg_pool1d",
    "avg_pool2d", "avg_pool3d", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "interpolate", "max_pool1d", "max_pool2d", "max_pool3d", "max_unpool1d", "max_unpool2d",
    "max_unpool3d", "pad",
]
