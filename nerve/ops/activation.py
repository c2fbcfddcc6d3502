"""Activation primitives: relu, leaky_relu, elu, gelu, silu, softplus (sigmoid and tanh are elementwise ops).

``gelu_slope`` is GELU's value and derivative on raw arrays, shared by the GELU op and the fused
linear+GELU kernel, so GELU's derivative is written once.
"""
from __future__ import annotations

import math

from nerve import backend
from nerve.autograd.function import Function
from nerve.backend import xp
from nerve.ops import streams
from nerve.tensor import Tensor

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_K = 0.044715  # the cubic coefficient of GELU's tanh form

# Abramowitz & Stegun 7.1.26: erfc(z) ~ t (a1 + t (a2 + ... + t a5)) exp(-z^2), t = 1 / (1 + p z), z >= 0,
# absolute error below 1.5e-7 (PyTorch's vectorised float32 erf uses the same formula). With z = |x| / sqrt 2,
# t = u / p' for u = 1 / (|x| + 1 / p'), p' = p / sqrt 2: the powers of p' and the factor -1/2 of the normal
# tail P(Z > |x|) = erfc(z) / 2 are folded into the coefficients _AS_B.
_AS_P = 0.3275911 / math.sqrt(2.0)
_AS_B = tuple(-0.5 * a / _AS_P ** (i + 1)
              for i, a in enumerate((0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)))


def _normal_cdf_and_density(x):
    """(Phi(x), phi(x)) for a raw array, Phi the standard normal CDF and phi its density.

    NOTE: SciPy's erf costs about 15 ns an element; float32 takes the A&S formula above in about 20 vectorised
    passes instead (error below 5e-7, under float32's resolution of GELU's values); other dtypes use SciPy.
    """
    if x.dtype == xp.float32:
        t = xp.abs(x)
        t += 1.0 / _AS_P
        xp.divide(1.0, t, out=t)  # NOTE: NumPy's divide is vectorised, its reciprocal is not (2x slower)
        cdf = t * _AS_B[4]
        for b in _AS_B[3::-1]:
            cdf += b
            cdf *= t
        xp.multiply(x, x, out=t)
        t *= -0.5
        xp.exp(t, out=t)  # sqrt(2 pi) phi(x)
        cdf *= t  # -P(Z > |x|)
        cdf += 0.5  # Phi(|x|) - 1/2 >= 0: give it x's sign bit (copysign is 2-3x slower than these bit ops)
        bits = cdf.view(xp.int32)
        xp.bitwise_or(bits, xp.bitwise_and(x.view(xp.int32), xp.int32(-2 ** 31)), out=bits)
        cdf += 0.5
    else:
        cdf = backend.erf(x * _SQRT1_2)
        cdf += 1.0
        cdf *= 0.5
        t = xp.exp(x * x * -0.5)
    t *= _INV_SQRT_2PI
    return cdf, t


def gelu_slope(x, approximate: str = "none") -> tuple:
    """(gelu(x), gelu'(x)) for a raw array: x Phi(x) and Phi(x) + x phi(x), or the same of the tanh form.

    Fused kernels (linear + GELU) keep the slope from their forward; the GELU op's rule uses it too.
    """
    if x.ndim == 0:  # NOTE: NumPy hands back 0-d results as scalars, which cannot be updated in place
        value, slope = gelu_slope(x.reshape(1), approximate)
        return value.reshape(()), slope.reshape(())
    if streams.THREADS and x.shape[0] > 1 and x.size * _GELU_PASSES >= streams.SPLIT_ELEMENTS \
            and x.__class__ is backend.ndarray:  # parts on nerve's threads (set_threads)
        value, slope = xp.empty_like(x), xp.empty_like(x)

        def part(a: int, b: int) -> None:
            value[a:b], slope[a:b] = _gelu_slope(x[a:b], approximate)
        streams.split(part, x.shape[0], x.size * _GELU_PASSES * streams.SPLIT_COST, x)
        return value, slope
    return _gelu_slope(x, approximate)


#: element-wise passes of gelu_slope (its work when cut on nerve's threads)
_GELU_PASSES = 20


def _gelu_slope(x, approximate: str) -> tuple:
    if approximate == "tanh":  # y = x (1 + t) / 2, t = tanh u, u = c (x + k x^3)
        x2 = x * x
        t = x2 * _K
        t += 1.0
        t *= x
        t *= _SQRT_2_PI
        xp.tanh(t, out=t)
        cdf = t * 0.5
        cdf += 0.5  # (1 + t) / 2 plays Phi's part; y' = (1 + t) / 2 + x (1 - t^2) / 2 u'
        t *= t
        xp.subtract(1.0, t, out=t)
        t *= 0.5
        x2 *= 3.0 * _K * _SQRT_2_PI
        x2 += _SQRT_2_PI  # u' = c (1 + 3 k x^2)
        t *= x2
    else:
        cdf, t = _normal_cdf_and_density(x)
    t *= x
    t += cdf
    cdf *= x
    return cdf, t


