"""Stride-2 3x3 convolutions by a polyphase split and Winograd minimal filtering F(2, 2), as compiled transforms
(numba, when installed) around batched GEMMs: an optional fast path of ``nerve.ops.conv`` for NumPy
float32/float64 arrays, 6.25 multiplications per output and channel pair instead of 9.

In 1-d, two outputs 2 apart, y0 = d0 w0 + d1 w1 + d2 w2 and y1 = d2 w0 + d3 w1 + d4 w2, split into the even
phase (d0, d2, d4), a 2-tap correlation with (w0, w2) done by F(2, 2) (points 0, 1, infinity: 3 products), and
the odd phase (d1, d3), a 1-tap one with w1 (2 products): 5 products

    m0 = (d0 - d2) w0 + d1 w1,   m1 = d2 (w0 + w2),   m2 = (d4 - d2) w2 + d3 w1,   y0 = m0 + m1,   y1 = m1 + m2,

i.e. y = A^T [(G w) * (B^T d)] over 5 transformed values, grouped by the 3 points of F(2, 2) that sum them
(``_GROUPS``: (0, 1), (2,), (3, 4)), with

    B^T = [[1, 0, -1, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, -1, 0, 1], [0, 0, 0, 1, 0]]
    G   = [[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1], [0, 1, 0]]
    A^T = [[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]].

Nested in 2-d, a 2x2 output tile takes a 5x5 input tile (tiles 4 apart): 25 products instead of 36, i.e. the four
phases' sub-convolutions (taps 2x2 by F(2x2, 2x2), 2x1 and 1x2 by F(2, 2) along one axis, 1x1 plainly). The
products that share a point (r, s) of F(2x2, 2x2) are summed by one GEMM over their concatenated channels: 9
GEMMs (tiles x K) @ (K x O) with K = 4C at the corners, 2C on the edges and C at the centre, then F(2x2, 2x2)'s
output transform (9 planes -> 2x2 outputs, edge tiles clipped, bias added). Input and output are channels-last
(N, H, W, C); padding is read as zeros (no padded copy). The weight gradient is the same algorithm transposed:
dW = G^T [sum over tiles of (A q A^T) * (B^T d B)] G with the output gradient's 2x2 tiles q, 9 GEMMs
(K x tiles) @ (tiles x O) summed over chunks. ``ENABLED = False`` forces conv.py's im2col path.
"""
from __future__ import annotations

import threading
from types import SimpleNamespace

from nerve import backend
from nerve.backend import xp
from nerve.ops import cblas, compiled, conv_kernels, streams, workers

#: False: never use these kernels (conv.py's im2col path), e.g. to test or time that path
ENABLED = True
#: bytes of one chunk's transformed tiles and products (25 C + 9 O values a tile)
CHUNK_BYTES = 1 << 20
#: fewest tiles of a chunk (the GEMMs need rows)
MIN_TILES = 64
#: the weight gradient's chunks: at least this many tiles (its GEMMs sum over tiles), in at most WEIGHT_BLOCKS
#: blocks, each keeping a sum of 25 C O values
WEIGHT_TILES = 256
WEIGHT_BLOCKS = 8
#: fewest input and output channels, and fewest 2x2 output tiles of a call, for which this path is used. Measured
#: single-threaded against the im2col path (forward / weight gradient): 8 -> 8 and 16 -> 16 channels on 32x32
#: images lose (1.7 / 2.0, 1.3 / 1.5), 16 -> 32 breaks even, 32 -> 32 to 64 -> 128 win (0.80-0.93); 256 -> 512 on
#: 8x8 images loses with 256 tiles (1.1-1.2: the filter transform, 25 C O values, costs as much as many tiles),
#: breaks even with 512 and wins with 1,024 (0.85-0.97)
MIN_CHANNELS = 32
MIN_CALL_TILES = 512
_state: dict = {}
_kept = threading.local()  # each thread's scratch arrays (``_scratch``)

_GROUPS = ((0, 1), (2,), (3, 4))
#: the 9 points (r, s) in buffer order: corners (K = 4C), edges (2C), centre (C), so each kind is one batched GEMM
_ORDER = ((0, 0), (0, 2), (2, 0), (2, 2), (0, 1), (2, 1), (1, 0), (1, 2), (1, 1))


def kernels():
    """The compiled transforms (a namespace), or None when numba is missing or ``ENABLED`` is False."""
    return compiled.once(_state, _compile) if ENABLED else None


