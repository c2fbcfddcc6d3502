"""``torch.distributed``'s names over nerve's MPI world, so PyTorch DDP scripts port: launch them with
``mpiexec -n N python script.py`` (MPI starts the processes and knows each one's rank; the rendezvous
arguments of ``init_process_group`` are accepted and not needed)."""
from __future__ import annotations

import enum
from typing import Any

import numpy

from nerve.distributed import comm
from nerve.tensor import Tensor

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available", "get_rank",
           "get_world_size", "ReduceOp", "all_reduce", "broadcast", "all_gather", "get_backend", "barrier"]

_state = {"initialized": False}


class ReduceOp(enum.Enum):
    """How ``all_reduce`` combines the ranks' values."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


def is_available() -> bool:
    """Whether mpi4py (the ``mpi`` extra) is installed."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def init_process_group(backend: str | None = None, init_method: str | None = None, timeout: Any = None,
                       world_size: int = -1, rank: int = -1, store: Any = None, group_name: str = "",
                       device_id: Any = None) -> None:
    """Join the MPI world (``backend`` "mpi", "gloo" or "nccl" all mean MPI here). ``world_size``/``rank``, when
    given, must agree with what ``mpiexec`` started; ``timeout`` (a timedelta or seconds) bounds collectives."""
    seconds = timeout.total_seconds() if hasattr(timeout, "total_seconds") else timeout
    comm.init(timeout=seconds)
    for name, given, actual in (("world_size", world_size, comm.world_size()), ("rank", rank, comm.rank())):
        if given not in (-1, None) and given != actual:
            raise ValueError(f"init_process_group: {name}={given}, but mpiexec started this process with "
                             f"{name} {actual}")
    _state["initialized"] = True


def destroy_process_group(group: Any = None) -> None:
    """Leave the group (MPI itself is finalised when the process exits)."""
    _state["initialized"] = False


def is_initialized() -> bool:
    return _state["initialized"]


def get_backend(group: Any = None) -> str:
    return "mpi"


def get_rank(group: Any = None) -> int:
    return comm.rank()


def get_world_size(group: Any = None) -> int:
    return comm.world_size()


def _host(tensor: Tensor | numpy.ndarray, who: str) -> numpy.ndarray:
    data = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(data, numpy.ndarray):
        raise TypeError(f"{who}: expected a nerve Tensor on the CPU (or a NumPy array), got {type(tensor).__name__}")
    if not data.flags.c_contiguous:
        raise ValueError(f"{who}: the tensor must be contiguous (call .contiguous())")
    return data


def _bump(tensor) -> None:
    if isinstance(tensor, Tensor):
        tensor._version += 1


def all_reduce(tensor: Tensor | numpy.ndarray, op: ReduceOp = ReduceOp.SUM, group: Any = None,
               async_op: bool = False) -> None:
    """Combine ``tensor`` over the ranks in place (``op``: SUM, AVG, PRODUCT, MIN, MAX)."""
    data = _host(tensor, "all_reduce")
    if comm.world_size() > 1:
        if op in (ReduceOp.SUM, ReduceOp.AVG):
            comm.allreduce(data, average=op is ReduceOp.AVG, what="all_reduce")
        else:
            everyone = comm.allgather_object(data.copy(), "all_reduce")
            combine = {ReduceOp.PRODUCT: numpy.prod, ReduceOp.MIN: numpy.min, ReduceOp.MAX: numpy.max}[op]
            data[...] = combine(numpy.stack(everyone), axis=0)
    _bump(tensor)


def broadcast(tensor: Tensor | numpy.ndarray, src: int = 0, group: Any = None, async_op: bool = False) -> None:
    """Overwrite ``tensor`` (or a NumPy array) with rank ``src``'s, in place."""
    comm.broadcast(_host(tensor, "broadcast"), root=src, what="broadcast")
    _bump(tensor)


def barrier(group: Any = None, async_op: bool = False, device_ids: Any = None) -> None:
    """Wait until every rank gets here."""
    comm.barrier()


def all_gather(tensor_list: list, tensor: Tensor, group: Any = None, async_op: bool = False) -> None:
    """Fill ``tensor_list`` (one tensor per rank) with every rank's ``tensor``."""
    if len(tensor_list) != comm.world_size():
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors for {comm.world_size()} ranks")
    for out, theirs in zip(tensor_list, comm.allgather_object(_host(tensor, "all_gather").copy(), "all_gather")):
        out.data[...] = theirs
        out._version += 1
