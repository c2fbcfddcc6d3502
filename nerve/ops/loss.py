"""Fused losses: cross-entropy from logits, binary cross-entropy of probabilities and of logits, with the
reduction and the label and shape checks that every loss shares.

Each kernel keeps what its backward needs (the softmax, the coefficients of the targets) and has a fast
array rule; its ``reference`` is the same loss composed from primitives, which ``create_graph=True``
differentiates and which the tests hold the kernel to.
"""
from __future__ import annotations

from nerve import backend
from nerve.autograd.function import Function, ShapeError
from nerve.backend import xp
from nerve.ops.activation import softplus
from nerve.ops.elementwise import clamp, log, log1p, where
from nerve.ops.index import gather
from nerve.ops.reduce import log_softmax
from nerve.tensor import Tensor

_REDUCTIONS = ("none", "mean", "sum")


def check_reduction(op: str, reduction: str) -> None:
    """Raise a clear error for a reduction other than 'none', 'mean' or 'sum'."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def _reduce(loss, reduction: str, denom=None):
    """Reduce a raw per-element loss array; ``denom`` overrides the element count of 'mean'."""
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    denom = loss.size if denom is None else denom
    if not denom:
        return total * xp.nan
    # NOTE: no xp.asarray here: it would pull a CuPy result to the host (Function.apply makes scalars 0-d arrays)
    mean = total / denom
    return mean if mean.dtype == loss.dtype else mean.astype(loss.dtype)


def _reduce_tensor(loss: Tensor, reduction: str, denom) -> Tensor:
    """``_reduce`` from primitives, for the references (an empty mean gets the kernels' zero gradient)."""
    if reduction == "none":
        return loss
    total = loss.sum()
    return total if reduction == "sum" else total * (1.0 / denom if denom else 0.0)


def _scale(g, reduction: str, denom):
    """The output gradient as a per-element factor: itself, or divided by the count of a mean (0 for an
    empty mean, whose value is NaN)."""
    if reduction == "mean":
        return g * (1.0 / denom if denom else 0.0)
    return g


def _count(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _weight_on(weight, input: Tensor):
    """A class or element weight (Tensor, array or list) as an array of the input's dtype on its device."""
    w = weight.data if isinstance(weight, Tensor) else weight
    if not hasattr(w, "astype"):  # a list or a number
        w = xp.asarray(w)
    return backend.to_device(w, input.device).astype(input.dtype, copy=False)


# --- cross-entropy ------------------------------------------------------------------------------
class CrossEntropy(Function):
    """Cross-entropy of logits against class indices or probabilities, softmax taken over dim 1.

    Per position n the loss is -sum_c a[n, c] log p[n, c] with p = softmax(x) and a the weighted,
    smoothed, masked target; its gradient is (p sum_c a[n, c] - a[n, :]) times the reduction scale.
    """

    def forward(self, x, target, weight, ignore_index, smoothing, reduction):
        n_classes = x.shape[1]
        rows = xp.moveaxis(x, 1, -1).reshape(-1, n_classes) if x.ndim > 2 else x
        shifted = rows - rows.max(axis=1, keepdims=True)
        p = xp.exp(shifted)
        total = p.sum(axis=1, keepdims=True)
        logp = shifted
        logp -= xp.log(total)
        p /= total
        self.p, self.reduction, self.smoothing = p, reduction, smoothing
        self.weight, self.out_shape = weight, x.shape[:1] + x.shape[2:]
        if target.dtype.kind in "iu":
            loss, self.denom = self._index_loss(logp, target.reshape(-1), weight, ignore_index, smoothing)
        else:
            loss, self.denom = self._prob_loss(logp, target, weight, smoothing)
        return _reduce(loss.reshape(self.out_shape), reduction, self.denom)

    def _index_loss(self, logp, y, weight, ignore_index, smoothing):
        n_classes = logp.shape[1]
        valid = y != ignore_index
        y_safe = xp.where(valid, y, 0)
        picked = xp.take_along_axis(logp, y_safe[:, None], axis=1)[:, 0]
        w_y = valid.astype(logp.dtype) if weight is None else weight[y_safe] * valid
        # coefficient of the target class, and of every class through smoothing (eps / C w_c)
        self.y, self.valid, self.coef_y = y_safe, valid, w_y * (1.0 - smoothing)
        loss = -self.coef_y * picked
        self.coef_sum = self.coef_y.copy()
        if smoothing:
            w = 1.0 if weight is None else weight
            spread = (smoothing / n_classes) * valid
            loss -= spread * (logp * w).sum(axis=1)
            self.coef_sum += spread * (n_classes if weight is None else weight.sum())
        return loss, w_y.sum()

    def _prob_loss(self, logp, target, weight, smoothing):
        n_classes = logp.shape[1]
        t = xp.moveaxis(target, 1, -1).reshape(-1, n_classes) if target.ndim > 2 else target
        if smoothing:
            t = t * (1.0 - smoothing) + smoothing / n_classes
        a = t if weight is None else t * weight
        self.a, self.logp = a, logp
        self.coef_sum = a.sum(axis=1)
        return -(a * logp).sum(axis=1), logp.shape[0]

    def _to_input_layout(self, rows, ndim):
        """(M, C) rows back to the input's (N, C, d1, ...) layout."""
        if ndim <= 2:
            return rows
        return xp.moveaxis(rows.reshape(self.out_shape + rows.shape[1:]), -1, 1)

    def backward(self, g, m):  # dx = (p sum_c a - a) s; d target = -(1 - eps) w_c log p s (s: the scale)
        ndim = self.inputs[0].ndim
        nx, nt = self.needs_input_grad[:2]
        s = _scale(g, self.reduction, self.denom)
        if self.reduction == "none":
            s = s.reshape(-1, 1)
        gx = gt = None
        if nx:
            rows = self.p * (self.coef_sum[:, None] * s)
            if hasattr(self, "a"):
                rows -= self.a * s
            else:
                positions = xp.arange(rows.shape[0])
                if positions.__class__ is not rows.__class__:  # a CuPy batch takes its row indices on the device
                    positions = backend.to_device(positions, backend.device_of(rows))
                rows[positions, self.y] -= self.coef_y * (s[:, 0] if s.ndim else s)
                if self.smoothing:
                    w = 1.0 if self.weight is None else self.weight
                    rows -= ((self.smoothing / rows.shape[1]) * self.valid[:, None] * s) * w
            gx = self._to_input_layout(rows, ndim)
        if nt:
            gt = self._to_input_layout(self.logp * s, ndim) * self._class_column(self.smoothing - 1.0, ndim)
        return gx, gt, None, None, None, None

    def _class_column(self, scale: float, ndim: int):
        """``scale`` times the class weights (ones without weights), shaped to broadcast along dim 1."""
        w = 1.0 if self.weight is None else self.weight
        column = xp.full_like(self.p, scale, shape=(self.p.shape[1],)) * w
        return column.reshape((-1,) + (1,) * (ndim - 2))

    def reference(self, x, target, weight, ignore_index, smoothing, reduction):
        n_classes = x.shape[1]
        logp = log_softmax(x, 1)
        column = None if weight is None else weight.reshape((-1,) + (1,) * (x.ndim - 2))
        if isinstance(target, Tensor):  # probabilities: -sum_c w_c t_c log p_c, t smoothed towards 1 / C
            t = target * (1.0 - smoothing) + smoothing / n_classes
            loss = -(t * logp if column is None else t * column * logp).sum(1)
            return _reduce_tensor(loss, reduction, _count(loss.shape))
        valid = target != ignore_index
        y = xp.where(valid, target, 0)
        w_y = valid.astype(x.dtype) if weight is None else weight[y] * valid
        loss = gather(logp, 1, Tensor._make(y[:, None], None)).reshape(y.shape) * (w_y * (smoothing - 1.0))
        if smoothing:  # the uniform part: -eps / C sum_c w_c log p_c
            loss = loss - (logp if column is None else logp * column).sum(1) * ((smoothing / n_classes) * valid)
        return _reduce_tensor(loss, reduction, w_y.sum())


class TargetIndexError(IndexError, ValueError):
    """A class label outside [0, n_classes): PyTorch raises IndexError there, nerve raised ValueError before,
    so both ``except`` clauses catch it."""


def check_classes(op: str, y, n_classes: int, ignore_index: int) -> None:
    """Raise naming the first class label outside [0, n_classes) that is not ``ignore_index``."""
    if y.size == 0:
        return
    if y.min() >= 0 and y.max() < n_classes:
        return
    bad = (y != ignore_index) & ((y < 0) | (y >= n_classes))
    if bad.any():
        value = int(y[bad].reshape(-1)[0])
        raise TargetIndexError(f"{op}: target class {value} is out of range for {n_classes} classes "
                         f"(expected 0..{n_classes - 1}, or ignore_index={ignore_index})")


def cross_entropy(input: Tensor, target: Tensor, weight=None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits (N, C, d1, ...) and class indices (N, d1, ...) or probabilities.

    One fused primitive with a stable log-softmax inside; ``weight``, ``ignore_index`` (indices only),
    ``label_smoothing`` and the weighted mean follow PyTorch's definitions exactly.
    """
    check_reduction("cross_entropy", reduction)
    if not isinstance(target, Tensor):
        target = Tensor(target)
    if input.ndim == 0:
        raise ValueError("cross_entropy: input must have a class dimension, got a 0-d tensor")
    if input.ndim == 1:  # one unbatched sample
        out = cross_entropy(input.unsqueeze(0), target.unsqueeze(0), weight, ignore_index, reduction,
                            label_smoothing)
        return out.reshape(()) if reduction == "none" else out
    n_classes = input.shape[1]
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if n_classes == 0:
        raise ValueError(f"cross_entropy: input {tuple(input.shape)} has no classes in dim 1")
    w = None
    if weight is not None:
        w = _weight_on(weight, input)
        if w.shape != (n_classes,):
            raise ShapeError(f"cross_entropy: weight must have shape ({n_classes},), got {tuple(w.shape)}")
    batch_shape = input.shape[:1] + input.shape[2:]
    if target.dtype.kind in "iu":
        if target.shape != batch_shape:
            raise ShapeError(f"cross_entropy: class-index target of shape {tuple(target.shape)} does not "
                             f"match input {tuple(input.shape)}: expected {batch_shape}")
        check_classes("cross_entropy", target.data, n_classes, ignore_index)
        return CrossEntropy.apply(input, target.data, w, ignore_index, float(label_smoothing), reduction)
    if target.dtype.kind != "f":
        raise TypeError(f"cross_entropy: target must hold class indices (integers) or probabilities "
                        f"(floats), got dtype {target.dtype}")
    if target.shape != input.shape:
        hint = " (class indices must be an integer tensor)" if target.shape == batch_shape else ""
        raise ShapeError(f"cross_entropy: probability target of shape {tuple(target.shape)} does not match "
                         f"input {tuple(input.shape)}{hint}")
    return CrossEntropy.apply(input, target, w, ignore_index, float(label_smoothing), reduction)


# --- binary cross-entropy -------------------------------------------------------------------------
class BinaryCrossEntropy(Function):
    """Binary cross-entropy of probabilities, logs clamped at -100."""

    def forward(self, x, t, weight, reduction):
        self.weight, self.reduction = weight, reduction
        with xp.errstate(divide="ignore"):
            loss = -(t * xp.maximum(xp.log(x), -100.0) + (1.0 - t) * xp.maximum(xp.log1p(-x), -100.0))
        if weight is not None:
            loss = loss * weight
        self.shape = loss.shape
        return _reduce(loss, reduction)

    def backward(self, g, m):  # PyTorch's: dx = w (x - t) / max(x (1 - x), 1e-12); dt = w (log(1-x) - log x)
        x, t = m.inputs(self)[:2]
        nx, nt = self.needs_input_grad[:2]
        s = _scale(g, self.reduction, _count(self.shape))
        if self.weight is not None:
            s = s * self.weight
        gx = gt = None
        if nx:
            gx = m.sum_to(s * (x - t) / xp.maximum(x * (1.0 - x), 1e-12), x.shape)
        if nt:
            with xp.errstate(divide="ignore"):
                dt = xp.maximum(xp.log1p(-x), -100.0) - xp.maximum(xp.log(x), -100.0)
            gt = m.sum_to(s * dt, t.shape)
        return gx, gt, None, None

    def reference(self, x, t, weight, reduction):
        # NOTE: the logs are taken of 1 where they are clamped, so the clamped ends (x = 0 or 1) have a zero
        # derivative instead of 0 * inf; there the kernel's PyTorch formula is the one that counts.
        above_zero, below_one = x.data > 0, x.data < 1
        log_x = where(above_zero, clamp(log(where(above_zero, x, 1.0)), -100.0, None), -100.0)
        log_1mx = where(below_one, clamp(log1p(-where(below_one, x, 0.0)), -100.0, None), -100.0)
        loss = -(t * log_x + (1.0 - t) * log_1mx)
        if weight is not None:
            loss = loss * weight
        return _reduce_tensor(loss, reduction, _count(loss.shape))


def check_same_shape(op: str, input: Tensor, target: Tensor) -> None:
    """Raise unless input and target have the same shape (a silent broadcast would compute nonsense)."""
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"{op}: target shape {tuple(target.shape)} differs from input shape "
                         f"{tuple(input.shape)}; reshape one of them (broadcasting here is almost always "
                         "a bug)")


def _weight_array(op: str, weight, input: Tensor, name: str = "weight"):
    if weight is None:
        return None
    w = _weight_on(weight, input)
    try:
        xp.broadcast_shapes(w.shape, input.shape)
    except ValueError:
        raise ShapeError(f"{op}: {name} of shape {tuple(w.shape)} does not broadcast to input "
                         f"{tuple(input.shape)}") from None
    return w


def binary_cross_entropy(input: Tensor, target: Tensor, weight=None, reduction: str = "mean") -> Tensor:
    """-w (t log x + (1 - t) log(1 - x)) for probabilities x, logs clamped at -100 as in PyTorch."""
    check_reduction("binary_cross_entropy", reduction)
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)
    check_same_shape("binary_cross_entropy", input, target)
    if input.data.size and (input.data.min() < 0 or input.data.max() > 1):
        raise ValueError("binary_cross_entropy: input must hold probabilities in [0, 1] (got values in "
                         f"[{float(input.data.min()):g}, {float(input.data.max()):g}]); apply sigmoid "
                         "first or use binary_cross_entropy_with_logits")
    w = _weight_array("binary_cross_entropy", weight, input)
    return BinaryCrossEntropy.apply(input, target, w, reduction)


class BinaryCrossEntropyWithLogits(Function):
    """Binary cross-entropy of sigmoid(x), from the logits without overflow."""

    def forward(self, x, t, weight, pos_weight, reduction):
        self.weight, self.pos_weight, self.reduction = weight, pos_weight, reduction
        # -[pw t log s(x) + (1 - t) log(1 - s(x))] = (1 - t) x + (1 + (pw - 1) t) log(1 + e^-x)
        softplus_neg = xp.logaddexp(0.0, -x)
        if pos_weight is None:
            loss = (1.0 - t) * x + softplus_neg
        else:
            loss = (1.0 - t) * x + (1.0 + (pos_weight - 1.0) * t) * softplus_neg
        if weight is not None:
            loss = loss * weight
        self.shape = loss.shape
        return _reduce(loss, reduction)

    def backward(self, g, m):  # dx = w ((1 - t) - (1 + (pw - 1) t) s(-x)); dt = w (-x + (pw - 1) log(1 + e^-x))
        x, t = m.inputs(self)[:2]
        nx, nt = self.needs_input_grad[:2]
        s = _scale(g, self.reduction, _count(self.shape))
        if self.weight is not None:
            s = s * self.weight
        pw = self.pos_weight
        gx = gt = None
        if nx:
            lw = 1.0 if pw is None else (pw - 1.0) * t + 1.0
            gx = m.sum_to(s * ((1.0 - t) - lw * m.sigmoid(-x)), x.shape)
        if nt:
            dt = -x if pw is None else (pw - 1.0) * xp.logaddexp(0.0, -x) - x
            gt = m.sum_to(s * dt, t.shape)
        return gx, gt, None, None, None

    def reference(self, x, t, weight, pos_weight, reduction):
        softplus_neg = softplus(-x, 1.0, float("inf"))  # log(1 + e^-x), never switched to its linear tail
        if pos_weight is not None:
            softplus_neg = softplus_neg * (t * (pos_weight - 1.0) + 1.0)
        loss = (1.0 - t) * x + softplus_neg
        if weight is not None:
            loss = loss * weight
        return _reduce_tensor(loss, reduction, _count(loss.shape))


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """Binary cross-entropy of sigmoid(input), computed stably from the logits; ``pos_weight``
    (broadcast over the last dim) weighs the positive term."""
    op = "binary_cross_entropy_with_logits"
    check_reduction(op, reduction)
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype)
    check_same_shape(op, input, target)
    return BinaryCrossEntropyWithLogits.apply(input, target, _weight_array(op, weight, input),
                                              _weight_array(op, pos_weight, input, "pos_weight"), reduction)


__all__ = ["TargetIndexError", "binary_cross_entropy", "binary_cross_entropy_with_logits", "check_classes",
           "check_reduction", "check_same_shape", "cross_entropy"]
#: functions that are also Tensor methods (none: these take loss options)
METHODS: list = []
