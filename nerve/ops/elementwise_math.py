"""More elementwise primitives: the rest of trigonometry, logs and exponentials in other bases, rounding,
fmod/atan2/copysign/logaddexp/lerp, and the ops without gradients (tests, logical and bitwise ops,
comparisons as functions and methods).

Unary float ops take integer tensors to the default dtype, binary ones promote as PyTorch does
(``nerve.ops.dtypes``). Rounding ops are piecewise constant: their gradient is 0, as in PyTorch.
"""
from __future__ import annotations

import math

from nerve.autograd.function import Function
from nerve.backend import xp
from nerve.ops.dtypes import floating, promote, promote_floating
from nerve.ops import elementwise as _elementwise
from nerve.ops.elementwise import clamp, maximum, minimum, where
from nerve.tensor import Tensor

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


# --- trigonometric and hyperbolic -------------------------------------------------------------------
class Tan(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return xp.tan(a)

    def backward(self, g, m):  # d tan a = (1 + tan^2 a) da
        y = m.output(self)
        return g * (1.0 + y * y)


class Asin(Function):
    def forward(self, a):
        return xp.arcsin(a)

    def backward(self, g, m):  # d asin a = da / sqrt(1 - a^2)
        a = m.inputs(self)[0]
        return g * (1.0 - a * a) ** -0.5


class Acos(Function):
    def forward(self, a):
        return xp.arccos(a)

    def backward(self, g, m):  # d acos a = -da / sqrt(1 - a^2)
        a = m.inputs(self)[0]
        return -(g * (1.0 - a * a) ** -0.5)


class Atan(Function):
    def forward(self, a):
        return xp.arctan(a)

    def backward(self, g, m):  # d atan a = da / (1 + a^2)
        a = m.inputs(self)[0]
        return g / (1.0 + a * a)


class Sinh(Function):
    def forward(self, a):
        return xp.sinh(a)

    def backward(self, g, m):  # d sinh a = cosh a da
        return g * m.apply(Cosh, m.inputs(self)[0])


class Cosh(Function):
    def forward(self, a):
        return xp.cosh(a)

    def backward(self, g, m):  # d cosh a = sinh a da
        return g * m.apply(Sinh, m.inputs(self)[0])


class Asinh(Function):
    def forward(self, a):
        return xp.arcsinh(a)

    def backward(self, g, m):  # d asinh a = da / sqrt(a^2 + 1)
        a = m.inputs(self)[0]
        return g * (a * a + 1.0) ** -0.5


class Acosh(Function):
    def forward(self, a):
        return xp.arccosh(a)

    def backward(self, g, m):  # d acosh a = da / sqrt(a^2 - 1)
        a = m.inputs(self)[0]
        return g * (a * a - 1.0) ** -0.5


class Atanh(Function):
    def forward(self, a):
        return xp.arctanh(a)

    def backward(self, g, m):  # d atanh a = da / (1 - a^2)
        a = m.inputs(self)[0]
        return g / (1.0 - a * a)


class Atan2(Function):
    def forward(self, a, b):
        return xp.arctan2(a, b)

    def backward(self, g, m):  # d atan2(a, b) = (b da - a db) / (a^2 + b^2)
        a, b = m.inputs(self)
        na, nb = self.needs_input_grad
        r = g / (a * a + b * b)
        return (m.sum_to(r * b, xp.shape(a)) if na else None, m.sum_to(-(r * a), xp.shape(b)) if nb else None)


def tan(a) -> Tensor:
    """Tangent."""
    return Tan.apply(floating(a))


def asin(a) -> Tensor:
    """Inverse sine, on [-1, 1]."""
    return Asin.apply(floating(a))


def acos(a) -> Tensor:
    """Inverse cosine, on [-1, 1]."""
    return Acos.apply(floating(a))


def atan(a) -> Tensor:
    """Inverse tangent."""
    return Atan.apply(floating(a))


def sinh(a) -> Tensor:
    """Hyperbolic sine."""
    return Sinh.apply(floating(a))


def cosh(a) -> Tensor:
    """Hyperbolic cosine."""
    return Cosh.apply(floating(a))


def asinh(a) -> Tensor:
    """Inverse hyperbolic sine."""
    return Asinh.apply(floating(a))


def acosh(a) -> Tensor:
    """Inverse hyperbolic cosine, on [1, inf)."""
    return Acosh.apply(floating(a))


def atanh(a) -> Tensor:
    """Inverse hyperbolic tangent, on (-1, 1)."""
    return Atanh.apply(floating(a))


def atan2(input, other) -> Tensor:
    """The angle of the point (other, input): atan(input / other) in the right quadrant."""
    return Atan2.apply(*promote_floating(input, other))


# --- logs and exponentials in other bases ---------------------------------------------------------
class Log2(Function):
    def forward(self, a):
        return xp.log2(a)

    def backward(self, g, m):  # d log2 a = da / (a ln 2)
        return g / (m.inputs(self)[0] * _LN2)


class Log10(Function):
    def forward(self, a):
        return xp.log10(a)

    def backward(self, g, m):  # d log10 a = da / (a ln 10)
        return g / (m.inputs(self)[0] * _LN10)


class Exp2(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return xp.exp2(a)

    def backward(self, g, m):  # d 2^a = 2^a ln 2 da
        return g * m.output(self) * _LN2


class LogAddExp(Function):
    saves_output = True

    def forward(self, a, b):
        return xp.logaddexp(a, b)

    def backward(self, g, m):  # d log(e^a + e^b) = e^(a - out) da + e^(b - out) db
        a, b = m.inputs(self)
        out = m.output(self)
        na, nb = self.needs_input_grad
        return (m.sum_to(g * m.exp(a - out), xp.shape(a)) if na else None,
                m.sum_to(g * m.exp(b - out), xp.shape(b)) if nb else None)


def log2(a) -> Tensor:
    """Base-2 logarithm."""
    return Log2.apply(floating(a))


def log10(a) -> Tensor:
    """Base-10 logarithm."""
    return Log10.apply(floating(a))


def exp2(a) -> Tensor:
    """2 ** a."""
    return Exp2.apply(floating(a))


def logaddexp(input, other) -> Tensor:
    """log(exp(input) + exp(other)) without overflow."""
    return LogAddExp.apply(*promote_floating(input, other))


# --- rounding, fmod, copysign, lerp ---------------------------------------------------------------
class Round(Function):
    """floor, ceil, trunc and round (half to even, to ``decimals`` places): piecewise constant."""

    uses_inputs = False

    def forward(self, a, how, decimals):
        if how == "round":
            return xp.round(a, decimals)
        return getattr(xp, how)(a)

    def backward(self, g, m):  # piecewise constant: 0
        return g * 0.0, None, None


def _round(a, how: str, decimals: int = 0) -> Tensor:
    if isinstance(a, Tensor) and a.data.dtype.kind in "iub":
        return a  # integers are already whole (PyTorch returns them unchanged)
    return Round.apply(a, how, decimals)


def floor(a) -> Tensor:
    """The largest integer <= a (gradient 0)."""
    return _round(a, "floor")


def ceil(a) -> Tensor:
    """The smallest integer >= a (gradient 0)."""
    return _round(a, "ceil")


def trunc(a) -> Tensor:
    """a rounded toward zero (gradient 0)."""
    return _round(a, "trunc")


fix = trunc


def round(a, decimals: int = 0) -> Tensor:
    """a rounded half to even, to ``decimals`` places (gradient 0)."""
    if not isinstance(decimals, int):
        raise TypeError(f"round: decimals must be an int, got {decimals!r}")
    return _round(a, "round", decimals)


def frac(a) -> Tensor:
    """The fractional part a - trunc(a), with a's sign (gradient 1)."""
    return a - trunc(a)


class Fmod(Function):
    def forward(self, a, b):
        return xp.fmod(a, b)

    def backward(self, g, m):  # fmod(a, b) = a - b trunc(a/b): da - trunc(a/b) db
        a, b = m.inputs(self)
        na, nb = self.needs_input_grad
        return (m.sum_to(g, xp.shape(a)) if na else None,
                m.sum_to(-(g * m.apply(Round, a / b, "trunc", 0)), xp.shape(b)) if nb else None)


def fmod(input, other) -> Tensor:
    """The C remainder of input / other: its sign follows input (``remainder``'s follows other)."""
    return Fmod.apply(*promote(input, other))


class CopySign(Function):
    def forward(self, a, b):
        self.sign = xp.where(xp.signbit(b), -1.0, 1.0).astype(xp.result_type(a, b))
        return xp.copysign(a, b)

    def backward(self, g, m):  # d(|a| s(b)) = sign(a) s(b) da (0 at a = 0, as PyTorch); 0 for b
        a, _ = m.inputs(self)
        na, nb = self.needs_input_grad
        b_shape = xp.shape(self.inputs[1])
        return (m.sum_to(g * m.sign(a) * self.sign, xp.shape(a)) if na else None,
                m.sum_to(g * 0.0, b_shape) if nb else None)


def copysign(input, other) -> Tensor:
    """|input| with the sign of other (the sign bit: -0.0 counts as negative)."""
    return CopySign.apply(*promote_floating(input, other))


def lerp(input, end, weight) -> Tensor:
    """input + weight * (end - input): linear interpolation (composed from add, sub and mul)."""
    return input + weight * (end - input)


def clip(input, min=None, max=None) -> Tensor:
    """NumPy's and PyTorch's alias of ``clamp``."""
    return clamp(input, min, max)


def clamp_min(input, min) -> Tensor:
    """``clamp(input, min=min)``."""
    return clamp(input, min=min)


def clamp_max(input, max) -> Tensor:
    """``clamp(input, max=max)``."""
    return clamp(input, max=max)


class XLogY(Function):
    def forward(self, a, b):
        self.zero, self.b_zero = a == 0, b == 0
        with xp.errstate(divide="ignore", invalid="ignore"):
            return xp.where(self.zero & ~xp.isnan(b), 0.0, a * xp.log(b)).astype(xp.result_type(a, b), copy=False)

    def backward(self, g, m):  # d(x log y) = log y dx + x / y dy
        # NOTE: both terms are taken as 0 where x = y = 0; elsewhere they are the derivative (PyTorch gives the
        # dx term 0 wherever x = 0, which is not the derivative there).
        a, b = m.inputs(self)
        na, nb = self.needs_input_grad
        both = self.zero & self.b_zero
        with xp.errstate(divide="ignore", invalid="ignore"):
            ga = m.sum_to(m.where(both, 0.0, g * m.log(b)), xp.shape(a)) if na else None
            gb = m.sum_to(m.where(both, 0.0, g * a / b), xp.shape(b)) if nb else None
        return ga, gb


def xlogy(input, other) -> Tensor:
    """input * log(other), 0 where input is 0 (even where other is 0)."""
    return XLogY.apply(*promote_floating(input, other))


def logit(input, eps: float | None = None) -> Tensor:
    """log(p / (1 - p)), with p clamped to [eps, 1 - eps] when ``eps`` is given."""
    p = floating(input)
    if eps is not None:
        p = clamp(p, eps, 1.0 - eps)
    return p.log() - (1.0 - p).log()


def sinc(input) -> Tensor:
    """sin(pi x) / (pi x), 1 at 0 (the value and gradient of the limit there)."""
    px = floating(input) * math.pi
    zero = px.data == 0
    safe = where(zero, 1.0, px)
    return where(zero, 1.0 - px * px / 6.0, safe.sin() / safe)


def addcmul(input, tensor1, tensor2, *, value=1) -> Tensor:
    """input + value * tensor1 * tensor2."""
    return input + (tensor1 * tensor2 if value == 1 else tensor1 * tensor2 * value)


def addcdiv(input, tensor1, tensor2, *, value=1) -> Tensor:
    """input + value * tensor1 / tensor2."""
    return input + (tensor1 / tensor2 if value == 1 else tensor1 / tensor2 * value)


def rsub(input, other, *, alpha=1) -> Tensor:
    """other - alpha * input."""
    return other - (input if alpha == 1 else input * alpha)


def deg2rad(input) -> Tensor:
    """Degrees to radians."""
    return floating(input) * (math.pi / 180.0)


def rad2deg(input) -> Tensor:
    """Radians to degrees."""
    return floating(input) * (180.0 / math.pi)


def positive(input) -> Tensor:
    """input itself (PyTorch's unary plus)."""
    return input


def signbit(input) -> Tensor:
    """True where the sign bit is set (negative values and -0.0)."""
    return _constant(xp.signbit(_raw(input)))


def fmax(input, other) -> Tensor:
    """Elementwise maximum that ignores NaN (NaN only where both are NaN)."""
    a, b = promote(input, other)
    return where(xp.isnan(_raw(a)), b, where(xp.isnan(_raw(b)), a, maximum(a, b)))


def fmin(input, other) -> Tensor:
    """Elementwise minimum that ignores NaN (NaN only where both are NaN)."""
    a, b = promote(input, other)
    return where(xp.isnan(_raw(a)), b, where(xp.isnan(_raw(b)), a, minimum(a, b)))


# --- ops without gradients: tests, logical, bitwise, comparisons ------------------------------------
def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _constant(array) -> Tensor:
    return Tensor._make(xp.asarray(array), None)


def isnan(input) -> Tensor:
    """True where the value is NaN."""
    return _constant(xp.isnan(_raw(input)))


def isinf(input) -> Tensor:
    """True where the value is +inf or -inf."""
    return _constant(xp.isinf(_raw(input)))


def isposinf(input) -> Tensor:
    """True where the value is +inf."""
    return _constant(xp.isposinf(_raw(input)))


def isneginf(input) -> Tensor:
    """True where the value is -inf."""
    return _constant(xp.isneginf(_raw(input)))


def isfinite(input) -> Tensor:
    """True where the value is neither infinite nor NaN."""
    return _constant(xp.isfinite(_raw(input)))


def logical_and(input, other) -> Tensor:
    """Elementwise AND of the truth values (nonzero is true); a boolean tensor."""
    return _constant(xp.logical_and(_raw(input), _raw(other)))


def logical_or(input, other) -> Tensor:
    """Elementwise OR of the truth values; a boolean tensor."""
    return _constant(xp.logical_or(_raw(input), _raw(other)))


def logical_xor(input, other) -> Tensor:
    """Elementwise XOR of the truth values; a boolean tensor."""
    return _constant(xp.logical_xor(_raw(input), _raw(other)))


def logical_not(input) -> Tensor:
    """Elementwise NOT of the truth values; a boolean tensor."""
    return _constant(xp.logical_not(_raw(input)))


def _bitwise(op: str, fn, *operands) -> Tensor:
    """A bitwise op on integer or boolean operands, in PyTorch's promoted dtype."""
    for x in operands:
        kind = x.data.dtype.kind if isinstance(x, Tensor) else xp.asarray(x).dtype.kind
        if kind not in "iub":
            what = x.dtype if isinstance(x, Tensor) else type(x).__name__
            raise TypeError(f"{op}: expected integer or boolean operands, got {what}")
    if len(operands) == 2:
        operands = promote(*operands)
    return _constant(fn(*[_raw(x) for x in operands]))


def bitwise_and(input, other) -> Tensor:
    """Elementwise AND of the bits (integer or boolean tensors)."""
    return _bitwise("bitwise_and", xp.bitwise_and, input, other)


def bitwise_or(input, other) -> Tensor:
    """Elementwise OR of the bits (integer or boolean tensors)."""
    return _bitwise("bitwise_or", xp.bitwise_or, input, other)


def bitwise_xor(input, other) -> Tensor:
    """Elementwise XOR of the bits (integer or boolean tensors)."""
    return _bitwise("bitwise_xor", xp.bitwise_xor, input, other)


def bitwise_not(input) -> Tensor:
    """Elementwise NOT of the bits (logical NOT on booleans)."""
    return _bitwise("bitwise_not", xp.invert, input)


def bitwise_left_shift(input, other) -> Tensor:
    """input << other on integer tensors."""
    return _bitwise("bitwise_left_shift", xp.left_shift, input, other)


def bitwise_right_shift(input, other) -> Tensor:
    """input >> other on integer tensors (arithmetic shift: the sign is kept)."""
    return _bitwise("bitwise_right_shift", xp.right_shift, input, other)


def _compare(fn, input, other) -> Tensor:
    return _constant(fn(_raw(input), _raw(other)))


def eq(input, other) -> Tensor:
    """input == other elementwise; a boolean tensor."""
    return _compare(xp.equal, input, other)


def ne(input, other) -> Tensor:
    """input != other elementwise; a boolean tensor."""
    return _compare(xp.not_equal, input, other)


def lt(input, other) -> Tensor:
    """input < other elementwise; a boolean tensor."""
    return _compare(xp.less, input, other)


def le(input, other) -> Tensor:
    """input <= other elementwise; a boolean tensor."""
    return _compare(xp.less_equal, input, other)


def gt(input, other) -> Tensor:
    """input > other elementwise; a boolean tensor."""
    return _compare(xp.greater, input, other)


def ge(input, other) -> Tensor:
    """input >= other elementwise; a boolean tensor."""
    return _compare(xp.greater_equal, input, other)


def equal(input, other) -> bool:
    """True when both have the same shape and the same values (a Python bool, as ``torch.equal``)."""
    a, b = _raw(input), _raw(other)
    return xp.shape(a) == xp.shape(b) and bool(xp.all(xp.equal(a, b)))


not_equal, less, less_equal, greater, greater_equal = ne, lt, le, gt, ge
# PyTorch's aliases
subtract, multiply, divide = _elementwise.sub, _elementwise.mul, _elementwise.div
negative, absolute, sgn = _elementwise.neg, _elementwise.abs, _elementwise.sign
arctan2 = atan2

_UNARY = ["tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log2", "log10", "exp2",
          "floor", "ceil", "trunc", "fix", "round", "frac", "isnan", "isinf", "isposinf", "isneginf", "isfinite",
          "logical_not", "bitwise_not", "logit", "sinc", "deg2rad", "rad2deg", "positive", "signbit", "negative",
          "absolute", "sgn"]
_BINARY = ["atan2", "arctan2", "logaddexp", "fmod", "copysign", "lerp", "clip", "clamp_min", "clamp_max",
           "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
           "bitwise_right_shift", "eq", "ne", "lt", "le", "gt", "ge", "equal", "not_equal", "less", "less_equal",
           "greater", "greater_equal", "xlogy", "addcmul", "addcdiv", "rsub", "fmax", "fmin", "subtract", "multiply",
           "divide"]
def nan_to_num(input, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None) -> Tensor:
    """NaN, +inf and -inf replaced by ``nan``, ``posinf`` and ``neginf`` (default: the dtype's largest and
    smallest finite values); the gradient passes where the value was finite and is 0 where it was replaced."""
    x = floating(input)
    info = xp.finfo(x.data.dtype)
    hi = info.max if posinf is None else posinf
    lo = info.min if neginf is None else neginf
    return where(Tensor._make(xp.isnan(x.data), None), nan,
                 where(Tensor._make(xp.isposinf(x.data), None), hi,
                       where(Tensor._make(xp.isneginf(x.data), None), lo, x)))


def heaviside(input, values) -> Tensor:
    """0 where input < 0, ``values`` where input == 0, 1 where input > 0 (no gradient, as in PyTorch)."""
    a = input.data if isinstance(input, Tensor) else xp.asarray(input)
    v = values.data if isinstance(values, Tensor) else xp.asarray(values)
    return Tensor._make(xp.heaviside(a, v).astype(xp.result_type(a, v)), None)


__all__ = _UNARY + _BINARY + ["nan_to_num", "heaviside"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = _UNARY + _BINARY + ["nan_to_num", "heaviside"]
