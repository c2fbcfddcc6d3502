"""``F.ctc_loss``: PyTorch's connectionist temporal classification loss over the ``nerve.ops`` primitive
(forward-backward in log space)."""
from __future__ import annotations

from nerve.autograd import ShapeError
from nerve.backend import xp
from nerve.ops import check_reduction, ctc_nll
from nerve.tensor import Tensor

__all__ = ["ctc_loss"]


def _ints(value, name: str) -> object:
    array = xp.asarray(value.data if isinstance(value, Tensor) else value)
    if array.dtype.kind not in "iu":
        raise TypeError(f"ctc_loss: {name} must hold integers, got dtype {array.dtype}")
    return array.astype(xp.int64)


def ctc_loss(log_probs: Tensor, targets, input_lengths, target_lengths, blank: int = 0, reduction: str = "mean",
             zero_infinity: bool = False) -> Tensor:
    """CTC loss of ``log_probs`` (T, N, C) (log-softmax outputs; or unbatched (T, C)) against ``targets``, either
    padded (N, S) or concatenated (sum(target_lengths),). 'mean' divides each loss by its target length, then
    averages over the batch; ``zero_infinity`` zeroes infinite losses (impossible alignments) and their gradients.
    """
    check_reduction("ctc_loss", reduction)
    unbatched = log_probs.ndim == 2
    if unbatched:
        log_probs = log_probs.unsqueeze(1)
    if log_probs.ndim != 3:
        raise ShapeError(f"ctc_loss: expected log_probs of shape (T, N, C) or (T, C), got {tuple(log_probs.shape)}")
    t_max, n, classes = log_probs.shape
    if not 0 <= blank < classes:
        raise ValueError(f"ctc_loss: blank must be in [0, {classes}) for {classes} classes, got {blank}")
    inputs = _ints(input_lengths, "input_lengths").reshape(-1)
    lengths = _ints(target_lengths, "target_lengths").reshape(-1)
    labels = _ints(targets, "targets")
    if unbatched and labels.ndim == 1:
        labels = labels[None]
    if inputs.shape != (n,) or lengths.shape != (n,):
        raise ShapeError(f"ctc_loss: expected {n} input_lengths and target_lengths (one per sample), got "
                         f"{inputs.shape[0]} and {lengths.shape[0]}")
    if inputs.size and (inputs.min() < 1 or inputs.max() > t_max):
        raise ValueError(f"ctc_loss: input_lengths must be in [1, {t_max}] (T of log_probs), got {inputs.tolist()}")
    if lengths.size and lengths.min() < 0:
        raise ValueError(f"ctc_loss: target_lengths must be >= 0, got {lengths.tolist()}")
    s_max = int(lengths.max()) if lengths.size else 0
    padded = xp.full((n, s_max), blank, dtype=xp.int64)
    if labels.ndim == 1:  # concatenated targets
        if labels.shape[0] != int(lengths.sum()):
            raise ShapeError(f"ctc_loss: concatenated targets hold {labels.shape[0]} labels but target_lengths sum "
                             f"to {int(lengths.sum())}")
        offsets = xp.concatenate([xp.zeros(1, dtype=xp.int64), xp.cumsum(lengths)])
        for i in range(n):
            padded[i, :lengths[i]] = labels[offsets[i]:offsets[i + 1]]
    elif labels.ndim == 2 and labels.shape[0] == n and labels.shape[1] >= s_max:
        for i in range(n):
            padded[i, :lengths[i]] = labels[i, :lengths[i]]
    else:
        raise ShapeError(f"ctc_loss: expected targets of shape (N, S) with S >= max(target_lengths) = {s_max}, or "
                         f"1-d concatenated; got {tuple(labels.shape)} for N = {n}")
    if padded.size and (padded.min() < 0 or padded.max() >= classes):
        raise IndexError(f"ctc_loss: target labels must be in [0, {classes}), got {padded.min()}..{padded.max()}")
    used = xp.arange(s_max)[None, :] < lengths[:, None]
    if bool((padded[used] == blank).any()):
        raise ValueError(f"ctc_loss: a target holds the blank label {blank}; targets must not contain blank")
    ext = xp.full((n, 2 * s_max + 1), blank, dtype=xp.int64)
    ext[:, 1::2] = padded
    loss = ctc_nll(log_probs, ext, inputs, lengths, int(blank), bool(zero_infinity))
    if reduction == "none":
        return loss[0] if unbatched else loss
    if reduction == "sum":
        return loss.sum()
    return (loss / Tensor(xp.maximum(lengths, 1).astype(loss.dtype))).mean()
