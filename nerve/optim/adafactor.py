"""Adafactor: Adam-like steps with the second moment of a matrix kept as row and column averages."""
from __future__ import annotations

import math
from typing import Iterable

from nerve.backend import xp
from nerve.optim.optimizer import Optimizer
from nerve.tensor import Tensor

_FACTORED = {"row_var": lambda shape: shape[:-1] + (1,), "col_var": lambda shape: shape[:-2] + (1, shape[-1])}


class Adafactor(Optimizer):
    r"""Adafactor (Shazeer & Stern, 2018) with PyTorch's rule (``torch.optim.Adafactor``). At step t, with
    ``1 - beta2_t = t ** beta2_decay``, ``rho = min(lr, 1 / sqrt(t))`` and ``alpha = max(eps2, RMS(p)) * rho``::

        p <- p (1 - lr weight_decay)
        R <- lerp(R, mean(g^2, last dim), 1 - beta2_t);  C <- lerp(C, mean(g^2, dim -2), 1 - beta2_t)
        V = R C / mean(R)                      (a vector keeps the full V <- lerp(V, g^2, 1 - beta2_t))
        U = g / sqrt(max(V, eps1^2));  p <- p - alpha U / max(1, RMS(U) / d)

    ``eps1`` None means the dtype's machine epsilon. There is no first moment (no momentum), as PyTorch's.
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, beta2_decay: float = -0.8, eps: tuple = (None, 1e-3),
                 d: float = 1.0, weight_decay: float = 0.0, *, foreach: bool | None = None,
                 maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d, weight_decay=weight_decay,
                                      maximize=maximize))

    def _validate(self, group: dict, index: int) -> None:
        for key in ("lr", "weight_decay"):
            self._check_range(key, group[key], index)
        self._check(group["beta2_decay"] <= 0, "beta2_decay", group["beta2_decay"], "beta2_decay <= 0", index)
        self._check(group["d"] >= 1, "d", group["d"], "d >= 1", index)
        eps1, eps2 = group["eps"]
        self._check((eps1 is None or eps1 >= 0) and eps2 >= 0, "eps", group["eps"], "eps values >= 0", index)

    def _update_group(self, group: dict) -> None:
        lr, decay, d, weight_decay = group["lr"], group["beta2_decay"], group["d"], group["weight_decay"]
        eps1, eps2 = group["eps"]
        for p, w, g, _ in self._with_grads(group, 0.0, group["maximize"]):
            state = self.state[p]
            if not state:
                state["step"] = 0
                if w.ndim > 1:
                    state["row_var"] = xp.zeros(w.shape[:-1] + (1,), dtype=w.dtype)
                    state["col_var"] = xp.zeros(w.shape[:-2] + (1, w.shape[-1]), dtype=w.dtype)
                else:
                    state["variance"] = xp.zeros_like(w)
            state["step"] += 1
            t = state["step"]
            weight = t ** decay
            rho = min(lr, 1 / math.sqrt(t))
            alpha = max(eps2, float(xp.sqrt((w * w).mean())) if w.size else 0.0) * rho
            floor = xp.finfo(w.dtype).eps if eps1 is None else eps1
            if weight_decay:
                w *= 1 - lr * weight_decay
            square = g * g
            if w.ndim > 1:
                row, col = state["row_var"], state["col_var"]
                row += weight * (square.mean(-1, keepdims=True) - row)
                col += weight * (square.mean(-2, keepdims=True) - col)
                var = (row @ col) / xp.maximum(row.mean(-2, keepdims=True), floor)
            else:
                state["variance"] += weight * (square - state["variance"])
                var = state["variance"]
            update = g / xp.sqrt(xp.maximum(var, floor * floor))
            denom = max(1.0, float(xp.sqrt((update * update).mean())) / d if update.size else 1.0)
            w -= (alpha / denom) * update
            p._version += 1

    def load_state_dict(self, state_dict: dict) -> None:
        """As the base, with the factored moments (shaped as a row and a column, not as the parameter) checked
        against their own shapes."""
        factored: dict = {}
        plain = {"param_groups": state_dict["param_groups"], "state": {}}
        for key, values in state_dict["state"].items():
            plain["state"][key] = {k: v for k, v in values.items() if k not in _FACTORED}
            factored[key] = {k: v for k, v in values.items() if k in _FACTORED}
        super().load_state_dict(plain)
        by_index = {int(i): p for group, saved in zip(self.param_groups, state_dict["param_groups"])
                    for i, p in zip(saved["params"], group["params"])}
        for key, values in factored.items():
            p = by_index[int(key)]
            for name, value in values.items():
                array = value.data if isinstance(value, Tensor) else xp.asarray(value)
                expected = _FACTORED[name](tuple(p.shape))
                if tuple(array.shape) != expected:
                    raise ValueError(f"Adafactor.load_state_dict: state {name!r} has shape {tuple(array.shape)}, "
                                     f"expected {expected} for a parameter of shape {tuple(p.shape)}")
                self.state[p][name] = array.astype(p.data.dtype, copy=True)
