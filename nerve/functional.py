"""Stateless network functions (``import nerve.functional as F``): activations, dropout, linear,
normalisation, embedding and losses, with PyTorch's names and semantics.

The fused primitives (linear, cross-entropy, layer norm, binary cross-entropies, embedding) live in
``nerve.ops.nn_ops``; the rest is composed here from ops.
"""
from __future__ import annotations

from nerve import backend
from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.ops.attention import attention_weights, linear_gelu, scaled_dot_product_attention  # noqa: F401
from nerve.ops.conv import (  # noqa: F401
    adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d, adaptive_max_pool2d, avg_pool1d, avg_pool2d,
    conv1d, conv2d, conv_transpose1d, conv_transpose2d, dropout1d, dropout2d, interpolate, max_pool1d,
    max_pool2d, pad,
)
from nerve.ops import elu, gelu, leaky_relu, log, relu, sigmoid, silu, softplus, tanh, where
from nerve.ops.index import one_hot
from nerve.ops.nn_ops import (
    Normalize, binary_cross_entropy, binary_cross_entropy_with_logits, check_classes, check_reduction,
    check_same_shape, cross_entropy, embedding, layer_norm, linear,
)
from nerve.ops.recurrent import (  # noqa: F401
    gru_cell, lengths_to_mask, lstm_cell, recurrent_layer, rnn_relu_cell, rnn_tanh_cell,
)
from nerve.ops.reduce import log_softmax, softmax
from nerve.tensor import Tensor


def _const(array) -> Tensor:
    return Tensor._make(array, None)


def _as_target(target, input: Tensor) -> Tensor:
    """Targets given as arrays or lists become tensors of the input's dtype."""
    return target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


# --- dropout ------------------------------------------------------------------------------------
def dropout(input: Tensor, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p); identity when not training.

    The mask comes from ``generator`` (a NumPy Generator), or the seeded default one.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    gen = generator if generator is not None else backend.default_generator()
    keep = gen.random(input.shape, dtype=xp.float32) >= p
    mask = xp.multiply(keep, 1.0 / (1.0 - p), dtype=input.dtype)
    if input.device != "cpu":
        mask = backend.to_device(mask, input.device)
    return input * _const(mask)


# --- normalisation --------------------------------------------------------------------------------
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
        return Normalize.apply(input, weight, bias, dims, eps, (mean, var))
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are needed when training=False")
    rstd = _const((1.0 / xp.sqrt(running_var.data + eps)).reshape(shape).astype(input.dtype))
    scale = rstd if weight is None else weight * rstd
    shift = _const(-running_mean.data.reshape(shape).astype(input.dtype)) * scale
    if bias is not None:
        shift = shift + bias
    return input * scale + shift


