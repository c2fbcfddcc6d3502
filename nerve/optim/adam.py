"""Adam and AdamW: steps from bias-corrected running moments of the gradient."""
from __future__ import annotations

import math
from typing import Iterable

from nerve.backend import xp
from nerve import ops
from nerve.optim import fused
from nerve.optim.optimizer import Optimizer


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015) with optional AMSGrad (Reddi et al., 2018), PyTorch's rule.

    With ``g = grad + weight_decay * p`` (``-grad`` when ``maximize``; with ``decoupled_weight_decay``
    instead ``p <- p * (1 - lr * weight_decay)`` first and ``g = grad``), step ``t``, moments from zero::

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g * g
        v_max <- max(v_max, v) ;  v_hat = v_max if amsgrad else v
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, decoupled_weight_decay=decoupled_weight_decay))

    def _validate(self, group: dict, index: int) -> None:
        for key in ("lr", "eps", "weight_decay"):
            self._check_range(key, group[key], index)
        self._check_betas(group, index)

    def _update_group(self, group: dict) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
        decoupled = group["decoupled_weight_decay"]
        coupled_decay = 0.0 if decoupled else weight_decay
        for p, w, g, work in self._with_grads(group, coupled_decay, maximize):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = xp.zeros_like(w)
                state["exp_avg_sq"] = xp.zeros_like(w)
            if amsgrad and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = xp.zeros_like(w)
            state["step"] += 1
            step = state["step"]
            if decoupled and weight_decay:  # NOTE: g does not read w here (no coupled decay), so order is free
                w *= 1 - lr * weight_decay
            c2 = math.sqrt(1 - beta2 ** step)
            v_max = (state["max_exp_avg_sq"],) if amsgrad else ()
            arrays = (w, g, state["exp_avg"], state["exp_avg_sq"], work) + v_max
            scalars = (beta1, beta2, eps * c2, -lr * c2 / (1 - beta1 ** step))
            if fused.usable(*arrays[:4], *v_max):  # one compiled pass (numba installed)
                fused.adam(w, g, state["exp_avg"], state["exp_avg_sq"], v_max[0] if v_max else None, *scalars)
            elif ops.streams.THREADS and 12 * w.size >= ops.streams.SPLIT_ELEMENTS \
                    and all(a.flags.c_contiguous for a in arrays):  # flat ranges on nerve's threads
                flat = [a.reshape(-1) for a in arrays]
                ops.streams.split(lambda a, b: _adam_kernel(*(f[a:b] for f in flat), *scalars), w.size,
                                  12 * ops.streams.SPLIT_COST * w.size, w)
            else:
                _adam_kernel(*arrays, *scalars)
            p._version += 1


def update_moments(g, exp_avg, exp_avg_sq, work, beta1: float, beta2: float) -> None:
    """Adam's moving averages in place: m = beta1 m + (1 - beta1) g, v = beta2 v + (1 - beta2) g^2."""
    exp_avg *= beta1
    xp.multiply(g, 1 - beta1, out=work)
    exp_avg += work
    exp_avg_sq *= beta2
    xp.multiply(g, g, out=work)
    work *= 1 - beta2
    exp_avg_sq += work


def _adam_kernel(w, g, exp_avg, exp_avg_sq, work, *rest) -> None:
    """One Adam update in place; ``rest`` is ([v_max,] beta1, beta2, eps * c2, -lr * c2 / c1)."""
    *v_max, beta1, beta2, eps_c2, scale = rest
    update_moments(g, exp_avg, exp_avg_sq, work, beta1, beta2)
    v_hat = exp_avg_sq
    if v_max:
        v_hat = v_max[0]
        xp.maximum(v_hat, exp_avg_sq, out=v_hat)
    # NOTE: sqrt(v)/c2 + eps == (sqrt(v) + eps*c2)/c2: folding c2 into the scalars saves a pass.
    xp.sqrt(v_hat, out=work)
    work += eps_c2
    xp.divide(exp_avg, work, out=work)
    work *= scale
    w += work


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), PyTorch's rule.

    Each step first shrinks ``p <- p * (1 - lr * weight_decay)``, then takes the Adam step on the plain
    gradient (see ``Adam``); the default ``weight_decay`` is 1e-2.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, decoupled_weight_decay=True)
