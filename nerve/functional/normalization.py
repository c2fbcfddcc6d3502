"""Normalisation (``F.batch_norm``, ``F.group_norm``, ``F.instance_norm``, ``F.layer_norm``): each is the one fused
normalising node of ``nerve.ops`` (``standardize``) over different dims, plus the running statistics."""
from __future__ import annotations

from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.ops import layer_norm, rsqrt, standardize  # noqa: F401  (layer_norm re-exported)
from nerve.tensor import Tensor


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise (N, C) or (N, C, L) per channel C, then scale and shift.

    Training uses the batch's statistics and updates the running ones in place (running_var with the
    unbiased variance, as PyTorch does); otherwise the running statistics normalise.
    """
    if input.ndim not in (2, 3):
        raise ValueError(f"batch_norm: expected input (N, C) or (N, C, L), got {tuple(input.shape)}")
    channels = input.shape[1]
    dims = (0,) if input.ndim == 2 else (0, 2)
    shape = (channels,) if input.ndim == 2 else (channels, 1)
    if input.ndim == 3:
        weight = weight.reshape(shape) if weight is not None else None
        bias = bias.reshape(shape) if bias is not None else None
    if training:
        n = input.shape[0] * (input.shape[2] if input.ndim == 3 else 1)
        if n <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input "
                             f"{tuple(input.shape)}")
        mean = input.data.mean(axis=dims, keepdims=True)
        var = input.data.var(axis=dims, keepdims=True)
        with no_grad():
            if running_mean is not None:
                running_mean.mul_(1.0 - momentum).add_(mean.reshape(-1) * momentum)
            if running_var is not None:
                running_var.mul_(1.0 - momentum).add_(var.reshape(-1) * (momentum * n / (n - 1)))
        return standardize(input, weight, bias, dims, eps, (mean, var))
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are needed when training=False")
    rstd = Tensor._make((1.0 / xp.sqrt(running_var.data + eps)).reshape(shape).astype(input.dtype), None)
    scale = rstd if weight is None else weight * rstd
    shift = Tensor._make(-running_mean.data.reshape(shape).astype(input.dtype), None) * scale
    if bias is not None:
        shift = shift + bias
    return input * scale + shift


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
    return standardize(grouped, weight, bias, (2, 3), eps).reshape(input.shape)


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
    return standardize(rows, weight, bias, (2,), eps, (mean, var)).reshape(input.shape)


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, eps: float | None = None) -> Tensor:
    """input / sqrt(mean(input^2) + eps) over the trailing ``normalized_shape`` dims, times ``weight``
    (eps defaults to the dtype's machine epsilon, as PyTorch)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ValueError(f"rms_norm: expected input (..., {', '.join(map(str, shape))}), got {tuple(input.shape)}")
    eps = float(xp.finfo(input.dtype).eps) if eps is None else eps
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    out = input * rsqrt((input * input).mean(dims, keepdim=True) + eps)
    return out if weight is None else out * weight


__all__ = ["batch_norm", "group_norm", "instance_norm", "layer_norm", "rms_norm"]
