"""Fused network primitives: linear, cross-entropy from logits, normalisation, binary cross-entropies,
embedding.

Each replaces what would be several graph nodes with one, where NumPy rewards it. Each has two
backward paths: ``vjp`` on raw arrays, reusing what forward saved (softmax, the normalised input), for
ordinary first-order backward; and ``backward`` in Tensor ops, recomputing those from the inputs, so
that ``create_graph=True`` differentiates again.
"""
from __future__ import annotations

from nerve import backend
from nerve.autograd.function import Function
from nerve.backend import xp
from nerve.ops.activation import softplus
from nerve.ops.elementwise import clamp, log, log1p, sigmoid
from nerve.ops.index import IndexBackward, index_backward_array
from nerve.ops.reduce import log_softmax, softmax, sum_to
from nerve.tensor import Tensor

_REDUCTIONS = ("none", "mean", "sum")


def _const(array) -> Tensor:
    """A Tensor that carries no gradient."""
    return Tensor._make(array, None)


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
        return xp.asarray(total)
    denom = loss.size if denom is None else denom
    return xp.asarray(total / denom if denom else xp.nan, dtype=loss.dtype)


def _scale(g, reduction: str, denom):
    """The output gradient (Tensor or array) as a per-element factor: itself, or divided by the count
    of a mean (0 for an empty mean, whose value is NaN)."""
    if reduction == "mean":
        return g * (1.0 / denom if denom else 0.0)
    return g


def _as_data(t):
    return t.data if isinstance(t, Tensor) else t


# --- linear -----------------------------------------------------------------------------------
class Linear(Function):
    """x W^T + b in one node (PyTorch's addmm layout: W is (out_features, in_features))."""

    def forward(self, x, weight, bias):
        # NOTE: (..., in) is multiplied as one (rows, in) GEMM: NumPy runs a 3-D @ 2-D product as one
        # small GEMM per leading index, 2-4x slower.
        out = xp.matmul(x.reshape(-1, x.shape[-1]), weight.T).reshape(x.shape[:-1] + (weight.shape[0],))
        if bias is not None:
            out += bias
        return out

    def vjp(self, g):  # y = x W^T + b: dx = g W, dW = g^T x, db = sum of g over the batch
        x, w, _ = self.inputs
        nx, nw, nb = self.needs_input_grad
        w = w.data
        g2 = g.reshape(-1, w.shape[0])
        return ((g2 @ w).reshape(x.shape) if nx else None,
                g2.T @ _as_data(x).reshape(-1, w.shape[1]) if nw else None,
                g2.sum(0) if nb else None)

    def backward(self, g):
        x, w, b = self.inputs
        nx, nw, nb = self.needs_input_grad
        g2 = g.reshape(-1, w.shape[0])
        gx = g @ w if nx else None
        gw = g2.mT @ x.reshape(-1, w.shape[1]) if nw else None
        gb = g2.sum(0) if nb else None
        return gx, gw, gb


