"""Convolution for (N, C, *spatial) tensors, 1-d and 2-d: window geometry, channels-last im2col kernels and the
three faces of a convolution.

Layout: tensors keep PyTorch's channels-first shape, but convolution computes in channels-last memory
(N, *spatial, C). A kernel window is then KK runs of C contiguous values, so im2col is one strided copy (no
Python loop over output positions) and one GEMM writes its (N*OH*OW, O) result straight into channels-last
memory; the op returns a channels-first *view* of it (PyTorch's "channels_last" memory format), which the next
convolution, ReLU or pooling reads without a transpose.

A convolution y = conv(x, w) is bilinear, and its three faces are the primitives here: ``Conv`` (x, w -> y),
``ConvTranspose`` (y, w -> x, the adjoint in x, which is also the user's transposed convolution) and
``ConvWeight`` (x, y -> w, the adjoint in w). Each one's rule names the other two, so derivatives of any order
exist. im2col runs a few images at a time (its columns are recomputed for the weight gradient, not kept), so
extra memory stays below one layer's im2col; col2im loops over the KH*KW kernel offsets with strided adds
(never ``add.at``). Each face cuts its batch into parts through ``nerve.ops.streams`` (parts on threads when
that is faster). Pooling (``nerve.ops.pool``) shares the geometry and the window views.
"""
from __future__ import annotations

import itertools
import math
import numbers
from typing import NamedTuple

from nerve import backend
from nerve.autograd.function import Function, ShapeError
from nerve.autograd.rule_math import define
from nerve.backend import xp
from nerve.ops import conv_kernels, streams, winograd, winograd_stride2
from nerve.ops.channels_last import as_rows, channels_first, contiguous_last, copy_last, last_memory, last_view
from nerve.tensor import Tensor

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


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


def ntuple(value, n: int, name: str = "value", op: str = "ntuple") -> tuple:
    """An int, or a sequence of 1 or ``n`` ints, as a tuple of ``n`` ints (kernel sizes, strides, paddings);
    errors name ``op`` and the argument ``name``."""
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
    kernel, stride = ntuple(kernel, n, "kernel_size", op), ntuple(stride, n, "stride", op)
    dilation = ntuple(dilation, n, "dilation", op)
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
        lo = hi = ntuple(padding, n, "padding", op)
        if min(lo) < 0:
            raise ValueError(f"{op}: padding must be non-negative, got {padding!r}")
    return window_geometry(op, tuple(size), kernel, stride, dilation, lo, hi, groups)


