"""More of PyTorch's stateless functions, re-exported by ``nerve.functional``: the piecewise and smooth
activations (prelu, hardtanh, relu6, mish, hardswish, hardsigmoid, selu, celu, softsign, tanhshrink,
logsigmoid) and group/instance normalisation.

Each is composed from differentiable ops (clamp, where, softplus, elu, the fused normalisation), so second
derivatives come for free. ``inplace=`` is accepted for PyTorch compatibility; nerve computes out of place.
"""
from __future__ import annotations

from nerve.autograd.grad_mode import no_grad
from nerve.ops import elu, softplus, tanh, where
from nerve.ops.nn_ops import Normalize
from nerve.tensor import Tensor

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


# --- activations ------------------------------------------------------------------------------------
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


# --- normalisation -------------------------------------------------------------------------------------
def _check_affine(name: str, channels: int, weight: Tensor | None, bias: Tensor | None) -> None:
    for label, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (channels,):
            raise ValueError(f"{name}: {label} must have shape ({channels},), got {tuple(t.shape)}")


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise (N, C, *) inputs over each group of C / num_groups channels and the positions, per sample,
    then scale and shift per channel (one fused node over an (N, G, C/G, positions) view)."""
    if input.ndim < 2:
        raise ValueError(f"group_norm: expected input (N, C, *), got {tuple(input.shape)}")
    n, c = input.shape[:2]
    if num_groups <= 0 or c % num_groups:
        raise ValueError(f"group_norm: {c} channels of input {tuple(input.shape)} are not divisible into "
                         f"{num_groups} groups")
    _check_affine("group_norm", c, weight, bias)
    shape = (num_groups, c // num_groups, 1)
    weight = weight.reshape(shape) if weight is not None else None
    bias = bias.reshape(shape) if bias is not None else None
    grouped = input.reshape(n, num_groups, c // num_groups, -1)
    return Normalize.apply(grouped, weight, bias, (2, 3), eps).reshape(input.shape)


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel of each sample of (N, C, *) inputs over its positions, then scale and shift.

    With ``use_input_stats`` the running statistics (when given) move towards the batch average of the
    per-instance mean and unbiased variance, as in PyTorch; otherwise they normalise instead.
    """
    if input.ndim < 3:
        raise ValueError(f"instance_norm: expected input (N, C, *) with at least one spatial dim, got "
                         f"{tuple(input.shape)}")
    n, c = input.shape[:2]
    _check_affine("instance_norm", c, weight, bias)
    for label, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"instance_norm: {label} must have shape ({c},), got {tuple(t.shape)}")
    rows = input.reshape(n, c, -1)
    if not use_input_stats:
        from nerve.functional import batch_norm  # NOTE: deferred, nerve.functional re-exports this module
        return batch_norm(rows, running_mean, running_var, weight, bias, False, momentum, eps).reshape(input.shape)
    positions = rows.shape[2]
    if positions <= 1:
        raise ValueError(f"instance_norm: expected more than 1 value per channel, got input {tuple(input.shape)}")
    mean = rows.data.mean(axis=2, keepdims=True)
    var = rows.data.var(axis=2, keepdims=True)
    with no_grad():
        if running_mean is not None:
            running_mean.mul_(1.0 - momentum).add_(mean.mean(axis=(0, 2)) * momentum)
        if running_var is not None:
            unbiased = var.mean(axis=(0, 2)) * (positions / (positions - 1))
            running_var.mul_(1.0 - momentum).add_(unbiased * momentum)
    weight = weight.reshape(c, 1) if weight is not None else None
    bias = bias.reshape(c, 1) if bias is not None else None
    return Normalize.apply(rows, weight, bias, (2,), eps, (mean, var)).reshape(input.shape)


__all__ = [
    "celu", "group_norm", "hardsigmoid", "hardswish", "hardtanh", "instance_norm", "logsigmoid", "mish",
    "prelu", "relu6", "selu", "softsign", "tanhshrink",
]
