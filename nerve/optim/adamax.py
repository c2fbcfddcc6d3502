"""Adamax: Adam with the infinity norm in place of the second moment."""
from __future__ import annotations

from typing import Iterable

from nerve.backend import xp
from nerve.optim.optimizer import Optimizer


class Adamax(Optimizer):
    r"""Adamax (Kingma & Ba, 2015, section 7.1), PyTorch's rule. With ``g = grad + weight_decay * p``::

        m <- beta1 m + (1 - beta1) g
        u <- max(beta2 u, |g| + eps)
        p <- p - lr / (1 - beta1^t) * m / u
    """

    def __init__(self, params: Iterable, lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, maximize: bool = False, foreach: bool | None = None) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    def _validate(self, group: dict, index: int) -> None:
        for key in ("lr", "eps", "weight_decay"):
            self._check_range(key, group[key], index)
        for i, beta in enumerate(group["betas"]):
            self._check_range(f"betas[{i}]", beta, index, 0.0, 1.0)

    def _update_group(self, group: dict) -> None:
        (beta1, beta2), lr, eps = group["betas"], group["lr"], group["eps"]
        for p, w, g, work in self._with_grads(group, group["weight_decay"], group["maximize"]):
            state = self.state[p]
            if not state:
                state.update(step=0, exp_avg=xp.zeros_like(w), exp_inf=xp.zeros_like(w))
            state["step"] += 1
            m, u = state["exp_avg"], state["exp_inf"]
            m *= beta1
            m += (1 - beta1) * g
            u *= beta2
            xp.abs(g, out=work)
            work += eps
            xp.maximum(u, work, out=u)
            xp.divide(m, u, out=work)
            work *= -lr / (1 - beta1 ** state["step"])
            w += work
            p._version += 1
