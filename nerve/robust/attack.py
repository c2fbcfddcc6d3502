"""``Attack``: the base of every attack, with torchattacks' call convention (``x_adv = atk(images, labels)``).

It owns what all attacks share: checking the inputs (ε, bounds, labels), running the model in eval mode with
its parameters frozen (and putting modes and ``requires_grad`` back afterwards), the optional input
normalisation the model expects, the targeted modes, and the gradient of the attack objective with respect to
the input. Attacks work on raw arrays (``xp``) and return a new detached ``Tensor``; the caller's tensors and
the model's weights, modes, flags and ``.grad`` are as they were before the call.
"""
from __future__ import annotations

import contextlib
import copy
import warnings
from typing import Any, Callable

from nerve import backend
from nerve.autograd.engine import grad as autograd_grad
from nerve.autograd.grad_mode import enable_grad, no_grad
from nerve.backend import xp
from nerve.robust import losses
from nerve.tensor import Tensor

__all__ = ["Attack", "as_array", "batch_norms"]


def as_array(value: Any, dtype=None):
    """The raw array of a Tensor, array or list (no copy when it already is one)."""
    data = value.data if isinstance(value, Tensor) else xp.asarray(value)
    return data if dtype is None or data.dtype == dtype else data.astype(dtype)


def batch_norms(delta, norm: str):
    """Per-sample norms of a batch of perturbations: 'Linf', 'L2' (flattened over all but the first axis)."""
    flat = delta.reshape(len(delta), -1)
    if norm == "Linf":
        return xp.abs(flat).max(axis=1) if flat.shape[1] else xp.zeros(len(flat), flat.dtype)
    if norm == "L2":
        return xp.sqrt((flat.astype(xp.float64) ** 2).sum(axis=1)).astype(flat.dtype)
    raise ValueError(f"batch_norms: norm must be 'Linf' or 'L2', got {norm!r}")


@contextlib.contextmanager
def _attack_mode(model):
    """Eval mode and frozen parameters for the attack's duration; both put back as they were."""
    modules = list(model.modules()) if callable(getattr(model, "modules", None)) else []
    params = list(model.parameters()) if callable(getattr(model, "parameters", None)) else []
    modes = [(m, m.training) for m in modules]
    flags = [(p, p.requires_grad) for p in params]
    try:
        for m in modules:
            m.__dict__["training"] = False
        for p in params:
            p.requires_grad = False  # NOTE: no weight gradients are computed while attacking (as torch prunes)
        yield
    finally:
        for m, training in modes:
            m.__dict__["training"] = training
        for p, flag in flags:
            p.requires_grad = flag


