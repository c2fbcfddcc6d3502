"""Paired timing: each library in its own process, short bursts taken in turn, a ratio per round.

Why: this machine is shared, and its speed changes for seconds at a time (another tenant takes part of a
core; two-thread GEMMs then slow by a third and a step of small kernels by up to 2x). Timing one library
after the other compares different conditions. Here every contender runs in its own spawned process (PyTorch's
OpenMP threads and OpenBLAS's threads spin after work and would slow the other library in one process),
the contenders take turns at short bursts, and each round gives a ratio under the same conditions. The
report is the median of those ratios and each contender's best burst.
"""
from __future__ import annotations

import multiprocessing
import os
import statistics
import time

#: seconds between bursts, so that the last burst's spinning BLAS/OpenMP threads have gone to sleep
PAUSE = 0.25


def streams_note() -> str:
    """How nerve's kernels use the cores: its own threads (nerve.ops.streams, the default with numba) or BLAS's
    threads with per-site streams (threadpoolctl needed to run those)."""
    try:
        from nerve.ops import streams, workers
    except ImportError:
        return "nerve not importable"
    if streams.get_threads():
        kind = "numba's spinning workers" if workers._spinner() is not None else "a thread pool (numba missing)"
        return f"nerve's own threads: {streams.get_threads()} ({kind}; BLAS single-threaded)"
    try:
        import threadpoolctl
    except ImportError:
        return "nerve: BLAS's threads (streams off: threadpoolctl not installed)"
    timeout = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "(unset)")
    return (f"nerve: BLAS's threads, streams where they measure faster (threadpoolctl {threadpoolctl.__version__}), "
            f"OPENBLAS_THREAD_TIMEOUT={timeout}")


def best_of(fn, repeats: int, warmup: int = 1) -> float:
    """The fastest of ``repeats`` timed calls of ``fn()`` (seconds), after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def per_call(fn, *args):
    """A burst runner for a plain callable: ``run(n)`` calls ``fn(*args)`` n times, returns the seconds."""
    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            fn(*args)
        return time.perf_counter() - t0
    return run


def cycling(step, batches: list):
    """A burst runner that calls ``step(*batch)`` over ``batches`` in turn, round and round."""
    state = {"i": 0}

    def one() -> None:
        step(*batches[state["i"] % len(batches)])
        state["i"] += 1
    return per_call(one)


def _serve(conn, setup, args) -> None:
    """Worker: build the burst runner, warm it up, then answer each burst request with its seconds."""
    run = setup(*args)
    run(3)
    conn.send("ready")
    while (n := conn.recv()) is not None:
        conn.send(run(n))


class Contender:
    """One library's benchmark living in its own spawned process; ``setup(*args)`` returns ``run(n)``."""

    def __init__(self, setup, *args) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, setup, args), daemon=True)
        self.process.start()
        child.close()  # the worker holds the only other end now: its death reads as EOF instead of a hang
        try:
            ready = self.conn.recv()
        except EOFError:
            ready = None
        if ready != "ready":
            raise RuntimeError(f"benchmark worker {getattr(setup, '__name__', setup)}{args} failed to start "
                               "(its traceback is above)")

    def burst(self, n: int) -> float:
        """Mean seconds per call over ``n`` calls."""
        self.conn.send(n)
        try:
            return self.conn.recv() / n
        except EOFError:
            self.process.join()
            raise RuntimeError(f"benchmark worker exited with code {self.process.exitcode} during a burst "
                               "(its traceback is above)") from None

    def close(self) -> None:
        if self.process.is_alive():
            self.conn.send(None)
        self.process.join()


def compare(setups: dict, steps: int, rounds: int) -> dict:
    """Time every ``name -> (setup, *args)`` in turn for ``rounds`` bursts of ``steps`` calls.

    Returns ``name -> {"best": ms, "median": ms, "ratio": median over rounds of first / name, "best_ratio":
    first's best / name's best, "times": ms of each round}``, the first entry being the reference of the ratios;
    the best bursts stand for the machine's quiet moments. Workers are started one at a time, so start-up is not timed.
    """
    contenders = {}
    try:
        for name, (setup, *args) in setups.items():
            contenders[name] = Contender(setup, *args)
        times = {name: [] for name in contenders}
        for _ in range(rounds):
            for name, c in contenders.items():
                time.sleep(PAUSE)
                times[name].append(c.burst(steps) * 1e3)
    finally:
        for c in contenders.values():
            c.close()
    first = times[next(iter(times))]
    return {name: {"best": min(t), "median": statistics.median(t),
                   "ratio": statistics.median(a / b for a, b in zip(first, t)), "best_ratio": min(first) / min(t),
                   "times": t}
            for name, t in times.items()}