class ReLU(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        if streams.THREADS and a.size >= streams.SPLIT_ELEMENTS:  # parts on nerve's threads (set_threads)
            out = xp.empty_like(a)
            streams.elementwise(xp.maximum, out, a, 0)
            return out
        return xp.maximum(a, 0)

    def backward(self, g, m):  # 1 where a > 0, else 0
        # NOTE: g * mask is several times faster than xp.where(mask, g, 0) in NumPy.
        y = m.output(self)
        if streams.THREADS and g.__class__ is backend.ndarray and y.__class__ is backend.ndarray \
                and g.size >= streams.SPLIT_ELEMENTS:  # arrays only (Tensors when differentiating again)
            out = xp.empty_like(g)
            streams.elementwise(_masked, out, g, y)
            return out
        return g * (y > 0)


def _masked(g, y, out) -> None:
    """out = g where y > 0, else 0 (ReLU's backward on arrays)."""
    xp.multiply(g, y > 0, out=out)


class LeakyReLU(Function):
    def forward(self, a, negative_slope):
        self.slope = negative_slope
        return xp.where(a > 0, a, a * negative_slope)

    def backward(self, g, m):  # 1 where a > 0, else the slope
        return m.where(m.inputs(self)[0] > 0, g, g * self.slope), None


class ELU(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a, alpha):
        self.alpha = alpha
        return xp.where(a > 0, a, alpha * xp.expm1(xp.minimum(a, 0)))

    def backward(self, g, m):  # 1 where a > 0, else alpha e^a = y + alpha
        y = m.output(self)
        return m.where(y > 0, g, g * (y + self.alpha)), None


class GELU(Function):
    def forward(self, a, approximate):
        self.approximate = approximate
        if approximate == "tanh":
            return 0.5 * a * (1.0 + xp.tanh(_SQRT_2_PI * (a + _K * a * a * a)))
        return 0.5 * a * (1.0 + backend.erf(a * _SQRT1_2))

    def backward(self, g, m):  # gelu'(a) da, from gelu_slope
        return g * m.apply(GELUSlope, m.inputs(self)[0], self.approximate), None


class GELUSlope(Function):
    """gelu'(x) as a primitive, so that GELU's rule can be differentiated again."""

    def forward(self, x, approximate):
        self.approximate = approximate
        return gelu_slope(x, approximate)[1]

    def backward(self, g, m):
        x = m.inputs(self)[0]
        x2 = x * x
        if self.approximate == "tanh":  # gelu'' = (1 - t^2) (u' + 3 c k x^2 - x t u'^2)
            t = m.tanh((x2 * _K + 1.0) * x * _SQRT_2_PI)
            du = (x2 * (3.0 * _K) + 1.0) * _SQRT_2_PI
            return g * (1.0 - t * t) * (du + x2 * (3.0 * _K * _SQRT_2_PI) - x * t * du * du), None
        return g * m.exp(x2 * -0.5) * (2.0 - x2) * _INV_SQRT_2PI, None  # gelu'' = phi(x) (2 - x^2)


class SiLU(Function):
    def forward(self, a):
        return a * backend.expit(a)

    def backward(self, g, m):  # d(a s(a)) = s(a) (1 + a (1 - s(a))) da
        a = m.inputs(self)[0]
        s = m.sigmoid(a)
        return g * (s * (a * (1.0 - s) + 1.0))


class Softplus(Function):
    def forward(self, a, beta, threshold):
        self.beta = beta
        z = a * beta
        self.linear = z > threshold
        return xp.where(self.linear, a, xp.logaddexp(0, z) / beta)

    def backward(self, g, m):  # d log(1 + e^(b a)) / b = s(b a) da; 1 where linear
        return g * m.where(self.linear, 1.0, m.sigmoid(m.inputs(self)[0] * self.beta)), None, None


def relu(a) -> Tensor:
    """max(a, 0)."""
    return ReLU.apply(a)


def leaky_relu(a, negative_slope: float = 0.01) -> Tensor:
    """a where a > 0, else negative_slope * a."""
    return LeakyReLU.apply(a, negative_slope)


def elu(a, alpha: float = 1.0) -> Tensor:
    """a where a > 0, else alpha (e^a - 1)."""
    return ELU.apply(a, alpha)


def gelu(a, approximate: str = "none") -> Tensor:
    """a Phi(a) with the exact normal CDF, or its tanh approximation (``approximate="tanh"``)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(a, approximate)


def silu(a) -> Tensor:
    """a * sigmoid(a) (also called swish)."""
    return SiLU.apply(a)


def softplus(a, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta a)) / beta, linear above ``threshold`` (PyTorch's definition)."""
    return Softplus.apply(a, beta, threshold)


__all__ = ["elu", "gelu", "leaky_relu", "relu", "silu", "softplus"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["elu", "gelu", "leaky_relu", "relu", "silu", "softplus"]
