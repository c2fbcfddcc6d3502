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
one thread; otherwise, and for small work, a kernel runs as one part. A kernel that sums over its parts (a
weight gradient) runs the same parts one after the other when it runs without streams, so its result does
not depend on the choice.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from nerve import backend

#: None: measure and choose per call site; 1: never streams; k > 1: always k parts on threads (tests)
STREAMS: int | None = None
#: work (multiply-adds x 2) below which one part runs: a thread hand-off costs tens of microseconds
MIN_FLOPS = 4e6
#: after this many calls of a call site, its slower way is timed once more (the machine's load changes)
RETRY = 16

#: call sites remembered at most (shapes vary, e.g. sequence lengths): beyond it the timings start again
MAX_SITES = 4096

_CORES = os.cpu_count() or 1  # NOTE: os.cpu_count() costs 20 us a call
_LOCK = threading.Lock()
_state: dict = {}
_timings: dict = {}


def _after_fork() -> None:
    """A forked child has none of its parent's threads: it makes its own pool and lock."""
    global _LOCK
    _LOCK = threading.Lock()
    _state.pop("pool", None)


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


def count(n: int, flops: float, array) -> int:
    """How many parts a batch of ``n`` with ``flops`` of work on ``array`` (its device) is cut into."""
    if n < 2 or array.__class__ is not backend.ndarray:
        return 1
    if STREAMS is not None:
        return max(1, min(STREAMS, n))
    blas = _blas()
    if not blas or flops < MIN_FLOPS:
        return 1
    return max(1, min(n, _CORES, min(c.num_threads for c in blas)))


def _pool(k: int) -> ThreadPoolExecutor:
    pool = _state.get("pool")
    if pool is None or pool._max_workers < k:
        pool = _state["pool"] = ThreadPoolExecutor(k, thread_name_prefix="nerve-stream")
    return pool


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


def _concurrent(fn, bounds: list) -> list:
    blas = _blas()
    old = [c.num_threads for c in blas]
    for c in blas:
        c.set_num_threads(1)
    try:
        futures = [_pool(len(bounds) - 2).submit(fn, a, b) for a, b in zip(bounds[1:-1], bounds[2:])]
        try:
            first = fn(bounds[0], bounds[1])  # the calling thread takes the first part
        finally:
            rest = [f.result() for f in futures]  # waits for every part, even when one failed
        return [first] + rest
    finally:
        for c, t in zip(blas, old):
            c.set_num_threads(t)


def run(fn, n: int, flops: float, array, site=None, sums: bool = False) -> list:
    """``fn(a, b)`` over consecutive parts [a, b) of a batch of ``n``; the parts' results in order.

    With streams the parts run at once; without, ``fn(0, n)`` runs alone, or with ``sums`` (the caller adds
    the parts' results) the same parts run one after the other. ``site`` names the call site whose timings
    choose between the two (None: streams whenever ``count`` allows). A call made while streams run (from
    inside a part) runs without.
    """
    k = count(n, flops, array)
    if k == 1:
        return [fn(0, n)]
    bounds = [n * i // k for i in range(k + 1)]
    streams = STREAMS is not None or site is None or _choose(site)
    timed = STREAMS is None and site is not None
    start = time.perf_counter()
    if streams and _LOCK.acquire(blocking=False):
        try:
            out = _concurrent(fn, bounds)
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
