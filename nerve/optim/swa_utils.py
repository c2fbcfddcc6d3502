"""PyTorch's ``optim.swa_utils``: stochastic weight averaging (Izmailov et al. 2018) and exponential moving
averages of a model's weights (``AveragedModel``), the SWA learning-rate schedule (``SWALR``) and the
recomputation of BatchNorm statistics for averaged weights (``update_bn``)."""
from __future__ import annotations

import copy
import itertools
import math
from typing import Callable, Iterable

from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.nn.module import Module
from nerve.nn.normalization import _NormBase
from nerve.optim.lr_scheduler import LRScheduler
from nerve.optim.optimizer import Optimizer
from nerve.tensor import Tensor

__all__ = ["AveragedModel", "SWALR", "update_bn", "get_ema_avg_fn", "get_ema_multi_avg_fn", "get_swa_avg_fn",
           "get_swa_multi_avg_fn"]


def get_ema_avg_fn(decay: float = 0.999) -> Callable:
    """avg_fn of an exponential moving average: decay * averaged + (1 - decay) * current."""
    def ema_update(averaged: Tensor, current: Tensor, num_averaged) -> Tensor:
        return decay * averaged + (1 - decay) * current
    return ema_update


def get_swa_avg_fn() -> Callable:
    """avg_fn of the equal-weight running mean: averaged + (current - averaged) / (n + 1)."""
    def swa_update(averaged: Tensor, current: Tensor, num_averaged) -> Tensor:
        return averaged + (current - averaged) / (int(num_averaged) + 1)
    return swa_update


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable:
    """multi_avg_fn of the exponential moving average: updates every averaged tensor in place."""
    def ema_update(averaged: list, current: list, num_averaged) -> None:
        for a, c in zip(averaged, current):
            a.data[...] = decay * a.data + (1 - decay) * c.data
    return ema_update


def get_swa_multi_avg_fn() -> Callable:
    """multi_avg_fn of the equal-weight running mean, in place."""
    def swa_update(averaged: list, current: list, num_averaged) -> None:
        n = int(num_averaged)
        for a, c in zip(averaged, current):
            a.data[...] = a.data + (c.data - a.data) / (n + 1)
    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` (``self.module``) whose parameters (and buffers, with ``use_buffers``) are the average
    of those passed to ``update_parameters``: the equal-weight mean by default, or ``avg_fn(averaged, current,
    n)`` per tensor, or ``multi_avg_fn(averaged_list, current_list, n)`` in place. Without ``use_buffers`` the
    buffers are copied from the model at each update (``update_bn`` recomputes BatchNorm's afterwards)."""

    def __init__(self, model: Module, device=None, avg_fn: Callable | None = None,
                 multi_avg_fn: Callable | None = None, use_buffers: bool = False) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("AveragedModel: give avg_fn or multi_avg_fn, not both")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", Tensor(xp.zeros((), dtype=xp.int64)))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _tensors(self, model: Module) -> list:
        buffers = [b for b in model.buffers() if b is not None] if self.use_buffers else []
        return list(itertools.chain(model.parameters(), buffers))

    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current parameters into the average (the first call copies them)."""
        mine, theirs = self._tensors(self.module), self._tensors(model)
        if len(mine) != len(theirs):
            raise ValueError(f"AveragedModel.update_parameters: the model has {len(theirs)} tensors to average, "
                             f"the averaged copy {len(mine)}")
        n = int(self.n_averaged.item())
        with no_grad():
            if n == 0:
                for a, c in zip(mine, theirs):
                    a.data[...] = c.data
            elif self.multi_avg_fn is not None:
                self.multi_avg_fn(mine, theirs, self.n_averaged)
            else:
                fn = self.avg_fn if self.avg_fn is not None else get_swa_avg_fn()
                for a, c in zip(mine, theirs):
                    a.data[...] = fn(Tensor(a.data.copy()), Tensor(c.data), self.n_averaged).data
            if not self.use_buffers:
                for a, c in zip(self.module.buffers(), model.buffers()):
                    if a is not None and c is not None:
                        a.data[...] = c.data
        self.n_averaged.data[...] = n + 1


def update_bn(loader: Iterable, model: Module, device=None) -> None:
    """Recompute every BatchNorm's running statistics as the plain average over one pass of ``loader``
    (each batch, or its first element when a batch is a list or tuple)."""
    norms = [m for m in model.modules() if isinstance(m, _NormBase) and m.running_mean is not None]
    if not norms:
        return
    momenta = {}
    for m in norms:
        m.reset_running_stats()
        momenta[m] = m.momentum
        m.momentum = None
    was_training = model.training
    model.train()
    with no_grad():
        for batch in loader:
            if isinstance(batch, (list, tuple)):
                batch = batch[0]
            if device is not None:
                batch = batch.to(device)
            model(batch)
    for m in norms:
        m.momentum = momenta[m]
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to ``swa_lr`` over ``anneal_epochs`` epochs ('cos' or 'linear'), then hold it."""

    def __init__(self, optimizer: Optimizer, swa_lr: float | list[float], anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"SWALR: expected an Optimizer, got {type(optimizer).__name__}")
        values = list(swa_lr) if isinstance(swa_lr, (list, tuple)) else [swa_lr] * len(optimizer.param_groups)
        if len(values) != len(optimizer.param_groups):
            raise ValueError(f"SWALR: expected {len(optimizer.param_groups)} values of swa_lr, got {len(values)}")
        for value, group in zip(values, optimizer.param_groups):
            group["swa_lr"] = value
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"SWALR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"SWALR: anneal_epochs must be an int >= 0, got {anneal_epochs!r}")
        self.anneal_epochs, self.anneal_strategy = anneal_epochs, anneal_strategy
        super().__init__(optimizer, last_epoch)

    def _anneal(self, t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2 if self.anneal_strategy == "cos" else t

    def get_lr(self) -> list[float]:
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev = self._anneal(max(0.0, min(1.0, (step - 1) / max(1, self.anneal_epochs))))
        alpha = self._anneal(max(0.0, min(1.0, step / max(1, self.anneal_epochs))))
        lrs = []
        for group in self.optimizer.param_groups:
            swa = group["swa_lr"]
            start = swa if prev == 1 else (group["lr"] - prev * swa) / (1 - prev)
            lrs.append(swa * alpha + start * (1 - alpha))
        return lrs
