"""Adagrad: per-coordinate steps scaled by the root of the summed squared gradients."""
from __future__ import annotations

from typing import Iterable

from nerve.backend import xp
from nerve.optim.optimizer import Optimizer


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), PyTorch's rule (``maximize`` steps uphill: ``g = -grad``).

    With ``g = grad + weight_decay * p``, step count ``t`` and ``sum`` starting at
    ``initial_accumulator_value``::

        clr  = lr / (1 + (t - 1) * lr_decay)
        sum <- sum + g * g
        p   <- p - clr * g / (sqrt(sum) + eps)
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize))

    def _validate(self, group: dict, index: int) -> None:
        for key in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            self._check_range(key, group[key], index)

    def _update_group(self, group: dict) -> None:
        lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
        weight_decay, maximize = group["weight_decay"], group["maximize"]
        for p, w, g, work in self._with_grads(group, weight_decay, maximize):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["sum"] = xp.full_like(w, group["initial_accumulator_value"])
            state["step"] += 1
            clr = lr / (1 + (state["step"] - 1) * lr_decay)
            acc = state["sum"]
            xp.multiply(g, g, out=work)
            acc += work
            xp.sqrt(acc, out=work)
            work += eps
            xp.divide(g, work, out=work)
            work *= -clr
            w += work
            p._version += 1
