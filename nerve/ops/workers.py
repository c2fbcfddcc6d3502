"""nerve's worker threads for kernels cut in parts (``nerve.ops.streams``): a part reaches a worker in ~2 us.

Why: a ``ThreadPoolExecutor`` hand-off costs 20-40 us (the sleeping thread is woken through a lock, then waits
for the GIL), as long as a whole mid-sized GEMM, so splitting those lost to BLAS's own threads. Here a worker
that has just finished a part waits for the next by spinning in a compiled loop (numba, without the GIL,
yielding its core at each turn as OpenBLAS's idle threads do) for ``SPIN_SECONDS``, then sleeps on an
Event; the caller waits for the parts the same way. A GEMM part (``gemm``) runs inside that compiled loop,
calling NumPy's BLAS directly (``nerve.ops.cblas``), and so does a native part (a numba ``cfunc`` ``void
f(int64* args, int64 a, int64 b)`` called by address, ``run``'s ``native``), so such a worker never waits for the
GIL: a worker woken for the GIL is often put on its caller's core, where the two share it for milliseconds. A worker
that finds itself on its caller's core moves off it. Without numba the workers are a ``ThreadPoolExecutor``.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from nerve.backend import xp  # NumPy: the flags live on the host whatever the device
from nerve.ops import cblas, compiled

#: seconds a worker spins (yielding its core at every turn) after a part before it sleeps, as OpenBLAS's idle
#: threads do (~0.1 s). NOTE: a worker that has slept makes the next steps slow for a while (an MLP step 5.5 ms
#: instead of 3.3 for a whole burst of 10 after a 0.25 s pause when it slept after ~10 ms; 3.4 after ~0.1 s);
#: ~0.1 ms of turns without yielding first made it worse
SPIN_SECONDS = 0.1
#: turns between two looks at the clock (~0.5 us each on an idle core; longer when other threads want the core)
TURNS = 20000
#: seconds a sleeping worker waits on its Event before it looks at its flag anyway (a guard: the Event wakes it)
WAKE_GUARD = 0.05
#: False: workers run native parts' Python functions instead (to test or time that path)
NATIVE = True
_state: dict = {}
#: a task's fields (an int64 array the compiled loop reads): what kind, the caller's CPU, then a GEMM's
#: CBLAS arguments (function address, variant = 2 x double + 64-bit ints, pointers as addresses); a native part's
#: are FN (the cfunc's address), A (its arguments' address) and M, N (the part's bounds)
KIND, CALLER, FN, VARIANT, TA, TB, M, N, K, A, LDA, B, LDB, BETA, C, LDC = range(16)
PYTHON_PART, GEMM_PART, NATIVE_PART = 0, 1, 2
#: what the compiled loop returns with: no part within its turns, a Python part to run, on the caller's CPU
IDLE, PYTHON, MOVE = 0, 1, 2


def _compile(cache: bool, with_cpu: bool):
    from types import SimpleNamespace

    from numba import njit, types
    from numba.extending import intrinsic
    yield_core = compiled.c_function("sched_yield")  # libc's, resolved when compiled
    if with_cpu:
        getcpu = compiled.c_function("sched_getcpu")  # glibc's
    else:
        @intrinsic
        def getcpu(typingctx):  # not known here
            return types.int32(), lambda context, builder, signature, args: context.get_constant(types.int32, -1)
        compiled.named(getcpu, "workers.no_cpu")
    s32, s64, d32, d64 = (cblas.caller(real, bits) for real in (32, 64) for bits in (32, 64))
    native = _native_caller()

    load_acquire, store_release = compiled.atomics()

    @njit(nogil=True, cache=cache)
    def spin(flag, value, turns):  # True once flag[0] == value, yielding the core at each turn
        for _ in range(turns):
            if load_acquire(flag, 0) == value:
                return True
            yield_core()
        return load_acquire(flag, 0) == value

    @njit(nogil=True, cache=cache)
    def where():  # the CPU the calling thread runs on (-1: not known here)
        return getcpu()

    @njit(nogil=True, cache=cache)
    def give(go, task, fields):  # publish a task: its fields, then the next number in go
        task[:] = fields
        store_release(go, 0, go[0] + 1)

    @njit(nogil=True, cache=cache)
    def serve(go, done, task, seq, turns, check):  # runs GEMM parts from number seq on; why it returned
        i = 0
        while i < turns:
            if load_acquire(go, 0) != seq:
                yield_core()
                i += 1
                continue
            if check and getcpu() == task[CALLER]:
                return seq, MOVE
            if task[KIND] == PYTHON_PART:
                return seq, PYTHON
            t = task  # NOTE: inline, not a kernel of its own: a kernel in the closure would defeat numba's cache
            args = (t[FN], t[TA], t[TB], t[M], t[N], t[K], t[A], t[LDA], t[B], t[LDB], t[BETA], t[C], t[LDC])
            if t[KIND] == NATIVE_PART:
                native(t[FN], t[A], t[M], t[N])
            elif t[VARIANT] == 0:
                s32(*args)
            elif t[VARIANT] == 1:
                s64(*args)
            elif t[VARIANT] == 2:
                d32(*args)
            else:
                d64(*args)
            store_release(done, 0, seq)
            seq += 1
            check = True
            i = 0
        return seq, IDLE
    return SimpleNamespace(spin=spin, where=where, give=give, serve=serve)


def _native_caller():
    """A numba intrinsic ``call(fn, args, a, b)`` (all int64) that calls ``void fn(int64* args, int64 a, int64 b)``
    at address ``fn``, with a fixed identity."""
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def call(typingctx, fn, args, a, b):
        def codegen(context, builder, signature, argv):
            i64 = ir.IntType(64)
            fnty = ir.FunctionType(ir.VoidType(), [i64.as_pointer(), i64, i64])
            builder.call(builder.inttoptr(argv[0], fnty.as_pointer()),
                         [builder.inttoptr(argv[1], i64.as_pointer()), argv[2], argv[3]])
            return context.get_dummy_value()
        return types.void(types.int64, types.int64, types.int64, types.int64), codegen
    return compiled.named(call, "workers.native")


def _build(cache: bool):
    try:
        k = _compile(cache, hasattr(os, "sched_setaffinity"))
        k.where()  # compiles now: a platform without sched_getcpu fails here
    except Exception:  # noqa: BLE001
        k = _compile(cache, False)
    flag, task = xp.ones(1, dtype=xp.int64), xp.zeros(16, dtype=xp.int64)
    k.spin(flag, 1, 1)  # compiles now: a platform without sched_yield fails here
    k.give(flag, task, task)
    k.serve(flag, flag.copy(), task, 3, 1, True)
    return k


def _kernels():
    """The compiled loops, or None (numba missing, or no sched_yield on this platform)."""
    try:
        return compiled.once(_state, _build)
    except Exception:  # noqa: BLE001  (numba's compile errors have no common base but Exception)
        _state["k"] = None
        return None


def _spinner():
    """The compiled spin-wait, or None when workers are a thread pool."""
    k = _kernels()
    return None if k is None else k.spin


def _move_off(cpu: int) -> bool:
    """Moves the calling thread off ``cpu`` now (excluded from its affinity for a moment, then allowed again);
    False where it cannot (the only CPU allowed)."""
    cpus = os.sched_getaffinity(0)
    if cpu not in cpus or len(cpus) < 2:
        return False
    os.sched_setaffinity(0, cpus - {cpu})
    os.sched_setaffinity(0, cpus)
    return True


class _Worker:
    """One thread taking parts: ``fn(a, b)`` in Python, or a GEMM in its compiled loop; ``go``/``done`` hold
    the number of the part given/finished."""

    def __init__(self, k) -> None:
        self.k = k
        self.go = xp.zeros(1, dtype=xp.int64)
        self.done = xp.zeros(1, dtype=xp.int64)
        self.asleep = xp.zeros(1, dtype=xp.int64)
        self.task = xp.zeros(16, dtype=xp.int64)
        self.fields = xp.zeros(16, dtype=xp.int64)
        self.moves = 0  # times it found itself on its caller's CPU and moved off
        self.wake = threading.Event()
        self.part = self.result = self.error = self.kept = None
        self.thread = threading.Thread(target=self._loop, name="nerve-worker", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        seq, check = 1, hasattr(os, "sched_setaffinity")
        stop = time.perf_counter() + SPIN_SECONDS
        while True:
            start = seq
            seq, why = self.k.serve(self.go, self.done, self.task, seq, TURNS, check)
            if why == MOVE:  # NOTE: else the scheduler may leave both threads on one core for ~10 ms
                self.moves += _move_off(int(self.task[CALLER]))
                check = False
                continue
            check = hasattr(os, "sched_setaffinity")
            if why == PYTHON:
                self._run(seq)
                seq += 1
            if seq != start:
                stop = time.perf_counter() + SPIN_SECONDS
            elif time.perf_counter() > stop:
                self._sleep(seq)

    def _run(self, seq: int) -> None:
        fn, a, b = self.part
        try:
            self.result, self.error = fn(a, b), None
        except BaseException as exc:  # handed to the caller, which raises it
            self.result, self.error = None, exc
        # NOTE: the part's closure holds the kernel's arrays: nothing here may keep it until the next part
        self.part = fn = None
        self.done[0] = seq

    def _sleep(self, seq: int) -> None:
        """Sleep until part ``seq`` is given. NOTE: ``asleep`` and ``go`` are read and written under the GIL on
        both sides, so a wake-up is not lost; the timeout is a second guard."""
        self.asleep[0] = 1
        while self.go[0] != seq:
            self.wake.wait(WAKE_GUARD)
            self.wake.clear()
        self.asleep[0] = 0

    def _give(self) -> None:
        self.fields[CALLER] = self.k.where()
        self.k.give(self.go, self.task, self.fields)
        if self.asleep[0]:
            self.wake.set()

    def submit(self, fn, a: int, b: int) -> None:
        self.part = (fn, a, b)
        self.fields[KIND] = PYTHON_PART
        self._give()

    def submit_gemm(self, fields) -> None:
        self.fields[:] = fields
        self._give()

    def submit_native(self, fn: int, args, a: int, b: int, kept, result=None) -> None:
        """Part [a, b) by the cfunc at address ``fn`` with its int64 ``args``; ``kept`` (what the arguments point
        to) is held until the part is done, and ``result`` is then returned as the part's."""
        self.kept, self.result = (args, kept), result
        f = self.fields
        f[KIND], f[FN], f[A], f[M], f[N] = NATIVE_PART, fn, args.ctypes.data, a, b
        self._give()

    def wait(self):
        seq = self.go[0]
        while not self.k.spin(self.done, seq, TURNS):
            if not self.thread.is_alive():
                raise RuntimeError("nerve.ops.workers: a worker thread died")
        error, self.error = self.error, None
        result, self.result = self.result, None
        self.kept = None
        if error is not None:
            raise error
        return result


