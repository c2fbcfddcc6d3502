"""PyTorch's data-parallel design: ``DistributedDataParallel(model)`` wraps the model, not the optimiser.

Wrapping broadcasts rank 0's parameters and buffers; the gradients are averaged over the ranks during
backward (``averager.py``, the same buckets as ``DistributedOptimizer``), so any optimiser steps on averaged
gradients. ``no_sync()`` accumulates locally; ``find_unused_parameters=True`` finds, after each forward, the
parameters the output does not depend on, so their buckets do not wait for gradients that never come.
"""
from __future__ import annotations

import contextlib
from typing import Any

from nerve.distributed import comm
from nerve.distributed.averager import GradientAverager
from nerve.distributed.optimizer import BUCKET_BYTES, broadcast_parameters, broadcast_values
from nerve.nn.module import Module
from nerve.tensor import Tensor

__all__ = ["DistributedDataParallel"]


def _tensors(out: Any) -> list:
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _tensors(v)]
    if isinstance(out, (list, tuple)):
        return [t for v in out for t in _tensors(v)]
    return []


def _reached(outputs: list) -> set:
    """ids of the leaves the outputs' graphs reach."""
    seen, found = set(), set()
    stack = [t.grad_fn for t in outputs if t.grad_fn is not None]
    found.update(id(t) for t in outputs if t.grad_fn is None)
    while stack:
        node = stack.pop()
        if node in seen or node.inputs is None:
            continue
        seen.add(node)
        for t in node.inputs:
            if isinstance(t, Tensor) and t.requires_grad:
                if t.grad_fn is None:
                    found.add(id(t))
                else:
                    stack.append(t.grad_fn)
    return found


class DistributedDataParallel(Module):
    """``model = DistributedDataParallel(model)``: PyTorch's names and arguments (``device_ids`` and the other
    placement arguments are accepted: nerve runs one process per CPU rank under ``mpiexec``)."""

    def __init__(self, module: Module, device_ids: Any = None, output_device: Any = None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group: Any = None, bucket_cap_mb: float | None = None,
                 find_unused_parameters: bool = False, gradient_as_bucket_view: bool = False,
                 static_graph: bool = False) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a Module, got {type(module).__name__}")
        comm.init()
        self.module = module
        self.broadcast_buffers, self.find_unused_parameters = broadcast_buffers, find_unused_parameters
        bucket_bytes = BUCKET_BYTES if bucket_cap_mb is None else max(1, int(bucket_cap_mb * 2 ** 20))
        broadcast_parameters(module)
        params = [p for p in module.parameters() if p.requires_grad]
        self._averager = GradientAverager(bucket_bytes, 1, "DistributedDataParallel")
        self._averager.layout(params)

    def forward(self, *args, **kwargs):
        averager = self._averager
        if averager.busy and not averager.synced:
            missing = averager.unfinished()
            raise RuntimeError(
                f"DistributedDataParallel: {len(missing)} parameters (shapes "
                f"{[tuple(p.shape) for p in missing[:4]]}) got no gradient in the last backward, so their "
                "averaging never finished; pass find_unused_parameters=True when the forward does not use every "
                "parameter")
        if averager.busy:
            averager.reset()
        if self.broadcast_buffers and comm.world_size() > 1:
            buffers = [b for _, b in self.module.named_buffers() if b is not None]
            if buffers:  # NOTE: their shapes were checked when the model was wrapped
                broadcast_values(buffers, 0, "DistributedDataParallel (buffers)")
        out = self.module(*args, **kwargs)
        if self.find_unused_parameters and averager.enabled and comm.world_size() > 1:
            used = _reached(_tensors(out))
            unused = [p for b in averager.buckets for p in b.tensors if p.requires_grad and id(p) not in used]
            if unused:
                averager.arrived(unused)
        return out

    @contextlib.contextmanager
    def no_sync(self):
        """Accumulate gradients locally for the backward passes inside; the first one after averages the sum."""
        self._averager.enabled = False
        try:
            yield
        finally:
            self._averager.enabled = True

    @property
    def comm_seconds(self) -> float:
        """Time spent waiting for the gradient averaging."""
        return self._averager.comm_seconds
