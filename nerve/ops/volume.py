"""3-d convolution and transposed convolution over (N, C, D, H, W) tensors: the three faces of a convolution.

A convolution y = conv(x, w) is bilinear; its faces are the primitives here, each with one rule naming the
other two, so derivatives of any order exist: ``VolumeConv`` (x, w -> y), ``VolumeConvTranspose`` (y, w -> x:
the adjoint in x, which is also the user's transposed convolution) and ``VolumeConvWeight`` (x, y -> w: the
adjoint in w). They compute channels-first: im2col is one strided slice per kernel offset stacked into
(N, G, C/G * K, positions), then one batched GEMM, a chunk of images at a time so that the columns stay
within ``CHUNK_BYTES`` (one image at least). The window geometry is convolution's (``nerve.ops.conv``);
3-d pooling is the n-d pooling of ``nerve.ops.pool``.
"""
from __future__ import annotations

import math

from nerve.autograd.function import Function, ShapeError
from nerve.backend import xp
from nerve.ops.conv import Geometry, conv_geometry, transpose_geometry
from nerve.tensor import Tensor

#: im2col runs over chunks of images whose columns take about this many bytes (a 3-d window's columns are
#: K times the input: 27x for 3x3x3)
CHUNK_BYTES = 16 << 20


# --- kernels on raw arrays -----------------------------------------------------------------------------
def _kept(geom: Geometry) -> tuple:
    """Per dim, how many input positions lie inside the padded extent (``hi`` < 0 crops the end)."""
    return tuple(min(s, p - a) for s, p, a in zip(geom.size, geom.padded, geom.lo))


def _padded(x, geom: Geometry):
    """(N, C, *padded) copy of x with zeros around it (x itself without padding)."""
    if not any(geom.lo) and not any(geom.hi):
        return x
    out = xp.zeros_like(x, shape=x.shape[:2] + geom.padded)
    keep = _kept(geom)
    out[(slice(None),) * 2 + tuple(slice(a, a + k) for a, k in zip(geom.lo, keep))] = \
        x[(slice(None),) * 2 + tuple(slice(0, k) for k in keep)]
    return out


