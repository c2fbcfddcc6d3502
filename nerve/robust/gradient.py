"""Gradient attacks with torchattacks' names and defaults: FGSM, FFGSM (fast FGSM with a random start), FGM (L2),
PGD (L∞), PGDL2 and MIFGSM, each with restarts where it iterates and a choice of loss ('ce' or 'margin')."""
from __future__ import annotations

from typing import Callable

from nerve.backend import xp
from nerve.robust.attack import Attack, batch_norms
from nerve.robust.losses import LOSSES, attack_loss
from nerve.tensor import Tensor

__all__ = ["FGSM", "FFGSM", "FGM", "PGD", "PGDL2", "MIFGSM"]

_TINY = 1e-12


def _check_loss(name: str, loss: str) -> str:
    if loss not in LOSSES:
        raise ValueError(f"{name}: loss must be one of {LOSSES}, got {loss!r}")
    return loss


def _check_steps(name: str, steps: int, restarts: int = 1) -> None:
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"{name}: steps must be an int >= 0, got {steps!r}")
    if not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"{name}: restarts must be an int >= 1, got {restarts!r}")


def _l2_unit(g):
    """Each sample's gradient divided by its L2 norm (zero stays zero)."""
    norms = batch_norms(g, "L2").reshape((-1,) + (1,) * (g.ndim - 1))
    return g / xp.maximum(norms, _TINY)


class FGSM(Attack):
    """Fast gradient sign method (Goodfellow et al. 2015): x + ε·sign(∇ₓ loss), one step, clipped to bounds."""

    def __init__(self, model: Callable, eps: float = 8 / 255, loss: str = "ce", **kwargs) -> None:
        super().__init__("FGSM", model, eps, **kwargs)
        self.loss = _check_loss(self.name, loss)

    def forward(self, x, y, logits):
        if self.eps == 0:
            return x
        g, _ = self.input_grad(x, y, self.loss)
        return self._clip(x + self.eps * xp.sign(g))


class FFGSM(Attack):
    """Fast FGSM (Wong, Rice & Kolter 2020): a uniform random start in the ε-ball, one step of ``alpha``
    (1.25 ε by their recipe), projected back to the ball and the bounds."""

    step_attrs = ("alpha",)

    def __init__(self, model: Callable, eps: float = 8 / 255, alpha: float = 10 / 255, loss: str = "ce",
                 **kwargs) -> None:
        super().__init__("FFGSM", model, eps, **kwargs)
        self.alpha, self.loss = float(alpha), _check_loss(self.name, loss)

    def forward(self, x, y, logits):
        if self.eps == 0:
            return x
        x_adv = self._clip(x + self._uniform(-self.eps, self.eps, x.shape, x.dtype))
        g, _ = self.input_grad(x_adv, y, self.loss)
        x_adv = x_adv + self.alpha * xp.sign(g)
        return self._clip(x + xp.clip(x_adv - x, -self.eps, self.eps))


class FGM(Attack):
    """Fast gradient method in L2: x + ε·∇/‖∇‖₂, one step, clipped to bounds."""

    norm = "L2"

    def __init__(self, model: Callable, eps: float = 1.0, loss: str = "ce", **kwargs) -> None:
        super().__init__("FGM", model, eps, **kwargs)
        self.loss = _check_loss(self.name, loss)

    def forward(self, x, y, logits):
        if self.eps == 0:
            return x
        g, _ = self.input_grad(x, y, self.loss)
        return self._clip(x + self.eps * _l2_unit(g))


