"""RAdam: Adam whose adaptive step is switched on gradually, as the variance estimate becomes reliable."""
from __future__ import annotations

import math
from typing import Iterable

from nerve.backend import xp
from nerve.optim.adam import update_moments
from nerve.optim.optimizer import Optimizer


class RAdam(Optimizer):
    r"""Rectified Adam (Liu et al., 2019), PyTorch's rule.

    With ``g = grad + weight_decay * p`` (``-grad`` when ``maximize``; with ``decoupled_weight_decay``
    instead ``p <- p * (1 - lr * weight_decay)`` first and ``g = grad``), step ``t``, moments from zero,
    ``rho_inf = 2 / (1 - beta2) - 1`` and ``rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)``::

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1^t)
        r = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
        p <- p - lr * r * m_hat * sqrt(1 - beta2^t) / (sqrt(v) + eps)     (rho_t > 5)
        p <- p - lr * m_hat                                                  (otherwise: plain momentum)
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize))

    def _validate(self, group: dict, index: int) -> None:
        for key in ("lr", "eps", "weight_decay"):
            self._check_range(key, group[key], index)
        self._check_betas(group, index)

    def _update_group(self, group: dict) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, decoupled = group["weight_decay"], group["decoupled_weight_decay"]
        rho_inf = 2 / (1 - beta2) - 1
        for p, w, g, work in self._with_grads(group, 0.0 if decoupled else weight_decay, group["maximize"]):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = xp.zeros_like(w)
                state["exp_avg_sq"] = xp.zeros_like(w)
            state["step"] += 1
            step = state["step"]
            if decoupled and weight_decay:  # NOTE: g does not read w here (no coupled decay), so order is free
                w *= 1 - lr * weight_decay
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            update_moments(g, exp_avg, exp_avg_sq, work, beta1, beta2)
            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            rho_t = rho_inf - 2 * step * beta2 ** step / bias_correction2
            if rho_t > 5:
                rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                xp.sqrt(exp_avg_sq, out=work)
                work += eps
                xp.divide(exp_avg, work, out=work)
                work *= -lr * rect * math.sqrt(bias_correction2) / bias_correction1
            else:
                xp.multiply(exp_avg, -lr / bias_correction1, out=work)
            w += work
            p._version += 1
