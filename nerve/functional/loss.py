"""Losses (``F.mse_loss``, ``F.nll_loss``, ...): the fused primitives from ``nerve.ops`` (cross-entropy, the
binary cross-entropies) and the rest composed from ops, with PyTorch's names, reductions and checks."""
from __future__ import annotations

from nerve.backend import xp
from nerve.functional.distance import pairwise_distance
from nerve.ops import (  # noqa: F401  (re-exported: the fused losses)
    binary_cross_entropy, binary_cross_entropy_with_logits, check_classes, check_reduction, check_same_shape, clamp,
    cross_entropy, log, minimum, softplus, where,
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


# --- margin and embedding losses (PyTorch's formulas, composed from ops) -----------------------------------
def _hinge(x: Tensor) -> Tensor:
    return clamp(x, min=0.0)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target, margin: float = 0.0,
                        reduction: str = "mean") -> Tensor:
    """max(0, -target (input1 - input2) + margin), with target +1 (input1 should rank higher) or -1."""
    check_reduction("margin_ranking_loss", reduction)
    return _reduce(_hinge(-_as_target(target, input1) * (input1 - input2) + margin), reduction)


def hinge_embedding_loss(input: Tensor, target, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """input where target is 1, max(0, margin - input) where target is -1."""
    check_reduction("hinge_embedding_loss", reduction)
    y = _as_target(target, input).data
    return _reduce(where(y == 1, input, 0.0) + where(y == -1, _hinge(margin - input), 0.0), reduction)


def soft_margin_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """log(1 + exp(-target input)) for targets +-1 (a smooth hinge)."""
    check_reduction("soft_margin_loss", reduction)
    target = _as_target(target, input)
    check_same_shape("soft_margin_loss", input, target)
    return _reduce(softplus(-target * input), reduction)


def multilabel_soft_margin_loss(input: Tensor, target, weight=None, reduction: str = "mean") -> Tensor:
    """Per sample, the mean over the C classes of the binary cross-entropy of sigmoid(input) at 0/1 targets."""
    check_reduction("multilabel_soft_margin_loss", reduction)
    target = _as_target(target, input)
    check_same_shape("multilabel_soft_margin_loss", input, target)
    loss = target * softplus(-input) + (1.0 - target) * softplus(input)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss.mean(-1), reduction)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target, margin: float = 0.0,
                          reduction: str = "mean") -> Tensor:
    """1 - cos(input1, input2) where target is 1, max(0, cos - margin) where it is -1 (cos over the last dim)."""
    check_reduction("cosine_embedding_loss", reduction)
    eps = 1e-12  # PyTorch's: added to each squared norm
    norms = ((input1 * input1).sum(-1) + eps) * ((input2 * input2).sum(-1) + eps)
    cos = (input1 * input2).sum(-1) / norms.sqrt()
    y = _as_target(target, cos).data
    return _reduce(where(y == 1, 1.0 - cos, 0.0) + where(y == -1, _hinge(cos - margin), 0.0), reduction)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2.0,
                        eps: float = 1e-6, swap: bool = False, reduction: str = "mean") -> Tensor:
    """max(d(anchor, positive) - d(anchor, negative) + margin, 0) with the pairwise p-distance; ``swap`` uses
    the smaller of d(anchor, negative) and d(positive, negative)."""
    check_reduction("triplet_margin_loss", reduction)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce(_hinge(d_pos - d_neg + margin), reduction)


def multi_margin_loss(input: Tensor, target, p: int = 1, margin: float = 1.0, weight=None,
                      reduction: str = "mean") -> Tensor:
    """Per sample, sum over classes i != y of max(0, margin - x[y] + x[i])^p, divided by the number of classes."""
    check_reduction("multi_margin_loss", reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p}")
    x = input if input.ndim == 2 else input.reshape(1, -1)
    y = (target.data if isinstance(target, Tensor) else xp.asarray(target)).reshape(-1)
    check_classes("multi_margin_loss", y, x.shape[1], -100)
    x_y = x.gather(1, Tensor._make(y.reshape(-1, 1), None))
    other = (xp.arange(x.shape[1]) != y.reshape(-1, 1))
    terms = _hinge(x - x_y + margin) ** p
    if weight is not None:
        terms = terms * weight[Tensor._make(y, None)].reshape(-1, 1)
    loss = where(other, terms, 0.0).sum(1) / x.shape[1]
    return _reduce(loss if input.ndim == 2 else loss.reshape(()), reduction)


# --- likelihood losses ------------------------------------------------------------------------------------
def poisson_nll_loss(input: Tensor, target, log_input: bool = True, full: bool = False, eps: float = 1e-8,
                     reduction: str = "mean") -> Tensor:
    """Poisson negative log-likelihood: exp(input) - target input (log_input) or input - target log(input + eps);
    ``full`` adds Stirling's term target log target - target + log(2 pi target) / 2 where target > 1."""
    check_reduction("poisson_nll_loss", reduction)
    target = _as_target(target, input)
    loss = input.exp() - target * input if log_input else input - target * log(input + eps)
    if full:
        t = target.data
        safe = xp.where(t > 1, t, 1.0)
        stirling = xp.where(t > 1, safe * xp.log(safe) - safe + 0.5 * xp.log(2 * xp.pi * safe), 0.0)
        loss = loss + Tensor._make(stirling.astype(input.dtype), None)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input: Tensor, target, var, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """(log(var) + (input - target)^2 / var) / 2, var clamped to >= eps for the value (its gradient passes
    through unclamped, as PyTorch); ``full`` adds log(2 pi) / 2."""
    check_reduction("gaussian_nll_loss", reduction)
    target = _as_target(target, input)
    var = _as_target(var, input)
    if (var.data < 0).any():
        raise ValueError("gaussian_nll_loss: var has negative entries")
    var = var + Tensor._make(xp.maximum(var.data, eps) - var.data, None)  # clamp the value, not the gradient
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * float(xp.log(2 * xp.pi))
    return _reduce(loss, reduction)


__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cosine_embedding_loss", "cross_entropy",
           "gaussian_nll_loss", "hinge_embedding_loss", "huber_loss", "kl_div", "l1_loss", "margin_ranking_loss",
           "mse_loss", "multi_margin_loss", "multilabel_soft_margin_loss", "nll_loss", "poisson_nll_loss",
           "smooth_l1_loss", "soft_margin_loss", "triplet_margin_loss"]
