"""Horovod's data-parallel design on nerve's optimisers: broadcast the start, average gradients in ``step``.

``DistributedOptimizer(opt)`` returns the same optimiser (its class, its state) whose ``step`` first averages
the gradients over the ranks: one flat buffer per dtype, cut into buckets each sent by its own non-blocking
``Allreduce``, all in flight together. Wrapping it broadcasts rank 0's parameters and optimiser state.
"""
from __future__ import annotations

import time
from typing import Any, Iterable

import numpy

from nerve.distributed import comm
from nerve.tensor import Tensor

__all__ = ["broadcast_parameters", "broadcast_state", "DistributedOptimizer"]

#: PyTorch DDP's default bucket size (25 MiB)
BUCKET_BYTES = 25 * 2 ** 20


def _named(params: Any) -> list[tuple[str, Tensor]]:
    """(name, tensor) pairs from a Module (parameters and buffers), a state-dict-like mapping or tensors."""
    if hasattr(params, "named_parameters") and hasattr(params, "named_buffers"):
        return [*params.named_parameters(), *((n, b) for n, b in params.named_buffers() if b is not None)]
    if isinstance(params, dict):
        return list(params.items())
    pairs = []
    for i, p in enumerate(params):
        pairs.append(tuple(p) if isinstance(p, tuple) else (f"parameter {i}", p))
    return pairs


def _check_agreement(named: list[tuple[str, Tensor]], root: int, who: str) -> None:
    """Every rank holds the same names, shapes and dtypes as ``root``, else a ValueError naming the first
    difference (raised on every rank, so none is left waiting)."""
    mine = [(name, tuple(t.shape), str(t.data.dtype)) for name, t in named]
    everyone = comm.allgather_object(mine, f"{who} (comparing parameter shapes)")
    reference = everyone[root]
    for r, theirs in enumerate(everyone):
        if len(theirs) != len(reference):
            raise ValueError(f"{who}: rank {r} has {len(theirs)} tensors, rank {root} has {len(reference)}; "
                             "every rank must build the same model")
        for (n0, s0, d0), (n1, s1, d1) in zip(reference, theirs):
            if (n0, s0, d0) != (n1, s1, d1):
                raise ValueError(f"{who}: parameter {n0!r} is {s0} {d0} on rank {root} but rank {r} has "
                                 f"{n1!r} {s1} {d1}; every rank must build the same model")


def _by_dtype(tensors: list[Tensor]) -> dict:
    groups: dict = {}
    for t in tensors:
        groups.setdefault(numpy.dtype(t.data.dtype), []).append(t)
    return groups


def broadcast_parameters(params: Any, root_rank: int = 0) -> None:
    """Copy rank ``root_rank``'s values into every rank's parameters (and a Module's buffers), in place.

    ``params``: a Module, a dict of tensors (a state dict) or an iterable of tensors or (name, tensor).
    The first call checks that all ranks agree on names and shapes and names the first that differs.
    """
    named = _named(params)
    comm.init()
    _check_agreement(named, root_rank, "broadcast_parameters")
    for dtype, tensors in _by_dtype([t for _, t in named]).items():
        flat = numpy.concatenate([numpy.asarray(t.data, dtype=dtype).ravel() for t in tensors])
        comm.broadcast(flat, root_rank, "broadcast_parameters")
        offset = 0
        for t in tensors:
            t.data[...] = flat[offset:offset + t.data.size].reshape(t.data.shape)
            offset += t.data.size


def _to_arrays(value: Any) -> Any:
    if isinstance(value, Tensor):
        return numpy.asarray(value.data)
    if isinstance(value, dict):
        return {k: _to_arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_arrays(v) for v in value]
    return value


def broadcast_state(optimizer, root_rank: int = 0) -> None:
    """Load rank ``root_rank``'s optimiser state (moments, step counts, hyperparameters) on every rank."""
    comm.init()
    state = comm.broadcast_object(_to_arrays(optimizer.state_dict()) if comm.rank() == root_rank else None,
                                  root_rank, "broadcast_state")
    if comm.rank() != root_rank:
        optimizer.load_state_dict(state)


