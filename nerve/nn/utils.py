"""Utilities on parameters: gradient clipping (implemented in ``nerve.optim.clip``, re-exported here
as PyTorch's ``nn.utils`` names) and flattening parameters to one vector."""
from __future__ import annotations

from typing import Iterable

from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.tensor import Tensor

_FROM_OPTIM = ("clip_grad_norm_", "clip_grad_value_")


def __getattr__(name: str):
    # NOTE: imported lazily because nerve.optim sits below nerve.nn in the layer order.
    if name in _FROM_OPTIM:
        from nerve.optim import clip
        return getattr(clip, name)
    raise AttributeError(f"module 'nerve.nn.utils' has no attribute {name!r}")


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
