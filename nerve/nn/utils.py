"""Utilities on parameters, PyTorch's ``nn.utils``: gradient clipping in place (by the joint norm of all
gradients, or elementwise by value; ``nerve.optim`` re-exports it) and flattening parameters to one vector."""
from __future__ import annotations

import math
from typing import Iterable

from nerve import backend
from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.tensor import Tensor


def _grads(parameters: Tensor | Iterable[Tensor]) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad.data for p in parameters if p.grad is not None]


def _norm(a, norm_type: float):
    """The ``norm_type``-norm of an array's elements (as a 0-d array of its dtype)."""
    if norm_type == math.inf:
        return xp.abs(a).max() if a.size else xp.zeros((), a.dtype)
    if norm_type == 2.0:
        flat = a.ravel()
        return xp.sqrt(xp.dot(flat, flat))
    if norm_type == 1.0:
        return xp.abs(a).sum()
    if norm_type == 0.0:
        return xp.asarray(xp.count_nonzero(a), dtype=a.dtype)
    return (xp.abs(a) ** norm_type).sum() ** (1.0 / norm_type)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float | str = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so that their joint norm is at most ``max_norm``; return that norm.

    The norm is taken over all gradients as if concatenated (``norm_type`` may be ``inf``); when it
    exceeds ``max_norm`` every gradient is multiplied by ``max_norm / (norm + 1e-6)``, in place.
    """
    grads = _grads(parameters)
    norm_type = float(norm_type)
    if not norm_type >= 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be >= 0 or inf, got {norm_type}")
    if not grads:
        return Tensor(xp.zeros((), backend.get_default_dtype()))
    norms = xp.stack([_norm(g, norm_type) for g in grads])
    total = _norm(norms, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
                           f"{float(total)}, so they cannot be clipped; pass error_if_nonfinite=False to "
                           "scale them by it anyway")
    coef = float(max_norm) / (float(total) + 1e-6)
    # NOTE: `not coef >= 1` also scales by a NaN coefficient, as PyTorch does, so NaN stays visible.
    if not coef >= 1.0:
        for g in grads:
            g *= coef
    return Tensor(xp.asarray(total))


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``, in place."""
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        xp.clip(g, -clip_value, clip_value, out=g)



def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters' values concatenated into one 1-D tensor (a copy, outside the graph)."""
    return Tensor._make(xp.concatenate([p.data.reshape(-1) for p in parameters]), None)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of ``vec`` into the parameters, in place (inverse of parameters_to_vector)."""
    params = list(parameters)
    needed = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.shape[0] != needed:
        raise ValueError(f"vector_to_parameters: expected a 1-D vector of {needed} values, got shape "
                         f"{tuple(vec.shape)}")
    offset = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.copy_(vec.data[offset:offset + n].reshape(p.shape))
            offset += n


__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters"]
