"""Streams: a kernel's batch cut into parts that run in threads at once, BLAS single-threaded in each.

Why: NumPy runs its copies, adds and element-wise passes on one core, and a multi-threaded BLAS then leaves
the other cores idle between its GEMMs. Images of a convolution and sequences of a recurrent layer are
independent, so k parts of the batch in k threads with one BLAS thread each keep k cores busy through every
phase of the kernel. That wins on a busy machine (1.5-2x on SmallCNN and LSTM steps) and on a kernel run
alone, but loses inside a step whose other GEMMs run multi-threaded: BLAS's idle threads spin for about
0.1 s after each of those GEMMs and take a core from the streams (SmallCNN step 51 ms with BLAS's own
threads, 72 ms with streams, on a quiet 2-core machine). So each call site measures both ways as it runs and
takes the faster one, timing the other again every ``RETRY`` calls (less often when it was much slower;
``STREAMS`` fixes the choice).

Used when threadpoolctl is installed (it sets BLAS's thread count for the duration) and BLAS has more than
one thread; otherwise, and for small work, a kernel runs as one part.

``set_threads(k)`` (or ``NERVE_NUM_THREADS=k`` at start-up) is the other model, PyTorch's intra-op pool: BLAS
stays single-threaded for the whole process, so no BLAS thread ever spins, and nerve itself cuts every large
kernel in k parts (convolution faces and recurrent loops by batch, GEMMs by rows, element-wise passes, pooling
and optimiser steps by their leading dim; ``split``, ``matmul``), with no timing: streams always.

The parts run on ``nerve.ops.workers``' threads (a hand-off in microseconds with numba installed).

A kernel that sums over its parts (a weight gradient) runs the same parts one after the other when it runs
without streams, so its result does not depend on the choice.
"""
from __future__ import annotations

import importlib.util
import math
import os
import threading
import time

from nerve import backend
from nerve.backend import xp
from nerve.ops import workers

#: None: measure and choose per call site; 1: never streams; k > 1: always k parts on threads (tests)
STREAMS: int | None = None
#: work (multiply-adds x 2) below which one part runs: a thread hand-off costs tens of microseconds
MIN_FLOPS = 4e6
#: after this many calls of a call site, its slower way is timed once more (the machine's load changes)
RETRY = 16

#: call sites remembered at most (shapes vary, e.g. sequence lengths): beyond it the timings start again
MAX_SITES = 4096

#: nerve's own thread count under set_threads (read it, set it through set_threads); 0: BLAS's threads
THREADS = 0
#: with set_threads: the least work (flops) worth a thread hand-off (~40 us)
SPLIT_FLOPS = 2e7
#: the least work of a GEMM cut for workers that call BLAS themselves (``workers.gemm``: a hand-off in ~2 us);
#: MLP steps at batch 32 with 8e6 or 3e6 here: 1.61 ms, with 2e7 1.78-3.4 (BLAS's threads: 1.65)
GEMM_SPLIT_FLOPS = 4e6
#: flop-equivalents of one element of an element-wise pass (memory-bound: ~0.4 ns an element here)
SPLIT_COST = 40.0
#: the least elements of an element-wise pass worth cutting (its work reaches SPLIT_FLOPS)
SPLIT_ELEMENTS = int(SPLIT_FLOPS / SPLIT_COST)

_NDARRAY = backend.ndarray
_CORES = os.cpu_count() or 1  # NOTE: os.cpu_count() costs 20 us a call
_LOCK = threading.Lock()
_state: dict = {}
_timings: dict = {}


def _after_fork() -> None:
    """A forked child gets a fresh lock (its parent's may be held by a thread the child does not have)."""
    global _LOCK
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _blas():
    """threadpoolctl's controllers of the loaded BLAS libraries, or () without threadpoolctl."""
    if "blas" not in _state:
        try:
            from threadpoolctl import ThreadpoolController
            _state["blas"] = tuple(ThreadpoolController().select(user_api="blas").lib_controllers)
        except Exception:  # not installed, or it cannot inspect this process: one stream
            _state["blas"] = ()
    return _state["blas"]