def applies(a, b, geom, channels: tuple) -> bool:
    """Whether a face of ``geom`` (conv.py's Geometry) on arrays a (the input) and b runs here: 2-d, 3x3, stride 2,
    dilation 1, one group, ``channels`` (in, out) at least ``MIN_CHANNELS``, at least ``MIN_CALL_TILES`` tiles,
    NumPy arrays (not CuPy's) of one dtype, float32 or float64, numba installed and NumPy's BLAS callable
    (``cblas``)."""
    return geom.kernel == (3, 3) and geom.stride == (2, 2) and geom.dilation == (1, 1) and geom.groups == 1 \
        and min(channels) >= MIN_CHANNELS and _count(len(a), geom.out) >= MIN_CALL_TILES \
        and type(a) is backend.ndarray and type(b) is backend.ndarray and a.dtype == b.dtype \
        and a.dtype.char in "fd" and kernels() is not None and cblas.numpy_gemm() is not None


def _count(n: int, out: tuple) -> int:
    """2x2 output tiles of n images of output size ``out``."""
    return n * ((out[0] + 1) // 2) * ((out[1] + 1) // 2)


def _scratch(name: str, size: int, dtype, slot: int = 0):
    """``size`` elements of a scratch array that the calling thread keeps between calls (it grows to the largest
    size asked); ``slot`` > 0: one it prepares for the worker of that slot (a native part).
    NOTE: fresh chunk buffers in each part (about 1 MB a thread for the bench's stride-2 layer) cost
    page faults at every call: bench-style bursts 8.9 / 9.4 ms against 7.7 / 8.5 kept (a loaded machine)."""
    kept = _kept.__dict__.setdefault("arrays", {})
    key = (name, xp.dtype(dtype).char, slot)
    if key not in kept or kept[key].size < size:
        kept[key] = xp.empty(size, dtype=dtype)
    return kept[key][:size]


class _Layout:
    """Where a chunk of up to ``m`` tiles keeps its transformed inputs (9 planes, K = 4C, 2C, C values a tile) and
    its products or transformed output gradients (9 planes, O values a tile), planes an odd number of cache lines
    apart (``winograd._plane``: 25 or 9 planes written at once collide in L1 when a power of two apart)."""

    def __init__(self, c: int, o: int, m: int, dtype, slot: int = 0) -> None:
        item = xp.dtype(dtype).itemsize
        self.c, self.o = c, o
        self.widths = (4 * c, 2 * c, c)
        self.spans = tuple(_plane(m * k, item) for k in self.widths)
        starts = [0, 4 * self.spans[0], 4 * (self.spans[0] + self.spans[1])]
        self.v = _scratch("v", starts[2] + self.spans[2], dtype, slot)
        self.span_o = _plane(m * o, item)
        self.p = _scratch("p", 9 * self.span_o, dtype, slot)
        self.frame = _scratch("frame", 25 * c, dtype, slot)
        # each transformed value (k, l) of a 5x5 tile: its plane's start, a tile's width there, its offset in a tile
        tab = []
        for k in range(5):
            r, a = next((r, g.index(k)) for r, g in enumerate(_GROUPS) if k in g)
            for j in range(5):
                s, b = next((s, g.index(j)) for s, g in enumerate(_GROUPS) if j in g)
                p = _ORDER.index((r, s))
                kind = 0 if p < 4 else 1 if p < 8 else 2
                tab.append((starts[kind] + (p - 4 * kind) * self.spans[kind], self.widths[kind],
                            (a * len(_GROUPS[s]) + b) * c))
        self.tab = xp.asarray(tab, dtype=xp.int64)
        # each point (r, s), r * 3 + s: its plane's start among the products
        self.points = xp.asarray([_ORDER.index((r, s)) * self.span_o for r in range(3) for s in range(3)],
                                 dtype=xp.int64)
        self.starts = starts

    def planes(self) -> list:
        """Each point's (in ``_ORDER``) transformed inputs and products (or output gradients): (address of its
        first tile in v, K, address of its first tile in p)."""
        item, out = self.v.itemsize, []
        for p in range(9):
            kind = 0 if p < 4 else 1 if p < 8 else 2
            at = self.starts[kind] + (p - 4 * kind if kind < 2 else 0) * self.spans[kind]
            out.append((self.v.ctypes.data + at * item, self.widths[kind], self.p.ctypes.data + p * self.span_o * item))
        return out


def _plane(size: int, itemsize: int) -> int:
    """Elements between two planes of ``size`` elements: an odd multiple of 64 bytes."""
    line = 64 // itemsize
    return ((-(-size // line)) | 1) * line


def _blocks(points: tuple, c: int) -> dict:
    """The (C, O) block of each value (k, l) of the 5x5 transformed domain in the 9 points' GEMM operands
    ``points`` ((4, 4C, O), (4, 2C, O), (C, O); rows ordered (row value, column value, channel) in a point)."""
    corners, edges, centre = points
    blocks = {}
    for k in range(5):
        r, a = next((r, g.index(k)) for r, g in enumerate(_GROUPS) if k in g)
        for j in range(5):
            s, b = next((s, g.index(j)) for s, g in enumerate(_GROUPS) if j in g)
            p, at = _ORDER.index((r, s)), (a * len(_GROUPS[s]) + b) * c
            point = corners[p] if p < 4 else edges[p - 4] if p < 8 else centre
            blocks[k, j] = point[at:at + c]
    return blocks


#: the filter taps that G sums into each of the 5 transformed values
_TAPS = ((0,), (1,), (0, 2), (2,), (1,))


def filter_transform(w) -> tuple:
    """G w G^T of every (out, in) filter pair of w (O, C, 3, 3), as the 9 points' GEMM operands (``_blocks``)."""
    taps = xp.ascontiguousarray(w.transpose(2, 3, 1, 0))  # (3, 3, C, O)
    c, o = w.shape[1], w.shape[0]
    points = xp.empty((4, 4 * c, o), w.dtype), xp.empty((4, 2 * c, o), w.dtype), xp.empty((c, o), w.dtype)
    for (k, j), block in _blocks(points, c).items():
        terms = [taps[a, b] for a in _TAPS[k] for b in _TAPS[j]]
        if len(terms) == 1:
            block[...] = terms[0]
        else:
            xp.add(terms[0], terms[1], out=block)
            for more in terms[2:]:
                block += more
    return points


class _Tiles:
    """The 2x2 output tiles of a stride-2 face (flat over images, tile rows and columns; the last ones of an odd
    size clipped), in chunks of ``step`` tiles and blocks of chunks that the parts on threads take in turn (as
    ``conv_kernels.Blocks``: a part whose core is busy takes fewer)."""

    def __init__(self, x_last, out: tuple, o: int, step: int, blocks: int) -> None:
        self.n, self.h, self.w, self.c = x_last.shape
        self.oh, self.ow, self.o = out[0], out[1], o
        self.tw = (out[1] + 1) // 2
        self.per_image = (out[0] + 1) // 2 * self.tw
        total = self.n * self.per_image
        self.step = step
        self.blocks = conv_kernels.Blocks(SimpleNamespace(chunks=self.chunks), total)

    def chunks(self, r0: int, r1: int) -> list:
        k = max(1, -(-(r1 - r0) // self.step))
        return [(r0 + (r1 - r0) * i // k, r0 + (r1 - r0) * (i + 1) // k) for i in range(k)]

    def flops(self) -> float:
        """Multiply-adds x 2 of the face's GEMMs."""
        return 2.0 * self.n * self.per_image * 25 * self.c * self.o


def _step(c: int, o: int, itemsize: int) -> int:
    return max(MIN_TILES, CHUNK_BYTES // ((25 * c + 9 * o) * itemsize))


def _blas(dtype) -> xp.ndarray:
    """[address of NumPy's BLAS GEMM for ``dtype``, 1 for float64 else 0]."""
    dtype = xp.dtype(dtype)
    return xp.asarray([cblas.gemm_address(dtype), dtype.char == "d"], dtype=xp.int64)


def _geometry(tiles, geom) -> xp.ndarray:
    return xp.asarray([tiles.h, tiles.w, tiles.c, tiles.oh, tiles.ow, tiles.o, tiles.tw, tiles.per_image,
                       geom.lo[0], geom.lo[1]], dtype=xp.int64)


def forward(x_last, w, b, geom):
    """conv(x, w) + b, stride 2, for channels-last contiguous x (N, H, W, C): channels-last (N, OH, OW, O).

    Each part on a thread is one compiled call (the GIL released throughout: a worker that waits for it may be
    woken on its caller's core) that takes chunks in turn and runs their GEMMs through NumPy's BLAS."""
    kern, dtype = kernels(), x_last.dtype
    o = w.shape[0]
    tiles = _Tiles(x_last, geom.out, o, _step(x_last.shape[-1], o, dtype.itemsize), conv_kernels.BLOCKS)
    y = xp.empty((tiles.n,) + geom.out + (o,), dtype=dtype)
    bias = xp.zeros(o, dtype=dtype) if b is None else xp.ascontiguousarray(b, dtype=dtype)
    uc, ue, uz = filter_transform(w)
    filters = [m.ctypes.data for m in list(uc) + list(ue) + [uz]]
    chunks = xp.asarray([c for block in tiles.blocks.blocks for c in block], dtype=xp.int64)
    counter, blas, geo = xp.zeros(1, dtype=xp.int64), _blas(dtype), _geometry(tiles, geom)

    def args(slot: int) -> tuple:
        lay = _Layout(tiles.c, o, tiles.blocks.longest, dtype, slot)
        gemms = xp.asarray([(v, kd, u, p, cblas.small_rows(o, kd)) for (v, kd, p), u in zip(lay.planes(), filters)],
                           dtype=xp.int64)
        return (x_last.reshape(-1), lay.v, lay.tab, lay.frame, lay.p, lay.points, y.reshape(-1), bias, chunks, counter,
                geo, gemms, blas)

    def native(slot: int, a0: int, a1: int):
        return workers.native_part(kern.natives[dtype.char][0], args(slot))
    streams.run(lambda a0, a1: kern.forward_part(*args(0)), len(chunks), tiles.flops(), x_last,
                site=("winograd_stride2", x_last.shape, w.shape), native=native)
    return y


def weight_grad(x_last, g_last, geom):
    """dW (O, C, 3, 3) of a stride-2 y = conv(x, w) from channels-last x (N, H, W, C) and output gradient
    (N, OH, OW, O): G^T [sum over tiles of (A q A^T) * (B^T d B)] G, 9 GEMMs per chunk. Each block of chunks
    keeps its sum (its GEMMs add into it), added in block order: the same bit for bit on any number of threads."""
    kern, dtype = kernels(), x_last.dtype
    c, o = x_last.shape[-1], g_last.shape[-1]
    tiles = _Tiles(x_last, geom.out, o, max(WEIGHT_TILES, _step(c, o, dtype.itemsize)), WEIGHT_BLOCKS)
    nb = len(tiles.blocks)
    sums = [_scratch(f"sums{i}", nb * count * width * c * o, dtype).reshape(nb, count, width * c, o)
            for i, (count, width) in enumerate(((4, 4), (4, 2), (1, 1)))]  # kept: fresh ones cost page faults
    targets = [(total[0, i].ctypes.data, total.strides[0]) for total in sums for i in range(len(total[0]))]
    chunks = xp.asarray([c for block in tiles.blocks.blocks for c in block], dtype=xp.int64)
    lengths = xp.asarray([len(block) for block in tiles.blocks.blocks], dtype=xp.int64)
    blocks = xp.stack([xp.cumsum(lengths) - lengths, xp.cumsum(lengths)], axis=1)  # each block's chunks
    counter, blas, geo = xp.zeros(1, dtype=xp.int64), _blas(dtype), _geometry(tiles, geom)

    def args(slot: int) -> tuple:
        lay = _Layout(c, o, tiles.blocks.longest, dtype, slot)
        gemms = xp.asarray([(v, kd, q, at, stride) for (v, kd, q), (at, stride) in zip(lay.planes(), targets)],
                           dtype=xp.int64)
        return (x_last.reshape(-1), g_last.reshape(-1), lay.v, lay.tab, lay.frame, lay.p, lay.points, blocks, chunks,
                counter, geo, gemms, blas)

    def native(slot: int, a0: int, a1: int):
        return workers.native_part(kern.natives[dtype.char][1], args(slot))
    streams.run(lambda a0, a1: kern.weight_part(*args(0)), nb, tiles.flops(), x_last,
                site=("winograd_stride2_weight", x_last.shape, g_last.shape), sums=True, native=native)
    sums[2] = sums[2][:, 0]
    taps = xp.zeros((3, 3, c, o), dtype=dtype)  # G^T z G: each transformed value's sum into its filter taps
    for (k, j), block in _blocks([total.sum(0) for total in sums], c).items():
        for a in _TAPS[k]:
            for b in _TAPS[j]:
                taps[a, b] += block
    return xp.ascontiguousarray(taps.transpose(3, 2, 0, 1))


def _compile(cache: bool):
    import numpy as np
    from numba import carray, cfunc, njit, types, uint64
    jit = njit(nogil=True, cache=cache)
    inline = njit(nogil=True, cache=cache, inline="always")
    found = cblas.numpy_gemm()  # (None: this path is not used, ``applies``)
    dispatch = cblas.dispatcher(64 if found is None else found[2])
    gemm_rows = cblas.rows_dispatcher(64 if found is None else found[2])
    fetch_add = compiled.fetch_add()

    @inline
    def gemm(blas, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc):
        """C = op(A) op(B) (+ C with beta 1) by NumPy's BLAS (``_blas``: its GEMM's address, float64 or not)."""
        dispatch(blas[0], blas[1], ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc)
    compiled.named(gemm, "winograd_stride2.gemm")

    @njit(nogil=True, cache=cache, inline="always")
    def tile_in(src, base, rs, c, v, tab, t):
        """B^T d B of the 5x5 tile at src[base] (rows rs apart, channels innermost) into v as ``tab`` places them.

        NOTE: one loop over the channels per transformed value (1, 2 or 4 reads, one write), which LLVM vectorizes;
        all 25 values in one channel loop ran scalar (2.5 ms for the bench's stride-2 layer, 0.65 ms now)."""
        cs, r2 = uint64(c), rs + rs
        for k in range(5):
            # B^T's row k: d[a] - d[2] (k = 0, 3), or d[a]
            a = 0 if k == 0 else 1 if k == 1 else 2 if k == 2 else 4 if k == 3 else 3
            for j in range(5):
                b = 0 if j == 0 else 1 if j == 1 else 2 if j == 2 else 4 if j == 3 else 3
                at = uint64(tab[k * 5 + j, 0] + t * tab[k * 5 + j, 1] + tab[k * 5 + j, 2])
                p = base + uint64(a) * rs + uint64(b) * cs
                pa, pb = base + r2 + uint64(b) * cs, base + uint64(a) * rs + cs + cs  # (2, b), (a, 2)
                if (k == 0 or k == 3) and (j == 0 or j == 3):
                    pab = base + r2 + cs + cs
                    for ch in range(c):
                        u = uint64(ch)
                        v[at + u] = (src[p + u] - src[pb + u]) - (src[pa + u] - src[pab + u])
                elif k == 0 or k == 3:
                    for ch in range(c):
                        u = uint64(ch)
                        v[at + u] = src[p + u] - src[pa + u]
                elif j == 0 or j == 3:
                    for ch in range(c):
                        u = uint64(ch)
                        v[at + u] = src[p + u] - src[pb + u]
                else:
                    for ch in range(c):
                        u = uint64(ch)
                        v[at + u] = src[p + u]
    compiled.named(tile_in, "winograd_stride2.tile_in")

    @inline
    def input_tiles(xf, h, w, c, v, tab, frame, t0, count, tw, per_tile, off_h, off_w):
        """The 25 transformed values (B^T d B) of tiles t0 .. t0 + count (flat over images and tile rows/columns)
        of channels-last x (given flat, xf) into v as ``tab`` places them; a tile's corner is
        (4 ti - off_h, 4 tj - off_w), outside x reads as zeros (an edge tile through ``frame``, 5x5xC)."""
        for t in range(count):
            n, r = divmod(t0 + t, per_tile)
            ti, tj = divmod(r, tw)
            h0, w0 = 4 * ti - off_h, 4 * tj - off_w
            if h0 >= 0 and w0 >= 0 and h0 + 5 <= h and w0 + 5 <= w:
                tile_in(xf, uint64(((n * h + h0) * w + w0) * c), uint64(w * c), c, v, tab, t)
                continue
            lo, up = max(0, -w0) * c, min(5, w - w0) * c  # the frame's row part inside x
            for a in range(5):
                at = uint64(a * 5 * c)
                if not 0 <= h0 + a < h:
                    lo_a = up_a = 5 * c
                else:
                    lo_a, up_a = lo, up
                for u in range(lo_a):  # NOTE: unsigned indices, so LLVM vectorizes the loops
                    frame[at + uint64(u)] = 0
                if up_a > lo_a:
                    src = uint64(((n * h + h0 + a) * w + w0) * c + lo_a)
                    for u in range(up_a - lo_a):
                        frame[at + uint64(lo_a + u)] = xf[src + uint64(u)]
                for u in range(up_a, 5 * c):
                    frame[at + uint64(u)] = 0
            tile_in(frame, uint64(0), uint64(5 * c), c, v, tab, t)

    compiled.named(input_tiles, "winograd_stride2.input_tiles")

    @inline
    def output_tiles(pf, points, yf, oh, ow, o, bias, t0, count, tw, per_tile):
        """y's 2x2 tiles t0 .. t0 + count (y channels-last, given flat) = A^T m A + bias from the products of the 9
        points (the tile's O values at pf[points[r * 3 + s] + t O]), clipped at y's edges."""
        os = uint64(o)
        for t in range(count):
            n, r = divmod(t0 + t, per_tile)
            ti, tj = divmod(r, tw)
            i, j = 2 * ti, 2 * tj
            down, right = i + 1 < oh, j + 1 < ow
            y00 = uint64(((n * oh + i) * ow + j) * o)
            y10 = y00 + uint64(ow * o)
            to = t * o
            b00, b01, b02 = uint64(points[0] + to), uint64(points[1] + to), uint64(points[2] + to)
            b10, b11, b12 = uint64(points[3] + to), uint64(points[4] + to), uint64(points[5] + to)
            b20, b21, b22 = uint64(points[6] + to), uint64(points[7] + to), uint64(points[8] + to)
            for ch in range(o):
                u = uint64(ch)
                m11 = pf[b11 + u]
                u00, u01, u02 = pf[b00 + u] + pf[b10 + u], pf[b01 + u] + m11, pf[b02 + u] + pf[b12 + u]
                u10, u11, u12 = pf[b10 + u] + pf[b20 + u], m11 + pf[b21 + u], pf[b12 + u] + pf[b22 + u]
                bo = bias[ch]
                yf[y00 + u] = (u00 + u01) + bo
                if right:
                    yf[y00 + os + u] = (u01 + u02) + bo
                if down:
                    yf[y10 + u] = (u10 + u11) + bo
                    if right:
                        yf[y10 + os + u] = (u11 + u12) + bo

    compiled.named(output_tiles, "winograd_stride2.output_tiles")

    @inline
    def grad_tiles(gf, oh, ow, o, qf, points, t0, count, tw, per_tile):
        """A q A^T of the output gradient's 2x2 tiles q (g channels-last, given flat; zero outside g), tiles
        t0 .. t0 + count, into qf as ``points`` places them; A = [[1, 0], [1, 1], [0, 1]]."""
        for t in range(count):
            n, r = divmod(t0 + t, per_tile)
            ti, tj = divmod(r, tw)
            i, j = 2 * ti, 2 * tj
            down, right = i + 1 < oh, j + 1 < ow
            g00 = uint64(((n * oh + i) * ow + j) * o)
            g01, g10 = g00 + uint64(o), g00 + uint64(ow * o)
            g11 = g10 + uint64(o)
            to = t * o
            b00, b01, b02 = uint64(points[0] + to), uint64(points[1] + to), uint64(points[2] + to)
            b10, b11, b12 = uint64(points[3] + to), uint64(points[4] + to), uint64(points[5] + to)
            b20, b21, b22 = uint64(points[6] + to), uint64(points[7] + to), uint64(points[8] + to)
            for ch in range(o):
                u = uint64(ch)
                q00 = gf[g00 + u]
                q01 = gf[g01 + u] if right else 0.0
                q10 = gf[g10 + u] if down else 0.0
                q11 = gf[g11 + u] if down and right else 0.0
                s0, s1 = q00 + q10, q01 + q11
                qf[b00 + u], qf[b01 + u], qf[b02 + u] = q00, q00 + q01, q01
                qf[b10 + u], qf[b11 + u], qf[b12 + u] = s0, s0 + s1, s1
                qf[b20 + u], qf[b21 + u], qf[b22 + u] = q10, q10 + q11, q11

    compiled.named(grad_tiles, "winograd_stride2.grad_tiles")

    @jit
    def forward_part(xf, v, tab, frame, pf, points, yf, bias, chunks, counter, geo, gemms, blas):
        """The chunks of tiles (``chunks``: (first, end) tile), taken in turn through ``counter``: input transform,
        the 9 points' GEMMs (``gemms``: transformed inputs, K, filters, products, rows a GEMM (``cblas.small_rows``);
        addresses) and output transform.
        ``geo``: H, W, C, OH, OW, O, tiles a row, tiles an image, padding top, left."""
        h, w, c, oh, ow, o, tw, per_tile, off_h, off_w = geo
        while True:
            i = fetch_add(counter, 0, 1)
            if i >= chunks.shape[0]:
                return
            t0, t = chunks[i, 0], chunks[i, 1] - chunks[i, 0]
            input_tiles(xf, h, w, c, v, tab, frame, t0, t, tw, per_tile, off_h, off_w)
            for p in range(9):
                gemm_rows(blas[0], blas[1], cblas.NO_TRANS, cblas.NO_TRANS, t, o, gemms[p, 1], gemms[p, 0],
                          gemms[p, 1], gemms[p, 2], o, 0, gemms[p, 3], o, gemms[p, 4])
            output_tiles(pf, points, yf, oh, ow, o, bias, t0, t, tw, per_tile)

    @jit
    def weight_part(xf, gf, v, tab, frame, qf, points, blocks, chunks, counter, geo, gemms, blas):
        """The blocks of chunks (``blocks``: (first, end) chunk), taken in turn through ``counter``: input and
        output-gradient transforms, and each point's GEMM (``gemms``: transformed inputs, K, transformed output
        gradients, the point's sum in block 0, bytes between blocks) into the block's sum (its first chunk's
        writes it, the others add)."""
        h, w, c, oh, ow, o, tw, per_tile, off_h, off_w = geo
        while True:
            j = fetch_add(counter, 0, 1)
            if j >= blocks.shape[0]:
                return
            for i in range(blocks[j, 0], blocks[j, 1]):
                t0, t = chunks[i, 0], chunks[i, 1] - chunks[i, 0]
                input_tiles(xf, h, w, c, v, tab, frame, t0, t, tw, per_tile, off_h, off_w)
                grad_tiles(gf, oh, ow, o, qf, points, t0, t, tw, per_tile)
                for p in range(9):
                    gemm(blas, cblas.TRANS, cblas.NO_TRANS, gemms[p, 1], o, t, gemms[p, 0], gemms[p, 1], gemms[p, 2],
                         o, 0 if i == blocks[j, 0] else 1, gemms[p, 3] + j * gemms[p, 4], o)

    # the same loops as native parts (nerve.ops.workers), their arguments packed by workers.pack
    compiled.named(forward_part, "winograd_stride2.forward_part")
    compiled.named(weight_part, "winograd_stride2.weight_part")
    address = compiled.address()
    natives = {}

    @inline
    def vector(p, i, kind):  # a packed vector of dtype ``kind``
        return carray(address(p[i]), (p[i + 1],), kind)

    @inline
    def matrix(p, i):  # a packed C-contiguous int64 matrix
        return carray(address(p[i]), (p[i + 1], p[i + 2]), np.int64)
    compiled.named(vector, "winograd_stride2.vector")
    compiled.named(matrix, "winograd_stride2.matrix")
    for dt in (np.float32, np.float64):
        @cfunc(types.void(types.CPointer(types.int64), types.int64, types.int64), nopython=True, cache=cache)
        def forward_native(p, a0, a1):  # xf v tab frame pf points yf bias chunks counter geo gemms blas
            forward_part(vector(p, 0, dt), vector(p, 2, dt), matrix(p, 4), vector(p, 8, dt), vector(p, 10, dt),
                         vector(p, 12, np.int64), vector(p, 14, dt), vector(p, 16, dt), matrix(p, 18),
                         vector(p, 22, np.int64), vector(p, 24, np.int64), matrix(p, 26), vector(p, 30, np.int64))

        @cfunc(types.void(types.CPointer(types.int64), types.int64, types.int64), nopython=True, cache=cache)
        def weight_native(p, a0, a1):  # xf gf v tab frame qf points blocks chunks counter geo gemms blas
            weight_part(vector(p, 0, dt), vector(p, 2, dt), vector(p, 4, dt), matrix(p, 6), vector(p, 10, dt),
                        vector(p, 12, dt), vector(p, 14, np.int64), matrix(p, 16), matrix(p, 20),
                        vector(p, 24, np.int64), vector(p, 26, np.int64), matrix(p, 28), vector(p, 32, np.int64))
        natives[np.dtype(dt).char] = (forward_native.address, weight_native.address)
    return SimpleNamespace(forward_part=forward_part, weight_part=weight_part, natives=natives)
