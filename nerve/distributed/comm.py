"""The MPI world: ``init``, ``rank``, ``world_size``, ``is_main``, and collectives that never hang forever.

Every collective is a non-blocking MPI request polled against a deadline: when a rank dies or stalls, the
others raise ``DistributedTimeoutError`` after ``timeout`` seconds (``init(timeout=...)`` or the environment
variable ``NERVE_DIST_TIMEOUT``) instead of waiting for ever, and an uncaught error aborts the whole job.
"""
from __future__ import annotations

import io
import os
import sys
import time
from typing import Any

import numpy

from nerve import io as nerve_io

__all__ = ["init", "rank", "world_size", "is_main", "launched_by_mpi", "barrier", "allreduce", "allreduce_many",
           "start_allreduce", "test", "wait",
           "broadcast", "allgather_object", "broadcast_object", "DistributedTimeoutError", "timeout", "set_timeout"]

_MPI_ENV = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
_state: dict = {"comm": None, "timeout": None}


class DistributedTimeoutError(RuntimeError):
    """A collective did not complete in time: another rank died, stalled or took another code path."""


def launched_by_mpi() -> bool:
    """Whether this process was started by ``mpiexec``/``mpirun`` (an MPI launcher's variables are set)."""
    return any(name in os.environ for name in _MPI_ENV)


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError("nerve.distributed needs mpi4py and an MPI library: pip install 'nerve[mpi]' "
                          f"(mpi4py and the mpich wheel); the import failed with: {exc}") from None
    return MPI


def _default_timeout() -> float:
    raw = os.environ.get("NERVE_DIST_TIMEOUT", "300")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"NERVE_DIST_TIMEOUT must be a number of seconds, got {raw!r}") from None
    return value


def set_timeout(seconds: float) -> None:
    """How long a collective may wait for the other ranks before ``DistributedTimeoutError``."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not seconds > 0:
        raise ValueError(f"nerve.distributed: timeout must be a positive number of seconds, got {seconds!r}")
    _state["timeout"] = float(seconds)


def timeout() -> float:
    """The current collective timeout in seconds."""
    if _state["timeout"] is None:
        set_timeout(_default_timeout())
    return _state["timeout"]


def init(timeout: float | None = None):
    """Join the MPI world (idempotent) and return its communicator; ``timeout`` bounds every collective.

    It also makes an uncaught exception on any rank abort the whole job (as ``python -m mpi4py`` does),
    so that one failing rank never leaves the others waiting.
    """
    if timeout is not None:
        set_timeout(timeout)
    if _state["comm"] is None:
        MPI = _mpi()
        _state["comm"] = MPI.COMM_WORLD
        if MPI.COMM_WORLD.Get_size() > 1:
            _install_abort_hook(MPI.COMM_WORLD)
    return _state["comm"]


def _install_abort_hook(comm) -> None:
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        sys.stderr.flush()
        time.sleep(0.5)  # let mpiexec forward the message before Abort ends every rank (it was lost under load)
        comm.Abort(1)

    sys.excepthook = hook


def _comm():
    return _state["comm"] if _state["comm"] is not None else init()


def rank() -> int:
    """This process's rank (0 without MPI initialised and outside ``mpiexec``)."""
    if _state["comm"] is None and not launched_by_mpi():
        return 0
    return _comm().Get_rank()


def world_size() -> int:
    """The number of ranks (1 outside ``mpiexec``)."""
    if _state["comm"] is None and not launched_by_mpi():
        return 1
    return _comm().Get_size()


def is_main() -> bool:
    """Whether this is rank 0, the one that prints progress and writes files."""
    return rank() == 0


def start_allreduce(array):
    """Start summing a contiguous NumPy array over the ranks in place; the request to ``wait`` for (None with
    one rank)."""
    comm = _comm()
    if comm.Get_size() == 1:
        return None
    return comm.Iallreduce(_mpi().IN_PLACE, array, op=_mpi().SUM)


def test(requests: list) -> bool:
    """Whether ``requests`` have completed; with MPICH this call is also what moves their data along."""
    requests = [r for r in requests if r is not None]
    return not requests or _mpi().Request.Testall(requests)


def wait(requests: list, what: str) -> None:
    """Wait for ``requests`` (None entries are done), raising ``DistributedTimeoutError`` after ``timeout()``."""
    requests = [r for r in requests if r is not None]
    if requests:
        _wait(requests, what)