def set_threads(threads: int | None) -> None:
    """nerve's own threads: ``threads`` >= 1 keeps BLAS single-threaded for the process and cuts each large
    kernel in that many parts on nerve's threads (PyTorch's model); None gives BLAS back its thread count
    (from before the first call) and kernels choose per call site again."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"streams.set_threads: expected a positive int or None, got {threads!r}")
    global THREADS
    _state.pop("blas", None)  # BLAS libraries loaded since (SciPy's own OpenBLAS) are limited too
    blas = _blas()
    saved = _state.setdefault("blas_threads", {})  # each library's own count, by its file
    if threads is None:
        for c in blas:
            if c.filepath in saved:
                c.set_num_threads(saved.pop(c.filepath))
        THREADS = 0
        return
    for c in blas:
        saved.setdefault(c.filepath, c.num_threads)
        c.set_num_threads(1)
    THREADS = threads


def get_threads() -> int:
    """nerve's own thread count under ``set_threads``; 0 when BLAS's own threads are in use."""
    return THREADS


def count(n: int, flops: float, array) -> int:
    """How many parts a batch of ``n`` with ``flops`` of work on ``array`` (its device) is cut into."""
    if n < 2 or array.__class__ is not backend.ndarray:
        return 1
    if STREAMS is not None:
        return max(1, min(STREAMS, n))
    if THREADS:
        return min(n, THREADS) if flops >= MIN_FLOPS else 1
    blas = _blas()
    if not blas or flops < MIN_FLOPS:
        return 1
    return max(1, min(n, _CORES, min(c.num_threads for c in blas)))


def _choose(site) -> bool:
    """Streams or not for this call site: each way twice, then the faster; the slower is timed again every
    RETRY calls, or every k RETRY calls when it took k times as long (k at most 16)."""
    if site not in _timings and len(_timings) >= MAX_SITES:
        _timings.clear()
    t = _timings.setdefault(site, [[], [], 0])  # seconds with streams, without, calls
    t[2] += 1
    for way in (0, 1):
        if len(t[way]) < 2:
            return way == 0
    best = min(t[0]), min(t[1])
    fast = 0 if best[0] <= best[1] else 1
    # a way k times slower is retried k times less often (at most 16x): a retry costs its extra time once
    every = RETRY * min(16, max(1, int(best[1 - fast] / max(best[fast], 1e-9))))
    return (fast == 0) != (t[2] % every == 0)


def _concurrent(fn, bounds: list, native=None) -> list:
    blas = () if THREADS else _blas()  # under set_threads BLAS is single-threaded already
    old = [c.num_threads for c in blas]
    for c in blas:
        c.set_num_threads(1)
    try:
        return workers.run(fn, bounds, native)
    finally:
        for c, t in zip(blas, old):
            c.set_num_threads(t)


def run(fn, n: int, flops: float, array, site=None, sums: bool = False, native=None) -> list:
    """``fn(a, b)`` over consecutive parts [a, b) of a batch of ``n``; the parts' results in order.

    With streams the parts run at once; without, ``fn(0, n)`` runs alone, or with ``sums`` (the caller adds
    the parts' results) the same parts run one after the other. ``site`` names the call site whose timings
    choose between the two (None: streams whenever ``count`` allows). A call made while streams run (from
    inside a part) runs without. ``native``: the parts as compiled functions that nerve's workers run without the
    GIL (``workers.run``).
    """
    k = count(n, flops, array)
    if k == 1:
        return [fn(0, n)]
    bounds = [n * i // k for i in range(k + 1)]
    timed = STREAMS is None and site is not None and not THREADS
    streams = not timed or _choose(site)
    start = time.perf_counter()
    if streams and _LOCK.acquire(blocking=False):
        try:
            out = _concurrent(fn, bounds, native)
        finally:
            _LOCK.release()
    else:
        timed = timed and not streams  # a nested call, or one while another thread's streams run: not timed
        out = [fn(a, b) for a, b in zip(bounds, bounds[1:])] if sums else [fn(0, n)]
    if timed:
        times = _timings[site][0 if streams else 1]
        times.append(time.perf_counter() - start)
        del times[:-2]
    return out


def split(fn, n: int, work: float, array) -> list:
    """``fn(a, b)`` over parts of ``n`` on nerve's threads under ``set_threads`` when ``work`` (flops) reaches
    SPLIT_FLOPS; otherwise ``[fn(0, n)]`` (with BLAS's own threads the parts would fight its spinning ones)."""
    if not THREADS or work < SPLIT_FLOPS or n < 2 or array.__class__ is not backend.ndarray:
        return [fn(0, n)]
    return run(fn, n, work, array)


def column_sums(rows):
    """Sums of the columns of (M, O) rows as one GEMV (10x faster than sum(axis=0) for narrow rows, e.g. a bias
    gradient); under ``set_threads`` a GEMV per part of the rows when they are large (a memory-bound pass), the
    parts' sums added. NOTE: ``dot``, not ``matmul``: NumPy's matmul of a vector held the GIL, so the parts ran one
    at a time (SmallCNN conv1's bias gradient: 0.14 ms split against one thread's 0.08). Split only from ~16 MB:
    5.5 MB took 0.094 ms in two parts against 0.064 in one, 9.4 MB 0.132 against 0.130, 34 MB 0.92 against 1.91."""
    ones = xp.ones_like(rows, shape=(rows.shape[0],))
    parts = split(lambda a, b: xp.dot(ones[a:b], rows[a:b]), rows.shape[0], rows.size * SPLIT_COST / 8, rows)
    total = parts[0]
    for more in parts[1:]:
        total += more
    return total


def elementwise(fn, out, *arrays) -> None:
    """``fn(*parts, out=out_part)`` over leading-dim slices of same-shaped arrays (scalars passed as they are),
    on nerve's threads when set_threads is on and the arrays are large."""
    if not out.ndim:
        fn(*arrays, out=out)
        return

    def part(a: int, b: int) -> None:
        fn(*(x[a:b] if getattr(x, "ndim", 0) else x for x in arrays), out=out[a:b])
    split(part, out.shape[0], out.size * SPLIT_COST, out)


def matmul(a, b):
    """a @ b for NumPy arrays; under ``set_threads`` a large product is cut along the longer of a's rows and
    b's columns (a stack of products by its leading dim), each part single-threaded."""
    if not THREADS or b.ndim == 2 and 2.0 * a.size * b.shape[1] < GEMM_SPLIT_FLOPS:
        return xp.matmul(a, b)  # the common small product (a.size n = m k n per stack), decided first and cheaply
    sa, sb = a.shape, b.shape
    if a.__class__ is not _NDARRAY or b.__class__ is not _NDARRAY or len(sa) < 2 or len(sb) < 2:
        return xp.matmul(a, b)
    m, kd, n = sa[-2], sa[-1], sb[-1]
    lead = xp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    flops = 2.0 * m * kd * n * math.prod(lead)
    if flops < GEMM_SPLIT_FLOPS or kd != b.shape[-2]:
        return xp.matmul(a, b)
    out = xp.empty(lead + (m, n), dtype=xp.result_type(a, b))
    k = THREADS
    if _native(a, b, out, k, flops):
        return out
    if flops < SPLIT_FLOPS:
        xp.matmul(a, b, out=out)
    elif lead and a.shape[0] == lead[0] >= k and (b.ndim == 2 or b.shape[0] in (1, lead[0])) \
            and a.ndim == len(lead) + 2:
        def part(i: int, j: int) -> None:
            xp.matmul(a[i:j], b if b.ndim == 2 or b.shape[0] == 1 else b[i:j], out=out[i:j])
        run(part, lead[0], flops, a)
    elif m >= 8 * k and m >= n:
        def part(i: int, j: int) -> None:
            xp.matmul(a[..., i:j, :], b, out=out[..., i:j, :])
        run(part, m, flops, a)
    elif n >= 8 * k:  # NOTE: a Linear layer's (64, 9216) @ (9216, 128): by columns 1.1-1.2 ms, by rows 1.5
        def part(i: int, j: int) -> None:
            out[..., i:j] = xp.matmul(a, b[..., i:j])
        run(part, n, flops, a)
    else:
        xp.matmul(a, b, out=out)
    return out


def _native(a, b, out, k: int, flops: float) -> bool:
    """``out = a @ b`` cut in k parts by rows or columns as ``matmul`` cuts them, the workers' parts called in BLAS
    without the GIL (``workers.gemm``); a stack times one matrix as one GEMM over all its rows. False (nothing
    done) where that does not apply, e.g. from inside another kernel's part."""
    if b.ndim != 2 or (a.ndim > 2 and not a.flags.c_contiguous):
        return False
    a2, o2 = a.reshape(-1, a.shape[-1]), out.reshape(-1, out.shape[-1])
    (m, _), n = a2.shape, b.shape[1]
    if m >= 8 * k and m >= n:
        bounds = [m * i // k for i in range(k + 1)]
        parts = [(a2[i:j], b, o2[i:j]) for i, j in zip(bounds, bounds[1:])]
    elif n >= 8 * k:
        bounds = [n * i // k for i in range(k + 1)]
        parts = [(a2, b[:, i:j], o2[:, i:j]) for i, j in zip(bounds, bounds[1:])]
    else:
        return False
    if count(len(parts), flops, a) < k or not _LOCK.acquire(blocking=False):
        return False
    try:
        return workers.gemm(parts)
    finally:
        _LOCK.release()


def start_threads() -> int:
    """nerve's own thread count at start-up (0: BLAS's threads and per-site streams).

    ``NERVE_NUM_THREADS`` when set; else, with numba installed (its workers hand a part over in microseconds;
    without them a hand-off costs more than mid-sized GEMMs gain), the cores this process may run on, or fewer
    when ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS`` asks for fewer (as PyTorch reads
    OMP_NUM_THREADS); one thread is BLAS's mode.
    """
    env = os.environ.get("NERVE_NUM_THREADS", "").strip()
    if env:
        if not env.isdigit():
            raise ValueError(f"NERVE_NUM_THREADS: expected a whole number of threads (0: BLAS's), got {env!r}")
        return int(env)
    if importlib.util.find_spec("numba") is None:
        return 0
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else _CORES
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            threads = min(threads, int(value))
    return threads if threads > 1 else 0


if _START := start_threads():
    set_threads(_START)