def _workers(k: int):
    """k spinning workers (started once), or None without numba."""
    kernels = _kernels()
    if kernels is None:
        return None
    workers = _state.setdefault("workers", [])
    while len(workers) < k:
        workers.append(_Worker(kernels))
    return workers[:k]


def _executor(k: int) -> ThreadPoolExecutor:
    pool = _state.get("executor")
    if pool is None or pool._max_workers < k:
        pool = _state["executor"] = ThreadPoolExecutor(k, thread_name_prefix="nerve-stream")
    return pool


def run(fn, bounds: list, native=None) -> list:
    """``fn(a, b)`` for each consecutive pair of ``bounds`` at once (the calling thread takes the first);
    the results in order. Waits for every part even when one fails, then raises the first error.
    ``native(slot, a, b)``, where given, returns ``(cfunc address, int64 args, kept, result)`` for a worker's part
    (``slot`` 1, 2, ...: whose scratch it may use) that does what ``fn(a, b)`` does, leaving its result in
    ``result``; the spinning workers run it without the GIL."""
    pairs = list(zip(bounds, bounds[1:]))
    workers = _workers(len(pairs) - 1)
    if workers is None:
        futures = [_executor(len(pairs) - 1).submit(fn, a, b) for a, b in pairs[1:]]
        try:
            first = fn(*pairs[0])
        finally:
            rest = [f.result() for f in futures]
        return [first] + rest
    # every native part is prepared before any is given, so a failure here leaves no worker running
    specs = [native(slot, a, b) for slot, (a, b) in enumerate(pairs[1:], 1)] if native is not None and NATIVE \
        else None
    for i, (w, (a, b)) in enumerate(zip(workers, pairs[1:])):
        if specs is None:
            w.submit(fn, a, b)
        else:
            address, args, kept, result = specs[i]
            w.submit_native(address, args, a, b, kept, result)
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


