"""Losses (``F.mse_loss``, ``F.nll_loss``, ...): the fused primitives from ``nerve.ops`` (cross-entropy, the
binary cross-entropies) and the rest composed from ops, with PyTorch's names, reductions and checks."""
from __future__ import annotations

from nerve.backend import xp
from nerve.ops import (  # noqa: F401  (re-exported: the fused losses)
    binary_cross_entropy, binary_cross_entropy_with_logits, check_classes, check_reduction, check_same_shape,
    cross_entropy, log, where,
)
from nerve.tensor import Tensor


def _as_target(target, input: Tensor) -> Tensor:
    """Targets given as arrays or lists become tensors of the input's dtype."""
    return target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


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
    loss = rows[xp.arange(y.size), y_safe] * Tensor._make(-w_y, None)
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
        loss = Tensor._make(t_log_t, None) - input * target
    if reduction == "batchmean":
        return loss.sum() * (1.0 / input.shape[0] if input.ndim and input.shape[0] else float("nan"))
    return _reduce(loss, reduction)


__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "huber_loss", "kl_div",
           "l1_loss", "mse_loss", "nll_loss", "smooth_l1_loss"]
