"""Minimum-norm attacks (L2): CW (Carlini & Wagner 2017) and DeepFool (Moosavi-Dezfooli et al. 2016). They look for
the smallest perturbation that fools the model rather than the strongest one inside an ε-ball."""
from __future__ import annotations

from typing import Callable

from nerve.autograd.engine import grad as autograd_grad
from nerve.backend import xp
from nerve.ops import tanh
from nerve.robust.attack import Attack, batch_norms
from nerve.robust.losses import attack_loss
from nerve.tensor import Tensor

__all__ = ["CW", "DeepFool"]


class CW(Attack):
    """Carlini-Wagner L2: minimise ‖x' - x‖² + c·f(x') over w with x' = tanh-box(w) (always inside the bounds),
    f = the logit margin capped at -κ, by Adam (``lr``) for ``steps`` steps; keeps, per sample, the smallest
    successful x' seen (the input itself when none succeeds). torchattacks' defaults, no search over c."""

    norm = None
    measure = "L2"
    repr_attrs = ("c", "kappa", "steps", "lr")

    def __init__(self, model: Callable, c: float = 1.0, kappa: float = 0.0, steps: int = 50, lr: float = 0.01,
                 **kwargs) -> None:
        super().__init__("CW", model, 0.0, **kwargs)
        if c <= 0 or kappa < 0 or lr <= 0 or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"CW: needs c > 0, kappa >= 0, lr > 0 and an int steps >= 1, got c={c}, "
                             f"kappa={kappa}, lr={lr}, steps={steps!r}")
        self.c, self.kappa, self.steps, self.lr = float(c), float(kappa), steps, float(lr)

    def _to_box(self, w: Tensor) -> Tensor:
        if self.bounds is None:
            return w
        low, high = self.bounds
        return (tanh(w) + 1.0) * (0.5 * (high - low)) + low

    def _from_box(self, x):
        if self.bounds is None:
            return x.copy()
        low, high = self.bounds
        return xp.arctanh(xp.clip((x - low) / (high - low) * 2 - 1, -1, 1) * 0.999999).astype(x.dtype)

    def forward(self, x, y, logits):
        w = self._from_box(x)
        m, v = xp.zeros_like(w), xp.zeros_like(w)
        best, best_l2 = x.copy(), xp.full(len(x), xp.inf, dtype=xp.float64)
        shape = (-1,) + (1,) * (x.ndim - 1)
        xt, prev = Tensor(x), xp.inf
        for step in range(1, self.steps + 1):
            wt = Tensor(w, requires_grad=True)
            adv = self._to_box(wt)
            l2 = ((adv - xt) ** 2).reshape(len(x), -1).sum(dim=1)
            out = self.model(self._model_input(adv))
            # f = max(margin of the label, -kappa): attack_loss ascends min(-margin, kappa) = -f
            cost = l2.sum() - self.c * attack_loss(out, Tensor(y), "margin", self.targeted, self.kappa).sum()
            (g,) = autograd_grad(cost, [wt])
            better = self.success(out.data, y) & (l2.data < best_l2)
            best_l2 = xp.where(better, l2.data, best_l2)
            best = xp.where(better.reshape(shape), adv.data, best)
            # Adam as torch.optim.Adam (betas 0.9, 0.999; eps 1e-8)
            m = 0.9 * m + 0.1 * g.data
            v = 0.999 * v + 0.001 * g.data * g.data
            w = w - self.lr * (m / (1 - 0.9 ** step)) / (xp.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
            if step % max(self.steps // 10, 1) == 0:  # early abort when the cost stops falling
                total = float(cost.data)
                if total > prev:
                    break
                prev = total
        return best


class DeepFool(Attack):
    """DeepFool (L2): linearise the model around the current point and step to the nearest linearised class
    boundary, ``steps`` times at most or until the label changes; the total step is scaled by 1 + ``overshoot``.
    ``candidates`` limits the classes considered to the clean input's top ones (all by default)."""

    norm = None
    measure = "L2"
    repr_attrs = ("steps", "overshoot")

    def __init__(self, model: Callable, steps: int = 50, overshoot: float = 0.02, candidates: int | None = None,
                 **kwargs) -> None:
        super().__init__("DeepFool", model, 0.0, **kwargs)
        if not isinstance(steps, int) or steps < 1 or overshoot < 0 or (candidates is not None and candidates < 2):
            raise ValueError(f"DeepFool: needs an int steps >= 1, overshoot >= 0 and candidates >= 2 (or None), got "
                             f"steps={steps!r}, overshoot={overshoot}, candidates={candidates}")
        self.steps, self.overshoot, self.candidates = steps, float(overshoot), candidates

    def forward(self, x, y, logits):
        if self.targeted:
            raise ValueError("DeepFool: untargeted only (it steps to the nearest boundary); use set_mode_default()")
        n, k = logits.shape
        order = xp.argsort(-logits, axis=1)
        classes = order[:, :self.candidates] if self.candidates else order
        # the label first, then the other candidates
        others = xp.stack([row[row != label][:classes.shape[1] - 1] for row, label in zip(classes, y)])
        shape = (-1,) + (1,) * (x.ndim - 1)
        r_tot = xp.zeros_like(x)
        x_adv = x.copy()
        active = logits.argmax(axis=1) == y
        for _ in range(self.steps):
            idx = xp.nonzero(active)[0]
            if len(idx) == 0:
                break
            f, jac = self._jacobian(x_adv[idx], xp.concatenate([y[idx, None], others[idx]], axis=1))
            f_diff = f[:, 1:] - f[:, :1]                       # (a, c-1): other logit minus the label's
            w_diff = jac[:, 1:] - jac[:, :1]                   # (a, c-1, ...)
            w_norm = batch_norms(w_diff.reshape((-1,) + x.shape[1:]), "L2").reshape(f_diff.shape)
            dist = xp.abs(f_diff) / xp.maximum(w_norm, 1e-12)
            best = dist.argmin(axis=1)
            rows = xp.arange(len(idx))
            w_best = w_diff[rows, best]
            step = (dist[rows, best] + 1e-4) / xp.maximum(w_norm[rows, best], 1e-12)
            r_tot[idx] = r_tot[idx] + step.reshape(shape).astype(x.dtype) * w_best
            x_adv[idx] = self._clip(x[idx] + (1 + self.overshoot) * r_tot[idx])
            active[idx] = self.logits(x_adv[idx]).argmax(axis=1) == y[idx]
        return x_adv

    def _jacobian(self, x, classes):
        """Logits at ``classes`` (a, c) and their gradients with respect to x (a, c, ...)."""
        xt = Tensor(x, requires_grad=True)
        out = self.model(self._model_input(xt))
        picked = xp.take_along_axis(out.data, classes, axis=1)
        grads = []
        for j in range(classes.shape[1]):
            seed = (xp.arange(out.shape[1]).reshape(1, -1) == classes[:, j:j + 1]).astype(out.dtype)
            (g,) = autograd_grad(out, [xt], grad_outputs=Tensor(seed), retain_graph=j + 1 < classes.shape[1])
            grads.append(g.data)
        return picked, xp.stack(grads, axis=1)