def check_linear_args(op: str, input: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    """Raise a clear error when input (..., in), weight (out, in) and bias (out,) do not fit together."""
    if weight.ndim != 2 or input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"{op}: input {tuple(input.shape)} does not match weight {tuple(weight.shape)}: "
                         f"expected input (..., {weight.shape[-1]})")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"{op}: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` as one graph node (weight has shape (out_features, in_features))."""
    check_linear_args("linear", input, weight, bias)
    return Linear.apply(input, weight, bias)


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

    def _dense_coef(self):
        """The coefficients a[n, c] of class-index targets as a dense (M, C) array."""
        a = xp.zeros_like(self.p)
        if self.smoothing:
            w = 1.0 if self.weight is None else self.weight
            a += (self.smoothing / a.shape[1]) * self.valid[:, None] * w
        a[xp.arange(a.shape[0]), self.y] += self.coef_y
        return a

    def backward(self, g):  # softmax rebuilt from x with Tensor ops, so this differentiates again
        x, target = self.inputs[0], self.inputs[1]
        nx, nt = self.needs_input_grad[:2]
        s = _scale(g, self.reduction, self.denom)
        if self.reduction == "none":
            s = s.unsqueeze(1)
        gx = gt = None
        if nx:
            if hasattr(self, "a"):  # the coefficients depend on the target: keep them in the graph
                coef = (target * (1.0 - self.smoothing) + self.smoothing / x.shape[1]) * _const(
                    self._class_column(1.0, x.ndim))
                total = coef.sum(1, keepdim=True)
            else:
                coef = _const(self._to_input_layout(self._dense_coef(), x.ndim))
                total = _const(self._to_input_layout(self.coef_sum[:, None], x.ndim))
            gx = (softmax(x, 1) * total - coef) * s
        if nt:  # d loss / d target = -(1 - eps) w_c log p
            gt = log_softmax(x, 1) * _const(self._class_column(self.smoothing - 1.0, x.ndim)) * s
        return gx, gt, None, None, None, None

    def vjp(self, g):
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
                rows[xp.arange(rows.shape[0]), self.y] -= self.coef_y * (s[:, 0] if s.ndim else s)
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
        column = scale * xp.ones(self.p.shape[1], dtype=self.p.dtype) * w
        return column.reshape((-1,) + (1,) * (ndim - 2))


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
        w = _as_data(weight).astype(input.dtype, copy=False)
        if w.shape != (n_classes,):
            raise ValueError(f"cross_entropy: weight must have shape ({n_classes},), got {tuple(w.shape)}")
    batch_shape = input.shape[:1] + input.shape[2:]
    if target.dtype.kind in "iu":
        if target.shape != batch_shape:
            raise ValueError(f"cross_entropy: class-index target of shape {tuple(target.shape)} does not "
                             f"match input {tuple(input.shape)}: expected {batch_shape}")
        check_classes("cross_entropy", target.data, n_classes, ignore_index)
        return CrossEntropy.apply(input, target.data, w, ignore_index, float(label_smoothing), reduction)
    if target.dtype.kind != "f":
        raise TypeError(f"cross_entropy: target must hold class indices (integers) or probabilities "
                        f"(floats), got dtype {target.dtype}")
    if target.shape != input.shape:
        hint = " (class indices must be an integer tensor)" if target.shape == batch_shape else ""
        raise ValueError(f"cross_entropy: probability target of shape {tuple(target.shape)} does not match "
                         f"input {tuple(input.shape)}{hint}")
    return CrossEntropy.apply(input, target, w, ignore_index, float(label_smoothing), reduction)


def check_classes(op: str, y, n_classes: int, ignore_index: int) -> None:
    """Raise naming the first class label outside [0, n_classes) that is not ``ignore_index``."""
    if y.size == 0:
        return
    if y.min() >= 0 and y.max() < n_classes:
        return
    bad = (y != ignore_index) & ((y < 0) | (y >= n_classes))
    if bad.any():
        value = int(y[bad].reshape(-1)[0])
        raise ValueError(f"{op}: target class {value} is out of range for {n_classes} classes "
                         f"(expected 0..{n_classes - 1}, or ignore_index={ignore_index})")


# --- normalisation ------------------------------------------------------------------------------
def _mean(a, dims: tuple):
    """``a.mean(axis=dims, keepdims=True)``; over the last axis alone as a matrix-vector product.

    NOTE: NumPy's reduction along a short last axis (layer norm's features) is several times slower than
    multiplying the (rows, n) matrix by a vector of 1/n.
    """
    n = a.shape[-1] if a.ndim else 1
    if dims != (a.ndim - 1,) or n == 0 or a.dtype.kind != "f":
        return a.mean(axis=dims, keepdims=True)
    return (a.reshape(-1, n) @ xp.full(n, 1.0 / n, dtype=a.dtype)).reshape(a.shape[:-1] + (1,))


