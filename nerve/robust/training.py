"""Adversarial training as a ``train_step`` for ``nerve.train.fit``: FGSM mixing (Goodfellow et al. 2015), PGD
(Madry et al. 2018), TRADES (Zhang et al. 2019) and fast FGSM with a random start (Wong et al. 2020).

``fit(model, data, optimizer=opt, train_step=AdversarialStep("pgd", eps=0.3))`` logs per epoch the training
loss, the clean accuracy ('accuracy') and the accuracy on the adversarial examples trained on ('adv_accuracy');
fit's ``metrics`` see the clean predictions.
"""
from __future__ import annotations

from typing import Any, Callable

from nerve.autograd.engine import grad as autograd_grad
from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.ops import cross_entropy
from nerve.robust.attack import Attack, _attack_mode, as_array
from nerve.robust.gradient import FFGSM, FGSM, PGD, _Iterative
from nerve.robust.losses import trades_kl
from nerve.tensor import Tensor

__all__ = ["AdversarialStep", "METHODS"]

METHODS = ("fgsm", "pgd", "trades", "fast")


class _TradesPGD(_Iterative):
    """TRADES' inner maximisation: sign steps on KL(f(x) || f(x')) from x + 0.001·N(0, 1), projected."""

    def __init__(self, model: Callable, eps: float, alpha: float, steps: int, **kwargs) -> None:
        super().__init__("TradesPGD", model, eps, alpha, steps, True, 1, "ce", float("inf"), **kwargs)

    def forward(self, x, y, logits):
        self._clean = Tensor(logits)
        return super().forward(x, y, logits)

    def _start(self, x):
        return xp.clip(0.001 * self._normal(x.shape, x.dtype), -self.eps, self.eps)

    def input_grad(self, x, y, loss: str = "ce", kappa: float = 0.0) -> tuple:
        xt = Tensor(x, requires_grad=True)
        out = self.model(self._model_input(xt))
        (g,) = autograd_grad(trades_kl(out, self._clean).sum(), [xt])
        return g.data, out.data


class AdversarialStep:
    """A ``train_step(model, batch, optimizer) -> logs`` that trains on adversarial examples.

    ``method``: 'fgsm' (loss ``mix``·J(x) + (1 - ``mix``)·J(x_fgsm), Goodfellow's ½/½), 'pgd' (J(x_pgd), PGD
    with random start, ``steps`` of ``alpha``, default 2.5 ε / steps), 'trades' (J(x) + ``beta``·KL(f(x) ||
    f(x')), x' maximising the KL by PGD), 'fast' (J(x_ffgsm): a random start and one step of ``alpha``, default
    1.25 ε). ``ramp``: batches over which ε grows linearly from 0 (0: full ε from the start). The examples are
    crafted in eval mode; the update runs in the model's training mode. ``normalization=(mean, std)``: the batches
    arrive normalised, (x - mean) / std per channel (as ``nerve train`` feeds them); ε and ``bounds`` apply to x.
    """

    def __init__(self, method: str = "pgd", eps: float = 0.3, alpha: float | None = None, steps: int = 10,
                 beta: float = 6.0, mix: float = 0.5, ramp: int = 0, bounds: tuple | None = (0.0, 1.0),
                 normalization: tuple | None = None) -> None:
        if method not in METHODS:
            raise ValueError(f"AdversarialStep: method must be one of {METHODS}, got {method!r}")
        if not isinstance(eps, (int, float)) or not eps >= 0:
            raise ValueError(f"AdversarialStep: eps must be >= 0, got {eps!r}")
        if not 0.0 <= mix <= 1.0 or beta < 0 or ramp < 0 or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"AdversarialStep: needs 0 <= mix <= 1, beta >= 0, ramp >= 0 and an int steps >= 1, "
                             f"got mix={mix}, beta={beta}, ramp={ramp}, steps={steps!r}")
        self.method, self.eps, self.alpha, self.steps = method, float(eps), alpha, steps
        self.beta, self.mix, self.ramp, self.bounds = float(beta), float(mix), ramp, bounds
        self.normalization = normalization
        self.calls = 0

    def current_eps(self) -> float:
        """ε of the next batch (after the ramp: ``eps``)."""
        if self.ramp and self.calls < self.ramp:
            return self.eps * (self.calls + 1) / self.ramp
        return self.eps

    def attack(self, model: Callable, eps: float) -> Attack:
        """The attack that crafts this step's training examples at radius ``eps``."""
        if self.method == "fgsm":
            atk = FGSM(model, eps=eps, bounds=self.bounds)
        elif self.method == "fast":
            atk = FFGSM(model, eps=eps, alpha=1.25 * eps if self.alpha is None else self.alpha, bounds=self.bounds)
        else:
            alpha = 2.5 * eps / self.steps if self.alpha is None else self.alpha
            cls = PGD if self.method == "pgd" else _TradesPGD
            atk = cls(model, eps=eps, alpha=alpha, steps=self.steps, bounds=self.bounds)
        if self.normalization is not None:
            atk.set_normalization_used(*self.normalization)
        return atk

    def __call__(self, model, batch: Any, optimizer) -> dict:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError("AdversarialStep: expected (inputs, labels) batches")
        x, y = as_array(batch[0]), as_array(batch[1])
        eps = self.current_eps()
        self.calls += 1
        atk = self.attack(model, eps)
        if self.normalization is not None:  # back to the inputs' own scale, where ε and the bounds apply
            mean, std = atk._normalization
            shape = (1, -1) + (1,) * (x.ndim - 2)
            x = atk._clip(x * std.reshape(shape) + mean.reshape(shape)).astype(x.dtype)
        x_adv = atk(x, y)
        optimizer.zero_grad()
        if self.method in ("fgsm", "trades"):
            out = model(atk._model_input(Tensor(x)))
            adv_out = model(atk._model_input(x_adv))
            if self.method == "fgsm":
                loss = self.mix * cross_entropy(out, Tensor(y)) + (1 - self.mix) * cross_entropy(adv_out, Tensor(y))
            else:
                loss = cross_entropy(out, Tensor(y)) + self.beta * trades_kl(adv_out, out).mean()
            clean = out.data
        else:
            adv_out = model(atk._model_input(x_adv))
            loss = cross_entropy(adv_out, Tensor(y))
            with no_grad(), _attack_mode(model):
                clean = model(atk._model_input(Tensor(x))).data
        loss.backward()
        optimizer.step()
        # NOTE: 'output' and 'target' feed fit's metrics with the clean predictions
        return {"loss": float(loss.data), "accuracy": float((clean.argmax(axis=1) == y).mean()),
                "adv_accuracy": float((adv_out.data.argmax(axis=1) == y).mean()), "eps": eps,
                "output": Tensor(clean), "target": Tensor(y)}
