"""Elementwise primitives: arithmetic, transcendental functions and activations.

Binary ops broadcast as NumPy does; their backward sums the gradient back to each input's shape
with ``sum_to``. Each backward is written with Tensor ops, so it can be differentiated again.
"""
from __future__ import annotations

import math

from nerve import backend
from nerve.autograd.function import Function
from nerve.autograd.rule_math import define
from nerve.backend import xp
from nerve.ops.broadcast import sum_to
from nerve.tensor import Tensor

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)


def _const(array) -> Tensor:
    """A Tensor that carries no gradient (masks, signs)."""
    return Tensor._make(array, None)


# --- arithmetic -------------------------------------------------------------------------------
class Add(Function):
    uses_inputs = False

    def forward(self, a, b):
        return a + b

    def backward(self, g, m):  # d(a+b) = da + db
        a, b = self.inputs
        na, nb = self.needs_input_grad
        return (m.sum_to(g, a.shape) if na else None, m.sum_to(g, b.shape) if nb else None)


class Sub(Function):
    uses_inputs = False

    def forward(self, a, b):
        return a - b

    def backward(self, g, m):  # d(a-b) = da - db
        a, b = self.inputs
        na, nb = self.needs_input_grad
        return (m.sum_to(g, a.shape) if na else None, m.sum_to(-g, b.shape) if nb else None)


class Mul(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, g, m):  # d(ab) = b da + a db
        a, b = m.inputs(self)
        na, nb = self.needs_input_grad
        return (m.sum_to(g * b, a.shape) if na else None, m.sum_to(g * a, b.shape) if nb else None)


class Div(Function):
    saves_output = True

    def forward(self, a, b):
        return a / b

    def backward(self, g, m):  # d(a/b) = da / b - (a/b) db / b
        a, b = m.inputs(self)
        na, nb = self.needs_input_grad
        ga = m.sum_to(g / b, a.shape) if na else None
        gb = m.sum_to(-(g * m.output(self)) / b, b.shape) if nb else None
        return ga, gb


class Neg(Function):
    uses_inputs = False

    def forward(self, a):
        return -a

    def backward(self, g, m):  # d(-a) = -da
        return -g


class PowScalar(Function):
    def forward(self, a, p):
        self.p = p
        return a ** p

    def backward(self, g, m):  # d(a^p) = p a^(p-1) da
        a = m.inputs(self)[0]
        p = self.p
        return (g * a * 2.0 if p == 2 else g * (a ** (p - 1)) * p), None


class Pow(Function):
    saves_output = True

    def forward(self, a, b):
        return a ** b

    def backward(self, g):  # d(a^b) = b a^(b-1) da + a^b ln(a) db
        a, b = self.inputs
        na, nb = self.needs_input_grad
        ga = sum_to(g * b * a ** (b - 1), a.shape) if na else None
        gb = None
        if nb:
            if isinstance(a, Tensor):
                log_a = log(where(a.data > 0, a, 1.0))
            else:
                log_a = float(xp.log(a)) if xp.ndim(a) == 0 else xp.log(a)
            gb = sum_to(g * self.output() * log_a, b.shape)
        return ga, gb


def add(a, b) -> Tensor:
    """a + b with broadcasting."""
    return Add.apply(a, b)


def sub(a, b) -> Tensor:
    """a - b with broadcasting."""
    return Sub.apply(a, b)


def mul(a, b) -> Tensor:
    """a * b with broadcasting."""
    return Mul.apply(a, b)


def div(a, b) -> Tensor:
    """a / b with broadcasting."""
    return Div.apply(a, b)


def neg(a) -> Tensor:
    """-a."""
    return Neg.apply(a)


def pow(a, b) -> Tensor:
    """a ** b; a scalar exponent takes the cheaper path."""
    if isinstance(a, Tensor) and not isinstance(b, Tensor) and xp.ndim(b) == 0:
        return PowScalar.apply(a, b)
    return Pow.apply(a, b)


def square(a) -> Tensor:
    """a * a, elementwise."""
    return PowScalar.apply(a, 2)


def reciprocal(a) -> Tensor:
    """1 / a, elementwise."""
    return PowScalar.apply(a, -1)


def floor_divide(a, b) -> Tensor:
    """a // b; piecewise constant, so it carries no gradient."""
    a = a.data if isinstance(a, Tensor) else a
    b = b.data if isinstance(b, Tensor) else b
    return Tensor._make(xp.asarray(xp.floor_divide(a, b)), None)


