"""Attacks that need no gradient of the attacked model: Square (a query-only random search, the check against
gradient masking), Transfer (adversarial examples crafted on another model) and MultiAttack (the per-sample worst
case of several attacks)."""
from __future__ import annotations

from typing import Callable, Sequence

from nerve.backend import xp
from nerve.robust.attack import Attack
from nerve.robust.losses import attack_loss
from nerve.tensor import Tensor

__all__ = ["Square", "Transfer", "MultiAttack"]

#: Square's schedule of the window's area fraction p (Andriushchenko et al. 2020): halve p_init at these points
#: of a 10,000-query budget (scaled to the budget given)
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


class Square(Attack):
    """Square attack in L∞ (Andriushchenko et al. 2020): from vertical stripes of ±ε, try a random square
    window of fresh ±ε per channel at each query and keep it where the margin loss falls; windows shrink on a
    fixed schedule. Queries only the model's outputs, so gradient masking cannot fool it."""

    repr_attrs = ("n_queries", "p_init")

    def __init__(self, model: Callable, eps: float = 8 / 255, n_queries: int = 5000, n_restarts: int = 1,
                 p_init: float = 0.8, loss: str = "margin", **kwargs) -> None:
        super().__init__("Square", model, eps, **kwargs)
        if not isinstance(n_queries, int) or n_queries < 1 or not isinstance(n_restarts, int) or n_restarts < 1:
            raise ValueError(f"Square: n_queries and n_restarts must be ints >= 1, got {n_queries!r}, {n_restarts!r}")
        if not 0 < p_init <= 1 or loss not in ("ce", "margin"):
            raise ValueError(f"Square: needs 0 < p_init <= 1 and loss 'ce' or 'margin', got {p_init}, {loss!r}")
        self.n_queries, self.n_restarts, self.p_init, self.loss = n_queries, n_restarts, float(p_init), loss

    def _p(self, i: int) -> float:
        point = int(i / self.n_queries * 10000)
        return self.p_init / 2 ** sum(point > h for h in _HALVINGS)

    def _objective(self, logits, y):
        """(loss to minimise, fooled) per sample: the label's margin (or cross-entropy), negated when targeted."""
        ascend = attack_loss(Tensor(logits), Tensor(y), self.loss, self.targeted, float("inf")).data
        return -ascend, self.success(logits, y)

    def forward(self, x, y, logits):
        if self.eps == 0:
            return x
        if x.ndim not in (2, 3, 4):
            raise ValueError(f"Square: expects images (N, C, H, W), sequences (N, C, L) or vectors (N, F), got "
                             f"{tuple(x.shape)}")
        # NOTE: sequences and vectors are searched as images one pixel high
        grid = x.reshape((len(x), 1, 1, -1) if x.ndim == 2 else (len(x), x.shape[1], 1, -1) if x.ndim == 3 else x.shape)
        best = grid.copy()
        todo = ~self.success(logits, y)
        for _ in range(self.n_restarts):
            idx = xp.nonzero(todo)[0]
            if len(idx) == 0:
                break
            x_adv, fooled = self._search(grid[idx], y[idx], x.shape[1:])
            best[idx] = x_adv
            todo[idx] = ~fooled
        return best.reshape(x.shape)

    def _sides(self, i: int, h: int, w: int) -> tuple:
        """(height, width) of the window at query i: a square of area p·h·w (a run of p·w on one-pixel rows)."""
        if h == 1:
            return 1, min(max(int(round(self._p(i) * w)), 1), max(w - 1, 1))
        side = min(max(int(round((self._p(i) * h * w) ** 0.5)), 1), max(min(h, w) - 1, 1))
        return side, side

    def _search(self, x, y, shape):
        n, c, h, w = x.shape
        eps = self.eps
        logits = lambda a: self.logits(a.reshape((len(a),) + shape))  # noqa: E731
        stripes = self._integers(0, 2, (n, c, 1, w)).astype(x.dtype) * (2 * eps) - eps
        x_best = self._clip(x + stripes)
        loss, fooled = self._objective(logits(x_best), y)
        rows, cols = xp.arange(h).reshape(1, 1, h, 1), xp.arange(w).reshape(1, 1, 1, w)
        for i in range(self.n_queries):
            idx = xp.nonzero(~fooled)[0]
            if len(idx) == 0:
                break
            a = len(idx)
            sh, sw = self._sides(i, h, w)
            top = self._integers(0, h - sh + 1, a).reshape(a, 1, 1, 1)
            left = self._integers(0, w - sw + 1, a).reshape(a, 1, 1, 1)
            window = (rows >= top) & (rows < top + sh) & (cols >= left) & (cols < left + sw)
            signs = self._integers(0, 2, (a, c, 1, 1)).astype(x.dtype) * (2 * eps) - eps
            delta = x_best[idx] - x[idx]
            candidate = self._clip(x[idx] + xp.where(window, signs, delta))
            new_loss, new_fooled = self._objective(logits(candidate), y[idx])
            better = new_loss < loss[idx]
            keep = better.reshape(-1, 1, 1, 1)
            x_best[idx] = xp.where(keep, candidate, x_best[idx])
            loss[idx] = xp.where(better, new_loss, loss[idx])
            fooled[idx] = xp.where(better, new_fooled, fooled[idx])
        return x_best, fooled