def _wait(requests: list, what: str) -> None:
    """Poll ``requests`` until all complete, or raise after ``timeout()`` seconds.

    NOTE: MPICH moves a large message only inside MPI calls, so the first 50 ms poll without pause (as a blocking
    call spins); later polls back off to 1 ms sleeps, leaving the core to the others while a rank lags.
    """
    MPI = _mpi()
    if MPI.Request.Testall(requests):
        return
    start = time.monotonic()
    deadline = start + timeout()
    pause = 0.0
    while not MPI.Request.Testall(requests):
        now = time.monotonic()
        if now > deadline:
            raise DistributedTimeoutError(
                f"nerve.distributed: {what} on rank {rank()} of {world_size()} did not complete within "
                f"{timeout():g} s: another rank died, stalled or skipped this call (raise the limit with "
                "init(timeout=...) or NERVE_DIST_TIMEOUT)")
        if now - start > 0.05:
            time.sleep(pause)
            pause = min(1e-3, pause + 5e-5)


def barrier() -> None:
    """Wait until every rank gets here (bounded by the timeout)."""
    comm = _comm()
    if comm.Get_size() > 1:
        _wait([comm.Ibarrier()], "barrier")


def allreduce(array, average: bool = False, what: str = "allreduce"):
    """Sum (or average) a contiguous NumPy array over the ranks in place; returns it."""
    comm = _comm()
    if comm.Get_size() > 1:
        _wait([comm.Iallreduce(_mpi().IN_PLACE, array, op=_mpi().SUM)], what)
    if average:
        array /= comm.Get_size()
    return array


def allreduce_many(arrays: list, what: str = "allreduce") -> None:
    """Sum several contiguous arrays (a flat buffer's buckets) in place, all requests in flight together."""
    comm = _comm()
    if comm.Get_size() > 1:
        MPI = _mpi()
        _wait([comm.Iallreduce(MPI.IN_PLACE, a, op=MPI.SUM) for a in arrays], what)


def broadcast(array, root: int = 0, what: str = "broadcast"):
    """Overwrite a contiguous NumPy array with rank ``root``'s; returns it."""
    comm = _comm()
    if comm.Get_size() > 1:
        _wait([comm.Ibcast(array, root=root)], what)
    return array


def _pack(obj: Any) -> numpy.ndarray:
    """``obj`` (arrays, dicts, lists, tuples, numbers, strings) as safetensors bytes: nerve never pickles."""
    buffer = io.BytesIO()
    nerve_io.save({"obj": obj}, buffer)
    return numpy.frombuffer(buffer.getvalue(), dtype=numpy.uint8)


def _unpack(payload: numpy.ndarray) -> Any:
    return nerve_io.load(io.BytesIO(payload.tobytes()))["obj"]


def allgather_object(obj: Any, what: str = "allgather") -> list:
    """Every rank's ``obj`` (arrays, containers and plain values, sent as safetensors bytes), in rank order,
    on every rank."""
    comm = _comm()
    if comm.Get_size() == 1:
        return [obj]
    payload = _pack(obj)
    sizes = numpy.zeros(comm.Get_size(), dtype=numpy.int64)
    _wait([comm.Iallgather(numpy.array([payload.size], dtype=numpy.int64), sizes)], what)
    out = numpy.empty(int(sizes.sum()), dtype=numpy.uint8)
    _wait([comm.Iallgatherv(payload, [out, sizes.tolist()])], what)
    offsets = numpy.concatenate([[0], numpy.cumsum(sizes)])
    return [_unpack(out[offsets[i]:offsets[i + 1]]) for i in range(comm.Get_size())]


def broadcast_object(obj: Any, root: int = 0, what: str = "broadcast") -> Any:
    """Rank ``root``'s ``obj`` (arrays, containers and plain values) on every rank."""
    comm = _comm()
    if comm.Get_size() == 1:
        return obj
    payload = _pack(obj) if comm.Get_rank() == root else numpy.empty(0, dtype=numpy.uint8)
    size = numpy.array([payload.size], dtype=numpy.int64)
    broadcast(size, root, what)
    buf = payload.copy() if comm.Get_rank() == root else numpy.empty(int(size[0]), dtype=numpy.uint8)
    broadcast(buf, root, what)
    return _unpack(buf)