class Attack:
    """Base of the attacks: ``atk(images, labels) -> adversarial images`` (a new Tensor).

    ``bounds``: the valid input range (None: unbounded); inputs outside it are an error. ``norm``: the
    threat model ('Linf' or 'L2') whose ball of radius ``eps`` the result stays in (None for minimum-norm
    attacks). ``set_normalization_used(mean, std)``: the model expects (x - mean) / std while ε is measured
    on x, as in torchattacks.
    """

    norm: str | None = "Linf"
    #: step-size attributes scaled with ε by ``at_eps`` (their ratio to ε is kept)
    step_attrs: tuple = ()

    def __init__(self, name: str, model: Callable, eps: float = 0.0, bounds: tuple | None = (0.0, 1.0),
                 seed: int | None = None) -> None:
        self.name = name
        self.model = model
        if not isinstance(eps, (int, float)) or eps != eps or eps < 0:
            raise ValueError(f"{name}: eps must be a number >= 0, got {eps!r}")
        self.eps = float(eps)
        if bounds is not None:
            if len(bounds) != 2 or not bounds[0] < bounds[1]:
                raise ValueError(f"{name}: bounds must be (low, high) with low < high, got {bounds!r}")
            bounds = (float(bounds[0]), float(bounds[1]))
        self.bounds = bounds
        self.rng = backend.generator(seed) if seed is not None else None
        self.targeted = False
        self._target_mode = "default"
        self._target_fn: Callable | None = None
        self._kth_min = 1
        self._normalization: tuple | None = None

    # --- options (torchattacks' names) -----------------------------------------------------------------
    def set_mode_default(self) -> "Attack":
        """Untargeted: push each input away from its label."""
        self.targeted, self._target_mode = False, "default"
        return self

    def set_mode_targeted_by_label(self) -> "Attack":
        """Targeted: the labels given to the call are the target classes."""
        self.targeted, self._target_mode = True, "targeted_by_label"
        return self

    def set_mode_targeted_random(self) -> "Attack":
        """Targeted: a random class other than the true label, drawn per sample."""
        self.targeted, self._target_mode = True, "targeted_random"
        return self

    def set_mode_targeted_least_likely(self, kth_min: int = 1) -> "Attack":
        """Targeted: the model's ``kth_min``-th least likely class on the clean input."""
        if kth_min < 1:
            raise ValueError(f"{self.name}: kth_min must be >= 1, got {kth_min}")
        self.targeted, self._target_mode, self._kth_min = True, "targeted_least_likely", kth_min
        return self

    def set_mode_targeted_by_function(self, target_map_function: Callable) -> "Attack":
        """Targeted: ``target_map_function(images, labels) -> target labels``."""
        self.targeted, self._target_mode, self._target_fn = True, "targeted_by_function", target_map_function
        return self

    def set_normalization_used(self, mean, std) -> "Attack":
        """The model is fed (x - mean) / std (per channel, axis 1); ε and bounds stay on x."""
        mean, std = xp.asarray(mean, dtype=xp.float64), xp.asarray(std, dtype=xp.float64)
        if mean.shape != std.shape or mean.ndim > 1 or bool((std <= 0).any()):
            raise ValueError(f"{self.name}: set_normalization_used needs mean and std of one shape (C,) with "
                             f"std > 0, got {mean.shape} and {std.shape}")
        self._normalization = (mean, std)
        return self

    def at_eps(self, eps: float) -> "Attack":
        """A copy of this attack at radius ``eps``, its step sizes scaled to keep their ratio to ε."""
        if not isinstance(eps, (int, float)) or eps != eps or eps < 0:
            raise ValueError(f"{self.name}: eps must be a number >= 0, got {eps!r}")
        other = copy.copy(self)
        other.eps = float(eps)
        for attr in self.step_attrs:
            if self.eps > 0:
                setattr(other, attr, getattr(self, attr) * eps / self.eps)
        return other

    def __repr__(self) -> str:
        keys = (["eps"] if self.norm is not None else []) + [*self.step_attrs, *getattr(self, "repr_attrs", ())]
        args = ", ".join(f"{k}={getattr(self, k):.4g}" if isinstance(getattr(self, k), float)
                         else f"{k}={getattr(self, k)}" for k in keys)
        return f"{self.name}({args}{', targeted' if self.targeted else ''})"

    # --- the call ------------------------------------------------------------------------------------
    def __call__(self, images, labels) -> Tensor:
        """Adversarial examples for ``images`` (N, ...) with ``labels`` (N,) (targets in by-label mode)."""
        x = as_array(images)
        if x.dtype.kind != "f":
            x = x.astype(backend.get_default_dtype())
        y = as_array(labels)
        self._check_inputs(x, y)
        with _attack_mode(self.model), enable_grad():
            logits = self.logits(x)
            self._check_logits(logits, y)
            target = self._targets(x, y, logits)
            x_adv = self.forward(x.copy(), target, logits)
        return Tensor(x_adv)

    def forward(self, x, y, logits):
        """The attack proper on arrays: ``x`` (a copy, free to change), labels or targets ``y``, clean logits."""
        raise NotImplementedError

    def _check_inputs(self, x, y) -> None:
        if x.ndim < 2 or len(x) == 0:
            raise ValueError(f"{self.name}: expected a batch of inputs (N, ...) with N >= 1, got {tuple(x.shape)}")
        if y.shape != (len(x),) or y.dtype.kind not in "iu":
            raise ValueError(f"{self.name}: expected integer labels of shape ({len(x)},), got {y.dtype} "
                             f"{tuple(y.shape)}")
        if not bool(xp.isfinite(x).all()):
            raise ValueError(f"{self.name}: the inputs hold NaN or infinite values")
        if self.bounds is not None:
            low, high = float(x.min()), float(x.max())
            if low < self.bounds[0] or high > self.bounds[1]:
                raise ValueError(f"{self.name}: inputs must lie in bounds [{self.bounds[0]:g}, {self.bounds[1]:g}], "
                                 f"got values in [{low:g}, {high:g}] (pass bounds=None for unbounded inputs, or "
                                 "set_normalization_used(mean, std) if the model normalises)")

    def _check_logits(self, logits, y) -> None:
        if logits.ndim != 2 or len(logits) != len(y):
            raise ValueError(f"{self.name}: the model must return logits (N, classes) for N = {len(y)} inputs, "
                             f"got {tuple(logits.shape)}")
        classes = logits.shape[1]
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= classes):
            raise ValueError(f"{self.name}: labels must be in [0, {classes}), got values in [{int(y.min())}, "
                             f"{int(y.max())}]")
        if classes > 1 and bool((logits >= 0).all()) and bool(xp.abs(logits.sum(axis=1) - 1).max() < 1e-4):
            warnings.warn(f"{self.name}: the model's outputs are non-negative and each row sums to 1, as "
                          "probabilities do; attacks expect logits (drop the final softmax)", stacklevel=3)

    def _targets(self, x, y, logits):
        mode = self._target_mode
        if mode in ("default", "targeted_by_label"):
            return y
        classes = logits.shape[1]
        if mode == "targeted_random":
            shift = self._integers(1, classes, len(y))
            return (y + shift) % classes
        if mode == "targeted_least_likely":
            if self._kth_min > classes:
                raise ValueError(f"{self.name}: kth_min={self._kth_min} exceeds the {classes} classes")
            return xp.argsort(logits, axis=1)[:, self._kth_min - 1].astype(y.dtype)
        target = as_array(self._target_fn(Tensor(x), Tensor(y)))
        if target.shape != y.shape:
            raise ValueError(f"{self.name}: target_map_function returned shape {tuple(target.shape)} for labels "
                             f"{tuple(y.shape)}")
        return target.astype(y.dtype)

    # --- helpers for the attacks -----------------------------------------------------------------------
    def _generator(self):
        return self.rng if self.rng is not None else backend.default_generator()

    def _uniform(self, low: float, high: float, shape, dtype):
        out = self._generator().uniform(low, high, size=shape).astype(dtype)
        return xp.asarray(out)

    def _normal(self, shape, dtype):
        return xp.asarray(self._generator().standard_normal(size=shape).astype(dtype))

    def _integers(self, low: int, high: int, size):
        return xp.asarray(self._generator().integers(low, high, size=size))

    def _clip(self, x):
        return x if self.bounds is None else xp.clip(x, self.bounds[0], self.bounds[1])

    def _model_input(self, x: Tensor) -> Tensor:
        if self._normalization is None:
            return x
        mean, std = self._normalization
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return (x - Tensor(mean.reshape(shape).astype(x.dtype))) / Tensor(std.reshape(shape).astype(x.dtype))

    def logits(self, x):
        """The model's logits (an array) for inputs ``x``, without a graph."""
        with no_grad():
            return self.model(self._model_input(Tensor(x))).data

    def input_grad(self, x, y, loss: str = "ce", kappa: float = 0.0) -> tuple:
        """(gradient of the objective to ascend with respect to ``x``, logits): per-sample, summed over the batch.

        Untargeted: the ``loss`` ('ce' or 'margin') of label ``y``; targeted: its negative for target ``y``.
        """
        xt = Tensor(x, requires_grad=True)
        out = self.model(self._model_input(xt))
        objective = losses.attack_loss(out, Tensor(y), loss, self.targeted, kappa).sum()
        (g,) = autograd_grad(objective, [xt])
        return g.data, out.data

    def success(self, logits, y):
        """Per sample: whether ``logits`` are fooled (misclassified, or the target class when targeted)."""
        pred = logits.argmax(axis=1)
        return pred == y if self.targeted else pred != y

    def _warn_step(self, alpha: float, what: str = "alpha") -> None:
        if alpha > self.eps > 0:
            warnings.warn(f"{self.name}: the step size {what}={alpha:g} is larger than eps={self.eps:g}: every "
                          "step leaves the ε-ball and is projected back", stacklevel=3)
