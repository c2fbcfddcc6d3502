"""Reductions and the softmax family: sum, mean, var, max/min, prod, norm, logsumexp, softmax, cumsum.

Reductions take PyTorch's ``dim`` (int, negative int, tuple of ints or None for all) and ``keepdim``.
This module registers ``m.sum`` for derivative rules anywhere in ops.
"""
from __future__ import annotations

import builtins
from typing import NamedTuple

from nerve.autograd.function import Function
from nerve.autograd.rule_math import define
from nerve.backend import xp
from nerve.ops.dtypes import floating
from nerve.ops.elementwise import maximum, minimum, where
from nerve.tensor import Tensor


class ValuesIndices(NamedTuple):
    """The (values, indices) pair returned by ``max``/``min`` along a dim, as in PyTorch."""

    values: Tensor
    indices: Tensor


def _norm_dims(dim, ndim: int, op: str):
    """Normalise ``dim`` (None, int or sequence) to a sorted tuple of non-negative axes.

    A 0-d tensor accepts dim 0 and -1, as in PyTorch; they reduce over nothing (the empty tuple).
    """
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        if not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dimensions")
        if ndim:
            out.append(d % ndim)
    return tuple(sorted(set(out)))


def _dim(dim, axis, op: str):
    """``dim``, or NumPy's ``axis`` given in its place (PyTorch accepts both names)."""
    if axis is None:
        return dim
    if dim is not None:
        raise TypeError(f"{op}: give dim or axis, not both (got dim={dim!r}, axis={axis!r})")
    return axis


def _cast(a: Tensor, dtype) -> Tensor:
    """``a`` cast to ``dtype`` before a reduction (PyTorch's ``dtype=``), or as it is when None."""
    return a if dtype is None else a.astype(dtype)


def _one_dim(dim, ndim: int, op: str) -> tuple:
    """Normalise a single int ``dim`` (softmax, cumsum, max with indices) to a 0- or 1-tuple of axes."""
    if not isinstance(dim, int):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    return _norm_dims(dim, ndim, op)


def _kept_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _count(shape: tuple, axes: tuple) -> int:
    n = 1
    for ax in axes:
        n *= shape[ax]
    return n


def _keep(t, shape: tuple, axes: tuple, keepdim: bool):
    """A reduced result or its gradient (Tensor or array) reshaped to keep its reduced dims as size 1."""
    return t if keepdim else t.reshape(_kept_shape(shape, axes))


def _check_nonempty(a: Tensor, axes: tuple, op: str) -> None:
    for ax in axes:
        if a.shape[ax] == 0:
            raise ValueError(f"{op}: cannot reduce over dim {ax} of size 0 (tensor of shape "
                             f"{tuple(a.shape)}): the result has no identity")


# --- sum, mean, var, std --------------------------------------------------------------------------
class Sum(Function):
    uses_inputs = False

    def forward(self, a, axes, keepdim):
        self.axes = axes
        self.keepdim = keepdim
        return a.sum(axis=axes, keepdims=keepdim)

    def backward(self, g, m):  # adjoint: every summed element gets the gradient of the sum
        shape = self.inputs[0].shape
        return m.expand(_keep(g, shape, self.axes, self.keepdim), shape), None, None


def sum(a: Tensor, dim=None, keepdim: bool = False, *, dtype=None, axis=None) -> Tensor:
    """Sum over ``dim`` (all dimensions when None), in ``dtype`` when given."""
    a = _cast(a, dtype)
    return Sum.apply(a, _norm_dims(_dim(dim, axis, "sum"), a.ndim, "sum"), keepdim)


def _sum_array(a, dim=None, keepdim: bool = False):
    """``sum`` on a raw array (``m.sum`` on the first-order path)."""
    return a.sum(axis=dim, keepdims=keepdim)