class _Iterative(Attack):
    """Shared loop of the projected iterative attacks: start, steps, projection, restarts keeping the best."""

    step_attrs = ("alpha",)
    repr_attrs = ("steps", "loss")

    def __init__(self, name: str, model: Callable, eps: float, alpha: float, steps: int, random_start: bool,
                 restarts: int, loss: str, kappa: float, **kwargs) -> None:
        super().__init__(name, model, eps, **kwargs)
        _check_steps(name, steps, restarts)
        if alpha < 0:
            raise ValueError(f"{name}: alpha must be >= 0, got {alpha!r}")
        self.alpha, self.steps, self.random_start = float(alpha), steps, bool(random_start)
        self.restarts, self.loss, self.kappa = restarts, _check_loss(name, loss), float(kappa)
        self._warn_step(self.alpha)

    def forward(self, x, y, logits):
        if self.eps == 0 or self.steps == 0 and not self.random_start:
            return x
        best, best_loss, best_fooled = None, None, None
        for _ in range(self.restarts):
            x_adv, score, fooled = self._run(x, y)
            if best is None:
                best, best_loss, best_fooled = x_adv, score, fooled
                continue
            # keep a restart that fools the model, else the one with the higher objective
            better = (fooled & ~best_fooled) | ((fooled == best_fooled) & (score > best_loss))
            keep = better.reshape((-1,) + (1,) * (x.ndim - 1))
            best = xp.where(keep, x_adv, best)
            best_loss = xp.where(better, score, best_loss)
            best_fooled = best_fooled | fooled
        return best

    def _run(self, x, y):
        x_adv = self._clip(x + self._start(x)) if self.random_start else x.copy()
        state = None
        for _ in range(self.steps):
            g, _ = self.input_grad(x_adv, y, self.loss, self.kappa)
            step, state = self._step(g, state)
            x_adv = self._clip(x + self._project(x_adv + step - x))
        if self.restarts == 1:
            return x_adv, None, None
        score, logits = self._score(x_adv, y)
        return x_adv, score, self.success(logits, y)

    def _score(self, x_adv, y):
        logits = self.logits(x_adv)
        return attack_loss(Tensor(logits), Tensor(y), self.loss, self.targeted, self.kappa).data, logits

    def _step(self, g, state):
        return self.alpha * xp.sign(g), state

    def _start(self, x):
        return self._uniform(-self.eps, self.eps, x.shape, x.dtype)

    def _project(self, delta):
        return xp.clip(delta, -self.eps, self.eps)


class PGD(_Iterative):
    """Projected gradient descent in L∞ (Madry et al. 2018): ``steps`` sign steps of ``alpha`` from a uniform
    random start, each projected onto the ε-ball and the bounds; ``restarts`` keep the strongest result."""

    def __init__(self, model: Callable, eps: float = 8 / 255, alpha: float = 2 / 255, steps: int = 10,
                 random_start: bool = True, restarts: int = 1, loss: str = "ce", kappa: float = float("inf"),
                 **kwargs) -> None:
        super().__init__("PGD", model, eps, alpha, steps, random_start, restarts, loss, kappa, **kwargs)


class PGDL2(_Iterative):
    """PGD in L2: steps of ``alpha`` along ∇/‖∇‖₂ from a random start inside the ball, projected onto the
    L2 ball of radius ε and the bounds."""

    norm = "L2"

    def __init__(self, model: Callable, eps: float = 1.0, alpha: float = 0.2, steps: int = 10,
                 random_start: bool = True, restarts: int = 1, loss: str = "ce", kappa: float = float("inf"),
                 **kwargs) -> None:
        super().__init__("PGDL2", model, eps, alpha, steps, random_start, restarts, loss, kappa, **kwargs)

    def _step(self, g, state):
        return self.alpha * _l2_unit(g), state

    def _start(self, x):
        direction = _l2_unit(self._normal(x.shape, x.dtype))
        radius = self._uniform(0.0, self.eps, (len(x),) + (1,) * (x.ndim - 1), x.dtype)
        return direction * radius

    def _project(self, delta):
        norms = batch_norms(delta, "L2").reshape((-1,) + (1,) * (delta.ndim - 1))
        return delta * xp.minimum(1.0, self.eps / xp.maximum(norms, _TINY)).astype(delta.dtype)


class MIFGSM(_Iterative):
    """Momentum iterative FGSM (Dong et al. 2018): g ← μ·g + ∇/‖∇‖₁, sign steps of ``alpha``, projected; no
    random start, as published."""

    repr_attrs = ("steps", "decay", "loss")

    def __init__(self, model: Callable, eps: float = 8 / 255, alpha: float = 2 / 255, steps: int = 10,
                 decay: float = 1.0, random_start: bool = False, restarts: int = 1, loss: str = "ce",
                 kappa: float = float("inf"), **kwargs) -> None:
        super().__init__("MIFGSM", model, eps, alpha, steps, random_start, restarts, loss, kappa, **kwargs)
        self.decay = float(decay)

    def _step(self, g, state):
        l1 = xp.abs(g).reshape(len(g), -1).mean(axis=1).reshape((-1,) + (1,) * (g.ndim - 1))
        momentum = g / xp.maximum(l1, _TINY)
        if state is not None:
            momentum = momentum + self.decay * state
        return self.alpha * xp.sign(momentum), momentum