# --- regression losses ------------------------------------------------------------------------------
def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error (input - target)^2; shapes must match."""
    check_reduction("mse_loss", reduction)
    target = _as_target(target, input)
    check_same_shape("mse_loss", input, target)
    return _reduce((input - target) ** 2, reduction)


def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean absolute error |input - target|; shapes must match."""
    check_reduction("l1_loss", reduction)
    target = _as_target(target, input)
    check_same_shape("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction)


def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta): quadratic near 0, linear for outliers."""
    check_reduction("huber_loss", reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    target = _as_target(target, input)
    check_same_shape("huber_loss", input, target)
    d = input - target
    a = d.abs()
    return _reduce(where(a.data < delta, d ** 2 * 0.5, (a - 0.5 * delta) * delta), reduction)


def smooth_l1_loss(input: Tensor, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (Huber divided by beta; L1 when beta = 0)."""
    check_reduction("smooth_l1_loss", reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    target = _as_target(target, input)
    check_same_shape("smooth_l1_loss", input, target)
    d = input - target
    a = d.abs()
    if beta == 0:
        return _reduce(a, reduction)
    return _reduce(where(a.data < beta, d ** 2 * (0.5 / beta), a - 0.5 * beta), reduction)


# --- classification losses ---------------------------------------------------------------------------
def nll_loss(input: Tensor, target, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities (N, C, d1, ...) at class indices (N, d1, ...).

    'mean' divides by the summed weights of the targets that are not ``ignore_index`` (PyTorch's rule).
    """
    check_reduction("nll_loss", reduction)
    y = target.data if isinstance(target, Tensor) else xp.asarray(target)
    if input.ndim == 0:
        raise ValueError("nll_loss: input must have a class dimension, got a 0-d tensor")
    if input.ndim == 1:  # one unbatched sample
        out = nll_loss(input.unsqueeze(0), y.reshape(1), weight, ignore_index, reduction)
        return out.reshape(()) if reduction == "none" else out
    if y.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold class indices (integers), got dtype {y.dtype}")
    n_classes = input.shape[1]
    batch_shape = input.shape[:1] + input.shape[2:]
    if y.shape != batch_shape:
        raise ValueError(f"nll_loss: target of shape {tuple(y.shape)} does not match input "
                         f"{tuple(input.shape)}: expected {batch_shape}")
    check_classes("nll_loss", y, n_classes, ignore_index)
    rows = input.moveaxis(1, -1).reshape(-1, n_classes) if input.ndim > 2 else input
    y = y.reshape(-1)
    valid = y != ignore_index
    y_safe = xp.where(valid, y, 0)
    if weight is None:
        w_y = valid.astype(input.dtype)
    else:
        w = (weight.data if isinstance(weight, Tensor) else xp.asarray(weight)).astype(input.dtype)
        if w.shape != (n_classes,):
            raise ValueError(f"nll_loss: weight must have shape ({n_classes},), got {tuple(w.shape)}")
        w_y = w[y_safe] * valid
    loss = rows[xp.arange(y.size), y_safe] * _const(-w_y)
    if reduction == "none":
        return loss.reshape(batch_shape)
    if reduction == "sum":
        return loss.sum()
    denom = float(w_y.sum())
    return loss.sum() * (1.0 / denom if denom else float("nan"))


def kl_div(input: Tensor, target, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL divergence, target (log target - input) summed, with ``input`` log-probabilities (PyTorch's order).

    ``reduction="batchmean"`` divides the sum by the batch size, the mathematically correct mean.
    """
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ValueError(f"kl_div: reduction must be 'none', 'mean', 'sum' or 'batchmean', got {reduction!r}")
    target = _as_target(target, input)
    check_same_shape("kl_div", input, target)
    if log_target:
        loss = target.exp() * (target - input)
    elif target.requires_grad:
        positive = target.data > 0
        loss = where(positive, target * log(where(positive, target, 1.0)), 0.0) - target * input
    else:
        t = target.data
        with xp.errstate(divide="ignore", invalid="ignore"):
            t_log_t = xp.where(t > 0, t * xp.log(xp.where(t > 0, t, 1)), 0).astype(input.dtype)
        loss = _const(t_log_t) - input * target
    if reduction == "batchmean":
        return loss.sum() * (1.0 / input.shape[0] if input.ndim and input.shape[0] else float("nan"))
    return _reduce(loss, reduction)


__all__ = [
    "batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "dropout",
    "elu", "embedding", "gelu", "huber_loss", "kl_div", "l1_loss", "layer_norm", "leaky_relu", "linear",
    "log_softmax", "mse_loss", "nll_loss", "one_hot", "relu", "sigmoid", "silu", "smooth_l1_loss",
    "softmax", "softplus", "tanh",
    # convolution and pooling
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d", "avg_pool1d",
    "avg_pool2d", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "dropout1d", "dropout2d",
    "interpolate", "max_pool1d", "max_pool2d", "pad",
    # recurrent cells and layers
    "gru_cell", "lengths_to_mask", "lstm_cell", "recurrent_layer", "rnn_relu_cell", "rnn_tanh_cell",
    # attention
    "attention_weights", "linear_gelu", "scaled_dot_product_attention",
]
# more activations, group/instance norm, normalize and cosine_similarity, in modules of their own
from nerve import functional_extra as _extra, functional_similarity as _similarity  # noqa: E402
from nerve.functional_extra import *  # noqa: E402,F401,F403
from nerve.functional_similarity import *  # noqa: E402,F401,F403

__all__ += _extra.__all__ + _similarity.__all__
