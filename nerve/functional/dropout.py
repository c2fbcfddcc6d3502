"""Dropout (``F.dropout``, ``F.dropout1d``, ``F.dropout2d``): the input times a scaled random mask while training,
the input itself otherwise. Masks come from an explicit generator or the seeded default one."""
from __future__ import annotations

from nerve import backend
from nerve.backend import xp
from nerve.tensor import Tensor

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


def _masked(input: Tensor, p: float, mask_shape: tuple, generator) -> Tensor:
    """input times a mask of ``mask_shape`` (broadcast over the rest) holding 0 with probability p, else 1/(1-p)."""
    if p == 1.0:
        return input * 0.0
    gen = generator if generator is not None else backend.default_generator()
    keep = gen.random(mask_shape, dtype=xp.float32) >= p
    mask = xp.multiply(keep, 1.0 / (1.0 - p), dtype=input.dtype)
    mask = mask.reshape(mask_shape + (1,) * (input.ndim - len(mask_shape)))
    if input.device != "cpu":
        mask = backend.to_device(mask, input.device)
    return input * Tensor._make(mask, None)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p); identity when not training.

    The mask comes from ``generator`` (a NumPy Generator), or the seeded default one.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    return _masked(input, p, tuple(input.shape), generator)


def _channel_dropout(op: str, n: int, input: Tensor, p: float, training: bool, generator) -> Tensor:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: p must be in [0, 1], got {p}")
    if input.ndim not in (n + 1, n + 2):
        raise ValueError(f"{op}: expected input (N, C, {_SPATIAL[n]}) or (C, {_SPATIAL[n]}), got "
                         f"{tuple(input.shape)}")
    if not training or p == 0.0:
        return input
    return _masked(input, p, tuple(input.shape[:input.ndim - n]), generator)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero whole channels of (N, C, L) with probability ``p`` (scaling the rest by 1 / (1 - p))."""
    return _channel_dropout("dropout1d", 1, input, p, training, generator)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero whole feature maps of (N, C, H, W) with probability ``p``: neighbouring pixels are correlated,
    so dropping single pixels regularises little."""
    return _channel_dropout("dropout2d", 2, input, p, training, generator)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero whole volumes of (N, C, D, H, W) with probability ``p`` (scaling the rest by 1 / (1 - p))."""
    return _channel_dropout("dropout3d", 3, input, p, training, generator)


_SELU_NEG = -1.7580993408473766  # -scale * alpha of SELU: where SELU saturates


def _alpha(op: str, input: Tensor, p: float, training: bool, generator, mask_shape: tuple) -> Tensor:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    gen = generator if generator is not None else backend.default_generator()
    keep = backend.to_device(gen.random(mask_shape) >= p, input.device)
    a = ((1 - p) * (1 + p * _SELU_NEG ** 2)) ** -0.5
    b = -a * _SELU_NEG * p
    kept = Tensor._make(xp.where(keep, a, 0.0).astype(input.dtype), None)
    shift = Tensor._make(xp.where(keep, b, a * _SELU_NEG + b).astype(input.dtype), None)
    return input * kept + shift


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, generator=None) -> Tensor:
    """Dropout for SELU networks: dropped units take SELU's saturation value, then an affine map restores the
    mean and variance (Klambauer et al., 2017); identity when not training."""
    return _alpha("alpha_dropout", input, p, training, generator, input.shape)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, generator=None) -> Tensor:
    """``alpha_dropout`` of whole channels of (N, C, *) (one draw per channel, as ``dropout2d`` is to dropout)."""
    if input.ndim < 2:
        raise ValueError(f"feature_alpha_dropout: expected (N, C, *), got {tuple(input.shape)}")
    return _alpha("feature_alpha_dropout", input, p, training, generator,
                  tuple(input.shape[:2]) + (1,) * (input.ndim - 2))


__all__ = ["alpha_dropout", "dropout", "dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout"]