def mean(a: Tensor, dim=None, keepdim: bool = False, *, dtype=None, axis=None) -> Tensor:
    """Mean over ``dim`` (all dimensions when None), in ``dtype`` when given."""
    a = _cast(a, dtype)
    axes = _norm_dims(_dim(dim, axis, "mean"), a.ndim, "mean")
    count = _count(a.shape, axes)
    return Sum.apply(a, axes, keepdim) * (1.0 / count if count else float("nan"))


def nansum(a: Tensor, dim=None, keepdim: bool = False, *, dtype=None, axis=None) -> Tensor:
    """Sum over ``dim`` treating NaN as zero (NaN entries get no gradient)."""
    a = _cast(a, dtype)
    return sum(where(xp.isnan(a.data), 0.0, a), _dim(dim, axis, "nansum"), keepdim)


def nanmean(a: Tensor, dim=None, keepdim: bool = False, *, dtype=None, axis=None) -> Tensor:
    """Mean over ``dim`` of the entries that are not NaN (NaN entries get no gradient)."""
    a = _cast(a, dtype)
    dim = _dim(dim, axis, "nanmean")
    kept = Tensor._make(xp.asarray((~xp.isnan(a.data)).sum(axis=_norm_dims(dim, a.ndim, "nanmean"),
                                                            keepdims=keepdim)), None)
    return nansum(a, dim, keepdim) / kept


class Var(Function):
    def forward(self, a, axes, correction, keepdim):
        self.axes, self.keepdim = axes, keepdim
        n = _count(a.shape, axes)
        self.inv_n = 1.0 / n if n else float("nan")
        # NOTE: as NumPy and PyTorch do, a correction >= n divides by 0 (inf or nan, no error).
        self.denom = builtins.max(n - correction, 0)
        with xp.errstate(divide="ignore", invalid="ignore"):
            centered = a - a.sum(axis=axes, keepdims=True) / n
            return (centered * centered).sum(axis=axes, keepdims=keepdim) / self.denom

    def backward(self, g, m):  # d var = 2 (x - mean x) / (n - correction) dx
        x = m.inputs(self)[0]
        scale = 2.0 / self.denom if self.denom else float("nan")  # 0 degrees of freedom: undefined
        centered = x - m.sum(x, self.axes, True) * self.inv_n
        return _keep(g, x.shape, self.axes, self.keepdim) * centered * scale, None, None, None


def _correction(op: str, unbiased: bool, correction) -> float:
    if correction is None:
        return 1 if unbiased else 0
    if correction < 0:
        raise ValueError(f"{op}: correction must be >= 0, got {correction}")
    return correction


def var(a: Tensor, dim=None, unbiased: bool = True, keepdim: bool = False, correction=None, *,
        axis=None) -> Tensor:
    """Variance over ``dim``, dividing by n - correction (``correction`` overrides ``unbiased``)."""
    dim = _dim(dim, axis, "var")
    if isinstance(dim, bool):  # PyTorch's var(x, unbiased) overload
        dim, unbiased = None, dim
    return Var.apply(a, _norm_dims(dim, a.ndim, "var"), _correction("var", unbiased, correction), keepdim)


def std(a: Tensor, dim=None, unbiased: bool = True, keepdim: bool = False, correction=None, *,
        axis=None) -> Tensor:
    """Standard deviation over ``dim``: sqrt of ``var`` with the same arguments."""
    dim = _dim(dim, axis, "std")
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return Var.apply(a, _norm_dims(dim, a.ndim, "std"), _correction("std", unbiased, correction),
                     keepdim).sqrt()


def var_mean(a: Tensor, dim=None, unbiased: bool = True, keepdim: bool = False, correction=None, *,
             axis=None) -> tuple:
    """(variance, mean) over ``dim`` with ``var``'s arguments, as ``torch.var_mean``."""
    dim = _dim(dim, axis, "var_mean")
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return var(a, dim, unbiased, keepdim, correction), mean(a, dim, keepdim)


def std_mean(a: Tensor, dim=None, unbiased: bool = True, keepdim: bool = False, correction=None, *,
             axis=None) -> tuple:
    """(standard deviation, mean) over ``dim`` with ``std``'s arguments, as ``torch.std_mean``."""
    dim = _dim(dim, axis, "std_mean")
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return std(a, dim, unbiased, keepdim, correction), mean(a, dim, keepdim)


# --- max, min, argmax, argmin ---------------------------------------------------------------------
class Extreme(Function):
    """max/min over ``axes``: without ``idx`` ties share the gradient evenly (amax/amin, as PyTorch
    does); with ``idx`` (argmax/argmin along the one axis, kept) the value there takes it all."""

    def forward(self, a, axes, keepdim, largest, idx):
        self.axes, self.keepdim, self.idx = axes, keepdim, idx
        if idx is None:
            self.kept = a.max(axis=axes, keepdims=True) if largest else a.min(axis=axes, keepdims=True)
        else:
            self.kept = xp.take_along_axis(a, idx, axis=axes[0])
        return self.kept if keepdim else self.kept.reshape(
            tuple(s for i, s in enumerate(a.shape) if i not in axes))

    def backward(self, g, m):  # dx = g at the extreme (shared among ties without idx), 0 elsewhere
        shape, axes = self.inputs[0].shape, self.axes
        gk = _keep(g, shape, axes, self.keepdim)
        if self.idx is not None:
            return m.ungather(gk, shape, self.idx, axes[0], True), None, None, None, None
        hit = (m.inputs(self)[0] == self.kept).astype(g.dtype)  # a comparison: no gradient
        return gk * (hit / m.sum(hit, axes, True)), None, None, None, None


def _extreme(a: Tensor, dim, keepdim: bool, largest: bool, op: str):
    axes = _norm_dims(dim, a.ndim, op)
    _check_nonempty(a, axes, op)
    return Extreme.apply(a, axes, keepdim, largest, None)


def _extreme_with_indices(a: Tensor, dim: int, keepdim: bool, largest: bool, op: str) -> ValuesIndices:
    if a.ndim == 0:
        _one_dim(dim, 0, op)
        return _extreme_with_indices(a.reshape(1), 0, False, largest, op)
    (axis,) = _one_dim(dim, a.ndim, op)
    _check_nonempty(a, (axis,), op)
    find = xp.argmax if largest else xp.argmin
    idx = find(a.data, axis=axis, keepdims=True)
    values = Extreme.apply(a, (axis,), keepdim, largest, idx)
    return ValuesIndices(values, Tensor._make(idx if keepdim else idx.squeeze(axis), None))


def max(a: Tensor, dim=None, keepdim: bool = False, *, axis=None):
    """The largest value (dim None, ties share the gradient) or ``(values, indices)`` along ``dim``.

    ``max(a, b)`` with a Tensor ``b`` is the elementwise ``maximum``, as in PyTorch.
    """
    if isinstance(dim, Tensor):
        return maximum(a, dim)
    dim = _dim(dim, axis, "max")
    if dim is None:
        return _extreme(a, None, False, True, "max")
    return _extreme_with_indices(a, dim, keepdim, True, "max")


def min(a: Tensor, dim=None, keepdim: bool = False, *, axis=None):
    """The smallest value (dim None, ties share the gradient) or ``(values, indices)`` along ``dim``.

    ``min(a, b)`` with a Tensor ``b`` is the elementwise ``minimum``, as in PyTorch.
    """
    if isinstance(dim, Tensor):
        return minimum(a, dim)
    dim = _dim(dim, axis, "min")
    if dim is None:
        return _extreme(a, None, False, False, "min")
    return _extreme_with_indices(a, dim, keepdim, False, "min")


def amax(a: Tensor, dim=None, keepdim: bool = False, *, axis=None) -> Tensor:
    """Largest value over ``dim`` (int, tuple or None for all); ties share the gradient evenly."""
    return _extreme(a, _dim(dim, axis, "amax"), keepdim, True, "amax")


def amin(a: Tensor, dim=None, keepdim: bool = False, *, axis=None) -> Tensor:
    """Smallest value over ``dim`` (int, tuple or None for all); ties share the gradient evenly."""
    return _extreme(a, _dim(dim, axis, "amin"), keepdim, False, "amin")


def _arg_extreme(a: Tensor, dim, keepdim: bool, largest: bool, op: str) -> Tensor:
    find = xp.argmax if largest else xp.argmin
    if dim is None:
        _check_nonempty(a, tuple(range(a.ndim)), op)
        idx = xp.asarray(find(a.data))
        return Tensor._make(idx.reshape((1,) * a.ndim) if keepdim else idx, None)
    if a.ndim == 0:
        _one_dim(dim, 0, op)
        return Tensor._make(xp.zeros((), dtype=xp.int64), None)
    (axis,) = _one_dim(dim, a.ndim, op)
    _check_nonempty(a, (axis,), op)
    return Tensor._make(find(a.data, axis=axis, keepdims=keepdim), None)


def argmax(a: Tensor, dim=None, keepdim: bool = False, *, axis=None) -> Tensor:
    """Index of the largest value (of the flattened tensor when ``dim`` is None); int64, no gradient."""
    return _arg_extreme(a, _dim(dim, axis, "argmax"), keepdim, True, "argmax")


def argmin(a: Tensor, dim=None, keepdim: bool = False, *, axis=None) -> Tensor:
    """Index of the smallest value (of the flattened tensor when ``dim`` is None); int64, no gradient."""
    return _arg_extreme(a, _dim(dim, axis, "argmin"), keepdim, False, "argmin")


# --- all, any ------------------------------------------------------------------------------------
def all(a: Tensor, dim=None, keepdim: bool = False, *, axis=None) -> Tensor:
    """True where every element over ``dim`` (all dims when None) is nonzero; a boolean tensor, no gradient."""
    axes = _norm_dims(_dim(dim, axis, "all"), a.ndim, "all")
    return Tensor._make(xp.asarray(a.data.all(axis=axes, keepdims=keepdim)), None)


def any(a: Tensor, dim=None, keepdim: bool = False, *, axis=None) -> Tensor:
    """True where some element over ``dim`` (all dims when None) is nonzero; a boolean tensor, no gradient."""
    axes = _norm_dims(_dim(dim, axis, "any"), a.ndim, "any")
    return Tensor._make(xp.asarray(a.data.any(axis=axes, keepdims=keepdim)), None)


# --- logsumexp and the softmax family ------------------------------------------------------------
def _shifted(a, axes):
    """``a - max(a)`` over ``axes``, with infinite maxima replaced by 0 so inf - inf never appears."""
    m = a.max(axis=axes, keepdims=True)
    return a - xp.where(xp.isfinite(m), m, 0), m