def native_part(address: int, args: tuple, result=None) -> tuple:
    """What ``run``'s ``native`` returns for a part: the cfunc at ``address`` with ``args`` packed (held, with
    what they point to, until the part is done) and the part's ``result``."""
    return address, pack(*args), args, result


def pack(*items):
    """A native part's int64 arguments: an int as it is, a 1-d contiguous array as (address, size), a 2-d one
    with unit-stride rows as (address, rows, columns, elements between rows)."""
    out = []
    for item in items:
        if not hasattr(item, "ndim"):
            out.append(int(item))
        elif item.ndim == 1 and (item.strides[0] == item.itemsize or item.size < 2):
            out += [item.ctypes.data, item.size]
        elif item.ndim == 2 and item.strides[1] == item.itemsize and item.strides[0] % item.itemsize == 0:
            out += [item.ctypes.data, item.shape[0], item.shape[1], item.strides[0] // item.itemsize]
        else:
            raise ValueError(f"workers.pack: an array of shape {item.shape} and strides {item.strides} is neither "
                             "a contiguous vector nor a matrix with unit-stride rows")
    return xp.asarray(out, dtype=xp.int64)


def _gemm_fields(a, b, out, found):
    """The task fields of ``out = a @ b`` for the compiled loop, or None where BLAS cannot take the operands."""
    dt = out.dtype
    if dt.char not in "fd" or a.dtype != dt or b.dtype != dt or out.ndim != 2:
        return None
    la, lb, lc = cblas.layout(a), cblas.layout(b), cblas.layout(out)
    if la is None or lb is None or lc is None or lc[0] != cblas.NO_TRANS:
        return None
    (m, kd), n = a.shape, b.shape[1]
    if min(m, n, kd) < 1 or b.shape[0] != kd or out.shape != (m, n) or not (
            a.flags.aligned and b.flags.aligned and out.flags.aligned):
        return None
    if found[2] == 32 and max(m, n, kd, la[1], lb[1], lc[1]) >= 2 ** 31:
        return None
    f = xp.zeros(16, dtype=xp.int64)
    double = dt.char == "d"
    f[KIND], f[FN], f[VARIANT] = GEMM_PART, found[double], 2 * double + (found[2] == 64)
    f[TA], f[TB], f[M], f[N], f[K] = la[0], lb[0], m, n, kd
    f[A], f[LDA], f[B], f[LDB], f[C], f[LDC] = a.ctypes.data, la[1], b.ctypes.data, lb[1], out.ctypes.data, lc[1]
    return f


def gemm(parts: list) -> bool:
    """``out[...] = a @ b`` for every ``(a, b, out)`` of ``parts`` at once: the caller the first through NumPy,
    workers the rest inside their compiled loops through NumPy's BLAS directly (no GIL). False, with nothing
    computed, where that cannot serve: no spinning workers or no CBLAS, or operands BLAS cannot take as they
    are (2-D float32/float64 of one dtype, strided like a matrix or its transpose, ``out`` row-major)."""
    found = cblas.numpy_gemm()
    workers = _workers(len(parts) - 1) if found is not None else None
    if workers is None:
        return False
    fields = [_gemm_fields(a, b, out, found) for a, b, out in parts[1:]]
    if any(f is None for f in fields):
        return False
    for w, f in zip(workers, fields):
        w.submit_gemm(f)
    try:
        a, b, out = parts[0]
        xp.matmul(a, b, out=out)
    finally:  # the workers write into the caller's arrays: wait for them whatever happens here
        for w in workers:
            w.wait()
    return True


def _after_fork() -> None:
    """A forked child has none of its parent's threads: it starts its own."""
    _state.pop("workers", None)
    _state.pop("executor", None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
