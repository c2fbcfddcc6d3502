"""RMSprop: steps scaled by a running root-mean-square of the gradients, optionally centred."""
from __future__ import annotations

from typing import Iterable

from nerve.backend import xp
from nerve.optim.optimizer import Optimizer


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e; centred form from Graves, 2013), PyTorch's rule.

    With ``g = grad + weight_decay * p`` (``-grad`` when ``maximize``) and state starting at zero::

        v <- alpha * v + (1 - alpha) * g * g
        a <- alpha * a + (1 - alpha) * g            (centered only)
        s  = sqrt(v - a * a) + eps   if centered  else  sqrt(v) + eps
        b <- momentum * b + g / s ;  p <- p - lr * b      (momentum > 0)
        p <- p - lr * g / s                                (momentum == 0)
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def _validate(self, group: dict, index: int) -> None:
        for key in ("lr", "eps", "weight_decay", "momentum"):
            self._check_range(key, group[key], index)
        self._check_range("alpha", group["alpha"], index, high=1.0, high_open=False)

    def _update_group(self, group: dict) -> None:
        lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
        weight_decay, centered, maximize = group["weight_decay"], group["centered"], group["maximize"]
        for p, w, g, work in self._with_grads(group, weight_decay, maximize):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["square_avg"] = xp.zeros_like(w)
            # NOTE: created on first need, so momentum or centering switched on later starts from zero.
            if momentum > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = xp.zeros_like(w)
            if centered and "grad_avg" not in state:
                state["grad_avg"] = xp.zeros_like(w)
            state["step"] += 1
            square_avg = state["square_avg"]
            square_avg *= alpha
            xp.multiply(g, g, out=work)
            work *= 1 - alpha
            square_avg += work
            if centered:
                grad_avg = state["grad_avg"]
                grad_avg *= alpha
                xp.multiply(g, 1 - alpha, out=work)
                grad_avg += work
                xp.multiply(grad_avg, grad_avg, out=work)
                xp.subtract(square_avg, work, out=work)
                xp.sqrt(work, out=work)
            else:
                xp.sqrt(square_avg, out=work)
            work += eps
            xp.divide(g, work, out=work)
            if momentum > 0:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += work
                xp.multiply(buf, -lr, out=work)
            else:
                work *= -lr
            w += work
            p._version += 1