def _columns(xpad, geom: Geometry):
    """im2col of padded images: (n, G, C/G * K, P), rows ordered (channel, kernel offset) like a flattened
    weight."""
    n, c = xpad.shape[:2]
    lead = (slice(None),) * 2
    cols = xp.stack([xpad[lead + where] for where in geom.offsets()], axis=2)  # (n, C, K, *out)
    return cols.reshape(n, geom.groups, c // geom.groups * math.prod(geom.kernel), math.prod(geom.out))


def _chunks(n: int, per_image: int, itemsize: int) -> list:
    """Image ranges [a, b) whose columns take about ``CHUNK_BYTES`` (at least one image each)."""
    step = max(1, CHUNK_BYTES // max(1, per_image * itemsize))
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def _grouped_weight(w, groups: int):
    """(O, C/G, *K) -> (G, O/G, C/G * K)."""
    return w.reshape(groups, w.shape[0] // groups, -1)


def _column_size(c: int, geom: Geometry) -> int:
    return c * math.prod(geom.kernel) * math.prod(geom.out)


def conv_volume(x, w, geom: Geometry):
    """y = conv(x, w), (N, O, *out): per chunk of images, one batched GEMM of the grouped weight with the
    columns."""
    n, groups = x.shape[0], geom.groups
    xpad, wg = _padded(x, geom), _grouped_weight(w, groups)
    y = xp.empty_like(x, shape=(n, groups, w.shape[0] // groups, math.prod(geom.out)), dtype=xp.result_type(x, w))
    for a, b in _chunks(n, _column_size(x.shape[1], geom), x.itemsize):
        xp.matmul(wg, _columns(xpad[a:b], geom), out=y[a:b])
    return y.reshape((n, w.shape[0]) + geom.out)


def conv_volume_input(y, w, geom: Geometry):
    """x-shaped convT(y, w), (N, C, *size): per chunk of images the columns w^T y, added back at every kernel
    offset (col2im)."""
    n, o, groups = y.shape[0], w.shape[0], geom.groups
    c, kk = w.shape[1] * groups, math.prod(geom.kernel)
    wt = _grouped_weight(w, groups).swapaxes(1, 2)  # (G, C/G * K, O/G)
    yg = y.reshape(n, groups, o // groups, math.prod(geom.out))
    dx = xp.zeros_like(y, shape=(n, c) + geom.padded, dtype=xp.result_type(y, w))
    lead = (slice(None),) * 2
    for a, b in _chunks(n, _column_size(c, geom), dx.itemsize):
        cols = xp.matmul(wt, yg[a:b]).reshape((b - a, c, kk) + geom.out)
        part = dx[a:b]
        for k, where in enumerate(geom.offsets()):
            part[lead + where] += cols[:, :, k]
    keep = _kept(geom)
    inside = dx[lead + tuple(slice(a, a + k) for a, k in zip(geom.lo, keep))]
    if keep == geom.size:
        return xp.ascontiguousarray(inside)
    out = xp.zeros_like(dx, shape=(n, c) + geom.size)
    out[lead + tuple(slice(0, k) for k in keep)] = inside
    return out


def conv_volume_weight(x, y, geom: Geometry):
    """w-shaped convW(x, y) = sum over images and positions of y times the columns of x, (O, C/G, *K)."""
    n, o, groups = y.shape[0], y.shape[1], geom.groups
    xpad, yg = _padded(x, geom), y.reshape(n, groups, o // groups, math.prod(geom.out))
    gw = None
    for a, b in _chunks(n, _column_size(x.shape[1], geom), x.itemsize):
        part = xp.matmul(yg[a:b], _columns(xpad[a:b], geom).swapaxes(2, 3)).sum(axis=0)  # (G, O/G, C/G * K)
        gw = part if gw is None else gw + part
    if gw is None:  # an empty batch
        gw = xp.zeros_like(y, shape=(groups, o // groups, (x.shape[1] // groups) * math.prod(geom.kernel)),
                           dtype=xp.result_type(x, y))
    return gw.reshape((o, x.shape[1] // groups) + geom.kernel)


# --- the three faces ----------------------------------------------------------------------------------
class VolumeConv(Function):
    """y = conv(x, w) over (N, C, *S) with w of shape (O, C / groups, *kernel)."""

    def forward(self, x, w, geom):
        self.geom = geom
        return conv_volume(x, w, geom)

    def backward(self, g, m):  # dx = convT(g, w), dw = convW(x, g)
        x, w = m.inputs(self)[:2]
        nx, nw = self.needs_input_grad[:2]
        return (m.apply(VolumeConvTranspose, g, w, self.geom) if nx else None,
                m.apply(VolumeConvWeight, x, g, self.geom) if nw else None, None)


class VolumeConvTranspose(Function):
    """x = convT(y, w): the adjoint in x of conv with the same geometry (the transposed convolution)."""

    def forward(self, y, w, geom):
        self.geom = geom
        return conv_volume_input(y, w, geom)

    def backward(self, g, m):  # <convT(y, w), g> = <y, conv(g, w)> = <w, convW(g, y)>
        y, w = m.inputs(self)[:2]
        ny, nw = self.needs_input_grad[:2]
        return (m.apply(VolumeConv, g, w, self.geom) if ny else None,
                m.apply(VolumeConvWeight, g, y, self.geom) if nw else None, None)


class VolumeConvWeight(Function):
    """w-shaped convW(x, y): the adjoint in w of conv (its weight gradient)."""

    def forward(self, x, y, geom):
        self.geom = geom
        return conv_volume_weight(x, y, geom)

    def backward(self, h, m):  # <convW(x, y), h> = <conv(x, h), y> = <x, convT(y, h)>
        x, y = m.inputs(self)[:2]
        nx, ny = self.needs_input_grad[:2]
        return (m.apply(VolumeConvTranspose, y, h, self.geom) if nx else None,
                m.apply(VolumeConv, x, h, self.geom) if ny else None, None)


# --- functions ------------------------------------------------------------------------------------------
def _check(op: str, input: Tensor, weight: Tensor, bias, groups: int, channels_dim: int) -> bool:
    """Check shapes for a 3-d (transposed) convolution; True when the input is one unbatched (C, D, H, W)."""
    if weight.ndim != 5:
        raise ShapeError(f"{op}: weight must have 5 dims (channels, channels / groups, kD, kH, kW), got "
                         f"{tuple(weight.shape)}")
    if not isinstance(groups, int) or groups < 1 or weight.shape[0] % groups:
        raise ValueError(f"{op}: groups={groups} must be a positive int dividing weight.shape[0] "
                         f"(weight {tuple(weight.shape)})")
    channels = weight.shape[1] * groups if channels_dim == 1 else weight.shape[0]
    if input.ndim not in (4, 5) or input.shape[input.ndim - 4] != channels:
        raise ShapeError(f"{op}: expected input (N, {channels}, D, H, W) or ({channels}, D, H, W) for weight "
                         f"{tuple(weight.shape)} and groups={groups}, got {tuple(input.shape)}")
    out_channels = weight.shape[0] if channels_dim == 1 else weight.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ShapeError(f"{op}: bias must have shape ({out_channels},), got {tuple(bias.shape)}")
    if input.dtype != weight.dtype:
        raise TypeError(f"{op}: input dtype {input.dtype} and weight dtype {weight.dtype} differ")
    return input.ndim == 4


def _with_bias(out: Tensor, bias) -> Tensor:
    return out if bias is None else out + bias.reshape(-1, 1, 1, 1)


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """3-d convolution (cross-correlation) of (N, C_in, D, H, W) with weight (C_out, C_in / groups, kD, kH, kW).

    ``padding``: int, triple, "valid" or "same" (stride 1), zeros; see ``nn.Conv3d`` for other padding modes.
    """
    unbatched = _check("conv3d", input, weight, bias, groups, 1)
    x = input.unsqueeze(0) if unbatched else input
    geom = conv_geometry("conv3d", tuple(x.shape[2:]), tuple(weight.shape[2:]), stride, padding, dilation, groups)
    out = _with_bias(VolumeConv.apply(x, weight, geom), bias)
    return out.squeeze(0) if unbatched else out


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 3-d convolution (the gradient of conv3d in its input; upsamples by ``stride``): weight
    (C_in, C_out / groups, kD, kH, kW); output (in - 1) stride - 2 padding + dilation (k - 1) + output_padding
    + 1 per dim."""
    unbatched = _check("conv_transpose3d", input, weight, bias, groups, 0)
    y = input.unsqueeze(0) if unbatched else input
    geom = transpose_geometry("conv_transpose3d", tuple(y.shape[2:]), tuple(weight.shape[2:]), stride, padding,
                              output_padding, dilation, groups)
    out = _with_bias(VolumeConvTranspose.apply(y, weight, geom), bias)
    return out.squeeze(0) if unbatched else out


__all__ = ["conv3d", "conv_transpose3d"]
#: functions that are also Tensor methods (none: these take layer arguments)
METHODS: list = []
