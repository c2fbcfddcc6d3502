"""Rprop and ASGD: PyTorch's resilient backpropagation (sign-based, per-weight step sizes) and averaged SGD."""
from __future__ import annotations

from typing import Iterable

from nerve.backend import xp
from nerve.optim.optimizer import Optimizer


class Rprop(Optimizer):
    r"""Rprop (Riedmiller & Braun, 1993), PyTorch's variant: each weight's step size grows by ``etas[1]`` while its
    gradient keeps its sign and shrinks by ``etas[0]`` when the sign flips (that step is skipped), within
    ``step_sizes``; the weight moves by ``-sign(g) * step_size``."""

    def __init__(self, params: Iterable, lr: float = 1e-2, etas: tuple = (0.5, 1.2), step_sizes: tuple = (1e-6, 50),
                 *, maximize: bool = False, foreach: bool | None = None) -> None:
        super().__init__(params, dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes), maximize=maximize))

    def _validate(self, group: dict, index: int) -> None:
        self._check_range("lr", group["lr"], index)
        minus, plus = group["etas"]
        self._check(0.0 < minus < 1.0 < plus, "etas", group["etas"], "0 < etas[0] < 1 < etas[1]", index)

    def _update_group(self, group: dict) -> None:
        (minus, plus), (low, high) = group["etas"], group["step_sizes"]
        for p, w, g, work in self._with_grads(group, 0.0, group["maximize"]):
            state = self.state[p]
            if not state:
                state.update(step=0, prev=xp.zeros_like(w), step_size=xp.full_like(w, group["lr"]))
            state["step"] += 1
            prev, size = state["prev"], state["step_size"]
            xp.multiply(g, prev, out=work)
            factor = xp.where(work > 0, plus, xp.where(work < 0, minus, 1.0))
            size *= factor
            xp.clip(size, low, high, out=size)
            xp.copyto(prev, xp.where(factor == minus, 0.0, g))
            w -= xp.sign(prev) * size
            p._version += 1


class ASGD(Optimizer):
    r"""Averaged SGD (Polyak & Juditsky, 1992), PyTorch's rule. With ``g = grad + weight_decay * p``::

        p  <- p (1 - lambd eta) - eta g
        ax <- ax + mu (p - ax)                      (the average, ``state['ax']``)
        eta <- lr / (1 + lambd lr t) ** alpha;  mu <- 1 / max(1, t - t0)
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75,
                 t0: float = 1e6, weight_decay: float = 0.0, *, maximize: bool = False,
                 foreach: bool | None = None) -> None:
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                                      maximize=maximize))

    def _validate(self, group: dict, index: int) -> None:
        for key in ("lr", "lambd", "weight_decay"):
            self._check_range(key, group[key], index)

    def _update_group(self, group: dict) -> None:
        lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
        for p, w, g, work in self._with_grads(group, group["weight_decay"], group["maximize"]):
            state = self.state[p]
            if not state:
                state.update(step=0, eta=lr, mu=1.0, ax=xp.zeros_like(w))
            state["step"] += 1
            eta = state["eta"]
            w *= 1 - lambd * eta
            xp.multiply(g, eta, out=work)
            w -= work
            if state["mu"] != 1:
                state["ax"] += state["mu"] * (w - state["ax"])
            else:
                xp.copyto(state["ax"], w)
            state["eta"] = lr / (1 + lambd * lr * state["step"]) ** alpha
            state["mu"] = 1 / max(1, state["step"] - t0)
            p._version += 1
