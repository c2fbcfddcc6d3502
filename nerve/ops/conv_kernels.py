"""Compiled im2col fills (numba, when installed) for ``nerve.ops.conv``'s forward and weight gradient of 1-d and
2-d ungrouped convolutions on NumPy float32/float64 arrays: an optional fast path of its im2col.

The fills write the columns of a range of output positions (rows, flat over images and output positions)
straight from the input, padding read as zeros and any stride or dilation computed, so no padded copy of the
input and no layout copy is made: from channels-last memory (N, H, W, C) one row per position, (rows, KK*C),
each kernel offset a run of C contiguous values; from channels-first memory (N, C, H, W) one row per column,
(KK*C, rows) ("kernel-major"), each a run along the image rows. Both order a column's entries (kernel row,
kernel column, channel), as conv.py's weight matrix. Each chunk's GEMM (``dot``) follows its fill while the
columns are in cache; chunks are sized for OpenBLAS's small-product path where the product is thin (SmallCNN's
conv1 weight gradient, K = 9: 93 GFLOP/s with 2,700-row chunks against 43 with a part's 21,600 rows), else to
about 2 MiB. The batch parts on threads take blocks of chunks in turn (``Blocks``), so a part whose core another
process holds takes fewer, and a weight gradient is the same bit for bit on any number of threads.
``ENABLED = False`` forces conv.py's NumPy im2col (results agree within round-off).
"""
from __future__ import annotations

import itertools

from nerve import backend
from nerve.backend import xp
from nerve.ops import cblas, compiled, workers

#: False: never use the compiled fills (conv.py's NumPy im2col), e.g. to test or time that path
ENABLED = True
#: a chunk's rows: as many as keep its GEMM (rows x K x O multiply-adds) within ``SMALL_GEMM``, which OpenBLAS
#: runs without packing its operands (5x5 3->32 weight gradient: 6.0 ms of GEMM with 305-row chunks, 7.5 with
#: 916), when that gives ``MIN_ROWS``; else ``CHUNK_BYTES`` of columns and output rows (3x3 64->128 stride 2: 682
#: rows 13.5 ms single-threaded, 256 rows 14.9)
SMALL_GEMM = 1e6
CHUNK_BYTES = 2 << 20
#: fewest rows of a chunk (each chunk costs a few Python calls)
MIN_ROWS = 256
#: most blocks of chunks that the batch parts take in turn (a weight gradient keeps one sum per block); NOTE:
#: 3x3 64->128 stride 2 on two threads (11 chunks): 8 blocks 7.9 / 8.3 ms forward / weight gradient, one chunk a
#: block 6.9 / 7.3, fixed halves of the batch (the NumPy im2col) 8.1 / 8.0: the last block decides the wait
BLOCKS = 64
_state: dict = {}


def kernels():
    """The compiled fills (a namespace), or None when numba is missing or ``ENABLED`` is False."""
    return compiled.once(_state, _compile) if ENABLED else None


def applies(x, other, geom) -> bool:
    """Whether the fills serve a face of ``geom`` (conv.py's Geometry) with input x and the other operand (the
    weight, or the output-gradient rows): 1-d or 2-d, one group, NumPy arrays (not CuPy's) of one dtype,
    float32 or float64, numba installed."""
    return len(geom.kernel) <= 2 and geom.groups == 1 and type(x) is backend.ndarray \
        and type(other) is backend.ndarray and x.dtype == other.dtype and x.dtype.char in "fd" \
        and kernels() is not None