class Remainder(Function):
    def forward(self, a, b):
        return xp.remainder(a, b)

    def backward(self, g):  # a mod b = a - b floor(a/b)
        a, b = self.inputs
        na, nb = self.needs_input_grad
        gb = None
        if nb:
            a_data = a.data if isinstance(a, Tensor) else a
            gb = sum_to(g * _const(-xp.floor_divide(a_data, b.data)), b.shape)
        return (sum_to(g, a.shape) if na else None), gb


def remainder(a, b) -> Tensor:
    """a % b (the sign follows b, as in Python)."""
    return Remainder.apply(a, b)


# --- unary math -------------------------------------------------------------------------------
class Exp(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return xp.exp(a)

    def backward(self, g):  # d e^a = e^a da
        return g * self.output()

    def vjp(self, g):
        return g * self._out


class Log(Function):
    def forward(self, a):
        return xp.log(a)

    def backward(self, g):  # d ln a = da / a
        return g / self.inputs[0]

    def vjp(self, g):
        return g / self.inputs[0].data


class Log1p(Function):
    def forward(self, a):
        return xp.log1p(a)

    def backward(self, g):  # d ln(1+a) = da / (1+a)
        return g / (self.inputs[0] + 1.0)


class Expm1(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return xp.expm1(a)

    def backward(self, g):  # d(e^a - 1) = e^a da
        return g * (self.output() + 1.0)


class Sqrt(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return xp.sqrt(a)

    def backward(self, g):  # d sqrt(a) = da / (2 sqrt(a))
        return g * 0.5 / self.output()


class Rsqrt(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return 1.0 / xp.sqrt(a)

    def backward(self, g):  # d a^(-1/2) = -1/2 a^(-3/2) da
        y = self.output()
        return g * (y * y * y) * -0.5


class Abs(Function):
    def forward(self, a):
        return xp.abs(a)

    def backward(self, g):  # d|a| = sign(a) da
        return g * _const(xp.sign(self.inputs[0].data))


class Sign(Function):
    uses_inputs = False

    def forward(self, a):
        return xp.sign(a)

    def backward(self, g):  # piecewise constant
        return g * 0.0


class Sin(Function):
    def forward(self, a):
        return xp.sin(a)

    def backward(self, g):  # d sin a = cos a da
        return g * cos(self.inputs[0])


class Cos(Function):
    def forward(self, a):
        return xp.cos(a)

    def backward(self, g):  # d cos a = -sin a da
        return g * -sin(self.inputs[0])


class Tanh(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return xp.tanh(a)

    def backward(self, g):  # d tanh a = (1 - tanh^2 a) da
        y = self.output()
        return g * (1.0 - y * y)

    def vjp(self, g):
        y = self._out
        return g * (1.0 - y * y)


class Sigmoid(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return backend.expit(a)

    def backward(self, g):  # d s(a) = s(a)(1 - s(a)) da
        y = self.output()
        return g * (y * (1.0 - y))

    def vjp(self, g):
        y = self._out
        return g * (y * (1.0 - y))


class Erf(Function):
    def forward(self, a):
        return backend.erf(a)

    def backward(self, g):  # d erf a = 2/sqrt(pi) e^(-a^2) da
        a = self.inputs[0]
        return g * exp(a * a * -1.0) * (2.0 / math.sqrt(math.pi))


# --- activations ------------------------------------------------------------------------------
class ReLU(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return xp.maximum(a, 0)

    def backward(self, g):  # 1 where a > 0
        return g * _const(self._out > 0)

    def vjp(self, g):
        # NOTE: g * mask is several times faster than xp.where(mask, g, 0) in NumPy.
        return g * (self._out > 0)


class LeakyReLU(Function):
    def forward(self, a, negative_slope):
        self.slope = negative_slope
        return xp.where(a > 0, a, a * negative_slope)

    def backward(self, g):  # 1 where a > 0, else the slope
        a = self.inputs[0].data
        return g * _const(xp.where(a > 0, 1.0, self.slope).astype(a.dtype)), None


class ELU(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a, alpha):
        self.alpha = alpha
        return xp.where(a > 0, a, alpha * xp.expm1(xp.minimum(a, 0)))

    def backward(self, g):  # 1 where a > 0, else alpha e^a = y + alpha
        y = self.output()
        return where(self._out > 0, g, g * (y + self.alpha)), None


class GELU(Function):
    def forward(self, a, approximate):
        self.approximate = approximate
        if approximate == "tanh":
            return 0.5 * a * (1.0 + xp.tanh(_SQRT_2_PI * (a + 0.044715 * a * a * a)))
        return 0.5 * a * (1.0 + backend.erf(a * _SQRT1_2))

    def backward(self, g):
        x = self.inputs[0]
        if self.approximate == "tanh":  # y = x/2 (1 + tanh u), u = c (x + 0.044715 x^3)
            t = tanh((x + x * x * x * 0.044715) * _SQRT_2_PI)
            du = (x * x * (3 * 0.044715) + 1.0) * _SQRT_2_PI
            return g * ((t + 1.0) * 0.5 + x * 0.5 * (1.0 - t * t) * du), None
        cdf = (erf(x * _SQRT1_2) + 1.0) * 0.5  # y = x Phi(x); y' = Phi(x) + x phi(x)
        pdf = exp(x * x * -0.5) * _INV_SQRT_2PI
        return g * (cdf + x * pdf), None


class SiLU(Function):
    def forward(self, a):
        return a * backend.expit(a)

    def backward(self, g):  # d(a s(a)) = s(a) (1 + a (1 - s(a))) da
        a = self.inputs[0]
        s = sigmoid(a)
        return g * (s * (a * (1.0 - s) + 1.0))


class Softplus(Function):
    def forward(self, a, beta, threshold):
        self.beta = beta
        z = a * beta
        self.linear = z > threshold
        return xp.where(self.linear, a, xp.logaddexp(0, z) / beta)

    def backward(self, g):  # d log(1 + e^(b a)) / b = s(b a) da; 1 where linear
        return g * where(self.linear, 1.0, sigmoid(self.inputs[0] * self.beta)), None, None


def exp(a) -> Tensor:
    """e ** a."""
    return Exp.apply(a)


def log(a) -> Tensor:
    """Natural logarithm."""
    return Log.apply(a)


def log1p(a) -> Tensor:
    """log(1 + a), accurate for small a."""
    return Log1p.apply(a)


def expm1(a) -> Tensor:
    """exp(a) - 1, accurate for small a."""
    return Expm1.apply(a)


def sqrt(a) -> Tensor:
    """Square root."""
    return Sqrt.apply(a)


def rsqrt(a) -> Tensor:
    """1 / sqrt(a)."""
    return Rsqrt.apply(a)


def abs(a) -> Tensor:
    """|a| (gradient sign(a), 0 at 0)."""
    return Abs.apply(a)


def sign(a) -> Tensor:
    """-1, 0 or 1; zero gradient."""
    return Sign.apply(a)


def sin(a) -> Tensor:
    """Sine."""
    return Sin.apply(a)


def cos(a) -> Tensor:
    """Cosine."""
    return Cos.apply(a)


def tanh(a) -> Tensor:
    """Hyperbolic tangent."""
    return Tanh.apply(a)


def sigmoid(a) -> Tensor:
    """Logistic sigmoid 1 / (1 + e^-a), without overflow at large |a|."""
    return Sigmoid.apply(a)


def erf(a) -> Tensor:
    """Gauss error function."""
    return Erf.apply(a)


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


# --- comparisons with gradients ----------------------------------------------------------------
def _tie_split(a, b, greater: bool):
    """Mask sending the gradient to the selected operand; ties split it evenly (as PyTorch does)."""
    av = a.data if isinstance(a, Tensor) else a
    bv = b.data if isinstance(b, Tensor) else b
    win = (av > bv) if greater else (av < bv)
    return win + 0.5 * (av == bv)


class Maximum(Function):
    def forward(self, a, b):
        return xp.maximum(a, b)

    def backward(self, g):
        a, b = self.inputs
        na, nb = self.needs_input_grad
        mask = _tie_split(a, b, True).astype(g.dtype)
        ga = sum_to(g * _const(mask), a.shape) if na else None
        gb = sum_to(g * _const(1.0 - mask), b.shape) if nb else None
        return ga, gb


class Minimum(Function):
    def forward(self, a, b):
        return xp.minimum(a, b)

    def backward(self, g):
        a, b = self.inputs
        na, nb = self.needs_input_grad
        mask = _tie_split(a, b, False).astype(g.dtype)
        ga = sum_to(g * _const(mask), a.shape) if na else None
        gb = sum_to(g * _const(1.0 - mask), b.shape) if nb else None
        return ga, gb


class Clamp(Function):
    def forward(self, a, lo, hi):
        self.lo, self.hi = lo, hi
        return xp.clip(a, lo, hi)

    def backward(self, g):  # 1 inside [lo, hi], 0 outside
        a = self.inputs[0].data
        inside = xp.ones(a.shape, dtype=bool)
        if self.lo is not None:
            inside &= a >= self.lo
        if self.hi is not None:
            inside &= a <= self.hi
        return g * _const(inside), None, None


class Where(Function):
    uses_inputs = False

    def forward(self, cond, a, b):
        self.cond = cond
        return xp.where(cond, a, b)

    def backward(self, g):
        _, a, b = self.inputs
        _, na, nb = self.needs_input_grad
        ga = sum_to(where(self.cond, g, 0.0), a.shape) if na else None
        gb = sum_to(where(self.cond, 0.0, g), b.shape) if nb else None
        return None, ga, gb


def maximum(a, b) -> Tensor:
    """Elementwise maximum (ties share the gradient)."""
    return Maximum.apply(a, b)


def minimum(a, b) -> Tensor:
    """Elementwise minimum (ties share the gradient)."""
    return Minimum.apply(a, b)


def clamp(a, min=None, max=None) -> Tensor:
    """Limit values to [min, max]; tensor bounds go through maximum/minimum."""
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = a
        if max is not None:
            out = minimum(out, max)
        if min is not None:
            out = maximum(out, min)
        return out
    if min is None and max is None:
        raise ValueError("clamp: give min, max or both")
    return Clamp.apply(a, min, max)


def where(cond, a, b) -> Tensor:
    """a where cond is true, else b (cond carries no gradient)."""
    cond = cond.data if isinstance(cond, Tensor) else cond
    return Where.apply(cond, a, b)


define("exp", xp.exp, exp)
define("log", xp.log, log)
define("sin", xp.sin, sin)
define("cos", xp.cos, cos)
define("sign", xp.sign, sign)
define("tanh", xp.tanh, tanh)
define("sigmoid", backend.expit, sigmoid)
define("erf", backend.erf, erf)
define("where", xp.where, where)


# --- comparisons without gradients -------------------------------------------------------------------
def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    """|input - other| <= atol + rtol |other| elementwise (broadcasting); a boolean tensor, no gradient."""
    a = input.data if isinstance(input, Tensor) else xp.asarray(input)
    b = other.data if isinstance(other, Tensor) else xp.asarray(other)
    if rtol < 0 or atol < 0:
        raise ValueError(f"isclose: rtol and atol must be non-negative, got rtol={rtol}, atol={atol}")
    try:
        xp.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"isclose: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from None
    return _const(xp.asarray(xp.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)))


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """True when ``isclose`` holds for every element (a Python bool, as in PyTorch)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).data.all())


# --- copies and conversions ---------------------------------------------------------------------
class Clone(Function):
    uses_inputs = False

    def forward(self, a):
        return a.copy()

    def backward(self, g):
        return g


class Cast(Function):
    uses_inputs = False

    def forward(self, a, dtype):
        return a.astype(dtype)

    def backward(self, g):
        return g.astype(self.inputs[0].dtype), None


class ToDevice(Function):
    uses_inputs = False

    def forward(self, a, device):
        return backend.to_device(a, device)

    def backward(self, g):
        return to_device(g, self.inputs[0].device), None


def clone(a: Tensor) -> Tensor:
    """A copy of the values that stays in the graph."""
    return Clone.apply(a)


def astype(a: Tensor, dtype) -> Tensor:
    """Cast to ``dtype``; casts to integer or boolean types leave the graph."""
    dtype = xp.dtype(dtype)
    if dtype == a.dtype:
        return a
    if dtype.kind not in "fc":
        return Tensor._make(a.data.astype(dtype), None)
    return Cast.apply(a, dtype)


def to_device(a: Tensor, device: str) -> Tensor:
    """Move to another device, keeping the graph."""
    return ToDevice.apply(a, device)


__all__ = ["abs", "add", "allclose", "astype", "clamp", "clone", "cos", "div", "elu", "erf", "exp", "expm1", "floor_divide", "gelu", "isclose", "leaky_relu", "log", "log1p", "maximum", "minimum", "mul", "neg", "pow", "reciprocal", "relu", "remainder", "rsqrt", "sigmoid", "sign", "silu", "sin", "softplus", "sqrt", "square", "sub", "tanh", "to_device", "where"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["to_device", "abs", "add", "allclose", "astype", "clamp", "clone", "cos", "div", "elu", "erf", "exp", "expm1", "floor_divide", "gelu", "isclose", "leaky_relu", "log", "log1p", "maximum", "minimum", "mul", "neg", "pow", "reciprocal", "relu", "remainder", "rsqrt", "sigmoid", "sign", "silu", "sin", "softplus", "sqrt", "square", "sub", "tanh"]
