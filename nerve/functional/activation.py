"""Activations (``F.relu``, ``F.mish``, ...): the primitives from ``nerve.ops`` and PyTorch's piecewise and smooth
ones composed from them (prelu, hardtanh, relu6, mish, hardswish, hardsigmoid, selu, celu, softsign, tanhshrink,
logsigmoid), so their second derivatives come for free.

``inplace=`` is accepted for PyTorch compatibility; nerve computes out of place.
"""
from __future__ import annotations

from nerve.ops import (  # noqa: F401  (re-exported: the primitive activations)
    elu, gelu, leaky_relu, log_softmax, relu, sigmoid, silu, softmax, softplus, tanh, where,
)
from nerve.tensor import Tensor

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else weight * x; ``weight`` has 1 element or one per channel (dim 1 of the input)."""
    n = weight.numel()
    if weight.ndim > 1:
        raise ValueError(f"prelu: weight must be 0-d or 1-d, got {tuple(weight.shape)}")
    if n != 1:
        if input.ndim < 2 or input.shape[1] != n:
            raise ValueError(f"prelu: weight has {n} elements, so input needs {n} channels on dim 1, got "
                             f"{tuple(input.shape)}")
        weight = weight.reshape((n,) + (1,) * (input.ndim - 2))
    else:
        weight = weight.reshape(())
    return where(input.data > 0, input, input * weight)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val]."""
    if max_val < min_val:
        raise ValueError(f"hardtanh: max_val ({max_val}) must not be below min_val ({min_val})")
    return input.clamp(min_val, max_val)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)."""
    return input.clamp(0.0, 6.0)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6: a piecewise-linear sigmoid (0 below -3, 1 above 3)."""
    return (input + 3.0).clamp(0.0, 6.0) * (1.0 / 6.0)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6 (MobileNetV3's cheap swish)."""
    return input * (input + 3.0).clamp(0.0, 6.0) * (1.0 / 6.0)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return input * tanh(softplus(input))


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants of Klambauer et al. (2017)."""
    return elu(input, _SELU_ALPHA) * _SELU_SCALE


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha (e^(x / alpha) - 1)), i.e. alpha * elu(x / alpha)."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0")
    return elu(input * (1.0 / alpha), 1.0) * alpha


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return input / (input.abs() + 1.0)


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x)."""
    return input - tanh(input)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|."""
    return -softplus(-input)


__all__ = [
    "celu", "elu", "gelu", "hardsigmoid", "hardswish", "hardtanh", "leaky_relu", "log_softmax", "logsigmoid",
    "mish", "prelu", "relu", "relu6", "selu", "sigmoid", "silu", "softmax", "softplus", "softsign", "tanh",
    "tanhshrink",
]