class Transfer(Attack):
    """A transfer attack: ``source`` (an attack on a surrogate model) crafts the examples; ``model`` is the one
    attacked, which the source never queries. Its ε, norm and bounds are the source's; targeted modes are set
    on the source."""

    def __init__(self, model: Callable, source: Attack) -> None:
        if not isinstance(source, Attack):
            raise TypeError(f"Transfer: source must be an Attack built on the surrogate model, got "
                            f"{type(source).__name__}")
        super().__init__("Transfer", model, source.eps, bounds=source.bounds)
        self.source, self.norm = source, source.norm
        self.measure = getattr(source, "measure", None)

    def at_eps(self, eps: float) -> "Transfer":
        """The transfer of the source attack at radius ``eps``."""
        return Transfer(self.model, self.source.at_eps(eps))

    def __repr__(self) -> str:
        return f"Transfer({self.source!r})"

    def forward(self, x, y, logits):
        return self.source(x, y).data


class MultiAttack(Attack):
    """The per-sample worst case of ``attacks`` (torchattacks' MultiAttack): each attack in turn on the samples
    that every earlier one failed on; a sample keeps the first adversarial example that fools the model."""

    def __init__(self, attacks: Sequence[Attack]) -> None:
        attacks = list(attacks)
        if not attacks or not all(isinstance(a, Attack) for a in attacks):
            raise TypeError("MultiAttack: expected a non-empty list of Attack objects")
        models, norms = {id(a.model) for a in attacks}, {a.norm for a in attacks}
        if len(models) > 1 or len(norms) > 1:
            raise ValueError(f"MultiAttack: the attacks must share one model and one norm, got norms {norms}")
        super().__init__("MultiAttack", attacks[0].model, max(a.eps for a in attacks), bounds=attacks[0].bounds)
        self.attacks, self.norm = attacks, attacks[0].norm

    def at_eps(self, eps: float) -> "MultiAttack":
        """Every attack at radius ``eps``."""
        return MultiAttack([a.at_eps(eps) for a in self.attacks])

    def __repr__(self) -> str:
        return f"MultiAttack({self.attacks!r})"

    def forward(self, x, y, logits):
        best = x.copy()
        todo = ~self.success(logits, y)
        for attack in self.attacks:
            idx = xp.nonzero(todo)[0]
            if len(idx) == 0:
                break
            x_adv = attack(x[idx], y[idx]).data
            fooled = attack.success(self.logits(x_adv), y[idx])
            best[idx[fooled]] = x_adv[fooled]
            todo[idx[fooled]] = False
        return best
