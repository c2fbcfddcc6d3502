"""NAdam: Adam with Nesterov momentum, looking one step ahead along the first moment."""
from __future__ import annotations

import math
from typing import Iterable

from nerve.backend import xp
from nerve.optim.adam import update_moments
from nerve.optim.optimizer import Optimizer


class NAdam(Optimizer):
    r"""NAdam (Dozat, 2016) with its momentum schedule, PyTorch's rule.

    With ``g = grad + weight_decay * p`` (``-grad`` when ``maximize``; with ``decoupled_weight_decay``
    instead ``p <- p * (1 - lr * weight_decay)`` first and ``g = grad``), step ``t``, moments from zero,
    ``mu_t = beta1 * (1 - 0.96^(t * momentum_decay) / 2)`` and ``P_t = mu_1 * ... * mu_t``::

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g * g
        m_hat = mu_{t+1} * m / (1 - P_{t+1}) + (1 - mu_t) * g / (1 - P_t)
        p <- p - lr * m_hat / (sqrt(v / (1 - beta2^t)) + eps)
    """

    def __init__(self, params: Iterable, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def _validate(self, group: dict, index: int) -> None:
        for key in ("lr", "eps", "weight_decay", "momentum_decay"):
            self._check_range(key, group[key], index)
        self._check_betas(group, index)

    def _update_group(self, group: dict) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, psi, decoupled = group["weight_decay"], group["momentum_decay"], group["decoupled_weight_decay"]
        for p, w, g, work in self._with_grads(group, 0.0 if decoupled else weight_decay, group["maximize"], extra=1):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["mu_product"] = 1.0
                state["exp_avg"] = xp.zeros_like(w)
                state["exp_avg_sq"] = xp.zeros_like(w)
            state["step"] += 1
            step = state["step"]
            if decoupled and weight_decay:  # NOTE: g does not read w here (no coupled decay), so order is free
                w *= 1 - lr * weight_decay
            mu = beta1 * (1 - 0.5 * 0.96 ** (step * psi))
            mu_next = beta1 * (1 - 0.5 * 0.96 ** ((step + 1) * psi))
            mu_product = state["mu_product"] = state["mu_product"] * mu
            c2 = math.sqrt(1 - beta2 ** step)
            term = self._buffers(p, 2)[1]  # the extra scratch array `_with_grads` reserved
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            update_moments(g, exp_avg, exp_avg_sq, work, beta1, beta2)
            # NOTE: sqrt(v)/c2 + eps == (sqrt(v) + eps*c2)/c2: c2 goes into the scalars below.
            xp.sqrt(exp_avg_sq, out=work)
            work += eps * c2
            xp.multiply(g, -lr * c2 * (1 - mu) / (1 - mu_product), out=term)
            term /= work
            w += term
            xp.multiply(exp_avg, -lr * c2 * mu_next / (1 - mu_product * mu_next), out=term)
            term /= work
            w += term
            p._version += 1