class Columns:
    """The columns of x (N, C, *S) for ``geom``, by chunks of output rows (``others``: the width of the GEMM's
    other rows, the output or its gradient, which share the cache with them; ``to_last``: x in C-contiguous
    channels-last memory, as a channels-first view, copied only when needed): ``chunks(r0, r1)`` cuts the rows
    [r0, r1) (flat over images and output positions) into ranges, ``fill(buffer, a, b)`` returns their columns
    as a (b - a, KK*C) matrix (a transposed view when kernel-major) in the caller's buffer."""

    def __init__(self, x, geom, others: int, to_last) -> None:
        if x.ndim == 3:  # 1-d: one image row
            x, geom = x[:, :, None, :], _as_2d(geom)
        # NOTE: a channels-first input is read as it is (3x3 64->128 stride 2, single-threaded forward: 16.0 ms,
        # against 15.8 copying it to channels-last memory first and 13.4 when it is channels-last already)
        self.kmajor = x.flags.c_contiguous and not (x.shape[1] > 1 and _channels_last(x))
        self.x = x if self.kmajor else to_last(x).transpose(0, 2, 3, 1)
        self.args = (geom.out[0], geom.out[1], geom.stride[0], geom.stride[1], geom.dilation[0], geom.dilation[1],
                     geom.lo[0], geom.lo[1], geom.kernel[0], geom.kernel[1])
        self.width = geom.kernel[0] * geom.kernel[1] * x.shape[1]
        small = int(SMALL_GEMM // (self.width * others))
        self.step = small if small >= MIN_ROWS else max(MIN_ROWS, CHUNK_BYTES // ((self.width + others) * x.itemsize))
        self.fill_rows = kernels().fill_kmajor if self.kmajor else kernels().fill_rows

    def chunks(self, r0: int, r1: int) -> list:
        """[r0, r1) in ranges of about ``step`` rows (equal sizes, so the last one is not a sliver)."""
        k = max(1, -(-(r1 - r0) // self.step))
        return [(r0 + (r1 - r0) * i // k, r0 + (r1 - r0) * (i + 1) // k) for i in range(k)]

    def fill(self, buffer, a: int, b: int):
        rows = b - a
        if self.kmajor:
            cols = buffer[:rows * self.width]
            self.fill_rows(self.x.reshape(-1), *self.x.shape[1:], cols, a, rows, *self.args)
            return cols.reshape(self.width, rows).T
        cols = buffer[:rows * self.width]
        self.fill_rows(self.x.reshape(-1), *self.x.shape[1:], cols, a, rows, *self.args)
        return cols.reshape(rows, self.width)


def _channels_last(x) -> bool:
    return x.transpose(0, 2, 3, 1).flags.c_contiguous


def _as_2d(geom):
    """A 1-d geometry as a 2-d one of height 1."""
    return geom._replace(size=(1,) + geom.size, out=(1,) + geom.out, kernel=(1,) + geom.kernel,
                         stride=(1,) + geom.stride, dilation=(1,) + geom.dilation, lo=(0,) + geom.lo,
                         hi=(0,) + geom.hi)


class Blocks:
    """The chunks of rows [0, rows) in ``BLOCKS`` blocks, which the batch parts take in turn as each finishes one:
    a part whose core another process holds takes fewer (fixed halves made every call wait for the slower core).
    Each block's results depend on the block alone, so they are the same whichever thread runs it."""

    def __init__(self, cols: Columns, rows: int) -> None:
        chunks = cols.chunks(0, rows)
        k = min(BLOCKS, len(chunks))
        self.blocks = [chunks[len(chunks) * i // k:len(chunks) * (i + 1) // k] for i in range(k)]
        self.longest = max(b - a for a, b in chunks)
        self._next = itertools.count()  # NOTE: next() on it is atomic (one C call under the GIL)
        # the same for the compiled loops: every chunk's bounds in block order, each block's first and end chunk,
        # and the number of the next block to take (an atomic counter)
        self.bounds = xp.array([c for block in self.blocks for c in block], dtype=xp.int64).reshape(-1, 2)
        lengths = xp.array([len(block) for block in self.blocks], dtype=xp.int64)
        ends = xp.cumsum(lengths)
        self.spans = xp.stack([ends - lengths, ends], axis=1)
        self.counter = xp.zeros(1, dtype=xp.int64)

    def __len__(self) -> int:
        return len(self.blocks)

    def take(self):
        """(index, chunks) of each block this caller takes, until none is left."""
        while (i := next(self._next)) < len(self.blocks):
            yield i, self.blocks[i]


def _gemm(*arrays):
    """The address of NumPy's CBLAS GEMM for the arrays' dtype and its integer width, or None where the compiled
    block loops cannot call it: no CBLAS found, or an array whose rows are not unit-stride."""
    found = cblas.numpy_gemm()
    if found is None or any(a.ndim != 2 or a.strides[1] != a.itemsize or a.strides[0] % a.itemsize
                            for a in arrays):
        return None
    if found[2] == 32 and max(max(a.shape) for a in arrays) >= 2 ** 31:
        return None
    return cblas.gemm_address(arrays[0].dtype), found[2]


def forward(cols: Columns, wm, b, y, blocks: Blocks) -> None:
    """y[rows] = columns @ wm (+ b) for the chunks of each block taken (wm: (KK*C, O), y: (N*P, O) rows).

    With NumPy's CBLAS at hand the whole loop is one compiled call (fills, GEMMs and bias without the GIL: a
    Python loop took and gave back the GIL at every chunk, and two parts waiting for it in turn ran at one
    core's speed). NOTE: else ``dot``, not ``matmul``: NumPy's matmul of a small product holds the GIL, so two
    parts' chunk GEMMs ran one at a time (SmallCNN conv1's weight gradient: 0.35 ms on two threads vs 0.13
    alone; dot 0.18)."""
    buffer = xp.empty(blocks.longest * cols.width, dtype=cols.x.dtype)
    b = None if b is None else xp.ascontiguousarray(b, dtype=y.dtype)  # a bias of another dtype, as y += b casts it
    gemm = _gemm(wm, y) if wm.dtype == y.dtype else None
    if gemm is not None:
        _loops(gemm[1]).forward(*_forward_args(cols, wm, b, y, blocks, buffer, gemm[0]))
        return
    for _, chunks in blocks.take():
        for a, z in chunks:
            xp.dot(cols.fill(buffer, a, z), wm, out=y[a:z])
            if b is not None:  # while the chunk is in cache; NOTE: compiled, NumPy's broadcast add: 0.4 of 1.0 ms
                kernels().add_rows(y, b, a, z)


def _forward_args(cols: Columns, wm, b, y, blocks: Blocks, buffer, fn: int) -> tuple:
    """The compiled ``forward``'s arguments (as ``workers.pack`` takes them, but for the buffer and bias)."""
    return (cols.x.reshape(-1), *cols.x.shape[1:], cols.kmajor, buffer, cols.width, wm, y,
            xp.zeros(0, dtype=y.dtype) if b is None else b, b is not None, blocks.bounds.reshape(-1),
            blocks.spans.reshape(-1), blocks.counter, fn, *cols.args, cblas.small_rows(wm.shape[1], cols.width))


def forward_native(cols: Columns, wm, b, y, blocks: Blocks):
    """``forward``'s parts as native ones (``workers.run``'s ``native``), or None where the compiled loop does not
    serve."""
    gemm = _gemm(wm, y) if wm.dtype == y.dtype else None
    if gemm is None or not y.flags.c_contiguous:
        return None
    address = _loops(gemm[1]).natives[y.dtype.char][0]
    b = None if b is None else xp.ascontiguousarray(b, dtype=y.dtype)

    def native(slot: int, a0: int, a1: int):
        buffer = xp.empty(blocks.longest * cols.width, dtype=cols.x.dtype)
        args = _forward_args(cols, wm, b, y, blocks, buffer, gemm[0])
        return workers.native_part(address, args)
    return native


def _weight_args(cols: Columns, g2, blocks: Blocks, sums, bias, buffer, fn: int) -> tuple:
    """The compiled ``weight_grad``'s arguments (as ``workers.pack`` takes them)."""
    ones = xp.ones(blocks.longest if bias is not None else 0, dtype=g2.dtype)
    bias = xp.zeros(0, dtype=g2.dtype) if bias is None else bias.reshape(-1)
    return (cols.x.reshape(-1), *cols.x.shape[1:], cols.kmajor, buffer, cols.width, g2, sums.reshape(-1),
            blocks.bounds.reshape(-1), blocks.spans.reshape(-1), blocks.counter, fn, *cols.args, ones, bias,
            bias.size > 0)


def _weight_gemm(g2, sums):
    return _gemm(g2, sums.reshape(-1, sums.shape[-1])) if g2.dtype == sums.dtype and sums.flags.c_contiguous \
        else None


def weight_native(cols: Columns, g2, blocks: Blocks, sums, bias=None):
    """``weight_grad``'s parts as native ones (``workers.run``'s ``native``), or None where the compiled loop does
    not serve."""
    gemm = _weight_gemm(g2, sums)
    if gemm is None:
        return None
    address = _loops(gemm[1]).natives[g2.dtype.char][1]

    def native(slot: int, a0: int, a1: int):
        buffer = xp.empty(blocks.longest * cols.width, dtype=cols.x.dtype)
        args = _weight_args(cols, g2, blocks, sums, bias, buffer, gemm[0])
        return workers.native_part(address, args)
    return native


def weight_grad(cols: Columns, g2, blocks: Blocks, sums, bias=None) -> None:
    """sums[j] = columns^T @ g2 summed over the chunks of block j, for each block taken (sums: (blocks, KK*C, O);
    their sum in block order is the same on any number of threads); with ``bias`` (blocks, O), bias[j] = the sums
    of g2's columns over block j's rows, taken while they are in cache (a bias gradient without a pass of its own:
    the 5x5 3->32 layer's 17 MB of rows took 0.6 ms more)."""
    buffer = xp.empty(blocks.longest * cols.width, dtype=cols.x.dtype)
    gemm = _weight_gemm(g2, sums)
    if gemm is not None:  # one compiled call, as forward
        _loops(gemm[1]).weight_grad(*_weight_args(cols, g2, blocks, sums, bias, buffer, gemm[0]))
        return
    product = xp.empty_like(sums[0])
    for j, chunks in blocks.take():
        (a, z), rest = chunks[0], chunks[1:]
        xp.dot(cols.fill(buffer, a, z).T, g2[a:z], out=sums[j])
        for a, z in rest:
            xp.dot(cols.fill(buffer, a, z).T, g2[a:z], out=product)
            sums[j] += product
        if bias is not None:
            bias[j] = g2[chunks[0][0]:chunks[-1][1]].sum(0)


def _compile(cache: bool):
    from types import SimpleNamespace

    import numpy as np
    from numba import njit, uint64
    jit = njit(nogil=True, cache=cache)

    @njit(nogil=True, cache=cache, inline="always")
    def _inside(j0, run, sw, off, w):
        """(lo, up): the outputs j0 + u, lo <= u < up (within 0 .. run), whose input column (j0 + u) sw + off is
        inside 0 .. w."""
        lo = 0 if j0 * sw + off >= 0 else min(run, (sw - 1 - off) // sw - j0)
        return lo, max(lo, min(run, (w - off + sw - 1) // sw - j0))
    compiled.named(_inside, "conv_kernels.inside")  # held by fill_kmajor's closure: a fixed identity keeps it cached

    @jit
    def fill_rows(xf, h, w, c, cf, r0, count, oh, ow, sh, sw, dh, dw, ph, pw, kh, kw):
        """cols[r, (a kw + b) C + c] = x[n, i sh - ph + a dh, j sw - pw + b dw, c] for rows r0 + r = (n, i, j)
        of channels-last x (N, H, W, C), zero outside x; x and the columns (count, KK*C) given flat (xf, cf).
        A kernel row inside x with dilation 1 is one run of kw * C values."""
        width = kh * kw * c
        n, rem = divmod(r0, oh * ow)
        i, j = divmod(rem, ow)
        for r in range(count):
            for a in range(kh):
                hi, w0 = i * sh - ph + a * dh, j * sw - pw
                dst = uint64(r * width + a * kw * c)
                if 0 <= hi < h and dw == 1 and w0 >= 0 and w0 + kw <= w:
                    src = uint64(((n * h + hi) * w + w0) * c)
                    for u in range(kw * c):
                        cf[dst + uint64(u)] = xf[src + uint64(u)]
                    continue
                for b in range(kw):
                    wi, at = w0 + b * dw, dst + uint64(b * c)
                    if 0 <= hi < h and 0 <= wi < w:
                        src = uint64(((n * h + hi) * w + wi) * c)
                        for ch in range(c):
                            cf[at + uint64(ch)] = xf[src + uint64(ch)]
                    else:
                        for ch in range(c):
                            cf[at + uint64(ch)] = 0
            j += 1
            if j == ow:
                j, i = 0, i + 1
                if i == oh:
                    i, n = 0, n + 1

    @jit
    def fill_kmajor(xf, c, h, w, cf, r0, count, oh, ow, sh, sw, dh, dw, ph, pw, kh, kw):
        """cols[(a kw + b) C + c, r] = x[n, c, i sh - ph + a dh, j sw - pw + b dw] for rows r0 + r = (n, i, j)
        of channels-first x (N, C, H, W), zero outside x; x and the columns (KK*C, count) given flat (xf, cf).

        NOTE: flat arrays indexed by unsigned ints: with a signed offset in an index numba wraps negative values,
        and that keeps LLVM from vectorizing the copies (4 vs 50 GB/s); views per run cost as much as the copy."""
        # where the outputs j0 + u, 0 <= u < run, read inside x: lo <= u < up, i.e. 0 <= (j0 + u) sw + off < w;
        # for whole output rows (j0 = 0, run = ow) computed once per kernel column (integer divisions are slow)
        whole = np.empty((kw, 2), dtype=np.int64)
        for b in range(kw):
            whole[b, 0], whole[b, 1] = _inside(0, ow, sw, b * dw - pw, w)
        n, rem = divmod(r0, oh * ow)
        i, j0 = divmod(rem, ow)
        r = 0
        while r < count:
            run = min(ow - j0, count - r)
            for a in range(kh):
                hi = i * sh - ph + a * dh
                for b in range(kw):
                    off = b * dw - pw
                    if j0 == 0 and run == ow:
                        lo, up = whole[b, 0], whole[b, 1]
                    else:
                        lo, up = _inside(j0, run, sw, off, w)
                    if hi < 0 or hi >= h:
                        lo = up = run
                    for ch in range(c):
                        dst = uint64(((a * kw + b) * c + ch) * count + r)
                        for u in range(lo):
                            cf[dst + uint64(u)] = 0
                        if up > lo:
                            src, at = uint64(((n * c + ch) * h + hi) * w + (j0 + lo) * sw + off), dst + uint64(lo)
                            if sw == 1:
                                for u in range(up - lo):
                                    cf[at + uint64(u)] = xf[src + uint64(u)]
                            else:
                                for u in range(up - lo):
                                    cf[at + uint64(u)] = xf[src + uint64(u * sw)]
                        for u in range(up, run):
                            cf[dst + uint64(u)] = 0
            r += run
            j0, i = 0, i + 1
            if i == oh:
                i, n = 0, n + 1

    @jit
    def add_rows(y, b, a, z):
        """y[r] += b for rows a <= r < z."""
        for r in range(a, z):
            row = y[r]
            for o in range(b.shape[0]):
                row[o] += b[o]

    for fn, name in ((fill_rows, "fill_rows"), (fill_kmajor, "fill_kmajor"), (add_rows, "add_rows")):
        compiled.named(fn, f"conv_kernels.{name}")  # held by the block loops' closures: fixed identities
    return SimpleNamespace(fill_rows=fill_rows, fill_kmajor=fill_kmajor, add_rows=add_rows)


def _loops(int_bits: int):
    """The compiled block loops calling NumPy's CBLAS GEMM (``int_bits``-bit integers), made once per process."""
    return compiled.once(_state.setdefault(("loops", int_bits), {}), lambda cache: _compile_loops(cache, int_bits))


def _compile_loops(cache: bool, int_bits: int):
    from types import SimpleNamespace

    import numpy as np
    from numba import carray, cfunc, njit, types
    k = kernels()
    fill_rows, fill_kmajor, add_rows = k.fill_rows, k.fill_kmajor, k.add_rows
    gemm = cblas.dispatcher(int_bits)
    gemm_rows = cblas.rows_dispatcher(int_bits)
    take = compiled.fetch_add()
    address = compiled.address()
    no, tr = cblas.NO_TRANS, cblas.TRANS

    @njit(nogil=True, cache=cache, inline="always")
    def fill(xf, s1, s2, s3, kmajor, cf, a, z, args):
        """The columns of rows [a, z) into cf: (KK*C, rows) when kmajor, else (rows, KK*C)."""
        oh, ow, sh, sw, dh, dw, ph, pw, kh, kw = args
        if kmajor:
            fill_kmajor(xf, s1, s2, s3, cf, a, z - a, oh, ow, sh, sw, dh, dw, ph, pw, kh, kw)
        else:
            fill_rows(xf, s1, s2, s3, cf, a, z - a, oh, ow, sh, sw, dh, dw, ph, pw, kh, kw)

    compiled.named(fill, "conv_kernels.fill")

    @njit(nogil=True, cache=cache)
    def forward(xf, s1, s2, s3, kmajor, cf, width, wm, y, b, bias, bounds, spans, counter, fn, oh, ow, sh, sw, dh,
                dw, ph, pw, kh, kw, rows):
        """y[a:z] = columns @ wm (+ b) for every chunk of each block taken from ``counter`` in turn (``bounds``,
        ``spans``: Blocks' pairs, flat), the GEMM in products of ``rows`` rows (``cblas.small_rows``)."""
        size, o, args = y.itemsize, y.shape[1], (oh, ow, sh, sw, dh, dw, ph, pw, kh, kw)
        ldw, ldy = wm.strides[0] // size, y.strides[0] // size
        while True:
            j = take(counter, 0, 1)
            if j >= spans.shape[0] // 2:
                return
            for q in range(spans[2 * j], spans[2 * j + 1]):
                a, z = bounds[2 * q], bounds[2 * q + 1]
                fill(xf, s1, s2, s3, kmajor, cf, a, z, args)
                gemm_rows(fn, size == 8, tr if kmajor else no, no, z - a, o, width, cf.ctypes.data,
                          z - a if kmajor else width, wm.ctypes.data, ldw, 0, y.ctypes.data + a * ldy * size, ldy, rows)
                if bias:  # while the chunk is in cache
                    add_rows(y, b, a, z)

    @njit(nogil=True, cache=cache)
    def weight_grad(xf, s1, s2, s3, kmajor, cf, width, g2, sums, bounds, spans, counter, fn, oh, ow, sh, sw, dh, dw,
                    ph, pw, kh, kw, ones, bias, with_bias):
        """Block j's (width, O) sum at sums[j * width * O:] = the sum over its chunks of columns^T @ g2[a:z] (the
        GEMM adds each chunk's product: beta 1), for each block taken from ``counter`` in turn; ``with_bias``:
        its (O,) sum of g2's rows at bias[j * O:] (ones @ g2[a:z], while they are in cache)."""
        size, o, args = g2.itemsize, g2.shape[1], (oh, ow, sh, sw, dh, dw, ph, pw, kh, kw)
        ldg = g2.strides[0] // size
        while True:
            j = take(counter, 0, 1)
            if j >= spans.shape[0] // 2:
                return
            out = sums.ctypes.data + j * width * o * size
            for q in range(spans[2 * j], spans[2 * j + 1]):
                a, z = bounds[2 * q], bounds[2 * q + 1]
                fill(xf, s1, s2, s3, kmajor, cf, a, z, args)
                gemm(fn, size == 8, no if kmajor else tr, no, width, o, z - a, cf.ctypes.data,
                     z - a if kmajor else width, g2.ctypes.data + a * ldg * size, ldg, int(q > spans[2 * j]), out, o)
                if with_bias:
                    gemm(fn, size == 8, no, no, 1, o, z - a, ones.ctypes.data, z - a, g2.ctypes.data + a * ldg * size,
                         ldg, int(q > spans[2 * j]), bias.ctypes.data + j * o * size, o)

    # the same loops as native parts (nerve.ops.workers), their arguments packed by workers.pack
    compiled.named(forward, f"conv_kernels.forward.{int_bits}")
    compiled.named(weight_grad, f"conv_kernels.weight_grad.{int_bits}")
    natives = {}
    signature = types.void(types.CPointer(types.int64), types.int64, types.int64)
    for dt in (np.float32, np.float64):
        @cfunc(signature, nopython=True, cache=cache)
        def forward_native(p, a0, a1):
            vector = carray(address(p[0]), (p[1],), dt)
            cf = carray(address(p[6]), (p[7],), dt)
            wm = carray(address(p[9]), (p[10], p[12]), dt)  # (only its address and row stride are read)
            y = carray(address(p[13]), (p[14], p[15]), dt)  # C-contiguous (forward_native): add_rows vectorizes
            b = carray(address(p[17]), (p[18],), dt)
            bounds, spans = carray(address(p[20]), (p[21],), np.int64), carray(address(p[22]), (p[23],), np.int64)
            forward(vector, p[2], p[3], p[4], p[5] != 0, cf, p[8], wm, y, b, p[19] != 0, bounds, spans,
                    carray(address(p[24]), (p[25],), np.int64), p[26], p[27], p[28], p[29], p[30], p[31], p[32],
                    p[33], p[34], p[35], p[36], p[37])

        @cfunc(signature, nopython=True, cache=cache)
        def weight_native(p, a0, a1):
            vector = carray(address(p[0]), (p[1],), dt)
            cf = carray(address(p[6]), (p[7],), dt)
            g2 = carray(address(p[9]), (p[10], p[12]), dt)[:, :p[11]]
            sums = carray(address(p[13]), (p[14],), dt)
            bounds, spans = carray(address(p[15]), (p[16],), np.int64), carray(address(p[17]), (p[18],), np.int64)
            weight_grad(vector, p[2], p[3], p[4], p[5] != 0, cf, p[8], g2, sums, bounds, spans,
                        carray(address(p[19]), (p[20],), np.int64), p[21], p[22], p[23], p[24], p[25], p[26], p[27],
                        p[28], p[29], p[30], p[31], carray(address(p[32]), (p[33],), dt),
                        carray(address(p[34]), (p[35],), dt), p[36] != 0)
        natives[np.dtype(dt).char] = (forward_native.address, weight_native.address)
    return SimpleNamespace(forward=forward, weight_grad=weight_grad, natives=natives)
