"""Activations (``F.relu``, ``F.mish``, ...): the primitives from ``nerve.ops`` and PyTorch's piecewise and smooth
ones composed from them (prelu, hardtanh, relu6, mish, hardswish, hardsigmoid, selu, celu, softsign, tanhshrink,
logsigmoid, softmin, glu, the shrinks, threshold, rrelu, gumbel_softmax), so their second derivatives come for free.

``inplace=`` is accepted for PyTorch compatibility; nerve computes out of place.
"""
from __future__ import annotations

from nerve import backend
from nerve.backend import xp
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


def softmin(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """softmax(-input) along ``dim``: weights that favour the smallest entries."""
    return softmax(-input, dim, dtype=dtype)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: the first half of ``dim`` times the sigmoid of the second half."""
    n = input.shape[dim]
    if n % 2:
        raise ValueError(f"glu: dim {dim} must have an even size, got {n} (input of shape {tuple(input.shape)})")
    a, b = input.split(n // 2, dim)
    return a * sigmoid(b)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    if lambd < 0:
        raise ValueError(f"softshrink: lambd must be non-negative, got {lambd}")
    x = input.data
    return where(x > lambd, input - lambd, where(x < -lambd, input + lambd, 0.0))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0."""
    return where((input.data > lambd) | (input.data < -lambd), input, 0.0)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else ``value``."""
    return where(input.data > threshold, input, value)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False, generator=None) -> Tensor:
    """Randomised leaky ReLU: negative inputs times a slope drawn from U(lower, upper) per element while
    training, times (lower + upper) / 2 otherwise."""
    if not 0 <= lower <= upper:
        raise ValueError(f"rrelu: expected 0 <= lower <= upper, got lower={lower}, upper={upper}")
    if not training:
        return leaky_relu(input, (lower + upper) / 2)
    gen = generator if generator is not None else backend.default_generator()
    slope = backend.to_device(gen.uniform(lower, upper, input.shape).astype(input.dtype), input.device)
    return where(input.data >= 0, input, input * Tensor._make(slope, None))


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, dim: int = -1, generator=None) -> Tensor:
    """softmax((logits + Gumbel noise) / tau) along ``dim``; with ``hard``, the one-hot argmax in the forward
    pass and the soft sample's gradient (the straight-through estimator)."""
    gen = generator if generator is not None else backend.default_generator()
    noise = -xp.log(gen.standard_exponential(logits.shape)).astype(logits.dtype)
    y = softmax((logits + Tensor._make(backend.to_device(noise, logits.device), None)) / tau, dim)
    if not hard:
        return y
    index = y.data.argmax(axis=dim)
    one_hot = (xp.arange(y.shape[dim]).reshape((-1,) + (1,) * (y.ndim - 1 - dim % y.ndim))
               == xp.expand_dims(index, dim)).astype(y.dtype)
    return y - y.detach() + Tensor._make(backend.to_device(one_hot, y.device), None)


__all__ = [
    "celu", "elu", "gelu", "glu", "gumbel_softmax", "hardshrink", "hardsigmoid", "hardswish", "hardtanh",
    "leaky_relu", "log_softmax", "logsigmoid", "mish", "prelu", "relu", "relu6", "rrelu", "selu", "sigmoid", "silu",
    "softmax", "softmin", "softplus", "softshrink", "softsign", "tanh", "tanhshrink", "threshold",
]
