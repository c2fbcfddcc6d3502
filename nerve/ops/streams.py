"""Streams: a kernel's batch cut into parts that run in threads at once, BLAS single-threaded in each.

Why: NumPy runs its copies, adds and element-wise passes on one core, and a multi-threaded BLAS then leaves
the other cores idle between its GEMMs (and its threads spin while they wait, which costs most on a busy
machine). Images of a convolution and sequences of a recurrent layer are independent, so k parts of the
batch in k threads with one BLAS thread each keep k cores busy through every phase of the kernel.

Used when threadpoolctl is installed (it sets BLAS's thread count for the duration) and BLAS has more than
one thread; otherwise, and for small work, a kernel runs as one part. The results are the same up to
float32 round-off (only sums over the batch, a weight gradient, change order).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from nerve import backend

#: None: as many streams as BLAS has threads (at most the cores); an int forces that many (tests)
STREAMS: int | None = None
#: work (multiply-adds x 2) below which one part runs: a thread hand-off costs tens of microseconds
MIN_FLOPS = 4e6

_LOCK = threading.Lock()
_state: dict = {}


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
    """How many parts a batch of ``n`` with ``flops`` of work on ``array`` (its device) runs as."""
    if n < 2 or array.__class__ is not backend.ndarray:
        return 1
    if STREAMS is not None:
        return max(1, min(STREAMS, n))
    blas = _blas()
    if not blas or flops < MIN_FLOPS:
        return 1
    return max(1, min(n, os.cpu_count() or 1, min(c.num_threads for c in blas)))


def _pool(k: int) -> ThreadPoolExecutor:
    pool = _state.get("pool")
    if pool is None or pool._max_workers < k:
        pool = _state["pool"] = ThreadPoolExecutor(k, thread_name_prefix="nerve-stream")
    return pool


def run(fn, n: int, flops: float, array) -> list:
    """``fn(a, b)`` over consecutive parts [a, b) of a batch of ``n``, at once when ``count`` says so;
    the parts' results in order. A call made while streams run (from inside a part) runs as one part."""
    k = count(n, flops, array)
    if k == 1 or not _LOCK.acquire(blocking=False):
        return [fn(0, n)]
    try:
        blas = _blas()
        old = [c.num_threads for c in blas]
        for c in blas:
            c.set_num_threads(1)
        bounds = [n * i // k for i in range(k + 1)]
        futures = [_pool(k - 1).submit(fn, a, b) for a, b in zip(bounds[1:-1], bounds[2:])]
        try:
            first = fn(bounds[0], bounds[1])  # the calling thread takes the first part
        finally:
            rest = [f.result() for f in futures]  # waits for every part, even when one failed
        return [first] + rest
    finally:
        for c, t in zip(blas, old):
            c.set_num_threads(t)
        _LOCK.release()
