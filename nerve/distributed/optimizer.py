"""Horovod's data-parallel design on nerve's optimisers: broadcast the start, average gradients in ``step``.

``DistributedOptimizer(opt)`` returns the same optimiser (its class, its state) whose gradients are averaged over
the ranks: per dtype, buckets of parameters each sent by its own non-blocking ``Allreduce`` as soon as backward
has finished their gradients, overlapping the rest of backward. Wrapping it broadcasts rank 0's parameters and
optimiser state.
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


class _Bucket:
    """Gradients of one dtype that travel in one non-blocking Allreduce: their values, then a flag each (1 where
    the rank has a gradient), so a parameter missing on some ranks averages over those that have it."""

    __slots__ = ("tensors", "flat", "needed", "waiting", "request")

    def __init__(self, tensors: list, dtype) -> None:
        self.tensors = tensors
        self.flat = numpy.empty(sum(t.data.size for t in tensors) + len(tensors), dtype=dtype)
        self.needed = sum(1 for t in tensors if t.requires_grad)  # the gradients backward will bring
        self.waiting, self.request = self.needed, None

    def pack(self) -> None:
        n, offset = len(self.tensors), 0
        for i, p in enumerate(self.tensors):
            size = p.data.size
            if p.grad is None:
                self.flat[offset:offset + size] = 0
                self.flat[-n + i] = 0
            else:
                self.flat[offset:offset + size] = p.grad.data.ravel()
                self.flat[-n + i] = 1
            offset += size

    def unpack(self, world: int) -> None:
        self.flat /= world
        n, offset = len(self.tensors), 0
        for i, p in enumerate(self.tensors):
            size = p.data.size
            if self.flat[-n + i] > 0:
                avg = self.flat[offset:offset + size].reshape(p.data.shape)
                if p.grad is None or p.grad.requires_grad:
                    p.grad = Tensor._make(avg.copy(), None)
                else:
                    p.grad.data[...] = avg
            offset += size


def _buckets(params: list, bucket_bytes: int) -> list[_Bucket]:
    """Per dtype, the parameters in reverse order (the last layers' gradients are final first), cut into buckets
    of at most ``bucket_bytes`` (a larger parameter travels alone)."""
    buckets = []
    for dtype, tensors in _by_dtype(params).items():
        current, size = [], 0
        for t in reversed(tensors):
            if current and size + t.data.nbytes > bucket_bytes:
                buckets.append(_Bucket(current, dtype))
                current, size = [], 0
            current.append(t)
            size += t.data.nbytes
        buckets.append(_Bucket(current, dtype))
    return buckets


class _Distributed:
    """The methods a ``DistributedOptimizer`` adds to the optimiser's own class.

    NOTE: a post-accumulate-grad hook on each parameter counts its backward passes; once every parameter of a
    bucket has had ``backward_passes_per_step`` of them, the bucket's Allreduce starts while backward goes on
    (buckets start in the same order on every rank, as MPI requires). When the last bucket has started, the
    hook waits for all and writes the averages into ``.grad``, so code between ``backward()`` and ``step()``
    (gradient clipping) sees averaged gradients, as with PyTorch's DistributedDataParallel. Buckets left
    waiting (a parameter without a gradient on this rank) are sent by ``synchronize``, which ``step`` calls.
    """

    def _dist_layout(self, params: list) -> None:
        for handle in getattr(self, "_dist_handles", ()):
            handle.remove()
        self._dist_ids = [id(p) for p in params]
        self._dist_buckets = _buckets(params, self.bucket_bytes)
        self._dist_next = 0
        self._dist_synced = False
        self._dist_passes = {id(p): 0 for p in params}
        self.bytes_per_step = sum(b.flat.nbytes for b in self._dist_buckets)
        bucket_of = {id(t): b for b in self._dist_buckets for t in b.tensors}
        self._dist_handles = [] if comm.world_size() == 1 else [
            p.register_post_accumulate_grad_hook(lambda t, b=bucket_of[id(p)]: self._dist_grad_ready(t, b))
            for p in params if p.requires_grad]

    def _dist_grad_ready(self, p: Tensor, bucket: _Bucket) -> None:
        passes = self._dist_passes[id(p)] + 1
        if passes > self.backward_passes_per_step:
            raise RuntimeError(
                f"DistributedOptimizer: a parameter of shape {tuple(p.shape)} got {passes} gradients before "
                f"step() (backward_passes_per_step={self.backward_passes_per_step}); pass "
                "backward_passes_per_step=N to accumulate N backward passes, or call step() or zero_grad() "
                "after each backward")
        self._dist_passes[id(p)] = passes
        if passes == self.backward_passes_per_step:
            bucket.waiting -= 1
            self._dist_start(until_waiting=True)
            if self._dist_next == len(self._dist_buckets):
                self._dist_finish()
            else:
                comm.test([b.request for b in self._dist_buckets[:self._dist_next]])

    def _dist_start(self, until_waiting: bool) -> None:
        """Start the buckets in order, up to the first that still waits for a gradient (or all of them)."""
        buckets = self._dist_buckets
        while self._dist_next < len(buckets) and not (until_waiting and buckets[self._dist_next].waiting):
            bucket = buckets[self._dist_next]
            bucket.pack()
            bucket.request = comm.start_allreduce(bucket.flat)
            self._dist_next += 1

    def _dist_finish(self) -> None:
        start = time.perf_counter()
        comm.wait([b.request for b in self._dist_buckets], "DistributedOptimizer.synchronize (gradient allreduce)")
        world = comm.world_size()
        for b in self._dist_buckets:
            b.unpack(world)
        self._dist_synced = True
        self.comm_seconds += time.perf_counter() - start

    def _dist_reset(self) -> None:
        for b in self._dist_buckets:
            b.waiting, b.request = b.needed, None
        self._dist_next = 0
        self._dist_synced = False
        self._dist_passes = dict.fromkeys(self._dist_passes, 0)

    def synchronize(self) -> None:
        """Average every parameter's ``.grad`` over the ranks, once per step (a gradient missing on a rank counts
        as zero; a parameter without a gradient on every rank keeps ``None``)."""
        if comm.world_size() == 1:
            return
        params = [p for g in self.param_groups for p in g["params"]]
        if [id(p) for p in params] != self._dist_ids:
            self._dist_layout(params)
        if not self._dist_synced:
            start = time.perf_counter()
            self._dist_start(until_waiting=False)
            self.comm_seconds += time.perf_counter() - start
            self._dist_finish()

    def zero_grad(self, *args, **kwargs):
        """Finish any averaging in flight (every rank must), then clear the gradients."""
        if comm.world_size() > 1 and self._dist_next:
            self.synchronize()
        if comm.world_size() > 1:
            self._dist_reset()
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
        if comm.world_size() > 1:
            self._dist_reset()
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
    wrapped.bucket_bytes, wrapped.backward_passes_per_step = bucket_bytes, backward_passes_per_step
    wrapped.comm_seconds = 0.0
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if named_parameters is not None:
        names = {id(p): n for n, p in named_parameters}
        params = [(names.get(id(p), f"parameter {i}"), p) for i, p in enumerate(params)]
    broadcast_parameters(params, root_rank)
    broadcast_state(wrapped, root_rank)
    wrapped._dist_layout([p for g in optimizer.param_groups for p in g["params"]])
    return wrapped
