"""PyTorch's single-process parallel wrappers on one device: ``DataParallel`` runs its module (nerve has
one device per process, so there is nothing to scatter), ``SyncBatchNorm`` is batch normalisation (with one
process the batch statistics are already global). ``nn.parallel.DistributedDataParallel`` points to
``nerve.distributed``, which sits above ``nn`` and is not imported here."""
from __future__ import annotations

from nerve.nn.module import Module
from nerve.nn.normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, channels_last_norm
from nerve.tensor import Tensor

__all__ = ["DataParallel", "DistributedDataParallel", "SyncBatchNorm"]


class DataParallel(Module):
    """Holds ``module`` (state-dict keys ``module.<name>``, as PyTorch's) and runs it on the whole batch;
    ``device_ids``, ``output_device`` and ``dim`` are accepted and have no effect on one device."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: expected a Module, got {type(module).__name__}")
        self.module = module
        self.device_ids, self.output_device, self.dim = device_ids, output_device, dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


class DistributedDataParallel:
    """Not available under ``nn.parallel``: use ``nerve.distributed.DistributedDataParallel`` (or Horovod-style
    ``nerve.distributed.DistributedOptimizer``) after ``nerve.distributed.init()``."""

    def __init__(self, module=None, *args, **kwargs) -> None:
        raise RuntimeError("nn.parallel.DistributedDataParallel: nerve's data-parallel training lives in "
                           "nerve.distributed (MPI): call nerve.distributed.init() and wrap the model with "
                           "nerve.distributed.DistributedDataParallel(model), or wrap the optimizer with "
                           "nerve.distributed.DistributedOptimizer(optimizer, model.named_parameters())")


class SyncBatchNorm(BatchNorm1d):
    """Batch normalisation of (N, C, *) inputs over the batch and every position. PyTorch's version reduces
    the statistics across processes; with one process it is plain batch normalisation (``process_group`` is
    accepted and has no effect)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def forward(self, input: Tensor) -> Tensor:
        c = self.num_features
        if input.ndim < 2 or input.shape[1] != c:
            raise ValueError(f"SyncBatchNorm({c}): expected input (N, {c}, *), got {tuple(input.shape)}")
        return self._normalize(input) if input.ndim == 2 else channels_last_norm(self, input)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """``module`` with every BatchNorm1d/2d/3d (itself or inside) replaced by a SyncBatchNorm holding the same
        parameters and running statistics."""
        if isinstance(module, (BatchNorm1d, BatchNorm2d, BatchNorm3d)) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                      process_group)
            for table in ("_parameters", "_buffers"):
                for name, value in getattr(module, table).items():
                    getattr(out, table)[name] = value
                    out.__dict__[name] = value
            out.train(module.training)
            return out
        for name, child in list(module._modules.items()):
            if child is not None:
                converted = cls.convert_sync_batchnorm(child, process_group)
                if converted is not child:
                    setattr(module, name, converted)
        return module
