"""Convolution, pooling, upsampling and padding for (N, C, *spatial) tensors, 1-d and 2-d.

Layout: tensors keep PyTorch's channels-first shape, but convolution and pooling compute in channels-last
memory (N, *spatial, C). A kernel window is then KK runs of C contiguous values, so im2col is one strided
copy (no Python loop over output positions) and one GEMM writes its (N*OH*OW, O) result straight into
channels-last memory; the op returns a channels-first *view* of it (PyTorch's "channels_last" memory
format), which the next convolution, ReLU or pooling reads without a transpose.

A convolution y = conv(x, w) is bilinear, and its three faces are the primitives here: ``Conv`` (x, w -> y),
``ConvTranspose`` (y, w -> x, the adjoint in x, which is also the user's transposed convolution) and
``ConvWeight`` (x, y -> w, the adjoint in w). Each one's backward is written with the other two, so
derivatives of any order exist; ``vjp`` runs the same kernels on raw arrays. im2col runs a few images at a
time (its columns are recomputed for the weight gradient, not kept), so extra memory stays below one layer's
im2col; col2im loops over the KH*KW kernel offsets with strided adds (never ``add.at``).
"""
from __future__ import annotations

import itertools
import math
import numbers
from typing import NamedTuple

from nerve import backend
from nerve.autograd.function import Function
from nerve.backend import xp
from nerve.ops.index import gather, index_select
from nerve.ops.linalg import matmul
from nerve.ops.shape import pad as _constant_pad
from nerve.tensor import Tensor

_SPATIAL = {1: "L", 2: "H, W"}


# --- geometry -------------------------------------------------------------------------------------
class Geometry(NamedTuple):
    """A convolution or pooling window's placement over the spatial dims of one input size.

    ``lo``/``hi`` pad before/after each dim (``hi`` may be negative: the end is cropped, which a
    transposed convolution's ``output_padding`` needs); ``out`` is the number of window positions.
    """

    size: tuple
    out: tuple
    kernel: tuple
    stride: tuple
    dilation: tuple
    lo: tuple
    hi: tuple
    groups: int = 1

    @property
    def padded(self) -> tuple:
        return tuple(s + a + b for s, a, b in zip(self.size, self.lo, self.hi))

    def offsets(self):
        """Each kernel offset as the tuple of slices that picks its input element for every output."""
        for k in itertools.product(*(range(n) for n in self.kernel)):
            yield tuple(slice(i * d, i * d + (o - 1) * s + 1, s)
                        for i, d, o, s in zip(k, self.dilation, self.out, self.stride))