class _Distributed:
    """The methods a ``DistributedOptimizer`` adds to the optimiser's own class."""

    def synchronize(self) -> None:
        """Average every parameter's ``.grad`` over the ranks (a gradient missing on a rank counts as zero;
        a parameter without a gradient on every rank keeps ``None``)."""
        if comm.world_size() == 1:
            return
        start = time.perf_counter()
        params = [p for g in self.param_groups for p in g["params"]]
        if [id(p) for p in params] != self._dist_ids:
            self._dist_layout(params)
        requests = []
        for dtype, (tensors, flat) in self._dist_buffers.items():
            n = len(tensors)
            offset = 0
            for i, p in enumerate(tensors):
                size = p.data.size
                if p.grad is None:
                    flat[offset:offset + size] = 0
                    flat[-n + i] = 0
                else:
                    flat[offset:offset + size] = p.grad.data.ravel()
                    flat[-n + i] = 1
                offset += size
            step = max(1, self.bucket_bytes // dtype.itemsize)
            requests += [flat[lo:lo + step] for lo in range(0, flat.size, step)]
        comm.allreduce_many(requests, "DistributedOptimizer.synchronize (gradient allreduce)")
        world = comm.world_size()
        for tensors, flat in self._dist_buffers.values():
            flat /= world
            n = len(tensors)
            offset = 0
            for i, p in enumerate(tensors):
                size = p.data.size
                if flat[-n + i] > 0:
                    avg = flat[offset:offset + size].reshape(p.data.shape)
                    if p.grad is None or p.grad.requires_grad:
                        p.grad = Tensor._make(avg.copy(), None)
                    else:
                        p.grad.data[...] = avg
                offset += size
        self.comm_seconds += time.perf_counter() - start

    def _dist_layout(self, params: list) -> None:
        self._dist_ids = [id(p) for p in params]
        self._dist_buffers = {dtype: (ts, numpy.empty(sum(t.data.size for t in ts) + len(ts), dtype=dtype))
                              for dtype, ts in _by_dtype(params).items()}
        self.bytes_per_step = sum(flat.nbytes for _, flat in self._dist_buffers.values())

    def step(self, closure=None):
        """Average the gradients over the ranks, then take the wrapped optimiser's step."""
        if closure is not None:
            raise ValueError(f"DistributedOptimizer({type(self).__mro__[2].__name__}): step(closure) is not "
                             "supported (a closure re-evaluates the loss on one rank only); call step() "
                             "after backward()")
        self.synchronize()
        return super().step()


def DistributedOptimizer(optimizer, named_parameters: Iterable | None = None, bucket_bytes: int = BUCKET_BYTES,
                         root_rank: int = 0):
    """Wrap ``optimizer`` (Horovod's name): its ``step()`` averages gradients over the ranks first.

    Returns an object of a subclass of the optimiser's own class sharing its state, after broadcasting
    rank ``root_rank``'s parameters and optimiser state; ``named_parameters`` names them in errors.
    ``comm_seconds`` (time spent averaging) and ``bytes_per_step`` say what the communication costs.
    """
    if isinstance(optimizer, _Distributed):
        raise ValueError("DistributedOptimizer: the optimizer is already distributed")
    if not isinstance(bucket_bytes, int) or bucket_bytes < 1:
        raise ValueError(f"DistributedOptimizer: bucket_bytes must be a positive int, got {bucket_bytes!r}")
    cls = optimizer.__class__
    wrapped = object.__new__(type(f"Distributed{cls.__name__}", (_Distributed, cls), {}))
    wrapped.__dict__ = optimizer.__dict__
    wrapped.bucket_bytes, wrapped.comm_seconds, wrapped._dist_ids = bucket_bytes, 0.0, None
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if named_parameters is not None:
        names = {id(p): n for n, p in named_parameters}
        params = [(names.get(id(p), f"parameter {i}"), p) for i, p in enumerate(params)]
    broadcast_parameters(params, root_rank)
    broadcast_state(wrapped, root_rank)
    wrapped._dist_layout([p for g in optimizer.param_groups for p in g["params"]])
    return wrapped
