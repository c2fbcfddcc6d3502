"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""
from __future__ import annotations

from typing import Iterable

from nerve.backend import xp
from nerve.optim.optimizer import Optimizer


class SGD(Optimizer):
    r"""Stochastic gradient descent, PyTorch's rule (``maximize`` steps uphill: ``g = -grad``).

    With ``g = grad + weight_decay * p`` and the momentum buffer ``b``::

        b <- g                                   (first step)
        b <- momentum * b + (1 - dampening) * g  (later steps)
        d  = g + momentum * b  if nesterov  else  b     (d = g when momentum == 0)
        p <- p - lr * d
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _validate(self, group: dict, index: int) -> None:
        for key in ("lr", "momentum", "weight_decay"):
            self._check_range(key, group[key], index)
        self._check_range("dampening", group["dampening"], index, high=1.0, high_open=False)
        self._check(not group["nesterov"] or (group["momentum"] > 0 and group["dampening"] == 0),
                    "nesterov", group["nesterov"], "momentum > 0 and dampening == 0 with Nesterov momentum",
                    index)

    def _update_group(self, group: dict) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        for p, w, d, work in self._with_grads(group, weight_decay, maximize):
            if momentum:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = d.copy()
                else:
                    buf *= momentum
                    if dampening:
                        xp.multiply(d, 1 - dampening, out=work)
                        buf += work
                    else:
                        buf += d
                if nesterov:
                    xp.multiply(buf, momentum, out=work)
                    work += d
                    d = work
                else:
                    d = buf
            xp.multiply(d, -lr, out=work)
            w += work
            p._version += 1
