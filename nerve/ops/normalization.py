"""Normalisation: (x - mean) / sqrt(var + eps) over some dims, then scale and shift, as one fused node.

Layer, batch, group and instance norm are this one kernel over different dims (``layer_norm`` here; the
others in ``nerve.functional``, through ``standardize``).
"""
from __future__ import annotations

from nerve.autograd.function import Function, ShapeError
from nerve.backend import xp
from nerve.ops.elementwise import rsqrt
from nerve.ops.reduce import mean
from nerve.tensor import Tensor


def _mean(a, dims: tuple):
    """``a.mean(axis=dims, keepdims=True)``; over the last axis alone as a matrix-vector product.

    NOTE: NumPy's reduction along a short last axis (layer norm's features) is several times slower than
    multiplying the (rows, n) matrix by a vector of 1/n.
    """
    n = a.shape[-1] if a.ndim else 1
    if dims != (a.ndim - 1,) or n == 0 or a.dtype.kind != "f":
        return a.mean(axis=dims, keepdims=True)
    return (a.reshape(-1, n) @ xp.full_like(a, 1.0 / n, shape=(n,))).reshape(a.shape[:-1] + (1,))


class Normalize(Function):
    """(x - mean) / sqrt(var + eps) over ``dims``, then times weight plus bias (both broadcast to x).

    ``stats`` passes a precomputed (mean, biased var) pair (batch norm already computed them for its
    running averages); they must be the moments of x over ``dims``.
    """

    def forward(self, x, weight, bias, dims, eps, stats=None):
        self.dims = dims
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

    def backward(self, g, m):  # dx = rstd (h - mean(h) - xhat mean(h xhat)), h = g w; dw = sum g xhat; db = sum g
        w = m.inputs(self)[1]
        nx, nw, nb = self.needs_input_grad[:3]
        dims, xhat = self.dims, self.xhat
        gx = gw = gb = None
        if nx:
            h = g * w if w is not None else g
            gx = h - _mean(h, dims) - xhat * _mean(h * xhat, dims)
            gx *= self.rstd
        if nw:
            gw = m.sum_to(g * xhat, w.shape)
        if nb:
            gb = m.sum_to(g, self.inputs[2].shape)
        return (gx, gw, gb) + (None,) * (len(self.inputs) - 3)

    def reference(self, x, weight, bias, dims, eps, stats=None):
        centred = x - mean(x, dims, keepdim=True)
        out = centred * rsqrt(mean(centred * centred, dims, keepdim=True) + eps)
        if weight is not None:
            out = out * weight
        return out if bias is None else out + bias


def standardize(input: Tensor, weight: Tensor | None, bias: Tensor | None, dims: tuple, eps: float,
                stats: tuple | None = None) -> Tensor:
    """(input - mean) / sqrt(var + eps) over ``dims``, times weight plus bias (broadcast), as one node.

    ``stats``: the (mean, biased var) arrays of input over ``dims`` (keepdims), when the caller has them.
    """
    return Normalize.apply(input, weight, bias, tuple(dims), eps, stats)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dims, then scale and shift (one graph node)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != shape or input.ndim < k:
        raise ShapeError(f"layer_norm: expected input (..., {', '.join(map(str, shape))}), "
                         f"got {tuple(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ShapeError(f"layer_norm: {name} must have shape {shape}, got {tuple(t.shape)}")
    return Normalize.apply(input, weight, bias, tuple(range(input.ndim - k, input.ndim)), eps)


__all__ = ["layer_norm", "standardize"]
#: functions that are also Tensor methods (none: these take layer arguments)
METHODS: list = []
