"""Averaging gradients over the ranks while backward runs: buckets of parameters, each one non-blocking
``Allreduce`` started by post-accumulate-grad hooks as soon as all its gradients are final.

Shared by ``DistributedOptimizer`` (Horovod's design) and ``DistributedDataParallel`` (PyTorch's).
"""
from __future__ import annotations

import time

import numpy

from nerve.distributed import comm
from nerve.tensor import Tensor


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


def by_dtype(tensors: list[Tensor]) -> dict:
    """The tensors grouped by dtype, in order."""
    groups: dict = {}
    for t in tensors:
        groups.setdefault(numpy.dtype(t.data.dtype), []).append(t)
    return groups


def _buckets(params: list, bucket_bytes: int) -> list[_Bucket]:
    """Per dtype, the parameters in reverse order (the last layers' gradients are final first), cut into buckets
    of at most ``bucket_bytes`` (a larger parameter travels alone)."""
    buckets = []
    for dtype, tensors in by_dtype(params).items():
        current, size = [], 0
        for t in reversed(tensors):
            if current and size + t.data.nbytes > bucket_bytes:
                buckets.append(_Bucket(current, dtype))
                current, size = [], 0
            current.append(t)
            size += t.data.nbytes
        buckets.append(_Bucket(current, dtype))
    return buckets


class GradientAverager:
    """Average the gradients of a list of parameters over the ranks, bucket by bucket, during backward.

    NOTE: a post-accumulate-grad hook on each parameter counts its backward passes; once every parameter of a
    bucket has had ``backward_passes_per_step`` of them, the bucket's Allreduce starts while backward goes on
    (buckets start in the same order on every rank, as MPI requires). When the last bucket has started, the
    hook waits for all and writes the averages into ``.grad``, so code between ``backward()`` and the step
    (gradient clipping) sees averaged gradients. Buckets left waiting (a parameter without a gradient on this
    rank) are sent by ``synchronize``.
    """

    def __init__(self, bucket_bytes: int, backward_passes_per_step: int, who: str) -> None:
        self.bucket_bytes, self.backward_passes_per_step, self.who = bucket_bytes, backward_passes_per_step, who
        self.comm_seconds, self.bytes_per_step = 0.0, 0
        self.enabled = True  # False inside DistributedDataParallel.no_sync()
        self.ids: list = []
        self.buckets: list[_Bucket] = []
        self._handles: list = []

    def layout(self, params: list) -> None:
        for handle in self._handles:
            handle.remove()
        self.ids = [id(p) for p in params]
        self.buckets = _buckets(params, self.bucket_bytes)
        self.bytes_per_step = sum(b.flat.nbytes for b in self.buckets)
        self._bucket_of = {id(t): b for b in self.buckets for t in b.tensors}
        self._passes = {id(p): 0 for p in params}
        self._next, self.synced = 0, False
        self._handles = [] if comm.world_size() == 1 else [
            p.register_post_accumulate_grad_hook(self._grad_ready) for p in params if p.requires_grad]

    @property
    def busy(self) -> bool:
        """Whether this step's averaging has begun (a gradient counted or a bucket sent) and not been reset."""
        return bool(self._next) or any(self._passes.values())

    def unfinished(self) -> list:
        """The parameters whose gradients have not arrived this step while others have."""
        return [t for b in self.buckets for t in b.tensors
                if t.requires_grad and self._passes[id(t)] < self.backward_passes_per_step] if self.busy else []

    def _grad_ready(self, p: Tensor) -> None:
        if not self.enabled:
            return
        passes = self._passes[id(p)] + 1
        if passes > self.backward_passes_per_step:
            raise RuntimeError(
                f"{self.who}: a parameter of shape {tuple(p.shape)} got {passes} gradients before the step "
                f"(backward_passes_per_step={self.backward_passes_per_step}); pass backward_passes_per_step=N to "
                "accumulate N backward passes, or step (or zero_grad) after each backward")
        self._passes[id(p)] = passes
        if passes == self.backward_passes_per_step:
            self.arrived([p])

    def arrived(self, params: list) -> None:
        """Count ``params`` as final for this step (their hooks fired, or they take no part in it)."""
        for p in params:
            self._passes[id(p)] = self.backward_passes_per_step
            self._bucket_of[id(p)].waiting -= 1
        self._start(until_waiting=True)
        if self._next == len(self.buckets):
            self._finish()
        else:
            comm.test([b.request for b in self.buckets[:self._next]])

    def _start(self, until_waiting: bool) -> None:
        """Start the buckets in order, up to the first that still waits for a gradient (or all of them)."""
        while self._next < len(self.buckets) and not (until_waiting and self.buckets[self._next].waiting > 0):
            bucket = self.buckets[self._next]
            bucket.pack()
            bucket.request = comm.start_allreduce(bucket.flat)
            self._next += 1

    def _finish(self) -> None:
        start = time.perf_counter()
        comm.wait([b.request for b in self.buckets], f"{self.who} (gradient allreduce)")
        world = comm.world_size()
        for b in self.buckets:
            b.unpack(world)
        self.synced = True
        self.comm_seconds += time.perf_counter() - start

    def synchronize(self) -> None:
        """Send what backward has not and wait for all: every ``.grad`` is then the average over the ranks."""
        if comm.world_size() == 1 or self.synced:
            return
        start = time.perf_counter()
        self._start(until_waiting=False)
        self.comm_seconds += time.perf_counter() - start
        self._finish()

    def discard(self) -> None:
        """Finish any averaging in flight (every rank must, to keep the collectives in step), then reset."""
        if comm.world_size() > 1 and self._next and not self.synced:
            self.synchronize()
        self.reset()

    def reset(self) -> None:
        for b in self.buckets:
            b.waiting, b.request = b.needed, None
        self._next, self.synced = 0, False
        self._passes = dict.fromkeys(self._passes, 0)
