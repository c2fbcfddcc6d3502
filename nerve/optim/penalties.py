"""L1 and L2 penalties on parameters, differentiable, to add to a loss."""
from __future__ import annotations

from typing import Iterable

from nerve import ops
from nerve.tensor import Tensor


def _params(parameters: Tensor | Iterable[Tensor], weight: float, op: str) -> list:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    if not params:
        raise ValueError(f"{op}: got no parameters (an exhausted generator such as a second "
                         "model.parameters() pass?)")
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: parameter {i} is a {type(p).__name__}, expected a Tensor")
    if not weight >= 0:
        raise ValueError(f"{op}: weight must be >= 0, got {weight!r}")
    return params


def l1_penalty(parameters: Tensor | Iterable[Tensor], weight: float = 1.0) -> Tensor:
    """``weight * sum(|p|)`` over all elements of all parameters: L1 regularisation, which favours zeros."""
    total = None
    for p in _params(parameters, weight, "l1_penalty"):
        term = ops.sum(ops.abs(p))
        total = term if total is None else total + term
    return total * weight


def l2_penalty(parameters: Tensor | Iterable[Tensor], weight: float = 1.0) -> Tensor:
    """``weight * sum(p ** 2)`` over all parameters (Keras' convention): L2 regularisation.

    Its gradient is ``2 * weight * p``, so SGD's ``weight_decay=wd`` equals ``weight = wd / 2``.
    """
    total = None
    for p in _params(parameters, weight, "l2_penalty"):
        term = ops.sum(p * p)
        total = term if total is None else total + term
    return total * weight
