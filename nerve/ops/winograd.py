"""Winograd minimal filtering F(2x2, 3x3) (Lavin & Gray 2016) for stride-1 3x3 convolutions, as compiled loops
(numba, when installed): an optional fast path of ``nerve.ops.conv`` for NumPy arrays of float32/float64.

F(2, 3) from the interpolation points 0, 1, -1 and infinity: two outputs y0 = d0 g0 + d1 g1 + d2 g2,
y1 = d1 g0 + d2 g1 + d3 g2 of a 3-tap correlation over 4 inputs take 4 multiplications
m1 = (d0 - d2) g0, m2 = (d1 + d2)(g0 + g1 + g2) / 2, m3 = (d2 - d1)(g0 - g1 + g2) / 2, m4 = (d1 - d3) g2,
y0 = m1 + m2 + m3, y1 = m2 - m3 - m4, i.e. y = A^T [(G g) * (B^T d)] with

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

Nested in 2-d, a 2x2 output tile is A^T [(G g G^T) * (B^T d B)] A over a 4x4 input tile (tiles 2 apart): 16
multiplications instead of 36. Summed over input channels, the 16 products of a tile are 16 GEMMs
(tiles x C) @ (C x O), which BLAS runs; the input transform B^T d B and the output transform A^T m A (edge tiles
clipped, bias added) are the compiled loops, run on chunks of tiles small enough that the GEMMs' operands stay
in cache. Input and output are channels-last (N, H, W, C), the layout ``conv.py`` computes in; padding is read as
zeros by the input transform (no padded copy). The input gradient of a stride-1 3x3 convolution is the same
correlation of the output gradient with the flipped, channel-transposed filter, so one kernel serves both. The
weight gradient is F(2, 3) transposed (F(3, 2)): dW = G^T [sum over tiles of (A q A^T) * (B^T d B)] G, with the
same input tiles d and the output gradient's 2x2 tiles q, 16 GEMMs (C x tiles) @ (tiles x O) summed over chunks.
``ENABLED = False`` forces conv.py's im2col path (results agree within float32 round-off).
"""
from __future__ import annotations

from nerve import backend
from nerve.backend import xp
from nerve.ops import cblas, compiled, streams, workers

#: False: never use the Winograd kernels (conv.py's im2col path), e.g. to test or time that path
ENABLED = True
#: bytes of one chunk's transformed tiles and products (16 (C + O) values a tile): they stay in L2 between the
#: three passes
CHUNK_BYTES = 1 << 20
#: fewest tiles of a chunk: with wide channels the GEMMs need rows (256 -> 256 channels on 8x8 images: 11.5 ms
#: a forward with 32 tiles a chunk, 10.5 with 64; im2col 13.9)
MIN_TILES = 64
#: fewest input and output channels for which Winograd is used (measured: below them im2col's GEMM is cheap
#: and the transforms cost more than the GEMM time they save; with one channel the 16 GEMMs are outer products)
MIN_CHANNELS = 16
_state: dict = {}

# the filter transform G (4 x 3), in Python floats: G g G^T is formed in the filter's own dtype
_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))


def kernels():
    """The compiled transforms (a namespace), or None when numba is missing or ``ENABLED`` is False."""
    return compiled.once(_state, _compile) if ENABLED else None


def usable(x, w) -> bool:
    """Whether the kernels run on ``x`` and ``w``: installed, enabled, NumPy arrays (not CuPy's) of one float
    dtype, float32 or float64."""
    return type(x) is backend.ndarray and type(w) is backend.ndarray and x.dtype == w.dtype \
        and x.dtype.char in "fd" and kernels() is not None


def applies(a, b, geom, channels: tuple) -> bool:
    """Whether a convolution face of ``geom`` (conv.py's Geometry) on arrays a and b runs here: 2-d, 3x3,
    stride 1, dilation 1, one group, ``channels`` (in, out) at least ``MIN_CHANNELS``, and ``usable``."""
    return geom.kernel == (3, 3) and geom.stride == (1, 1) and geom.dilation == (1, 1) and geom.groups == 1 \
        and min(channels) >= MIN_CHANNELS and usable(a, b)


def forward(x_last, w, b, geom):
    """conv(x, w) + b for channels-last contiguous x (N, H, W, C): channels-last contiguous (N, OH, OW, O)."""
    return correlate(x_last, filter_transform(w), geom.out, geom.lo, b)


