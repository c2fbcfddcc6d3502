"""nerve's worker threads for kernels cut in parts (``nerve.ops.streams``): a part reaches a worker in ~2 us.

Why: a ``ThreadPoolExecutor`` hand-off costs 20-40 us (the sleeping thread is woken through a lock, then waits
for the GIL), as long as a whole mid-sized GEMM, so splitting those lost to BLAS's own threads. Here a worker
that has just finished a part waits for the next by spinning in a compiled loop (numba, without the GIL,
yielding its core at each turn as OpenBLAS's idle threads do) for ``SPIN_SECONDS``, then sleeps on an
Event; the caller waits for the parts the same way. Without numba the workers are a ``ThreadPoolExecutor``.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from nerve.backend import xp  # NumPy: the flags live on the host whatever the device
from nerve.ops import compiled

#: seconds a worker spins (yielding its core at every turn) after a part before it sleeps, as OpenBLAS's idle
#: threads do (~0.1 s). NOTE: a worker that has slept makes the next steps slow for a while (an MLP step 5.5 ms
#: instead of 3.3 for a whole burst of 10 after a 0.25 s pause when it slept after ~10 ms; 3.4 after ~0.1 s);
#: ~0.1 ms of turns without yielding first made it worse
SPIN_SECONDS = 0.1
#: turns between two looks at the clock (~0.5 us each on an idle core; longer when other threads want the core)
TURNS = 20000
#: seconds a sleeping worker waits on its Event before it looks at its flag anyway (a guard: the Event wakes it)
WAKE_GUARD = 0.05
_state: dict = {}


def _compile(cache: bool):
    from numba import njit, types
    from numba.core import cgutils
    from numba.extending import intrinsic
    yield_core = types.ExternalFunction("sched_yield", types.int32())  # libc's, resolved when compiled

    @intrinsic
    def load_acquire(typingctx, flag):  # flag[0] read anew at every call (an atomic load: never hoisted)
        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary,
                                           [context.get_constant(types.intp, 0)])
            return builder.load_atomic(ptr, "acquire", 8)
        return types.int64(flag), codegen

    @njit(nogil=True, cache=cache)
    def spin(flag, value, turns):  # True once flag[0] == value, yielding the core at each turn
        for _ in range(turns):
            if load_acquire(flag) == value:
                return True
            yield_core()
        return load_acquire(flag) == value
    return spin


def _build(cache: bool):
    spin = _compile(cache)
    spin(xp.ones(1, dtype=xp.int64), 1, 1)  # compiles now: a platform without sched_yield fails here
    return spin


def _spinner():
    """The compiled spin-wait, or None (numba missing, or no sched_yield on this platform)."""
    try:
        return compiled.once(_state, _build)
    except Exception:  # noqa: BLE001  (numba's compile errors have no common base but Exception)
        _state["k"] = None
        return None


class _Worker:
    """One thread taking parts ``fn(a, b)``; ``go``/``done`` hold the number of the part given/finished."""

    def __init__(self, spin) -> None:
        self.spin = spin
        self.go = xp.zeros(1, dtype=xp.int64)
        self.done = xp.zeros(1, dtype=xp.int64)
        self.asleep = xp.zeros(1, dtype=xp.int64)
        self.wake = threading.Event()
        self.task = self.result = self.error = None
        self.thread = threading.Thread(target=self._loop, name="nerve-worker", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        seq = 0
        while True:
            seq += 1
            stop = time.perf_counter() + SPIN_SECONDS
            while not self.spin(self.go, seq, TURNS):
                if time.perf_counter() > stop:
                    self._sleep(seq)
                    break
            fn, a, b = self.task
            try:
                self.result, self.error = fn(a, b), None
            except BaseException as exc:  # handed to the caller, which raises it
                self.result, self.error = None, exc
            # NOTE: the part's closure holds the kernel's arrays: nothing here may keep it until the next part
            self.task = fn = None
            self.done[0] = seq

    def _sleep(self, seq: int) -> None:
        """Sleep until part ``seq`` is given. NOTE: these flags are read and written under the GIL on both sides,
        so a wake-up is not lost; the timeout is a second guard."""
        self.asleep[0] = 1
        while self.go[0] != seq:
            self.wake.wait(WAKE_GUARD)
            self.wake.clear()
        self.asleep[0] = 0

    def submit(self, fn, a: int, b: int) -> None:
        self.task = (fn, a, b)
        self.go[0] += 1
        if self.asleep[0]:
            self.wake.set()

    def wait(self):
        seq = self.go[0]
        while not self.spin(self.done, seq, TURNS):
            if not self.thread.is_alive():
                raise RuntimeError("nerve.ops.workers: a worker thread died")
        error, self.error = self.error, None
        result, self.result = self.result, None
        if error is not None:
            raise error
        return result


def _workers(k: int):
    """k spinning workers (started once), or None without numba."""
    spin = _spinner()
    if spin is None:
        return None
    workers = _state.setdefault("workers", [])
    while len(workers) < k:
        workers.append(_Worker(spin))
    return workers[:k]


def _executor(k: int) -> ThreadPoolExecutor:
    pool = _state.get("executor")
    if pool is None or pool._max_workers < k:
        pool = _state["executor"] = ThreadPoolExecutor(k, thread_name_prefix="nerve-stream")
    return pool


def run(fn, bounds: list) -> list:
    """``fn(a, b)`` for each consecutive pair of ``bounds`` at once (the calling thread takes the first);
    the results in order. Waits for every part even when one fails, then raises the first error."""
    pairs = list(zip(bounds, bounds[1:]))
    workers = _workers(len(pairs) - 1)
    if workers is None:
        futures = [_executor(len(pairs) - 1).submit(fn, a, b) for a, b in pairs[1:]]
        try:
            first = fn(*pairs[0])
        finally:
            rest = [f.result() for f in futures]
        return [first] + rest
    for w, (a, b) in zip(workers, pairs[1:]):
        w.submit(fn, a, b)
    error = None
    try:
        first = fn(*pairs[0])
    except BaseException as exc:  # raised once every worker has finished its part
        error = exc
    rest = []
    for w in workers:
        try:
            rest.append(w.wait())
        except BaseException as exc:
            error = error or exc
    if error is not None:
        raise error
    return [first] + rest


def _after_fork() -> None:
    """A forked child has none of its parent's threads: it starts its own."""
    _state.pop("workers", None)
    _state.pop("executor", None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
