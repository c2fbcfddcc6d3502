"""Data-parallel training over MPI (``pip install 'nerve[mpi]'``; run under ``mpiexec``), with Horovod's names

    import nerve.distributed as dist
    dist.init()
    optimizer = dist.DistributedOptimizer(nerve.optim.Adam(model.parameters()))   # broadcasts rank 0's start

or PyTorch's (``init_process_group``, ``get_rank``, ``all_reduce``, ``DistributedDataParallel(model)``), or
``fit(model, data, ..., distributed=True)``; launched with ``mpiexec -n 4 python train.py``.
"""
from nerve.distributed.comm import (
    DistributedTimeoutError, allgather_object, allreduce, broadcast_object, init, is_main, launched_by_mpi, rank,
    set_timeout, timeout, world_size,
)
from nerve.distributed.ddp import DistributedDataParallel
from nerve.distributed.optimizer import DistributedOptimizer, broadcast_parameters, broadcast_state
from nerve.distributed.process_group import (
    ReduceOp, all_gather, all_reduce, barrier, broadcast, destroy_process_group, get_backend, get_rank,
    get_world_size, init_process_group, is_available, is_initialized,
)
from nerve.distributed.sampler import DistributedLoader, DistributedSampler

__all__ = ["init", "rank", "world_size", "is_main", "launched_by_mpi", "barrier", "allreduce", "broadcast",
           "allgather_object", "broadcast_object", "set_timeout", "timeout", "DistributedTimeoutError",
           "broadcast_parameters", "broadcast_state", "DistributedOptimizer", "DistributedSampler",
           "DistributedLoader", "DistributedDataParallel", "init_process_group", "destroy_process_group",
           "is_initialized", "is_available", "get_rank", "get_world_size", "get_backend", "ReduceOp", "all_reduce",
           "all_gather"]