def input_grad(g_last, w, geom):
    """dX of y = conv(x, w) for the channels-last output gradient (N, OH, OW, O): the correlation of g with the
    flipped, channel-transposed filter, g read from offset 2 - padding; channels-last (N, H, W, C)."""
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    return correlate(g_last, filter_transform(flipped), geom.size, tuple(2 - a for a in geom.lo))


def weight_grad(x_last, g_last, geom):
    """dW (O, C, 3, 3) of y = conv(x, w) from channels-last x (N, H, W, C) and output gradient (N, OH, OW, O):
    by transposing F(2, 3), dW = G^T [sum over tiles of (A g A^T) * (B^T d B)] G, with the forward's input
    tiles d and the output gradient's 2x2 tiles g: 16 GEMMs (C x tiles) @ (tiles x O) summed over chunks."""
    k = kernels()
    n, c, o = x_last.shape[0], x_last.shape[-1], g_last.shape[-1]
    tw = (geom.out[1] + 1) // 2
    per_tile = (geom.out[0] + 1) // 2 * tw
    step = max(MIN_TILES, CHUNK_BYTES // (16 * (c + o) * x_last.itemsize))
    loops = _loops() if x_last.flags.c_contiguous and g_last.flags.c_contiguous else None

    def buffers(a0: int, a1: int) -> tuple:
        m = min(step, (a1 - a0) * per_tile)
        return (xp.empty(16 * _plane(m * c, x_last.itemsize), dtype=x_last.dtype),
                xp.empty(16 * _plane(m * o, x_last.itemsize), dtype=x_last.dtype), xp.zeros((16, c, o), x_last.dtype))

    def native(slot: int, a0: int, a1: int):  # the compiled loop as a worker's native part
        vbuf, gbuf, total = buffers(a0, a1)
        args = (x_last.reshape(-1), *x_last.shape, g_last.reshape(-1), *g_last.shape[1:], total.reshape(-1), vbuf,
                gbuf, a0 * per_tile, a1 * per_tile, step, tw, per_tile, geom.lo[0], geom.lo[1],
                cblas.gemm_address(x_last.dtype))
        return workers.native_part(loops.natives[x_last.dtype.char][1], args, total)

    def part(a0: int, a1: int):
        t_end = a1 * per_tile
        vbuf, gbuf, total = buffers(a0, a1)
        frame, zero = xp.empty((1, 4, 4, c), dtype=x_last.dtype), xp.zeros(o, x_last.dtype)
        if loops is not None:
            loops.weight(x_last, g_last, total, vbuf, gbuf, frame, zero, a0 * per_tile, t_end, step, tw, per_tile,
                         geom.lo[0], geom.lo[1], cblas.gemm_address(x_last.dtype))
            return total
        for t0 in range(a0 * per_tile, t_end, step):
            t = min(step, t_end - t0)
            (v, v3), (gt, gt3) = _planes(vbuf, t, c), _planes(gbuf, t, o)
            k.input_tiles(x_last, v, frame, t0, t, tw, per_tile, geom.lo[0], geom.lo[1])
            k.grad_tiles(g_last, gt, zero, t0, t, tw, per_tile)
            total += xp.matmul(v3.transpose(0, 2, 1), gt3)
        return total
    parts = streams.run(part, n, 2.0 * n * per_tile * 16 * c * o, x_last,
                        site=("winograd_weight", x_last.shape, g_last.shape), sums=True,
                        native=native if loops is not None else None)
    total = parts[0]
    for more in parts[1:]:
        total += more
    g = xp.asarray(_G, dtype=total.dtype)
    return xp.ascontiguousarray(xp.einsum("ak,abco,bl->ockl", g, total.reshape(4, 4, c, o), g, optimize=True))


def filter_transform(w):
    """U = G g G^T of every (out, in) filter pair of w (O, C, 3, 3), as the 16 GEMM operands (16, C, O)."""
    g = xp.asarray(_G, dtype=w.dtype)
    u = xp.einsum("ak,ockl,bl->abco", g, w, g, optimize=True)  # (4, 4, C, O)
    return xp.ascontiguousarray(u.reshape(16, w.shape[1], w.shape[0]))


def correlate(x, u, out_size: tuple, offset: tuple, bias=None):
    """y[n, i, j, o] = sum over c, a, b of x[n, i + a - offset_h, j + b - offset_w, c] w[o, c, a, b] (x zero
    outside its bounds) for channels-last contiguous x (N, H, W, C) and U = ``filter_transform(w)``: a 3x3
    stride-1 correlation of output size ``out_size`` (+ bias), channels-last contiguous (N, OH, OW, O).

    The batch runs in parts through ``streams.run`` (each part a chunk loop of its own images)."""
    k = kernels()
    n, c, o = x.shape[0], x.shape[-1], u.shape[-1]
    oh, ow = out_size
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    y = xp.empty((n, oh, ow, o), dtype=x.dtype)
    bias = xp.zeros(o, dtype=x.dtype) if bias is None else xp.ascontiguousarray(bias, dtype=x.dtype)
    per_tile = th * tw
    step = max(MIN_TILES, CHUNK_BYTES // (16 * (c + o) * x.itemsize))
    loops = _loops() if x.flags.c_contiguous and u.flags.c_contiguous else None

    def buffers(a0: int, a1: int) -> tuple:
        m = min(step, (a1 - a0) * per_tile)
        return (xp.empty(16 * _plane(m * c, x.itemsize), dtype=x.dtype),
                xp.empty(16 * _plane(m * o, x.itemsize), dtype=x.dtype))

    def native(slot: int, a0: int, a1: int):  # the compiled loop as a worker's native part
        vbuf, mbuf = buffers(a0, a1)
        args = (x.reshape(-1), *x.shape, u.reshape(-1), y.reshape(-1), *y.shape[1:], bias, vbuf, mbuf,
                a0 * per_tile, a1 * per_tile, step, tw, per_tile, offset[0], offset[1], cblas.gemm_address(x.dtype),
                cblas.small_rows(o, c))
        return workers.native_part(loops.natives[x.dtype.char][0], args)

    def part(a0: int, a1: int) -> None:
        t_end = a1 * per_tile
        vbuf, mbuf = buffers(a0, a1)
        frame, out_frame = xp.empty((1, 4, 4, c), dtype=x.dtype), xp.empty((4, o), dtype=x.dtype)
        if loops is not None:
            loops.correlate(x, u, y, bias, vbuf, mbuf, frame, out_frame, a0 * per_tile, t_end, step, tw, per_tile,
                            offset[0], offset[1], cblas.gemm_address(x.dtype), cblas.small_rows(o, c))
            return
        for t0 in range(a0 * per_tile, t_end, step):
            t = min(step, t_end - t0)
            (v, v3), (prod, prod3) = _planes(vbuf, t, c), _planes(mbuf, t, o)
            k.input_tiles(x, v, frame, t0, t, tw, per_tile, offset[0], offset[1])
            xp.matmul(v3, u, out=prod3)
            k.output_tiles(prod, y, bias, out_frame, t0, t, tw, per_tile)
    streams.run(part, n, 2.0 * n * per_tile * 16 * c * o, x, site=("winograd", x.shape, u.shape, out_size),
                native=native if loops is not None else None)
    return y


def _plane(size: int, itemsize: int) -> int:
    """Elements between two of the 16 planes of ``size`` elements: an odd multiple of 64 bytes.

    NOTE: the transforms read or write 16 planes at once; planes a power of two apart collide in the L1 cache
    (SmallCNN's conv2: input transform 10.9 ms with planes 128 tiles apart (16 KiB), 1.8 ms 100 tiles apart)."""
    line = 64 // itemsize
    lines = -(-size // line)
    return (lines | 1) * line


def _planes(buffer, t: int, width: int):
    """The 16 planes of t * width elements of a buffer, ``_plane(t * width)`` apart: (16, plane) contiguous rows
    for the compiled transforms, and its (16, t, width) view for the GEMMs."""
    plane = _plane(t * width, buffer.itemsize)
    rows = buffer[:16 * plane].reshape(16, plane)
    return rows, rows[:, :t * width].reshape(16, t, width)


def _compile(cache: bool):
    from types import SimpleNamespace

    from numba import njit
    jit = njit(nogil=True, cache=cache)

    @njit(nogil=True, cache=cache, inline="always")
    def tile_in(src, n, h0, w0, v, base):
        """v[k, base + ch] = (B^T d B)_k of the 4x4 tile of src whose corner is (n, h0, w0), for every channel."""
        for ch in range(src.shape[3]):
            # rows: r = B^T d, then columns: (r B)
            d00, d01, d02, d03 = src[n, h0, w0, ch], src[n, h0, w0 + 1, ch], src[n, h0, w0 + 2, ch], \
                src[n, h0, w0 + 3, ch]
            d10, d11, d12, d13 = src[n, h0 + 1, w0, ch], src[n, h0 + 1, w0 + 1, ch], src[n, h0 + 1, w0 + 2, ch], \
                src[n, h0 + 1, w0 + 3, ch]
            d20, d21, d22, d23 = src[n, h0 + 2, w0, ch], src[n, h0 + 2, w0 + 1, ch], src[n, h0 + 2, w0 + 2, ch], \
                src[n, h0 + 2, w0 + 3, ch]
            d30, d31, d32, d33 = src[n, h0 + 3, w0, ch], src[n, h0 + 3, w0 + 1, ch], src[n, h0 + 3, w0 + 2, ch], \
                src[n, h0 + 3, w0 + 3, ch]
            r00, r01, r02, r03 = d00 - d20, d01 - d21, d02 - d22, d03 - d23
            r10, r11, r12, r13 = d10 + d20, d11 + d21, d12 + d22, d13 + d23
            r20, r21, r22, r23 = d20 - d10, d21 - d11, d22 - d12, d23 - d13
            r30, r31, r32, r33 = d10 - d30, d11 - d31, d12 - d32, d13 - d33
            i = base + ch
            v[0, i], v[1, i], v[2, i], v[3, i] = r00 - r02, r01 + r02, r02 - r01, r01 - r03
            v[4, i], v[5, i], v[6, i], v[7, i] = r10 - r12, r11 + r12, r12 - r11, r11 - r13
            v[8, i], v[9, i], v[10, i], v[11, i] = r20 - r22, r21 + r22, r22 - r21, r21 - r23
            v[12, i], v[13, i], v[14, i], v[15, i] = r30 - r32, r31 + r32, r32 - r31, r31 - r33
    compiled.named(tile_in, "winograd.tile_in")  # held by input_tiles' closure: a fixed identity keeps it cached

    @jit
    def input_tiles(x, v, frame, t0, count, tw, per_tile, off_h, off_w):
        """v[k, t * C + ch] = (B^T d B)_k of tiles t0 .. t0 + count (flat over images and tile rows/columns); a
        tile's corner is (2 ti - off_h, 2 tj - off_w) in x, whose outside reads as zeros (an edge tile through
        a zero-framed copy: ``frame``, (1, 4, 4, C))."""
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        for t in range(count):
            n, r = divmod(t0 + t, per_tile)
            ti, tj = divmod(r, tw)
            h0, w0 = 2 * ti - off_h, 2 * tj - off_w
            if h0 >= 0 and w0 >= 0 and h0 + 4 <= h and w0 + 4 <= w:
                tile_in(x, n, h0, w0, v, t * c)
            else:
                frame[:] = 0
                for a in range(max(0, -h0), min(4, h - h0)):
                    for b in range(max(0, -w0), min(4, w - w0)):
                        for ch in range(c):
                            frame[0, a, b, ch] = x[n, h0 + a, w0 + b, ch]
                tile_in(frame, 0, 0, 0, v, t * c)

    @jit
    def output_tiles(m, y, bias, frame, t0, count, tw, per_tile):
        """y's 2x2 tiles t0 .. t0 + count = A^T m A + bias from the products m[k, t * O + o], clipped at y's
        edges (an edge tile through ``frame``'s four rows, (4, O))."""
        oh, ow, width = y.shape[1], y.shape[2], y.shape[3]
        for t in range(count):
            n, r = divmod(t0 + t, per_tile)
            ti, tj = divmod(r, tw)
            i, j = 2 * ti, 2 * tj
            mt = m[:, t * width:(t + 1) * width]
            edge = i + 1 >= oh or j + 1 >= ow
            y0 = frame[0] if edge else y[n, i, j]
            y1 = frame[1] if edge else y[n, i, j + 1]
            y2 = frame[2] if edge else y[n, i + 1, j]
            y3 = frame[3] if edge else y[n, i + 1, j + 1]
            for o in range(width):
                # rows: s = A^T m (2 x 4), then columns: s A
                s00 = mt[0, o] + mt[4, o] + mt[8, o]
                s01 = mt[1, o] + mt[5, o] + mt[9, o]
                s02 = mt[2, o] + mt[6, o] + mt[10, o]
                s03 = mt[3, o] + mt[7, o] + mt[11, o]
                s10 = mt[4, o] - mt[8, o] - mt[12, o]
                s11 = mt[5, o] - mt[9, o] - mt[13, o]
                s12 = mt[6, o] - mt[10, o] - mt[14, o]
                s13 = mt[7, o] - mt[11, o] - mt[15, o]
                bo = bias[o]
                y0[o] = (s00 + s01 + s02) + bo
                y1[o] = (s01 - s02 - s03) + bo
                y2[o] = (s10 + s11 + s12) + bo
                y3[o] = (s11 - s12 - s13) + bo
            if edge:
                y[n, i, j] = frame[0]
                if j + 1 < ow:
                    y[n, i, j + 1] = frame[1]
                if i + 1 < oh:
                    y[n, i + 1, j] = frame[2]
                    if j + 1 < ow:
                        y[n, i + 1, j + 1] = frame[3]

    @jit
    def grad_tiles(g, gt, zero, t0, count, tw, per_tile):
        """gt[k, t * O + o] = (A q A^T)_k of the output gradient's 2x2 tiles q, tiles t0 .. t0 + count (read
        from ``zero``, O zeros, outside g); A = [[1, 0], [1, 1], [1, -1], [0, -1]]."""
        oh, ow, width = g.shape[1], g.shape[2], g.shape[3]
        for t in range(count):
            n, r = divmod(t0 + t, per_tile)
            ti, tj = divmod(r, tw)
            i, j = 2 * ti, 2 * tj
            right, down = j + 1 < ow, i + 1 < oh
            g00 = g[n, i, j]
            g01 = g[n, i, j + 1] if right else zero
            g10 = g[n, i + 1, j] if down else zero
            g11 = g[n, i + 1, j + 1] if down and right else zero
            rows = gt[:, t * width:(t + 1) * width]
            for o in range(width):
                q00, q01, q10, q11 = g00[o], g01[o], g10[o], g11[o]
                # rows: r = A q (4 x 2), then columns: r A^T (4 x 4)
                r10, r11, r20, r21 = q00 + q10, q01 + q11, q00 - q10, q01 - q11
                rows[0, o], rows[1, o], rows[2, o], rows[3, o] = q00, q00 + q01, q00 - q01, -q01
                rows[4, o], rows[5, o], rows[6, o], rows[7, o] = r10, r10 + r11, r10 - r11, -r11
                rows[8, o], rows[9, o], rows[10, o], rows[11, o] = r20, r20 + r21, r20 - r21, -r21
                rows[12, o], rows[13, o], rows[14, o], rows[15, o] = -q10, -q10 - q11, q11 - q10, q11

    for fn, name in ((input_tiles, "input_tiles"), (output_tiles, "output_tiles"), (grad_tiles, "grad_tiles")):
        compiled.named(fn, f"winograd.{name}")  # held by the chunk loops' closures: fixed identities
    return SimpleNamespace(input_tiles=input_tiles, output_tiles=output_tiles, grad_tiles=grad_tiles)


def _loops():
    """A part's whole chunk loop as one compiled call without the GIL (the 16 GEMMs of a chunk through NumPy's
    CBLAS by address), or None where NumPy's CBLAS GEMM is not found. Why: the Python loop took the GIL back after
    each transform and GEMM; two parts then waited for it in turn, and after a pause a part could run at one
    core's speed for several calls (3x3 64->64: 15-21 ms against 9-10)."""
    found = cblas.numpy_gemm()
    if found is None or kernels() is None:
        return None
    return compiled.once(_state.setdefault(("loops", found[2]), {}), lambda cache: _compile_loops(cache, found[2]))


def _compile_loops(cache: bool, int_bits: int):
    from types import SimpleNamespace

    import numpy as np
    from numba import carray, cfunc, njit, types
    k = kernels()
    input_tiles, output_tiles, grad_tiles = k.input_tiles, k.output_tiles, k.grad_tiles
    gemm = cblas.dispatcher(int_bits)
    gemm_rows = cblas.rows_dispatcher(int_bits)
    no, tr = cblas.NO_TRANS, cblas.TRANS

    @njit(nogil=True, cache=cache, inline="always")
    def plane(size, line):  # _plane's spacing: an odd number of cache lines
        lines = -(-size // line)
        return (lines | 1) * line

    compiled.named(plane, "winograd.plane")

    @njit(nogil=True, cache=cache)
    def correlate(x, u, y, bias, vbuf, mbuf, frame, out_frame, t_begin, t_end, step, tw, per_tile, off_h, off_w, fn,
                  rows):
        """``correlate``'s chunk loop over tiles [t_begin, t_end): transform, 16 GEMMs (of ``rows`` tiles each:
        ``cblas.small_rows``), output transform."""
        c, o, size = x.shape[3], u.shape[2], x.itemsize
        line = 64 // size
        for t0 in range(t_begin, t_end, step):
            t = min(step, t_end - t0)
            pv, pm = plane(t * c, line), plane(t * o, line)
            v, m = vbuf[:16 * pv].reshape(16, pv), mbuf[:16 * pm].reshape(16, pm)
            input_tiles(x, v, frame, t0, t, tw, per_tile, off_h, off_w)
            for q in range(16):  # product q (t, O) = V_q (t, C) @ U_q (C, O)
                gemm_rows(fn, size == 8, no, no, t, o, c, v.ctypes.data + q * pv * size, c,
                          u.ctypes.data + q * c * o * size, o, 0, m.ctypes.data + q * pm * size, o, rows)
            output_tiles(m, y, bias, out_frame, t0, t, tw, per_tile)

    @njit(nogil=True, cache=cache)
    def weight(x, g, total, vbuf, gbuf, frame, zero, t_begin, t_end, step, tw, per_tile, off_h, off_w, fn):
        """``weight_grad``'s chunk loop: total[q] (C, O) += V_q^T @ Q_q over the chunks of tiles [t_begin, t_end)."""
        c, o, size = x.shape[3], g.shape[3], x.itemsize
        line = 64 // size
        for t0 in range(t_begin, t_end, step):
            t = min(step, t_end - t0)
            pv, pg = plane(t * c, line), plane(t * o, line)
            v, gt = vbuf[:16 * pv].reshape(16, pv), gbuf[:16 * pg].reshape(16, pg)
            input_tiles(x, v, frame, t0, t, tw, per_tile, off_h, off_w)
            grad_tiles(g, gt, zero, t0, t, tw, per_tile)
            for q in range(16):
                gemm(fn, size == 8, tr, no, c, o, t, v.ctypes.data + q * pv * size, c, gt.ctypes.data + q * pg * size,
                     o, 1, total.ctypes.data + q * c * o * size, o)

    # the same loops as native parts (nerve.ops.workers), their arguments packed by workers.pack
    compiled.named(correlate, f"winograd.correlate.{int_bits}")
    compiled.named(weight, f"winograd.weight.{int_bits}")
    address = compiled.address()
    natives = {}
    for dt in (np.float32, np.float64):
        @cfunc(types.void(types.CPointer(types.int64), types.int64, types.int64), nopython=True, cache=cache)
        def correlate_native(p, a0, a1):  # x N H W C u y OH OW O bias vbuf mbuf t_begin t_end step tw per_tile ...
            c, o = p[5], p[12]
            x = carray(address(p[0]), (p[2], p[3], p[4], c), dt)
            u = carray(address(p[6]), (16, c, o), dt)
            y = carray(address(p[8]), (p[2], p[10], p[11], o), dt)
            correlate(x, u, y, carray(address(p[13]), (p[14],), dt), carray(address(p[15]), (p[16],), dt),
                      carray(address(p[17]), (p[18],), dt), np.empty((1, 4, 4, c), dt), np.empty((4, o), dt),
                      p[19], p[20], p[21], p[22], p[23], p[24], p[25], p[26], p[27])

        @cfunc(types.void(types.CPointer(types.int64), types.int64, types.int64), nopython=True, cache=cache)
        def weight_native(p, a0, a1):  # x N H W C g OH OW O total vbuf gbuf t_begin t_end step tw per_tile ...
            c, o = p[5], p[10]
            x = carray(address(p[0]), (p[2], p[3], p[4], c), dt)
            g = carray(address(p[6]), (p[2], p[8], p[9], o), dt)
            total = carray(address(p[11]), (16, c, o), dt)
            weight(x, g, total, carray(address(p[13]), (p[14],), dt), carray(address(p[15]), (p[16],), dt),
                   np.empty((1, 4, 4, c), dt), np.zeros(o, dt), p[17], p[18], p[19], p[20], p[21], p[22], p[23],
                   p[24])
        natives[np.dtype(dt).char] = (correlate_native.address, weight_native.address)
    return SimpleNamespace(correlate=correlate, weight=weight, natives=natives)