def _ints(value, n: int, name: str, op: str) -> tuple:
    """An int or a sequence of ``n`` ints as a tuple of ``n`` ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return (int(value),) * n
    try:
        t = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(t) == 1:
        t = t * n
    if len(t) != n:
        raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return t


def conv_geometry(op: str, size: tuple, kernel, stride=1, padding=0, dilation=1, groups: int = 1) -> Geometry:
    """The geometry of a convolution over ``size``; ``padding`` is ints, "valid" or "same" (stride 1)."""
    n = len(size)
    kernel, stride = _ints(kernel, n, "kernel_size", op), _ints(stride, n, "stride", op)
    dilation = _ints(dilation, n, "dilation", op)
    if min(kernel + stride + dilation, default=1) < 1:
        raise ValueError(f"{op}: kernel_size, stride and dilation must be positive, got kernel_size "
                         f"{kernel}, stride {stride}, dilation {dilation}")
    if isinstance(padding, str):
        if padding == "valid":
            lo = hi = (0,) * n
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' needs stride 1, got stride {stride}")
            total = tuple(d * (k - 1) for k, d in zip(kernel, dilation))
            lo = tuple(t // 2 for t in total)
            hi = tuple(t - a for t, a in zip(total, lo))
        else:
            raise ValueError(f"{op}: padding must be 'valid', 'same' or ints, got {padding!r}")
    else:
        lo = hi = _ints(padding, n, "padding", op)
        if min(lo) < 0:
            raise ValueError(f"{op}: padding must be non-negative, got {padding!r}")
    return _geometry(op, tuple(size), kernel, stride, dilation, lo, hi, groups)


def _geometry(op, size, kernel, stride, dilation, lo, hi, groups=1) -> Geometry:
    out = []
    for s, k, st, d, a, b in zip(size, kernel, stride, dilation, lo, hi):
        extent, padded = d * (k - 1) + 1, s + a + b
        if padded < extent:
            raise ValueError(f"{op}: input of spatial size {tuple(size)} (padding {tuple(lo)}, {tuple(hi)}) is "
                             f"smaller than the kernel {tuple(kernel)} (dilation {tuple(dilation)})")
        out.append((padded - extent) // st + 1)
    return Geometry(tuple(size), tuple(out), kernel, stride, dilation, tuple(lo), tuple(hi), groups)


def transpose_geometry(op: str, size: tuple, kernel, stride=1, padding=0, output_padding=0, dilation=1,
                       groups: int = 1) -> Geometry:
    """The geometry of the convolution whose adjoint is this transposed convolution over ``size``.

    Output size (size - 1) stride - 2 padding + dilation (kernel - 1) + output_padding + 1; the conv runs
    from that size back to ``size`` with ``output_padding`` cropped from its end padding.
    """
    n = len(size)
    kernel, stride = _ints(kernel, n, "kernel_size", op), _ints(stride, n, "stride", op)
    dilation, pad = _ints(dilation, n, "dilation", op), _ints(padding, n, "padding", op)
    extra = _ints(output_padding, n, "output_padding", op)
    if min(kernel + stride + dilation, default=1) < 1 or min(pad + extra, default=0) < 0:
        raise ValueError(f"{op}: kernel_size, stride, dilation must be positive and padding, output_padding "
                         f"non-negative, got {kernel}, {stride}, {dilation}, {pad}, {extra}")
    for e, s, d in zip(extra, stride, dilation):
        if e >= s and e >= d:
            raise ValueError(f"{op}: output_padding {extra} must be smaller than the stride {stride} or the "
                             f"dilation {dilation}")
    full = tuple((x - 1) * s - 2 * p + d * (k - 1) + e + 1
                 for x, s, p, d, k, e in zip(size, stride, pad, dilation, kernel, extra))
    if min(full, default=1) < 1:
        raise ValueError(f"{op}: input of spatial size {tuple(size)} gives an empty output {full}")
    return Geometry(full, tuple(size), kernel, stride, dilation, pad,
                    tuple(p - e for p, e in zip(pad, extra)), groups)


# --- channels-last kernels on raw arrays --------------------------------------------------------------
def _as_strided(a, shape: tuple, strides: tuple):
    if a.__class__ is backend.ndarray:
        return xp.lib.stride_tricks.as_strided(a, shape, strides, writeable=False)
    return backend.array_module("cuda").lib.stride_tricks.as_strided(a, shape, strides)


def _last(a):
    """(N, C, *S) -> its channels-last view (N, *S, C)."""
    return xp.moveaxis(a, 1, -1)


def _first(a):
    """(N, *S, C) -> its channels-first view (N, C, *S)."""
    return xp.moveaxis(a, -1, 1)


def _copy_last(dst, src) -> None:
    """dst[...] = src for channels-last views; from channels-first memory, 16 channels at a time.

    NOTE: a plain transposing copy reads one value per channel plane; with power-of-two planes those reads
    collide in the cache (32x64x32x32: 9.9 ms plain, 2.0 ms by blocks of 16 channels).
    """
    c = src.shape[-1]
    if c <= 16 or src.ndim < 3 or abs(src.strides[-1]) <= abs(src.strides[-2]):
        xp.copyto(dst, src)
        return
    for c0 in range(0, c, 16):
        xp.copyto(dst[..., c0:c0 + 16], src[..., c0:c0 + 16])


def _contiguous_last(a):
    """(N, C, *S) as a C-contiguous channels-last array (N, *S, C): a view when its memory already is."""
    al = _last(a)
    if al.flags.c_contiguous:
        return al
    out = xp.empty_like(al, order="C")
    _copy_last(out, al)
    return out


def _rows(a):
    """(N, C, *S) as contiguous channels-last rows (N * prod(S), C), copied only when needed."""
    return _contiguous_last(a).reshape(-1, a.shape[1])


def _padded(x, geom: Geometry, fill: float = 0.0):
    """Channels-last contiguous (N, *padded, C) x with ``fill`` around it (x itself when it already is)."""
    if not any(geom.lo) and not any(geom.hi):
        return _contiguous_last(x)
    xl = _last(x)
    shape = (x.shape[0],) + geom.padded + (x.shape[1],)
    out = xp.full_like(xl, fill, shape=shape, order="C") if fill else xp.zeros_like(xl, shape=shape, order="C")
    keep = tuple(min(s, p - a) for s, p, a in zip(geom.size, geom.padded, geom.lo))
    _copy_last(out[(slice(None),) + tuple(slice(a, a + k) for a, k in zip(geom.lo, keep))],
               xl[(slice(None),) + tuple(slice(0, k) for k in keep)])
    return out


def _unpadded(xp_cl, geom: Geometry):
    """The (N, *size, C) part of a padded channels-last array (zeros where the padding cropped the input)."""
    if not any(geom.lo) and not any(geom.hi):
        return xp_cl
    keep = tuple(min(s, p - a) for s, p, a in zip(geom.size, geom.padded, geom.lo))
    src = (slice(None),) + tuple(slice(a, a + k) for a, k in zip(geom.lo, keep))
    if keep == geom.size:
        return xp_cl[src]
    out = xp.zeros_like(xp_cl, shape=(xp_cl.shape[0],) + geom.size + (xp_cl.shape[-1],), order="C")
    out[(slice(None),) + tuple(slice(0, k) for k in keep)] = xp_cl[src]
    return out


def _windows(xp_cl, geom: Geometry):
    """The strided view (N, *out, *kernel, C) of every window of a padded channels-last array."""
    st = xp_cl.strides
    inner = st[1:-1]
    return _as_strided(xp_cl, (xp_cl.shape[0],) + geom.out + geom.kernel + (xp_cl.shape[-1],),
                       (st[0],) + tuple(s * k for s, k in zip(inner, geom.stride))
                       + tuple(s * d for s, d in zip(inner, geom.dilation)) + (st[-1],))


def _pointwise(geom: Geometry) -> bool:
    return all(k == 1 for k in geom.kernel) and all(s == 1 for s in geom.stride) \
        and not any(geom.lo) and not any(geom.hi)


#: im2col is done for a few images at a time, so that each chunk's columns are still in cache when the
#: GEMM reads them (measured on SmallCNN's conv2: forward 28 -> 21 ms, input gradient 36 -> 28 ms)
CHUNK_BYTES = 4 << 20


class _Columns:
    """im2col of a channels-first input, chunk by chunk: ``chunks`` are image ranges [a, b), and
    ``fill(a, b)`` returns their columns, (rows, KK*C) for one group or (G, rows, KK*Cg) for several.

    NOTE: with few channels (C <= 4: images) the columns are stored kernel-major, (KK*C, rows), and handed
    out transposed: each row is then a long contiguous copy (C = 1: 0.6 -> 0.09 ms for SmallCNN's conv1).
    """

    def __init__(self, x, geom: Geometry) -> None:
        n, c = x.shape[0], x.shape[1]
        self.groups, self.positions = geom.groups, math.prod(geom.out)
        self.width = math.prod(geom.kernel) * c
        self.win = _windows(_padded(x, geom), geom)
        self.kmajor = self.groups == 1 and c <= 4
        if self.kmajor:  # (*kernel, C, N, *out)
            nsp = len(geom.out)
            self.before_batch = (slice(None),) * (nsp + 1)
            self.win = self.win.transpose(tuple(range(1 + nsp, 2 + 2 * nsp)) + (0,) + tuple(range(1, 1 + nsp)))
        elif self.groups > 1:  # (G, N, *out, *kernel, Cg): each group's columns contiguous
            self.win = xp.moveaxis(self.win.reshape(self.win.shape[:-1] + (self.groups, -1)), -2, 0)
        step = max(1, CHUNK_BYTES // max(1, self.positions * self.width * x.itemsize))
        self.chunks = [(a, min(a + step, n)) for a in range(0, n, step)] or [(0, 0)]  # (0, 0): empty batch
        self.buffer = xp.empty_like(x, shape=(min(step, n) * self.positions * self.width,), order="C")

    def fill(self, a: int, b: int):
        rows = (b - a) * self.positions
        if self.kmajor:
            part = self.win[self.before_batch + (slice(a, b),)]
            cols = self.buffer[:rows * self.width].reshape(self.width, rows)
            xp.copyto(cols.reshape(part.shape), part)
            return cols.T
        if self.groups == 1:
            cols = self.buffer[:rows * self.width].reshape(rows, self.width)
            xp.copyto(cols.reshape(self.win[a:b].shape), self.win[a:b])
        else:
            cols = self.buffer[:rows * self.width].reshape(self.groups, rows, -1)
            xp.copyto(cols.reshape(self.win[:, a:b].shape), self.win[:, a:b])
        return cols


def _weight_matrix(w, groups: int):
    """(O, Cg, *K) -> (KK*Cg, O), or (G, KK*Cg, Og) for several groups (rows ordered like im2col's)."""
    o, cg = w.shape[0], w.shape[1]
    wg = w.reshape((groups, o // groups, cg, -1))
    return xp.ascontiguousarray(wg.transpose(0, 3, 2, 1)).reshape(groups, -1, o // groups) if groups > 1 \
        else xp.ascontiguousarray(wg[0].transpose(2, 1, 0)).reshape(-1, o)


def _group_rows(g2, groups: int):
    """(M, O) -> (G, M, Og) view for grouped GEMMs."""
    return g2.reshape(g2.shape[0], groups, -1).transpose(1, 0, 2)


def conv_forward(x, w, b, geom: Geometry):
    """y = conv(x, w) + b on raw arrays: im2col and a GEMM per chunk of images, written into
    channels-last rows (M, O) and returned as a channels-first view."""
    groups, o = geom.groups, w.shape[0]
    wm = _weight_matrix(w, groups)
    if groups == 1 and _pointwise(geom):
        y = _rows(x) @ wm
        if b is not None:
            y += b
    else:
        cols = _Columns(x, geom)
        p = cols.positions
        y = xp.empty_like(wm, shape=(x.shape[0] * p, o), dtype=xp.result_type(x, w), order="C")
        for a, z in cols.chunks:
            if groups == 1:
                xp.matmul(cols.fill(a, z), wm, out=y[a * p:z * p])
            else:
                y[a * p:z * p] = (cols.fill(a, z) @ wm).transpose(1, 0, 2).reshape(-1, o)
            if b is not None:  # while the chunk is in cache
                y[a * p:z * p] += b
    return _first(y.reshape((x.shape[0],) + geom.out + (o,)))


def conv_weight_grad(x, g2, geom: Geometry, w_shape: tuple):
    """dW of y = conv(x, w) for output-gradient rows g2 (M, O): the sum over chunks of cols^T g2.

    im2col is recomputed here rather than kept from the forward, so memory holds one chunk's columns."""
    groups = geom.groups
    if groups == 1 and _pointwise(geom):
        gw = _rows(x).T @ g2
    else:
        cols = _Columns(x, geom)
        p = cols.positions
        gw = None
        for a, b in cols.chunks:
            c = cols.fill(a, b)
            part = c.T @ g2[a * p:b * p] if groups == 1 \
                else c.transpose(0, 2, 1) @ _group_rows(g2[a * p:b * p], groups)
            if gw is None:
                gw = part
            else:
                gw += part
    o, cg = w_shape[0], w_shape[1]
    gw = gw.reshape((groups,) + geom.kernel + (cg, o // groups))
    axes = (0, gw.ndim - 1, gw.ndim - 2) + tuple(range(1, gw.ndim - 2))
    return xp.ascontiguousarray(gw.transpose(axes)).reshape(w_shape)


def conv_input_grad(g2, w, geom: Geometry, n: int, c: int):
    """dX of y = conv(x, w) for output-gradient rows g2 (M, O), i.e. the transposed convolution (col2im).

    Per chunk of images, one (batched) GEMM gives a (rows, C) block g2 W_k for every kernel offset k, and each
    block is added into the padded input at its offset with one strided add (no ``add.at``). With few
    channels (C <= 4) the blocks come kernel-major, (KK*C, rows), from one wide GEMM, and go into
    channels-first memory (25 GEMMs three columns wide are slow: 5x5 kernel on 32x3x64x64, 46 -> 26 ms).
    Stride 1 with more channels takes ``_input_grad_shifted``.
    """
    groups = geom.groups
    o, cg = w.shape[0], w.shape[1]
    kk, p = math.prod(geom.kernel), math.prod(geom.out)
    dtype = xp.result_type(g2, w)
    kmajor = groups == 1 and c <= 4
    if groups == 1 and not kmajor and all(s == 1 for s in geom.stride):
        return _input_grad_shifted(g2, w, geom, n, c, dtype)
    if kmajor:
        wk = xp.ascontiguousarray(w.reshape(o, c, kk).transpose(2, 1, 0)).reshape(kk * c, o)  # rows (k, c)
        dxp = xp.zeros_like(g2, shape=(n, c) + geom.padded, dtype=dtype, order="C")
    else:
        wk = xp.ascontiguousarray(w.reshape(groups, o // groups, cg, kk).transpose(0, 3, 1, 2))  # (G, KK, Og, Cg)
        dxp = xp.zeros_like(g2, shape=(n,) + geom.padded + (c,), dtype=dtype, order="C")
    step = max(1, CHUNK_BYTES // max(1, p * kk * c * dtype.itemsize))
    buffer = xp.empty_like(g2, shape=(min(step, n) * p * kk * c,), dtype=dtype, order="C") if groups == 1 else None
    lead = (slice(None),) * (2 if kmajor else 1)
    for a in range(0, n, step):
        b = min(a + step, n)
        rows = (b - a) * p
        if kmajor:
            blocks = buffer[:kk * rows * c].reshape(kk * c, rows)
            xp.matmul(wk, g2[a * p:b * p].T, out=blocks)
        elif groups == 1:
            blocks = buffer[:kk * rows * c].reshape(kk, rows, c)
            xp.matmul(g2[a * p:b * p], wk[0], out=blocks)
        else:
            blocks = xp.matmul(_group_rows(g2[a * p:b * p], groups)[:, None], wk)  # (G, KK, rows, Cg)
        target = dxp[a:b]
        for k, where in enumerate(geom.offsets()):
            if kmajor:
                block = blocks[k * c:(k + 1) * c].reshape((c, b - a) + geom.out).swapaxes(0, 1)
            else:
                block = (blocks[k] if groups == 1 else blocks[:, k].transpose(1, 0, 2)).reshape(
                    (b - a,) + geom.out + (c,))
            target[lead + where] += block
    return _first(_unpadded(_last(dxp) if kmajor else dxp, geom))


def _input_grad_shifted(g2, w, geom: Geometry, n: int, c: int, dtype):
    """dX for stride 1 over flat rows: in padded input frames (N * prod(padded), C), kernel offset k is one
    row shift s_k, so col2im is KK contiguous row-block adds.

    The output gradient sits at the top-left of zero frames of the padded size; the GEMM runs over every row
    (the zero rows are wasted work), but each add reads and writes contiguous memory. NOTE: measured against
    the strided per-offset adds, interleaved: 4% faster on 64x32x26x26 -> 64 (3x3), 11% on 32x64x32x32 -> 64
    (3x3, padding 1).
    """
    o, kk, frame = w.shape[0], math.prod(geom.kernel), math.prod(geom.padded)
    flat = [math.prod(geom.padded[i + 1:]) for i in range(len(geom.padded))]  # row-major strides in rows
    shifts = [sum(i * d * f for i, d, f in zip(k, geom.dilation, flat))
              for k in itertools.product(*(range(m) for m in geom.kernel))]
    gf = xp.zeros_like(g2, shape=(n,) + geom.padded + (o,), dtype=dtype, order="C")
    gf[(slice(None),) + tuple(slice(0, m) for m in geom.out)] = g2.reshape((n,) + geom.out + (o,))
    gf = gf.reshape(-1, o)
    wk = xp.ascontiguousarray(w.reshape(o, c, kk).transpose(2, 0, 1)).astype(dtype, copy=False)  # (KK, O, C)
    dx = xp.zeros_like(g2, shape=(n * frame, c), dtype=dtype, order="C")
    step = max(1, CHUNK_BYTES // max(1, frame * kk * c * dtype.itemsize))
    buffer = xp.empty_like(g2, shape=(kk, min(step, n) * frame, c), dtype=dtype, order="C")
    for a in range(0, n, step):
        r0 = a * frame
        # rows past n * frame - shifts[-1] hold no output position: the last chunk stops there
        rows = min(step, n - a) * frame if a + step < n else n * frame - shifts[-1] - r0
        blocks = buffer[:, :rows]
        xp.matmul(gf[r0:r0 + rows], wk, out=blocks)
        for k, shift in enumerate(shifts):
            dx[r0 + shift:r0 + shift + rows] += blocks[k]
    return _first(_unpadded(dx.reshape((n,) + geom.padded + (c,)), geom))


def _column_sums(g2):
    """Sums of the columns of (M, O) rows as one GEMV (10x faster than sum(axis=0) for narrow rows)."""
    return xp.matmul(xp.ones_like(g2, shape=(g2.shape[0],)), g2)


def _bias_grad(g):
    """The gradient of a per-channel bias: g summed over all dims but the channels."""
    return g.sum(axis=(0,) + tuple(range(2, g.ndim)))


# --- the three faces of a convolution ---------------------------------------------------------------
class Conv(Function):
    """y = conv(x, w) + b over channels-first tensors, w of shape (O, C / groups, *kernel)."""

    def forward(self, x, w, b, geom):
        self.geom = geom
        return conv_forward(x, w, b, geom)

    def vjp(self, g):  # dx = convT(g, w), dw = convW(x, g), db = sum of g over all but channels
        x, w = self.inputs[0].data, self.inputs[1].data
        nx, nw, nb = self.needs_input_grad[:3]
        g2 = _rows(g)
        return (conv_input_grad(g2, w, self.geom, x.shape[0], x.shape[1]) if nx else None,
                conv_weight_grad(x, g2, self.geom, w.shape) if nw else None,
                _column_sums(g2) if nb else None, None)

    def backward(self, g):
        x, w = self.inputs[:2]
        nx, nw, nb = self.needs_input_grad[:3]
        return (ConvTranspose.apply(g, w, None, self.geom) if nx else None,
                ConvWeight.apply(x, g, self.geom) if nw else None,
                g.sum((0,) + tuple(range(2, g.ndim))) if nb else None, None)


class ConvTranspose(Function):
    """x = convT(y, w) + b: the adjoint in x of conv with the same geometry, i.e. the transposed
    convolution (w of shape (C_in, C_out / groups, *kernel), C_in being y's channels)."""

    def forward(self, y, w, b, geom):
        self.geom = geom
        out = conv_input_grad(_rows(y), w, geom, y.shape[0], w.shape[1] * geom.groups)
        if b is not None:
            out += b.reshape((-1,) + (1,) * (out.ndim - 2))
        return out

    def vjp(self, g):  # <convT(y, w), g> = <y, conv(g, w)> = <w, convW(g, y)>
        y, w = self.inputs[0].data, self.inputs[1].data
        ny, nw, nb = self.needs_input_grad[:3]
        return (conv_forward(g, w, None, self.geom) if ny else None,
                conv_weight_grad(g, _rows(y), self.geom, w.shape) if nw else None,
                _bias_grad(g) if nb else None, None)

    def backward(self, g):
        y, w = self.inputs[:2]
        ny, nw, nb = self.needs_input_grad[:3]
        return (Conv.apply(g, w, None, self.geom) if ny else None,
                ConvWeight.apply(g, y, self.geom) if nw else None,
                g.sum((0,) + tuple(range(2, g.ndim))) if nb else None, None)


class ConvWeight(Function):
    """w-shaped convW(x, y) = sum over windows of x times y: the adjoint in w of conv (its weight grad)."""

    def forward(self, x, y, geom):
        self.geom = geom
        return conv_weight_grad(x, _rows(y), geom, (y.shape[1], x.shape[1] // geom.groups) + geom.kernel)

    def vjp(self, g):  # <convW(x, y), h> = <conv(x, h), y> = <x, convT(y, h)>
        x, y = self.inputs[0].data, self.inputs[1].data
        nx, ny = self.needs_input_grad[:2]
        return (conv_input_grad(_rows(y), g, self.geom, x.shape[0], x.shape[1]) if nx else None,
                conv_forward(x, g, None, self.geom) if ny else None, None)

    def backward(self, g):
        x, y = self.inputs[:2]
        nx, ny = self.needs_input_grad[:2]
        return (ConvTranspose.apply(y, g, None, self.geom) if nx else None,
                Conv.apply(x, g, None, self.geom) if ny else None, None)


# --- convolution functions ------------------------------------------------------------------------------
def _shape_text(n: int, c) -> str:
    return f"(N, {c}, {_SPATIAL[n]})"


def _batched(op: str, input: Tensor, n: int, channels: int, what: str) -> bool:
    """Check an (N, C, *S) or unbatched (C, *S) input with C = ``channels``; True when unbatched."""
    if input.ndim not in (n + 1, n + 2) or input.shape[input.ndim - n - 1] != channels:
        raise ValueError(f"{op}: expected input {_shape_text(n, channels)}{what}, got {tuple(input.shape)}")
    return input.ndim == n + 1


def _conv_nd(op: str, n: int, input: Tensor, weight: Tensor, bias, stride, padding, dilation,
             groups: int) -> Tensor:
    if weight.ndim != n + 2:
        raise ValueError(f"{op}: weight must have shape (out_channels, in_channels / groups, *kernel) with "
                         f"{n} kernel dims, got {tuple(weight.shape)}")
    if groups < 1 or weight.shape[0] % groups:
        raise ValueError(f"{op}: groups={groups} must be positive and divide out_channels "
                         f"{weight.shape[0]} (weight {tuple(weight.shape)})")
    unbatched = _batched(op, input, n, weight.shape[1] * groups, f" for weight {tuple(weight.shape)}")
    if unbatched:
        input = input.unsqueeze(0)
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"{op}: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    geom = conv_geometry(op, tuple(input.shape[2:]), tuple(weight.shape[2:]), stride, padding, dilation, groups)
    out = Conv.apply(input, weight, bias, geom)
    return out.squeeze(0) if unbatched else out


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-d convolution (cross-correlation) of (N, C_in, L) with weight (C_out, C_in / groups, k).

    ``padding``: int, "valid" or "same" (stride 1); zeros. See ``nn.Conv1d`` for other padding modes.
    """
    return _conv_nd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-d convolution (cross-correlation) of (N, C_in, H, W) with weight (C_out, C_in / groups, kh, kw).

    One im2col copy and one GEMM; ``padding``: int, pair, "valid" or "same" (stride 1), zeros.
    """
    return _conv_nd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def _conv_transpose_nd(op: str, n: int, input: Tensor, weight: Tensor, bias, stride, padding,
                       output_padding, groups: int, dilation) -> Tensor:
    if weight.ndim != n + 2:
        raise ValueError(f"{op}: weight must have shape (in_channels, out_channels / groups, *kernel) with "
                         f"{n} kernel dims, got {tuple(weight.shape)}")
    if groups < 1 or weight.shape[0] % groups:
        raise ValueError(f"{op}: groups={groups} must be positive and divide in_channels {weight.shape[0]}")
    unbatched = _batched(op, input, n, weight.shape[0], f" for weight {tuple(weight.shape)}")
    if unbatched:
        input = input.unsqueeze(0)
    out_channels = weight.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"{op}: bias must have shape ({out_channels},), got {tuple(bias.shape)}")
    geom = transpose_geometry(op, tuple(input.shape[2:]), tuple(weight.shape[2:]), stride, padding,
                              output_padding, dilation, groups)
    out = ConvTranspose.apply(input, weight, bias, geom)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 1-d convolution (the gradient of conv1d in its input): weight (C_in, C_out / groups, k)."""
    return _conv_transpose_nd("conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding,
                              groups, dilation)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 2-d convolution (upsampling by ``stride``): weight (C_in, C_out / groups, kh, kw).

    Output size (in - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1 per dim.
    """
    return _conv_transpose_nd("conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding,
                              groups, dilation)


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

    Modes: "constant" (``value``, negative widths crop), "reflect" (mirror without repeating the edge,
    width < size), "replicate" (repeat the edge), "circular" (wrap around, width <= size). The
    non-constant modes gather along each padded dim, so their backward adds border gradients back.
    """
    widths = tuple(int(p) for p in pad)
    if mode == "constant":
        return _constant_pad(input, widths, 0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if len(widths) % 2 or len(widths) // 2 > input.ndim - 1:
        raise ValueError(f"pad: {mode} padding takes (left, right) pairs for at most {input.ndim - 1} trailing "
                         f"dims of an input of shape {tuple(input.shape)}, got {widths}")
    out = input
    for i in range(len(widths) // 2):
        dim = input.ndim - 1 - i
        lo, hi, n = widths[2 * i], widths[2 * i + 1], input.shape[dim]
        limit = n - 1 if mode == "reflect" else n
        if min(lo, hi) < 0 or max(lo, hi) > limit or n == 0:
            raise ValueError(f"pad: {mode} padding {(lo, hi)} of dim {dim} (size {n}) of input "
                             f"{tuple(input.shape)} must be non-negative and at most {limit}")
        if lo or hi:
            out = index_select(out, dim, _source_index(n, lo, hi, mode))
    return out


# --- pooling ------------------------------------------------------------------------------------------
def _pool_geometry(op: str, size: tuple, kernel, stride, padding, dilation, ceil_mode: bool) -> Geometry:
    """Window placement of a pooling layer; ``ceil_mode`` adds a last partial window on the right
    (dropped when it would start in the right padding, as in PyTorch)."""
    n = len(size)
    kernel = _ints(kernel, n, "kernel_size", op)
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and not stride) \
        else _ints(stride, n, "stride", op)
    pad, dilation = _ints(padding, n, "padding", op), _ints(dilation, n, "dilation", op)
    if min(kernel + stride + dilation) < 1 or min(pad) < 0:
        raise ValueError(f"{op}: kernel_size, stride, dilation must be positive and padding non-negative, "
                         f"got {kernel}, {stride}, {dilation}, {pad}")
    if any(2 * p > k for p, k in zip(pad, kernel)):
        raise ValueError(f"{op}: padding {pad} must be at most half the kernel size {kernel}")
    hi = []
    for s, k, st, p, d in zip(size, kernel, stride, pad, dilation):
        span = s + 2 * p - d * (k - 1) - 1
        if span < 0:
            raise ValueError(f"{op}: input of spatial size {tuple(size)} (padded by {pad}) is smaller than the "
                             f"window {kernel} (dilation {dilation})")
        out = (span + (st - 1 if ceil_mode else 0)) // st + 1
        if ceil_mode and (out - 1) * st >= s + p:
            out -= 1
        hi.append(max(p, (out - 1) * st + d * (k - 1) + 1 - s - p))
    return _geometry(op, tuple(size), kernel, stride, dilation, pad, tuple(hi))


def _max_forward(x, geom: Geometry):
    """Window maxima (channels-last) and, per output, the index of the kernel offset that holds it."""
    win = _windows(_padded(x, geom, -xp.inf), geom)
    nsp = len(geom.out)
    lead = (slice(None),) * (1 + nsp)
    kk = math.prod(geom.kernel)
    arg = xp.zeros_like(x, shape=win.shape[:1 + nsp] + win.shape[-1:], dtype=xp.uint8 if kk < 256 else xp.int32,
                        order="C")
    best = None
    for k, offset in enumerate(itertools.product(*(range(n) for n in geom.kernel))):
        v = win[lead + offset]
        if best is None:
            best = v.copy()
            continue
        # NOTE: strict ">" keeps the first of equal maxima (PyTorch's choice, and ReLU makes ties common);
        # offsets rise with k, so max(arg, k * new) records k where new; masked copyto is 20x slower.
        xp.maximum(arg, xp.multiply(v > best, k, dtype=arg.dtype), out=arg)
        xp.maximum(best, v, out=best)  # NaN propagates
    return best, arg


def _max_scatter(g, arg, geom: Geometry, shape: tuple):
    """Each output gradient added at its window's maximum (strided adds per kernel offset)."""
    gl = _contiguous_last(g)  # read once per offset: channels-last pays (measured 2.0 -> 1.4 ms)
    overlap = any(s < d * (k - 1) + 1 for s, d, k in zip(geom.stride, geom.dilation, geom.kernel))
    tiled = all(s == k and d == 1 and o * s == p for s, k, d, o, p in
                zip(geom.stride, geom.kernel, geom.dilation, geom.out, geom.padded))
    shape_cl = (shape[0],) + geom.padded + (shape[1],)
    # windows that tile the input write every position once: no zero fill needed
    dxp = xp.empty_like(gl, shape=shape_cl, order="C") if tiled else xp.zeros_like(gl, shape=shape_cl, order="C")
    lead = (slice(None),)
    for k, where in enumerate(geom.offsets()):
        if overlap:
            dxp[lead + where] += gl * (arg == k)
        else:  # disjoint windows: each position is written once
            xp.multiply(gl, arg == k, out=dxp[lead + where])
    return _first(_unpadded(dxp, geom))


def _max_gather(a, arg, geom: Geometry):
    """The values of ``a`` (input-shaped) at each window's recorded maximum (the scatter's adjoint)."""
    win = _windows(_padded(a, geom), geom)
    nsp = len(geom.out)
    lead = (slice(None),) * (1 + nsp)
    out = xp.zeros_like(arg, dtype=a.dtype, order="C")
    for k, offset in enumerate(itertools.product(*(range(n) for n in geom.kernel))):
        out += win[lead + offset] * (arg == k)
    return _first(out)


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
        return _first(best)

    def vjp(self, g):
        return _max_scatter(g, self.arg, self.geom, self.shape), None, None

    def backward(self, g):  # linear in g with the recorded positions
        return MaxScatter.apply(g, self.arg, self.geom, self.shape), None, None


class MaxScatter(Function):
    """Output gradients placed at the recorded window maxima (the backward of ``MaxPool``)."""

    uses_inputs = False

    def forward(self, g, arg, geom, shape):
        self.arg, self.geom, self.shape = arg, geom, shape
        return _max_scatter(g, arg, geom, shape)

    def vjp(self, gg):
        return _max_gather(gg, self.arg, self.geom), None, None, None

    def backward(self, gg):
        return MaxGather.apply(gg, self.arg, self.geom, self.shape), None, None, None


class MaxGather(Function):
    """Input-shaped values read at the recorded window maxima (the adjoint of ``MaxScatter``)."""

    uses_inputs = False

    def forward(self, a, arg, geom, shape):
        self.arg, self.geom, self.shape = arg, geom, shape
        return _max_gather(a, arg, geom)

    def vjp(self, g):
        return _max_scatter(g, self.arg, self.geom, self.shape), None, None, None

    def backward(self, g):
        return MaxScatter.apply(g, self.arg, self.geom, self.shape), None, None, None


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
    return xp.ascontiguousarray(_first(table[arg] + base[..., None]))


def _pool_input(op: str, input: Tensor, n: int) -> tuple:
    """(input as a batch, whether it was one unbatched example), after checking its number of dims."""
    if input.ndim not in (n + 1, n + 2):
        raise ValueError(f"{op}: expected input {_shape_text(n, 'C')} or (C, {_SPATIAL[n]}), got "
                         f"{tuple(input.shape)}")
    unbatched = input.ndim == n + 1
    return (input.unsqueeze(0) if unbatched else input), unbatched


def _max_pool_nd(op: str, n: int, input: Tensor, kernel_size, stride, padding, dilation, ceil_mode: bool,
                 return_indices: bool):
    x, unbatched = _pool_input(op, input, n)
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


def _window_sum(x, geom: Geometry):
    """Channels-last sums of every window (padding counts as zeros): one strided add per kernel offset."""
    win = _windows(_padded(x, geom), geom)
    lead = (slice(None),) * (1 + len(geom.out))
    offsets = list(itertools.product(*(range(n) for n in geom.kernel)))
    acc = win[lead + offsets[0]].copy()
    for offset in offsets[1:]:
        acc += win[lead + offset]
    return acc


def _window_spread(g, geom: Geometry, shape: tuple):
    """Each output value added to every input position of its window (the adjoint of a window sum)."""
    gl = _contiguous_last(g)
    dxp = xp.zeros_like(gl, shape=(shape[0],) + geom.padded + (shape[1],), order="C")
    lead = (slice(None),)
    for where in geom.offsets():
        dxp[lead + where] += gl
    return _first(_unpadded(dxp, geom))


class AvgPool(Function):
    """Window sums divided by ``divisor`` (a number or an array over the output positions)."""

    uses_inputs = False

    def forward(self, x, geom, divisor):
        self.geom, self.divisor, self.shape = geom, divisor, x.shape
        out = _window_sum(x, geom)
        out /= divisor
        return _first(out)

    def vjp(self, g):
        return _window_spread(_scaled(g, self.divisor), self.geom, self.shape), None, None

    def backward(self, g):  # linear: the adjoint spreads g / divisor over each window
        return AvgPoolAdjoint.apply(g, self.geom, self.divisor, self.shape), None, None


class AvgPoolAdjoint(Function):
    """g / divisor spread over every position of its window (the backward of ``AvgPool``)."""

    uses_inputs = False

    def forward(self, g, geom, divisor, shape):
        self.geom, self.divisor = geom, divisor
        return _window_spread(_scaled(g, divisor), geom, shape)

    def vjp(self, gg):
        out = _window_sum(gg, self.geom)
        out /= self.divisor
        return _first(out), None, None, None

    def backward(self, gg):
        return AvgPool.apply(gg, self.geom, self.divisor), None, None, None


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
    x, unbatched = _pool_input(op, input, n)
    geom = _pool_geometry(op, tuple(x.shape[2:]), kernel_size, stride, padding, 1, ceil_mode)
    divisor = _divisor(geom, count_include_pad, divisor_override, _ints(padding, n, "padding", op))
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


# --- adaptive pooling -------------------------------------------------------------------------------
def _adaptive_bins(size: int, out: int):
    """PyTorch's adaptive bins: [floor(i S / O), ceil((i + 1) S / O)) for each output i."""
    i = xp.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


def _adaptive_sizes(op: str, input: Tensor, n: int, output_size) -> tuple:
    """``output_size`` as n ints (None keeps the input's size), checked."""
    sizes = _ints(output_size, n, "output_size", op) if not isinstance(output_size, (tuple, list)) \
        else tuple(input.shape[-n + i] if s is None else int(s) for i, s in enumerate(output_size))
    if len(sizes) != n or min(sizes) < 1:
        raise ValueError(f"{op}: output_size must be {n} positive ints (or None to keep a size), "
                         f"got {output_size!r}")
    if min(input.shape[-n:]) < 1:
        raise ValueError(f"{op}: input {tuple(input.shape)} has an empty spatial dim")
    return sizes


def _adaptive_avg_nd(op: str, n: int, input: Tensor, output_size) -> Tensor:
    x, unbatched = _pool_input(op, input, n)
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


def _adaptive_max_nd(op: str, n: int, input: Tensor, output_size, return_indices: bool):
    x, unbatched = _pool_input(op, input, n)
    sizes = _adaptive_sizes(op, x, n, output_size)
    spatial = tuple(x.shape[2:])
    k = tuple(s // o for s, o in zip(spatial, sizes))
    if all(s % o == 0 for s, o in zip(spatial, sizes)) and math.prod(k) <= 16 and not return_indices:
        out = MaxPool.apply(x, _pool_geometry(op, spatial, k, k, 0, 1, False), None)
        return out.squeeze(0) if unbatched else out
    # uneven or large bins: each output's window as flat positions (bins padded to the longest by repeating their last element)
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


# --- upsampling -------------------------------------------------------------------------------------
_INTERP_DIMS = {"nearest": (1, 2, 3), "linear": (1,), "bilinear": (2,), "trilinear": (3,)}


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None) -> Tensor:
    """Resize the spatial dims of (N, C, *S) to ``size`` or ``S * scale_factor`` (PyTorch's coordinates).

    Modes: "nearest" (1-3 spatial dims), "linear" (1), "bilinear" (2), "trilinear" (3); ``align_corners``
    maps the corner pixels onto each other (linear modes only). Built from gathers along each dim, so
    every derivative exists.
    """
    if mode not in _INTERP_DIMS:
        raise ValueError(f"interpolate: mode must be one of {sorted(_INTERP_DIMS)}, got {mode!r}")
    n = input.ndim - 2
    if n not in _INTERP_DIMS[mode]:
        raise ValueError(f"interpolate: mode {mode!r} takes inputs with "
                         f"{' or '.join(str(d + 2) for d in _INTERP_DIMS[mode])} dims, got {tuple(input.shape)}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners only applies to the linear modes")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    spatial = tuple(input.shape[2:])
    if size is not None:
        out = _ints(size, n, "size", "interpolate")
        scales = tuple(s / o for s, o in zip(spatial, out))
    else:
        factors = tuple(float(f) for f in (scale_factor if isinstance(scale_factor, (tuple, list))
                                           else (scale_factor,) * n))
        if len(factors) != n or min(factors) <= 0:
            raise ValueError(f"interpolate: scale_factor must be {n} positive numbers, got {scale_factor!r}")
        out = tuple(int(math.floor(s * f)) for s, f in zip(spatial, factors))
        scales = tuple(1.0 / f for f in factors)
    if min(out) < 1 or min(spatial) < 1:
        raise ValueError(f"interpolate: input {tuple(input.shape)} resized to {out} has an empty dim")
    result = input
    for i, (s, o, scale) in enumerate(zip(spatial, out, scales)):
        dim = 2 + i
        dst = xp.arange(o, dtype=xp.float64)
        if mode == "nearest":
            result = index_select(result, dim, xp.minimum(xp.floor(dst * scale).astype(xp.int64), s - 1))
            continue
        if align_corners:
            src = dst * ((s - 1) / (o - 1) if o > 1 else 0.0)
        else:
            src = xp.maximum((dst + 0.5) * scale - 0.5, 0.0)
        i0 = xp.minimum(xp.floor(src).astype(xp.int64), s - 1)
        i1 = xp.minimum(i0 + 1, s - 1)
        lam = Tensor._make((src - i0).astype(input.dtype).reshape((-1,) + (1,) * (n - 1 - i)), None)
        result = index_select(result, dim, i0) * (1.0 - lam) + index_select(result, dim, i1) * lam
    return result


# --- channel dropout ------------------------------------------------------------------------------------
def _channel_dropout(op: str, n: int, input: Tensor, p: float, training: bool, generator) -> Tensor:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: p must be in [0, 1], got {p}")
    if input.ndim not in (n + 1, n + 2):
        raise ValueError(f"{op}: expected input {_shape_text(n, 'C')} or (C, {_SPATIAL[n]}), got "
                         f"{tuple(input.shape)}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    gen = generator if generator is not None else backend.default_generator()
    keep = gen.random(input.shape[:input.ndim - n], dtype=xp.float32) >= p
    mask = xp.multiply(keep, 1.0 / (1.0 - p), dtype=input.dtype).reshape(keep.shape + (1,) * n)
    if input.device != "cpu":
        mask = backend.to_device(mask, input.device)
    return input * Tensor._make(mask, None)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero whole channels of (N, C, L) with probability ``p`` (scaling the rest by 1 / (1 - p))."""
    return _channel_dropout("dropout1d", 1, input, p, training, generator)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero whole feature maps of (N, C, H, W) with probability ``p``: neighbouring pixels are correlated,
    so dropping single pixels regularises little."""
    return _channel_dropout("dropout2d", 2, input, p, training, generator)


__all__ = [
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d", "avg_pool1d",
    "avg_pool2d", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "dropout1d", "dropout2d",
    "interpolate", "max_pool1d", "max_pool2d",
]
#: functions that are also Tensor methods (none: these take layer arguments)
METHODS: list = []
