"""Data-parallel training over MPI with Horovod's names (``pip install 'nerve[mpi]'``; run under ``mpiexec``).

    import nerve.distributed as dist
    dist.init()
    optimizer = dist.DistributedOptimizer(nerve.optim.Adam(model.parameters()))   # broadcasts rank 0's start

or ``fit(model, data, ..., distributed=True)``, launched with ``mpiexec -n 4 python train.py``.
"""
from nerve.distributed.comm import (
    DistributedTimeoutError, allgather_object, allreduce, barrier, broadcast, broadcast_object, init, is_main,
    launched_by_mpi, rank, set_timeout, timeout, world_size,
)
from nerve.distributed.optimizer import DistributedOptimizer, broadcast_parameters, broadcast_state
from nerve.distributed.sampler import DistributedLoader, DistributedSampler

__all__ = ["init", "rank", "world_size", "is_main", "launched_by_mpi", "barrier", "allreduce", "broadcast",
           "allgather_object", "broadcast_object", "set_timeout", "timeout", "DistributedTimeoutError",
           "broadcast_parameters", "broadcast_state", "DistributedOptimizer", "DistributedSampler",
           "DistributedLoader"]