class Normalize(Function):
    """(x - mean) / sqrt(var + eps) over ``dims``, then times weight plus bias (both broadcast to x).

    ``stats`` passes a precomputed (mean, biased var) pair (batch norm already computed them for its
    running averages); they must be the moments of x over ``dims``.
    """

    def forward(self, x, weight, bias, dims, eps, stats=None):
        self.dims, self.eps = dims, eps
        if stats is None:
            centred = x - _mean(x, dims)
            var = _mean(centred * centred, dims)
        else:
            centred = x - stats[0]
            var = stats[1]
        rstd = 1.0 / xp.sqrt(var + eps)
        xhat = centred
        xhat *= rstd
        self.xhat, self.rstd = xhat, rstd
        if weight is None:
            return xhat + bias if bias is not None else xhat.copy()
        out = xhat * weight
        if bias is not None:
            out += bias
        return out

    def vjp(self, g):  # dx = rstd (h - mean(h) - xhat mean(h xhat)), h = g w; dw = sum g xhat
        w, b = self.inputs[1:3]
        nx, nw, nb = self.needs_input_grad[:3]
        dims, xhat = self.dims, self.xhat
        gx = gw = gb = None
        if nx:
            h = g * w.data if w is not None else g
            gx = h - _mean(h, dims) - xhat * _mean(h * xhat, dims)
            gx *= self.rstd
        if nw:
            gw = _sum_to_array(g * xhat, w.shape)
        if nb:
            gb = _sum_to_array(g, b.shape)
        return (gx, gw, gb) + (None,) * (len(self.inputs) - 3)

    def backward(self, g):  # xhat and rstd rebuilt from x with Tensor ops, so this differentiates again
        x, w, b = self.inputs[:3]
        nx, nw, nb = self.needs_input_grad[:3]
        dims = self.dims
        centred = x - x.mean(dims, keepdim=True)
        rstd = ((centred * centred).mean(dims, keepdim=True) + self.eps).rsqrt()
        xhat = centred * rstd
        gx = gw = gb = None
        if nx:
            h = g * w if w is not None else g
            gx = (h - h.mean(dims, keepdim=True) - xhat * (h * xhat).mean(dims, keepdim=True)) * rstd
        if nw:
            gw = sum_to(g * xhat, w.shape)
        if nb:
            gb = sum_to(g, b.shape)
        return (gx, gw, gb) + (None,) * (len(self.inputs) - 3)


