"""Adadelta: steps whose size comes from running averages of past steps and gradients, no learning-rate tuning."""
from __future__ import annotations

from typing import Iterable

from nerve.backend import xp
from nerve.optim.optimizer import Optimizer


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012), PyTorch's rule (``maximize`` steps uphill: ``g = -grad``).

    With ``g = grad + weight_decay * p`` and both averages starting at zero::

        v <- rho * v + (1 - rho) * g * g
        d  = sqrt(u + eps) / sqrt(v + eps) * g
        u <- rho * u + (1 - rho) * d * d
        p <- p - lr * d
    """

    def __init__(self, params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def _validate(self, group: dict, index: int) -> None:
        for key in ("lr", "eps", "weight_decay"):
            self._check_range(key, group[key], index)
        self._check_range("rho", group["rho"], index, high=1.0, high_open=False)

    def _update_group(self, group: dict) -> None:
        lr, rho, eps = group["lr"], group["rho"], group["eps"]
        for p, w, g, work in self._with_grads(group, group["weight_decay"], group["maximize"], extra=1):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["square_avg"] = xp.zeros_like(w)
                state["acc_delta"] = xp.zeros_like(w)
            state["step"] += 1
            delta = self._buffers(p, 2)[1]  # the extra scratch array `_with_grads` reserved
            square_avg, acc_delta = state["square_avg"], state["acc_delta"]
            square_avg *= rho
            xp.multiply(g, g, out=work)
            work *= 1 - rho
            square_avg += work
            xp.add(square_avg, eps, out=work)
            xp.sqrt(work, out=work)
            xp.add(acc_delta, eps, out=delta)
            xp.sqrt(delta, out=delta)
            delta /= work
            delta *= g
            acc_delta *= rho
            xp.multiply(delta, delta, out=work)
            work *= 1 - rho
            acc_delta += work
            xp.multiply(delta, -lr, out=work)
            w += work
            p._version += 1
