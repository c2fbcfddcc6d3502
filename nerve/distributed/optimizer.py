"""Horovod's data-parallel design on nerve's optimisers: broadcast the start, average the gradients.

``DistributedOptimizer(opt)`` returns the same optimiser (its class, its state) whose gradients are averaged over
the ranks during backward (``averager.py``), with ``step`` sending what backward did not. Wrapping it broadcasts
rank 0's parameters and optimiser state.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy

from nerve.distributed import comm
from nerve.distributed.averager import GradientAverager, by_dtype
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


def broadcast_parameters(params: Any, root_rank: int = 0) -> None:
    """Copy rank ``root_rank``'s values into every rank's parameters (and a Module's buffers), in place.

    ``params``: a Module, a dict of tensors (a state dict) or an iterable of tensors or (name, tensor).
    It first checks that all ranks agree on names and shapes and names the first that differs.
    """
    named = _named(params)
    comm.init()
    _check_agreement(named, root_rank, "broadcast_parameters")
    broadcast_values([t for _, t in named], root_rank, "broadcast_parameters")


def broadcast_values(tensors: list[Tensor], root_rank: int, what: str) -> None:
    """Rank ``root_rank``'s values into ``tensors`` in place, one broadcast per dtype (shapes already agreed)."""
    for dtype, group in by_dtype(tensors).items():
        flat = numpy.concatenate([numpy.asarray(t.data, dtype=dtype).ravel() for t in group])
        comm.broadcast(flat, root_rank, what)
        offset = 0
        for t in group:
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
    """The methods a ``DistributedOptimizer`` adds to the optimiser's own class: its ``GradientAverager``
    averages the gradients during backward, and ``step`` sends what backward did not."""

    @property
    def bytes_per_step(self) -> int:
        return self._averager.bytes_per_step

    @property
    def comm_seconds(self) -> float:
        return self._averager.comm_seconds

    def _params(self) -> list:
        return [p for g in self.param_groups for p in g["params"]]

    def synchronize(self) -> None:
        """Average every parameter's ``.grad`` over the ranks, once per step (a gradient missing on a rank counts
        as zero; a parameter without a gradient on every rank keeps ``None``)."""
        params = self._params()
        if [id(p) for p in params] != self._averager.ids:
            self._averager.layout(params)
        self._averager.synchronize()

    def zero_grad(self, *args, **kwargs):
        """Finish any averaging in flight (every rank must), then clear the gradients."""
        self._averager.discard()
        return super().zero_grad(*args, **kwargs)

    def step(self, closure=None):
        """Average the gradients over the ranks (unless backward already did), then take the wrapped
        optimiser's step."""
        if closure is not None:
            raise ValueError(f"DistributedOptimizer({type(self).__mro__[2].__name__}): step(closure) is not "
                             "supported (a closure re-evaluates the loss on one rank only); call step() "
                             "after backward()")
        self.synchronize()
        result = super().step()
        self._averager.reset()
        return result


def DistributedOptimizer(optimizer, named_parameters: Iterable | None = None, bucket_bytes: int = BUCKET_BYTES,
                         root_rank: int = 0, backward_passes_per_step: int = 1):
    """Wrap ``optimizer`` (Horovod's name): its ``step()`` averages gradients over the ranks first.

    Returns an object of a subclass of the optimiser's own class sharing its state, after broadcasting
    rank ``root_rank``'s parameters and optimiser state; ``named_parameters`` names them in errors. Gradients
    are averaged during the backward pass, bucket by bucket as they become final; ``backward_passes_per_step``
    backward passes accumulate locally before that (Horovod's option).
    ``comm_seconds`` (time spent averaging) and ``bytes_per_step`` say what the communication costs.
    """
    if isinstance(optimizer, _Distributed):
        raise ValueError("DistributedOptimizer: the optimizer is already distributed")
    for name, value in (("bucket_bytes", bucket_bytes), ("backward_passes_per_step", backward_passes_per_step)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"DistributedOptimizer: {name} must be a positive int, got {value!r}")
    cls = optimizer.__class__
    wrapped = object.__new__(type(f"Distributed{cls.__name__}", (_Distributed, cls), {}))
    wrapped.__dict__ = optimizer.__dict__
    wrapped._averager = GradientAverager(bucket_bytes, backward_passes_per_step, "DistributedOptimizer")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if named_parameters is not None:
        names = {id(p): n for n, p in named_parameters}
        params = [(names.get(id(p), f"parameter {i}"), p) for i, p in enumerate(params)]
    broadcast_parameters(params, root_rank)
    broadcast_state(wrapped, root_rank)
    wrapped._averager.layout(wrapped._params())
    return wrapped