def _sum_to_array(a, shape: tuple):
    """``sum_to`` on a raw array: sum the broadcast dimensions of ``a`` away to get ``shape``."""
    if a.shape == shape:
        return a
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and a.shape[i + lead] != 1)
    return a.sum(axis=axes).reshape(shape)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dims, then scale and shift (one graph node)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != shape or input.ndim < k:
        raise ValueError(f"layer_norm: expected input (..., {', '.join(map(str, shape))}), "
                         f"got {tuple(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"layer_norm: {name} must have shape {shape}, got {tuple(t.shape)}")
    return Normalize.apply(input, weight, bias, tuple(range(input.ndim - k, input.ndim)), eps)


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

    def vjp(self, g):  # PyTorch's: dx = w (x - t) / max(x (1 - x), 1e-12); dt = w (log(1-x) - log x)
        x, t = self.inputs[0].data, self.inputs[1].data
        nx, nt = self.needs_input_grad[:2]
        s = _scale(g, self.reduction, _count(self.shape))
        if self.weight is not None:
            s = s * self.weight
        gx = gt = None
        if nx:
            gx = _sum_to_array(s * (x - t) / xp.maximum(x * (1.0 - x), 1e-12), x.shape)
        if nt:
            with xp.errstate(divide="ignore"):
                dt = xp.maximum(xp.log1p(-x), -100.0) - xp.maximum(xp.log(x), -100.0)
            gt = _sum_to_array(s * dt, t.shape)
        return gx, gt, None, None

    def backward(self, g):
        x, t = self.inputs[:2]
        nx, nt = self.needs_input_grad[:2]
        s = _scale(g, self.reduction, _count(self.shape))
        if self.weight is not None:
            s = s * _const(self.weight)
        gx = gt = None
        if nx:
            gx = sum_to(s * (x - t) / clamp(x * (1.0 - x), 1e-12, None), x.shape)
        if nt:
            with xp.errstate(divide="ignore"):
                gt = sum_to(s * (clamp(log1p(-x), -100.0, None) - clamp(log(x), -100.0, None)), t.shape)
        return gx, gt, None, None


def _count(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def check_same_shape(op: str, input: Tensor, target: Tensor) -> None:
    """Raise unless input and target have the same shape (a silent broadcast would compute nonsense)."""
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{op}: target shape {tuple(target.shape)} differs from input shape "
                         f"{tuple(input.shape)}; reshape one of them (broadcasting here is almost always "
                         "a bug)")


def _weight_array(op: str, weight, input: Tensor, name: str = "weight"):
    if weight is None:
        return None
    w = _as_data(weight).astype(input.dtype, copy=False)
    try:
        xp.broadcast_shapes(w.shape, input.shape)
    except ValueError:
        raise ValueError(f"{op}: {name} of shape {tuple(w.shape)} does not broadcast to input "
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

    def vjp(self, g):  # dx = w ((1 - t) - (1 + (pw - 1) t) s(-x)); dt = w (-x + (pw - 1) log(1 + e^-x))
        x, t = self.inputs[0].data, self.inputs[1].data
        nx, nt = self.needs_input_grad[:2]
        s = _scale(g, self.reduction, _count(self.shape))
        if self.weight is not None:
            s = s * self.weight
        pw = self.pos_weight
        gx = gt = None
        if nx:
            lw = 1.0 if pw is None else (pw - 1.0) * t + 1.0
            gx = _sum_to_array(s * ((1.0 - t) - lw * backend.expit(-x)), x.shape)
        if nt:
            dt = -x if pw is None else (pw - 1.0) * xp.logaddexp(0.0, -x) - x
            gt = _sum_to_array(s * dt, t.shape)
        return gx, gt, None, None, None

    def backward(self, g):
        x, t = self.inputs[:2]
        nx, nt = self.needs_input_grad[:2]
        s = _scale(g, self.reduction, _count(self.shape))
        if self.weight is not None:
            s = s * _const(self.weight)
        pw = None if self.pos_weight is None else _const(self.pos_weight)
        gx = gt = None
        if nx:
            lw = 1.0 if pw is None else (pw - 1.0) * t + 1.0
            gx = sum_to(s * ((1.0 - t) - lw * sigmoid(-x)), x.shape)
        if nt:
            dt = -x if pw is None else (pw - 1.0) * softplus(-x) - x
            gt = sum_to(s * dt, t.shape)
        return gx, gt, None, None, None


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


# --- embedding ----------------------------------------------------------------------------------
class Embedding(Function):
    """Rows of a table picked by integer indices; backward scatter-adds into the table."""

    uses_inputs = False

    def forward(self, weight, indices, padding_idx):
        self.indices, self.padding_idx = indices, padding_idx
        return xp.take(weight, indices, axis=0)

    def vjp(self, g):  # rows scatter-add back into the table; the padding row gets nothing
        if self.padding_idx is not None:
            g = g * (self.indices != self.padding_idx)[..., None]
        return index_backward_array(g, self.inputs[0].shape, self.indices), None, None

    def backward(self, g):
        if self.padding_idx is not None:
            g = g * _const((self.indices != self.padding_idx)[..., None])
        return IndexBackward.apply(g, self.inputs[0].shape, self.indices), None, None


def check_indices(op: str, input, n: int):
    """The integer index array of ``input``, after checking that every index is in [0, n)."""
    indices = _as_data(input)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected integer indices, got dtype {indices.dtype}")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        value = int(indices[(indices < 0) | (indices >= n)].reshape(-1)[0])
        raise IndexError(f"{op}: index {value} is out of range for {n} embeddings (expected 0..{n - 1})")
    return indices


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` picked by the integer ``input``; the ``padding_idx`` row gets no gradient."""
    indices = check_indices("embedding", input, weight.shape[0])
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    return Embedding.apply(weight, indices, padding_idx)


__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "embedding",
           "layer_norm", "linear"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = []
