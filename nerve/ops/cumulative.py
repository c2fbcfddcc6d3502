"""Running reductions along one dimension: cumprod, cummax/cummin (values and indices), logcumsumexp.

(``cumsum`` lives in ``reduce.py``; its rule, a reversed running sum, is what these rules use.)
"""
from __future__ import annotations

import math

from nerve.autograd.function import Function
from nerve.backend import xp
from nerve.ops.dtypes import floating
from nerve.ops.index import Gather
from nerve.ops.reduce import Cumsum, ValuesIndices, _cast, _dim, _one_dim
from nerve.tensor import Tensor


def _reversed_cumsum(g, axis: int, m):
    """sum_{j >= i} g_j along ``axis``: a running sum of the flipped values, flipped back."""
    flip = (slice(None),) * axis + (slice(None, None, -1),)
    return m.apply(Cumsum, g[flip], axis)[flip]


def _axis(a: Tensor, dim, axis, op: str):
    """(a as at least 1-D, the axis, whether a was 0-d)."""
    dim = _dim(dim, axis, op)
    if dim is None:
        raise TypeError(f"{op}: missing the dim argument")
    axes = _one_dim(dim, a.ndim, op)
    return (a.reshape(1), 0, True) if not axes else (a, axes[0], False)


class Cumprod(Function):
    saves_output = True

    def forward(self, a, axis):
        self.axis = axis
        zero = a == 0
        # NOTE: positions before the first zero along the axis, and the first zero itself (constants)
        seen = xp.cumsum(zero, axis=axis)
        self.before, self.first_zero = seen == 0, zero & (seen == 1)
        self.has_zero = bool(zero.any())
        return xp.cumprod(a, axis=axis)

    def backward(self, g, m):  # dx_i = sum_{j >= i} g_j prod_{k <= j, k != i} x_k
        # NOTE: before the first zero that is sum_{j >= i} g_j out_j / x_i; at the first zero z, the running
        # product with x_z taken as 1; after it, 0 (every product holds x_z = 0). Second order is exact
        # where the input has no zero.
        x, axis = m.inputs(self)[0], self.axis
        out = m.output(self)
        if not self.has_zero:
            return _reversed_cumsum(g * out, axis, m) / x, None
        x_safe = m.where(self.before, x, 1.0)
        before = _reversed_cumsum(g * out, axis, m) / x_safe
        at_zero = _reversed_cumsum(g * m.apply(Cumprod, m.where(self.first_zero, 1.0, x), axis), axis, m)
        return m.where(self.before, before, m.where(self.first_zero, at_zero, 0.0)), None


def cumprod(a: Tensor, dim: int | None = None, *, dtype=None, axis=None) -> Tensor:
    """Running product along ``dim``; the gradient is exact with zeros in the input."""
    a = _cast(a, dtype)
    a, d, scalar = _axis(a, dim, axis, "cumprod")
    out = Cumprod.apply(a, d)
    return out.reshape(()) if scalar else out


def _running_extreme(a: Tensor, dim, axis, largest: bool, op: str) -> ValuesIndices:
    x, d, scalar = _axis(a, dim, axis, op)
    data = x.data
    running = (xp.maximum if largest else xp.minimum).accumulate(data, axis=d)
    # NOTE: the index is the last position so far holding the running extreme (PyTorch's choice for ties)
    shape = [1] * data.ndim
    shape[d] = data.shape[d]
    positions = xp.arange(data.shape[d], like=data).reshape(shape)
    idx = xp.maximum.accumulate(xp.where(data == running, positions, 0), axis=d).astype(xp.int64)
    values = Gather.apply(x, idx, d, False)
    if scalar:
        return ValuesIndices(values.reshape(()), Tensor._make(idx.reshape(()), None))
    return ValuesIndices(values, Tensor._make(idx, None))


def cummax(a: Tensor, dim: int | None = None, *, axis=None) -> ValuesIndices:
    """Running maximum along ``dim`` and where it was found; the gradient goes to that entry."""
    return _running_extreme(a, dim, axis, True, "cummax")


def cummin(a: Tensor, dim: int | None = None, *, axis=None) -> ValuesIndices:
    """Running minimum along ``dim`` and where it was found; the gradient goes to that entry."""
    return _running_extreme(a, dim, axis, False, "cummin")


class LogCumSumExp(Function):
    saves_output = True

    def forward(self, a, axis):
        self.axis = axis
        return xp.logaddexp.accumulate(a, axis=axis)

    def backward(self, g, m):  # dx_i = sum_{j >= i} g_j exp(x_i - out_j)
        # NOTE: in the log domain, as a running logsumexp from the end, so nothing overflows: with k > |g|,
        # dx_i = exp(x_i + lse_{j >= i}(log(g_j + k) - out_j)) - exp(x_i + lse_{j >= i}(log k - out_j)).
        x, axis = m.inputs(self)[0], self.axis
        if 0 in x.shape:
            return g * 0.0, None
        out = m.output(self)
        k = 2.0 * float(abs(g).max()) or 1.0  # a constant: the result does not depend on it
        flip = (slice(None),) * axis + (slice(None, None, -1),)

        def tail_lse(v):
            return m.apply(LogCumSumExp, v[flip], axis)[flip]

        return m.exp(x + tail_lse(m.log(g + k) - out)) - m.exp(x + tail_lse(math.log(k) - out)), None


def logcumsumexp(a: Tensor, dim: int | None = None, *, axis=None) -> Tensor:
    """log(cumsum(exp(a))) along ``dim`` without overflow."""
    a, d, scalar = _axis(floating(a), dim, axis, "logcumsumexp")
    out = LogCumSumExp.apply(a, d)
    return out.reshape(()) if scalar else out


__all__ = ["cummax", "cummin", "cumprod", "logcumsumexp"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["cummax", "cummin", "cumprod", "logcumsumexp"]
