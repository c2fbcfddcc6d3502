"""What ``fit(distributed=True)`` needs: sharded loaders, the wrapped optimiser, logs averaged over ranks."""
from __future__ import annotations

from typing import Any

import numpy

from nerve import backend
from nerve.data import DataLoader, Dataset, Subset, TensorDataset
from nerve.distributed import comm
from nerve.distributed.optimizer import DistributedOptimizer, _Distributed, broadcast_parameters
from nerve.distributed.sampler import DistributedLoader

__all__ = ["prepare", "average_logs"]


def _dataset(data: Any, what: str) -> Dataset | None:
    if data is None or isinstance(data, DistributedLoader):
        return None
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)):
        return TensorDataset(*data)
    if hasattr(data, "shape"):
        return TensorDataset(data)
    raise TypeError(f"fit(distributed=True): {what} must be arrays, a Dataset or a DistributedLoader (each rank "
                    f"takes its own shard), got {type(data).__name__}")


def _wrap(optimizer: Any, model) -> Any:
    if optimizer is None or isinstance(optimizer, _Distributed):
        return optimizer
    if isinstance(optimizer, (list, tuple)):
        return type(optimizer)(_wrap(o, model) for o in optimizer)
    if isinstance(optimizer, dict):
        return {k: _wrap(o, model) for k, o in optimizer.items()}
    return DistributedOptimizer(optimizer, named_parameters=model.named_parameters())


def prepare(model, optimizer: Any, data: Any, validation_data: Any, batch_size: int, shuffle: bool) -> tuple:
    """(distributed optimiser, this rank's training loader, its validation loader or None).

    Broadcasts rank 0's model (checking that shapes agree) and optimiser state; ``batch_size`` is per rank,
    so the global batch is ``batch_size * world_size()``; the shuffling seed is rank 0's.
    """
    comm.init()
    train = _dataset(data, "the training data")
    if train is None:
        if not isinstance(data, DistributedLoader):
            raise TypeError("fit(distributed=True): pass the training data")
        loader = data
    else:
        seed = comm.broadcast_object(int(backend.default_generator().integers(2 ** 31)) if comm.is_main() else None)
        loader = DistributedLoader(train, batch_size, shuffle=shuffle, seed=seed)
    val_loader = None
    val = _dataset(validation_data, "validation_data")
    if val is not None:
        val_loader = DataLoader(Subset(val, range(comm.rank(), len(val), comm.world_size())), batch_size=batch_size)
    elif isinstance(validation_data, DistributedLoader):
        val_loader = validation_data
    broadcast_parameters(model)
    return _wrap(optimizer, model), loader, val_loader


def average_logs(logs: dict, weight: float) -> dict:
    """Each log's mean over the ranks, weighted by the samples each rank saw (the same keys on every rank)."""
    keys = sorted(logs)
    values = numpy.array([logs[k] * weight for k in keys] + [weight], dtype=numpy.float64)
    comm.allreduce(values, what="averaging the logs over ranks")
    return {k: float(v / values[-1]) for k, v in zip(keys, values[:-1])}