def window_geometry(op, size, kernel, stride, dilation, lo, hi, groups=1) -> Geometry:
    """The Geometry of windows placed by tuples, checked: each padded dim must hold one window."""
    out = []
    for s, k, st, d, a, b in zip(size, kernel, stride, dilation, lo, hi):
        extent, padded = d * (k - 1) + 1, s + a + b
        if padded < extent:
            raise ShapeError(f"{op}: input of spatial size {tuple(size)} (padding {tuple(lo)}, {tuple(hi)}) is "
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
    kernel, stride = ntuple(kernel, n, "kernel_size", op), ntuple(stride, n, "stride", op)
    dilation, pad = ntuple(dilation, n, "dilation", op), ntuple(padding, n, "padding", op)
    extra = ntuple(output_padding, n, "output_padding", op)
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
        raise ShapeError(f"{op}: input of spatial size {tuple(size)} gives an empty output {full}")
    return Geometry(full, tuple(size), kernel, stride, dilation, pad,
                    tuple(p - e for p, e in zip(pad, extra)), groups)


# --- channels-last kernels on raw arrays --------------------------------------------------------------
def _as_strided(a, shape: tuple, strides: tuple):
    if a.__class__ is backend.ndarray:
        return xp.lib.stride_tricks.as_strided(a, shape, strides, writeable=False)
    return backend.array_module("cuda").lib.stride_tricks.as_strided(a, shape, strides)


def padded_last(x, geom: Geometry, fill: float = 0.0):
    """Channels-last contiguous (N, *padded, C) x with ``fill`` around it (x itself when it already is)."""
    if not any(geom.lo) and not any(geom.hi):
        return contiguous_last(x)
    xl = last_view(x)
    shape = (x.shape[0],) + geom.padded + (x.shape[1],)
    out = xp.full_like(xl, fill, shape=shape, order="C") if fill else xp.zeros_like(xl, shape=shape, order="C")
    keep = tuple(min(s, p - a) for s, p, a in zip(geom.size, geom.padded, geom.lo))
    copy_last(out[(slice(None),) + tuple(slice(a, a + k) for a, k in zip(geom.lo, keep))],
               xl[(slice(None),) + tuple(slice(0, k) for k in keep)])
    return out


def unpadded(xp_cl, geom: Geometry):
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


def windows(xp_cl, geom: Geometry):
    """The strided view (N, *out, *kernel, C) of every window of a padded channels-last array."""
    st = xp_cl.strides
    inner = st[1:-1]
    return _as_strided(xp_cl, (xp_cl.shape[0],) + geom.out + geom.kernel + (xp_cl.shape[-1],),
                       (st[0],) + tuple(s * k for s, k in zip(inner, geom.stride))
                       + tuple(s * d for s, d in zip(inner, geom.dilation)) + (st[-1],))


def _pointwise_gemm(x, geom: Geometry) -> bool:
    """A 1x1 face whose rows are x's channels-last memory as it is, under nerve's own threads: one GEMM that
    ``streams.matmul`` cuts, its workers' parts called in BLAS without the GIL."""
    return bool(streams.THREADS) and geom.groups == 1 and _pointwise(geom) and last_view(x).flags.c_contiguous


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
        self.win = windows(padded_last(x, geom), geom)
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


def _flops(n: int, geom: Geometry, c: int, o: int) -> float:
    """Multiply-adds x 2 of one face of a convolution of a batch of ``n``."""
    return 2.0 * n * math.prod(geom.out) * math.prod(geom.kernel) * c * o / geom.groups


def conv_forward(x, w, b, geom: Geometry):
    """y = conv(x, w) + b on raw arrays: im2col and a GEMM per chunk of images, written into
    channels-last rows (M, O) and returned as a channels-first view; parts of the batch run as streams."""
    if winograd.applies(x, w, geom, w.shape[:2]):  # stride-1 3x3: F(2x2, 3x3) (nerve.ops.winograd)
        return channels_first(winograd.forward(contiguous_last(x), w, b, geom))
    if winograd_stride2.applies(x, w, geom, w.shape[:2]):  # stride-2 3x3: polyphase F(2, 2) (winograd_stride2)
        return channels_first(winograd_stride2.forward(contiguous_last(x), w, b, geom))
    groups, o, n = geom.groups, w.shape[0], x.shape[0]
    wm = _weight_matrix(w, groups)
    p = math.prod(geom.out)
    if _pointwise_gemm(x, geom):  # 1x1 on channels-last rows: one GEMM cut on nerve's threads (no GIL)
        y = streams.matmul(as_rows(x), wm)
        if b is not None:
            y += b
        return channels_first(y.reshape((n,) + geom.out + (o,)))
    y = xp.empty_like(wm, shape=(n * p, o), dtype=xp.result_type(x, w), order="C")
    # compiled fills of row chunks (nerve.ops.conv_kernels), straight from x's memory
    fills = conv_kernels.Columns(x, geom, o, last_memory) if not _pointwise(geom) \
        and conv_kernels.applies(x, w, geom) else None
    blocks = conv_kernels.Blocks(fills, n * p) if fills is not None else None

    def part(a0: int, a1: int) -> None:
        if groups == 1 and _pointwise(geom):
            xp.matmul(as_rows(x[a0:a1]), wm, out=y[a0 * p:a1 * p])
            if b is not None:
                y[a0 * p:a1 * p] += b
            return
        if fills is not None:  # the parts take blocks of chunks in turn
            conv_kernels.forward(fills, wm, b, y, blocks)
            return
        cols = _Columns(x[a0:a1], geom)
        for a, z in cols.chunks:
            rows = slice((a0 + a) * p, (a0 + z) * p)
            if groups == 1:
                xp.matmul(cols.fill(a, z), wm, out=y[rows])
            else:
                y[rows] = (cols.fill(a, z) @ wm).transpose(1, 0, 2).reshape(-1, o)
            if b is not None:  # while the chunk is in cache
                y[rows] += b
    native = conv_kernels.forward_native(fills, wm, b, y, blocks) if fills is not None else None
    streams.run(part, n, _flops(n, geom, x.shape[1], o), x, site=("conv", x.shape, w.shape, geom), native=native)
    return channels_first(y.reshape((n,) + geom.out + (o,)))


def conv_weight_grad(x, g2, geom: Geometry, w_shape: tuple, bias_out: list | None = None):
    """dW of y = conv(x, w) for output-gradient rows g2 (M, O): the sum over chunks of cols^T g2.

    im2col is recomputed here rather than kept from the forward, so memory holds one chunk's columns; parts
    of the batch run as streams, each summing its own dW, added at the end. Where the compiled im2col runs, it
    appends the bias gradient (g2's column sums, taken in the same pass) to ``bias_out`` when one is given."""
    groups, n = geom.groups, x.shape[0]
    p = math.prod(geom.out)
    if winograd.applies(x, g2, geom, w_shape[1::-1]):  # stride-1 3x3: F(2x2, 3x3) transposed
        return winograd.weight_grad(contiguous_last(x), g2.reshape((n,) + geom.out + g2.shape[1:]), geom)
    if winograd_stride2.applies(x, g2, geom, w_shape[1::-1]):  # stride-2 3x3: polyphase F(2, 2) transposed
        return winograd_stride2.weight_grad(contiguous_last(x), g2.reshape((n,) + geom.out + g2.shape[1:]), geom)
    if _pointwise_gemm(x, geom):  # 1x1: rows^T g2 as one GEMM cut by its columns (no sum over parts)
        return _weight_from_rows(streams.matmul(as_rows(x).T, g2), geom, w_shape)
    flops, site = _flops(n, geom, x.shape[1], w_shape[0]), ("conv_weight", x.shape, g2.shape, geom)
    if not _pointwise(geom) and conv_kernels.applies(x, g2, geom):  # compiled fills; parts take blocks in turn
        fills = conv_kernels.Columns(x, geom, g2.shape[1], last_memory)
        blocks = conv_kernels.Blocks(fills, n * p)
        sums = xp.empty((len(blocks), fills.width, g2.shape[1]), dtype=g2.dtype)
        bias = None if bias_out is None else xp.empty((len(blocks), g2.shape[1]), dtype=g2.dtype)
        streams.run(lambda a0, a1: conv_kernels.weight_grad(fills, g2, blocks, sums, bias), n, flops, x, site=site,
                    sums=True, native=conv_kernels.weight_native(fills, g2, blocks, sums, bias))
        if bias is not None:
            bias_out.append(bias.sum(0))
        return _weight_from_rows(sums.sum(0), geom, w_shape)

    def part(a0: int, a1: int):
        if groups == 1 and _pointwise(geom):
            if last_view(x).flags.c_contiguous or not x.flags.c_contiguous:
                return as_rows(x[a0:a1]).T @ g2[a0 * p:a1 * p]
            # channels-first x: a GEMM per image on its (C, P) plane, no layout copy
            return xp.matmul(x[a0:a1].reshape(a1 - a0, x.shape[1], p), g2[a0 * p:a1 * p].reshape(a1 - a0, p, -1)
                             ).sum(0)
        cols = _Columns(x[a0:a1], geom)
        gw = None
        for a, b in cols.chunks:
            c, rows = cols.fill(a, b), g2[(a0 + a) * p:(a0 + b) * p]
            part = c.T @ rows if groups == 1 else c.transpose(0, 2, 1) @ _group_rows(rows, groups)
            if gw is None:
                gw = part
            else:
                gw += part
        return gw
    parts = streams.run(part, n, flops, x, site=site, sums=True)
    gw = parts[0]
    for more in parts[1:]:
        gw += more
    return _weight_from_rows(gw, geom, w_shape)


def _weight_from_rows(gw, geom: Geometry, w_shape: tuple):
    """(KK*Cg, O), or (G, KK*Cg, Og), rows ordered like im2col's -> the weight's shape (O, Cg, *K)."""
    groups, o, cg = geom.groups, w_shape[0], w_shape[1]
    gw = gw.reshape((groups,) + geom.kernel + (cg, o // groups))
    axes = (0, gw.ndim - 1, gw.ndim - 2) + tuple(range(1, gw.ndim - 2))
    return xp.ascontiguousarray(gw.transpose(axes)).reshape(w_shape)


def conv_input_grad(g2, w, geom: Geometry, n: int, c: int):
    """dX of y = conv(x, w) for output-gradient rows g2 (M, O), i.e. the transposed convolution (col2im).

    Per chunk of images, one (batched) GEMM gives a (rows, C) block g2 W_k for every kernel offset k, and each
    block is added into the padded input at its offset with one strided add (no ``add.at``). With few
    channels (C <= 4) the blocks come kernel-major, (KK*C, rows), from one wide GEMM, and go into
    channels-first memory (25 GEMMs three columns wide are slow: 5x5 kernel on 32x3x64x64, 46 -> 26 ms).
    Stride 1 with more channels takes ``_input_grad_shifted``. Parts of the batch run as streams.
    """
    groups = geom.groups
    o, cg = w.shape[0], w.shape[1]
    kk, p = math.prod(geom.kernel), math.prod(geom.out)
    dtype = xp.result_type(g2, w)
    kmajor = groups == 1 and c <= 4
    if groups == 1 and _pointwise(geom) and streams.THREADS:  # 1x1 under own threads: one GEMM, cut (no GIL)
        return channels_first(streams.matmul(g2, w.reshape(o, c)).reshape((n,) + geom.out + (c,)))
    if groups == 1 and _pointwise(geom):  # 1x1: one GEMM into channels-last rows, rows in parts
        wm, dx = w.reshape(o, c), xp.empty_like(g2, shape=(n * p, c), dtype=dtype, order="C")
        streams.run(lambda a0, a1: xp.matmul(g2[a0 * p:a1 * p], wm, out=dx[a0 * p:a1 * p]), n,
                    _flops(n, geom, c, o), g2, site=("conv_input", g2.shape, w.shape, geom))
        return channels_first(dx.reshape((n,) + geom.out + (c,)))
    if winograd.applies(g2, w, geom, w.shape[:2]):  # stride-1 3x3: F(2x2, 3x3) (nerve.ops.winograd)
        return channels_first(winograd.input_grad(g2.reshape((n,) + geom.out + (o,)), w, geom))
    if groups == 1 and not kmajor and all(s == 1 for s in geom.stride):
        return _input_grad_shifted(g2, w, geom, n, c, dtype)
    if kmajor:
        wk = xp.ascontiguousarray(w.reshape(o, c, kk).transpose(2, 1, 0)).reshape(kk * c, o)  # rows (k, c)
        dxp = xp.zeros_like(g2, shape=(n, c) + geom.padded, dtype=dtype, order="C")
    else:
        wk = xp.ascontiguousarray(w.reshape(groups, o // groups, cg, kk).transpose(0, 3, 1, 2))  # (G, KK, Og, Cg)
        dxp = xp.zeros_like(g2, shape=(n,) + geom.padded + (c,), dtype=dtype, order="C")
    step = max(1, CHUNK_BYTES // max(1, p * kk * c * dtype.itemsize))
    lead = (slice(None),) * (2 if kmajor else 1)

    def part(a0: int, a1: int) -> None:
        buffer = xp.empty_like(g2, shape=(min(step, a1 - a0) * p * kk * c,), dtype=dtype, order="C") \
            if groups == 1 else None
        for a in range(a0, a1, step):
            b = min(a + step, a1)
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
    streams.run(part, n, _flops(n, geom, c, o), g2, site=("conv_input", g2.shape, w.shape, geom))
    return channels_first(unpadded(last_view(dxp) if kmajor else dxp, geom))


def _input_grad_shifted(g2, w, geom: Geometry, n: int, c: int, dtype):
    """dX for stride 1 over flat rows: in padded input frames (N * prod(padded), C), kernel offset k is one
    row shift s_k, so col2im is KK contiguous row-block adds.

    Per chunk of images the output gradient is copied to the top-left of zero frames of the padded size (a
    buffer of the part's own, zeroed once: only that region is rewritten); the GEMM runs over every frame row
    (the zero rows are wasted work), but each add reads and writes contiguous memory. NOTE: measured against
    the strided per-offset adds, interleaved: 4% faster on 64x32x26x26 -> 64 (3x3), 11% on 32x64x32x32 -> 64
    (3x3, padding 1); frames filled per chunk inside the parts rather than for the batch before them: 5% less
    single-threaded, and the fill runs on every stream. Every real contribution lands in its own image's
    frame, so each part of the batch (a stream) stops its rows s_max before the end of its last frame and never
    adds into another part's rows.
    """
    o, kk, frame = w.shape[0], math.prod(geom.kernel), math.prod(geom.padded)
    flat = [math.prod(geom.padded[i + 1:]) for i in range(len(geom.padded))]  # row-major strides in rows
    shifts = [sum(i * d * f for i, d, f in zip(k, geom.dilation, flat))
              for k in itertools.product(*(range(m) for m in geom.kernel))]
    g_out = g2.reshape((n,) + geom.out + (o,))
    inner = tuple(slice(0, m) for m in geom.out)
    wk = xp.ascontiguousarray(w.reshape(o, c, kk).transpose(2, 0, 1)).astype(dtype, copy=False)  # (KK, O, C)
    dx = xp.empty_like(g2, shape=(n * frame, c), dtype=dtype, order="C")
    step = max(1, CHUNK_BYTES // max(1, frame * kk * c * dtype.itemsize))

    def part(a0: int, a1: int) -> None:
        dx[a0 * frame:a1 * frame] = 0
        m = min(step, a1 - a0)
        frames = xp.zeros_like(g2, shape=(m,) + geom.padded + (o,), dtype=dtype, order="C")
        buffer = xp.empty_like(g2, shape=(kk, m * frame, c), dtype=dtype, order="C")
        for a in range(a0, a1, step):
            b = min(a + step, a1)
            r0 = a * frame
            # rows past a1 * frame - shifts[-1] hold no output position: the part's last chunk stops there
            rows = (b - a) * frame if b < a1 else (b - a) * frame - shifts[-1]
            frames[(slice(0, b - a),) + inner] = g_out[a:b]
            blocks = buffer[:, :rows]
            xp.matmul(frames.reshape(-1, o)[:rows], wk, out=blocks)
            for k, shift in enumerate(shifts):
                dx[r0 + shift:r0 + shift + rows] += blocks[k]
    streams.run(part, n, 2.0 * n * frame * kk * c * o, g2, site=("conv_input", g2.shape, w.shape, geom))
    return channels_first(unpadded(dx.reshape((n,) + geom.padded + (c,)), geom))


def _channel_sums_array(g):
    """g summed over every dim but the channels (a bias gradient): one GEMV over channels-last rows when g's
    memory is channels-last (10x faster than sum(axis=...) for narrow rows), else NumPy's sum."""
    if last_view(g).flags.c_contiguous:
        return streams.column_sums(as_rows(g))
    return g.sum(axis=(0,) + tuple(range(2, g.ndim)))


def _channel_sums_tensor(g: Tensor) -> Tensor:
    return g.sum((0,) + tuple(range(2, g.ndim)))


def _channels_last_array(g):
    """The same values in channels-last memory (a channels-first view of it), copied only when needed: the
    faces of a backward then read one layout without each copying it."""
    return channels_first(contiguous_last(g))


define("channel_sums", _channel_sums_array, _channel_sums_tensor)
define("channels_last", _channels_last_array, lambda g: g)


# --- the three faces of a convolution ---------------------------------------------------------------
class Conv(Function):
    """y = conv(x, w) + b over channels-first tensors, w of shape (O, C / groups, *kernel)."""

    def forward(self, x, w, b, geom):
        self.geom = geom
        return conv_forward(x, w, b, geom)

    def backward(self, g, m):  # dx = convT(g, w), dw = convW(x, g), db = sum of g over all but channels
        x, w = m.inputs(self)[:2]
        nx, nw, nb = self.needs_input_grad[:3]
        g = m.channels_last(g)
        return (m.apply(ConvTranspose, g, w, None, self.geom) if nx else None,
                *m.conv_weight_bias(x, g, self.geom, nw, nb), None)


class ConvTranspose(Function):
    """x = convT(y, w) + b: the adjoint in x of conv with the same geometry, i.e. the transposed
    convolution (w of shape (C_in, C_out / groups, *kernel), C_in being y's channels)."""

    def forward(self, y, w, b, geom):
        self.geom = geom
        out = conv_input_grad(as_rows(y), w, geom, y.shape[0], w.shape[1] * geom.groups)
        if b is not None:
            out += b.reshape((-1,) + (1,) * (out.ndim - 2))
        return out

    def backward(self, g, m):  # <convT(y, w), g> = <y, conv(g, w)> = <w, convW(g, y)>
        y, w = m.inputs(self)[:2]
        ny, nw, nb = self.needs_input_grad[:3]
        return (m.apply(Conv, g, w, None, self.geom) if ny else None,
                m.apply(ConvWeight, g, y, self.geom) if nw else None,
                m.channel_sums(g) if nb else None, None)


def _weight_bias_array(x, g, geom: Geometry, nw: bool, nb: bool) -> tuple:
    """(dW or None, dB or None) of conv: dB from the im2col loop's pass over g's rows where that runs."""
    bias = [] if nb else None
    dw = conv_weight_grad(x, as_rows(g), geom, (g.shape[1], x.shape[1] // geom.groups) + geom.kernel, bias) if nw \
        else None
    return dw, (bias[0] if bias else _channel_sums_array(g)) if nb else None


def _weight_bias_tensor(x, g, geom: Geometry, nw: bool, nb: bool) -> tuple:
    return ConvWeight.apply(x, g, geom) if nw else None, _channel_sums_tensor(g) if nb else None


define("conv_weight_bias", _weight_bias_array, _weight_bias_tensor)


class ConvWeight(Function):
    """w-shaped convW(x, y) = sum over windows of x times y: the adjoint in w of conv (its weight grad)."""

    def forward(self, x, y, geom):
        self.geom = geom
        return conv_weight_grad(x, as_rows(y), geom, (y.shape[1], x.shape[1] // geom.groups) + geom.kernel)

    def backward(self, g, m):  # <convW(x, y), h> = <conv(x, h), y> = <x, convT(y, h)>
        x, y = m.inputs(self)[:2]
        nx, ny = self.needs_input_grad[:2]
        return (m.apply(ConvTranspose, y, g, None, self.geom) if nx else None,
                m.apply(Conv, x, g, None, self.geom) if ny else None, None)


# --- convolution functions ------------------------------------------------------------------------------
def _shape_text(n: int, c) -> str:
    return f"(N, {c}, {_SPATIAL[n]})"


def _batched(op: str, input: Tensor, n: int, channels: int, what: str) -> bool:
    """Check an (N, C, *S) or unbatched (C, *S) input with C = ``channels``; True when unbatched."""
    if input.ndim not in (n + 1, n + 2) or input.shape[input.ndim - n - 1] != channels:
        raise ShapeError(f"{op}: expected input {_shape_text(n, channels)}{what}, got {tuple(input.shape)}")
    return input.ndim == n + 1


def _conv_nd(op: str, n: int, input: Tensor, weight: Tensor, bias, stride, padding, dilation,
             groups: int) -> Tensor:
    if weight.ndim != n + 2:
        raise ShapeError(f"{op}: weight must have shape (out_channels, in_channels / groups, *kernel) with "
                         f"{n} kernel dims, got {tuple(weight.shape)}")
    if groups < 1 or weight.shape[0] % groups:
        raise ValueError(f"{op}: groups={groups} must be positive and divide out_channels "
                         f"{weight.shape[0]} (weight {tuple(weight.shape)})")
    unbatched = _batched(op, input, n, weight.shape[1] * groups, f" for weight {tuple(weight.shape)}")
    if unbatched:
        input = input.unsqueeze(0)
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ShapeError(f"{op}: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
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
        raise ShapeError(f"{op}: weight must have shape (in_channels, out_channels / groups, *kernel) with "
                         f"{n} kernel dims, got {tuple(weight.shape)}")
    if groups < 1 or weight.shape[0] % groups:
        raise ValueError(f"{op}: groups={groups} must be positive and divide in_channels {weight.shape[0]}")
    unbatched = _batched(op, input, n, weight.shape[0], f" for weight {tuple(weight.shape)}")
    if unbatched:
        input = input.unsqueeze(0)
    out_channels = weight.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ShapeError(f"{op}: bias must have shape ({out_channels},), got {tuple(bias.shape)}")
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



def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """3-d convolution of (N, C_in, D, H, W) volumes with weight (C_out, C_in / groups, kD, kH, kW): the same
    n-d faces as conv2d. ``padding``: int, triple, "valid" or "same" (stride 1), zeros."""
    return _conv_nd("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 3-d convolution (upsamples volumes by ``stride``): weight (C_in, C_out / groups, kD, kH, kW)."""
    return _conv_transpose_nd("conv_transpose3d", 3, input, weight, bias, stride, padding, output_padding,
                              groups, dilation)


__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "ntuple"]
#: functions that are also Tensor methods (none: these take layer arguments)
METHODS: list = []