class LogSumExp(Function):
    saves_output = True

    def forward(self, a, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim
        out_shape = _kept_shape(a.shape, axes) if keepdim else tuple(
            s for i, s in enumerate(a.shape) if i not in axes)
        if _count(a.shape, axes) == 0:
            return xp.full(out_shape, -xp.inf, dtype=a.dtype)
        s, m = _shifted(a, axes)
        with xp.errstate(divide="ignore"):
            out = xp.log(xp.exp(s).sum(axis=axes, keepdims=True)) + xp.where(xp.isfinite(m), m, 0)
        return out.reshape(out_shape)

    def backward(self, g, m):  # d lse = softmax(x) dx = exp(x - lse) dx
        x = m.inputs(self)[0]
        y = _keep(m.output(self), x.shape, self.axes, self.keepdim)
        return _keep(g, x.shape, self.axes, self.keepdim) * m.exp(x - y), None, None


def logsumexp(a: Tensor, dim=None, keepdim: bool = False, *, axis=None) -> Tensor:
    """log(sum(exp(a))) over ``dim`` (all dims when None), shifted by the max so 1e4 stays finite."""
    a = floating(a)
    return LogSumExp.apply(a, _norm_dims(_dim(dim, axis, "logsumexp"), a.ndim, "logsumexp"), keepdim)


class Softmax(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a, axes):
        self.axes = axes
        if a.size == 0:
            return xp.exp(a)
        e = xp.exp(_shifted(a, axes)[0])
        return e / e.sum(axis=axes, keepdims=True)

    def backward(self, g, m):  # dx = y (g - sum(g y))
        y = m.output(self)
        return y * (g - m.sum(g * y, self.axes, True)), None


class LogSoftmax(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a, axes):
        self.axes = axes
        if a.size == 0:
            return a.copy()
        s = _shifted(a, axes)[0]
        with xp.errstate(divide="ignore"):
            return s - xp.log(xp.exp(s).sum(axis=axes, keepdims=True))

    def backward(self, g, m):  # dx = g - softmax(x) sum(g)
        return g - m.exp(m.output(self)) * m.sum(g, self.axes, True), None


def softmax(a: Tensor, dim: int | None = None, *, dtype=None, axis=None) -> Tensor:
    """exp(a) / sum(exp(a)) along ``dim``, computed after subtracting the max (no overflow)."""
    a = floating(_cast(a, dtype))
    dim = _dim(dim, axis, "softmax")
    return Softmax.apply(a, _one_dim(-1 if dim is None else dim, a.ndim, "softmax"))


def log_softmax(a: Tensor, dim: int | None = None, *, dtype=None, axis=None) -> Tensor:
    """log(softmax(a)) along ``dim`` in one stable step (a - max - log(sum(exp(a - max))))."""
    a = floating(_cast(a, dtype))
    dim = _dim(dim, axis, "log_softmax")
    return LogSoftmax.apply(a, _one_dim(-1 if dim is None else dim, a.ndim, "log_softmax"))


# --- prod, cumsum, norm --------------------------------------------------------------------------
class Prod(Function):
    saves_output = True

    def forward(self, a, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim
        return a.prod(axis=axes, keepdims=keepdim)

    def backward(self, g, m):  # d prod = prod of the others; out / x unless x has zeros
        x, axes = m.inputs(self)[0], self.axes
        gk = _keep(g, x.shape, axes, self.keepdim)
        out = _keep(m.output(self), x.shape, axes, self.keepdim)
        zero = x == 0  # a comparison: no gradient
        if not zero.any():
            return gk * out / x, None, None
        # NOTE: with zeros, out / x is 0/0. The product of the others is prod(nonzeros) at a lone
        # zero, prod(nonzeros) * the other zero where there are two, 0 with more; kept as expressions
        # of x (not constants) so that second derivatives stay right.
        x_safe = m.where(zero, 1.0, x)
        nonzero_prod = m.apply(Prod, x_safe, axes, True)
        count = m.sum(zero, axes, True)
        other_zero = m.sum(m.where(zero, x, 0.0), axes, True) - x
        at_zero = nonzero_prod * m.where(count == 1, 1.0, m.where(count == 2, other_zero, 0.0))
        return gk * m.where(zero, at_zero, out / x_safe), None, None


def prod(a: Tensor, dim=None, keepdim: bool = False, *, dtype=None, axis=None) -> Tensor:
    """Product over ``dim`` (all dimensions when None); the gradient is exact with zeros in the input."""
    a = _cast(a, dtype)
    return Prod.apply(a, _norm_dims(_dim(dim, axis, "prod"), a.ndim, "prod"), keepdim)


class Cumsum(Function):
    uses_inputs = False

    def forward(self, a, axis):
        self.axis = axis
        return xp.cumsum(a, axis=axis)

    def backward(self, g, m):  # adjoint: dx_i = sum_{j >= i} g_j, a cumsum of the reversed gradient, reversed
        flip = (slice(None),) * self.axis + (slice(None, None, -1),)
        return m.apply(Cumsum, g[flip], self.axis)[flip], None


def cumsum(a: Tensor, dim: int | None = None, *, dtype=None, axis=None) -> Tensor:
    """Running sum along ``dim``."""
    dim = _dim(dim, axis, "cumsum")
    if dim is None:
        raise TypeError("cumsum: missing the dim argument")
    a = _cast(a, dtype)
    axes = _one_dim(dim, a.ndim, "cumsum")
    if not axes:  # 0-d: the running sum of one value is the value
        return Cumsum.apply(a.reshape(1), 0).reshape(())
    return Cumsum.apply(a, axes[0])


class Norm(Function):
    """The p-norm for finite p > 0 other than 1; the gradient at a zero norm is 0, as in PyTorch."""

    saves_output = True

    def forward(self, a, p, axes, keepdim):
        self.p, self.axes, self.keepdim = p, axes, keepdim
        if p == 2:
            return xp.sqrt((a * a).sum(axis=axes, keepdims=keepdim))
        return (xp.abs(a) ** p).sum(axis=axes, keepdims=keepdim) ** (1.0 / p)

    def backward(self, g, m):  # d |x|_p = sign(x) |x|^(p-1) / |x|_p^(p-1) dx
        x, p = m.inputs(self)[0], self.p
        out = _keep(m.output(self), x.shape, self.axes, self.keepdim)
        zero = (out == 0).astype(out.dtype)  # a comparison: no gradient
        scale = _keep(g, x.shape, self.axes, self.keepdim) * (1.0 - zero)
        safe = out + zero
        if p == 2:
            return x * (scale / safe), None, None, None
        return m.sign(x) * abs(x) ** (p - 1.0) * (scale / safe ** (p - 1.0)), None, None, None


def norm(a: Tensor, p=2, dim=None, keepdim: bool = False, *, dtype=None, axis=None) -> Tensor:
    """Vector p-norm over ``dim`` (all dims when None): p a positive number, inf, -inf or 'fro' (= 2)."""
    a, dim = floating(_cast(a, dtype)), _dim(dim, axis, "norm")
    if p == "fro":
        p = 2
    if isinstance(p, str) or not (p > 0 or p == -float("inf")):
        raise ValueError(f"norm: p must be a positive number, inf, -inf or 'fro', got {p!r}")
    axes = _norm_dims(dim, a.ndim, "norm")
    if p == float("inf"):
        return _extreme(a.abs(), axes, keepdim, True, "norm")
    if p == -float("inf"):
        return _extreme(a.abs(), axes, keepdim, False, "norm")
    if p == 1:
        return Sum.apply(a.abs(), axes, keepdim)
    return Norm.apply(a, float(p), axes, keepdim)


class MinMax(NamedTuple):
    min: Tensor
    max: Tensor


def aminmax(input: Tensor, *, dim: int | None = None, keepdim: bool = False) -> MinMax:
    """(min, max) over ``dim`` (all elements when None), as a named tuple."""
    return MinMax(amin(input, dim, keepdim), amax(input, dim, keepdim))


def renorm(input: Tensor, p: float, dim: int, maxnorm: float) -> Tensor:
    """Each slice along ``dim`` whose p-norm exceeds ``maxnorm`` scaled down to norm ``maxnorm``."""
    if not -input.ndim <= dim < builtins.max(input.ndim, 1):
        raise IndexError(f"renorm: dim {dim} is out of range for a tensor of {input.ndim} dimensions")
    others = tuple(d for d in range(input.ndim) if d != dim % input.ndim)
    norms = norm(input, p, others, keepdim=True)
    scale = where(norms > maxnorm, maxnorm / (norms + 1e-7), 1.0)
    return input * scale


# helper for derivative rules anywhere in ops: m.sum(x, dim, keepdim), raw arrays first, Tensors second
define("sum", _sum_array, sum)

__all__ = ["ValuesIndices", "all", "amax", "amin", "aminmax", "any", "argmax", "argmin", "cumsum", "log_softmax",
           "renorm", "logsumexp", "max", "mean", "min", "nanmean", "nansum", "norm", "prod", "softmax", "std",
           "std_mean", "sum", "var", "var_mean"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["all", "amax", "amin", "aminmax", "renorm", "any", "argmax", "argmin", "cumsum", "log_softmax", "logsumexp",
           "max", "mean", "min", "nanmean", "nansum", "norm", "prod", "softmax", "std", "std_mean", "sum", "var",
           "var_mean"]
