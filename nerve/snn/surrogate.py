"""Surrogate spike functions: the Heaviside step forward, a smooth stand-in's derivative backward.

snnTorch's names and arguments: ``atan(alpha=2.0)``, ``fast_sigmoid(slope=25)``, ``sigmoid(slope=25)``,
``straight_through_estimator()``, plus ``triangular(width=1.0)`` and ``custom(fn)`` (a user's smooth function,
differentiated by nerve's autograd). Each returns a callable ``spike_grad(u) -> spikes`` for a neuron's
``spike_grad=``; ``u`` is the membrane minus the threshold, spikes are ``1.0`` where ``u > 0``.
"""
from __future__ import annotations

import math
from typing import Callable

from nerve.autograd.engine import grad as _grad
from nerve.autograd.function import Function
from nerve.autograd.grad_mode import enable_grad
from nerve.backend import xp
from nerve.tensor import Tensor

__all__ = ["Surrogate", "atan", "fast_sigmoid", "sigmoid", "triangular", "straight_through_estimator",
           "straight_through", "custom", "heaviside"]


def _abs(u, m):
    return m.sign(u) * u


class _SpikeFn(Function):
    """Heaviside forward; the surrogate's derivative (written against the rule namespace) backward."""

    def forward(self, u, surrogate=None):
        self.surrogate = surrogate
        return (u > 0).astype(u.dtype)

    def backward(self, g, m):  # dS/du := surrogate'(u)
        (u,) = m.inputs(self)
        return (g * self.surrogate.rule(u, m),)


class Surrogate:
    """A spike function with a surrogate gradient: ``spk = surrogate(u)``; ``derivative(u)`` is its closed form."""

    def __init__(self, name: str, rule: Callable, **params: float) -> None:
        self.name, self.rule, self.params = name, rule, params

    def __call__(self, u: Tensor) -> Tensor:
        return _SpikeFn.apply(u, surrogate=self)

    def derivative(self, u):
        """The surrogate derivative dS/du at the values ``u`` (an array), as the backward pass uses it."""
        from nerve.autograd.rule_math import ARRAY
        return self.rule(xp.asarray(u), ARRAY)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({args})"


def _positive(who: str, **values: float) -> None:
    for key, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"surrogate.{who}: {key} must be a positive number, got {value!r}")


def atan(alpha: float = 2.0) -> Surrogate:
    """Arc-tangent: S ≈ arctan(π α u / 2) / π, dS/du = (α/2) / (1 + (π α u / 2)²) (snnTorch's default)."""
    _positive("atan", alpha=alpha)
    c = math.pi / 2 * alpha
    return Surrogate("atan", lambda u, m: (alpha / 2) / (1 + (c * u) * (c * u)), alpha=alpha)


def fast_sigmoid(slope: float = 25.0) -> Surrogate:
    """Fast sigmoid (SuperSpike): S ≈ u / (1 + k|u|), dS/du = 1 / (1 + k|u|)²."""
    _positive("fast_sigmoid", slope=slope)

    def rule(u, m):
        d = 1 / (slope * _abs(u, m) + 1)
        return d * d
    return Surrogate("fast_sigmoid", rule, slope=slope)


def sigmoid(slope: float = 25.0) -> Surrogate:
    """Logistic: S ≈ σ(k u), dS/du = k σ(k u)(1 − σ(k u)) (= k e^{−ku} / (1 + e^{−ku})²)."""
    _positive("sigmoid", slope=slope)

    def rule(u, m):
        s = m.sigmoid(u * slope)
        return s * (1 - s) * slope
    return Surrogate("sigmoid", rule, slope=slope)


def triangular(width: float = 1.0) -> Surrogate:
    """Triangle of unit area (Esser et al. 2016, Bellec et al. 2018): dS/du = max(0, 1 − |u|/w) / w.

    NOTE: snnTorch's ``triangular`` returns ±threshold (a sign flip, not a triangle); this is the published one.
    """
    _positive("triangular", width=width)

    def rule(u, m):
        inside = m.const((_abs(u.data if isinstance(u, Tensor) else u, m) < width).astype(u.dtype))
        return (1 - _abs(u, m) * (1 / width)) * inside * (1 / width)
    return Surrogate("triangular", rule, width=width)


def straight_through_estimator() -> Surrogate:
    """Straight-through estimator: dS/du = 1."""
    return Surrogate("straight_through_estimator", lambda u, m: m.const(xp.ones_like(
        u.data if isinstance(u, Tensor) else u)))


straight_through = straight_through_estimator


def heaviside() -> Surrogate:
    """No surrogate: the Heaviside step with a zero gradient (what ``surrogate_disable=True`` gives)."""
    return Surrogate("heaviside", lambda u, m: m.const(xp.zeros_like(u.data if isinstance(u, Tensor) else u)))


def custom(fn: Callable[[Tensor], Tensor], name: str | None = None) -> Surrogate:
    """A surrogate from a smooth function ``fn`` (nerve ops on a Tensor): dS/du = fn'(u), found by autograd.

    ``fn`` must be elementwise and differentiable (e.g. ``lambda u: nerve.ops.sigmoid(4 * u)``); it is checked
    on a probe, and a function that is not (a comparison, a NumPy call) raises a ``TypeError`` at once.
    """
    label = name or getattr(fn, "__name__", "custom")
    if not callable(fn):
        raise TypeError(f"surrogate.custom: fn must be callable, got {type(fn).__name__}")
    probe = Tensor._make(xp.linspace(-1.0, 1.0, 5), None).requires_grad_()
    with enable_grad():
        try:
            out = fn(probe)
        except Exception as exc:  # noqa: BLE001 - restated with the surrogate's name
            raise TypeError(f"surrogate.custom({label}): fn failed on a Tensor probe: {exc}") from exc
    if not isinstance(out, Tensor) or out.grad_fn is None:
        raise TypeError(f"surrogate.custom({label}): fn is not differentiable by nerve (its output on a Tensor that "
                        f"requires grad is a {type(out).__name__} without a graph); build it from nerve ops")
    if tuple(out.shape) != (5,):
        raise ValueError(f"surrogate.custom({label}): fn must be elementwise; it maps shape (5,) to "
                         f"{tuple(out.shape)}")

    def rule(u, m):
        if m.tensors:
            return _grad([fn(u)], [u], [Tensor._make(xp.ones_like(u.data), None)], create_graph=True)[0]
        with enable_grad():
            t = Tensor._make(u, None).requires_grad_()
            return _grad([fn(t)], [t], [Tensor._make(xp.ones_like(u), None)])[0].data
    return Surrogate(f"custom[{label}]", rule)
