"""Elementwise primitives: arithmetic, transcendental functions, comparisons with gradients, casts.

Binary ops broadcast as NumPy does; their rules sum the gradient back to each input's shape with
``m.sum_to``. This module also registers the rule-namespace helpers other ops' rules use (``m.exp``, ...).
"""
from __future__ import annotations

import math

from nerve import backend
from nerve.autograd.function import Function, ShapeError
from nerve.autograd.rule_math import define
from nerve.backend import xp
from nerve.ops.dtypes import floating, promote, promote_floating
from nerve.tensor import Tensor

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


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


def _conj(x):
    """x conjugated when complex (PyTorch's convention: the gradient of a product takes the other factor's
    conjugate); real values pass unchanged."""
    if isinstance(x, complex):
        return x.conjugate()
    dtype = getattr(x, "dtype", None)
    return x.conj() if dtype is not None and dtype.kind == "c" else x


def _conj_for(g, x):
    """``x`` conjugated when the gradient is complex: a holomorphic f's rule is g * conj(f'(z)) (PyTorch)."""
    return _conj(x) if g.dtype.kind == "c" else x


class Mul(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, g, m):  # d(ab) = b da + a db (conjugated factors for complex values)
        a, b = m.inputs(self)
        if g.dtype.kind == "c":  # NOTE: a complex factor makes the product, so g, complex
            a, b = _conj(a), _conj(b)
        na, nb = self.needs_input_grad
        return (m.sum_to(g * b, a.shape) if na else None, m.sum_to(g * a, b.shape) if nb else None)


class Div(Function):
    saves_output = True

    def forward(self, a, b):
        return a / b

    def backward(self, g, m):  # d(a/b) = da / b - (a/b) db / b (conjugated for complex values)
        a, b = m.inputs(self)
        na, nb = self.needs_input_grad
        complex_ = g.dtype.kind == "c"
        if complex_:
            b = _conj(b)
        ga = m.sum_to(g / b, a.shape) if na else None
        gb = m.sum_to(-(g * (_conj(m.output(self)) if complex_ else m.output(self))) / b, b.shape) if nb else None
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

    def backward(self, g, m):  # d(a^p) = p a^(p-1) da; 0 for p = 0 (also at a = 0 and +-inf, as PyTorch)
        a = _conj_for(g, m.inputs(self)[0])
        p = _conj_for(g, self.p)
        if p == 0:
            return g * 0.0, None
        return (g * a * 2.0 if p == 2 else g * (a ** (p - 1)) * p), None


class Pow(Function):
    saves_output = True

    def forward(self, a, b):
        return a ** b

    def backward(self, g, m):  # d(a^b) = b a^(b-1) da + a^b ln(a) db
        # NOTE: as PyTorch: the da term is 0 where b = 0 (0^0 and inf^0 included); ln a is taken as 0 where
        # a <= 0, so d(0^b)/db = 0 (PyTorch: 0 for b >= 0; NaN for a < 0 where nerve gives 0).
        a, b = m.inputs(self)
        na, nb = self.needs_input_grad
        ga = None
        if na:
            with xp.errstate(divide="ignore", invalid="ignore"):
                ga = m.sum_to(m.where(b == 0, 0.0, g * b * a ** (b - 1)), self.inputs[0].shape)
        gb = m.sum_to(g * m.output(self) * m.log(m.where(a > 0, a, 1.0)), self.inputs[1].shape) if nb else None
        return ga, gb


def add(a, b, *, alpha=1) -> Tensor:
    """a + alpha * b with broadcasting and PyTorch's type promotion."""
    a, b = promote(a, b)
    return Add.apply(a, b if alpha == 1 else b * alpha)


def sub(a, b, *, alpha=1) -> Tensor:
    """a - alpha * b with broadcasting and PyTorch's type promotion."""
    a, b = promote(a, b)
    return Sub.apply(a, b if alpha == 1 else b * alpha)


def mul(a, b) -> Tensor:
    """a * b with broadcasting and PyTorch's type promotion."""
    a, b = promote(a, b)
    return Mul.apply(a, b)


def div(a, b, *, rounding_mode: str | None = None) -> Tensor:
    """a / b with broadcasting; integers divide to the default float dtype, as in PyTorch.

    ``rounding_mode`` "trunc" rounds the quotient toward zero, "floor" down (integers stay integers);
    both are piecewise constant, so their gradient is 0.
    """
    if rounding_mode is None:
        a, b = promote_floating(a, b)
        return Div.apply(a, b)
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    a, b = promote(a, b)
    return RoundedDiv.apply(a, b, rounding_mode == "floor")


def true_divide(a, b) -> Tensor:
    """a / b (PyTorch's alias of ``div``)."""
    return div(a, b)


class RoundedDiv(Function):
    """a / b rounded toward zero or down; integer operands divide exactly (no float round trip)."""

    uses_inputs = False

    def forward(self, a, b, floor):
        if xp.result_type(a, b).kind in "iub":
            if floor:
                return xp.floor_divide(a, b)
            q = xp.floor_divide(a, b)
            return q + ((q < 0) & (q * b != a))  # NOTE: floor rounds negative inexact quotients one too low
        with xp.errstate(divide="ignore", invalid="ignore"):
            return xp.floor(a / b) if floor else xp.trunc(a / b)

    def backward(self, g, m):  # piecewise constant: 0 for both operands
        a, b, _ = self.inputs
        na, nb, _ = self.needs_input_grad
        return (m.sum_to(g * 0.0, a.shape) if na else None, m.sum_to(g * 0.0, b.shape) if nb else None, None)


def neg(a) -> Tensor:
    """-a."""
    return Neg.apply(a)


def pow(a, b) -> Tensor:
    """a ** b with PyTorch's type promotion; a scalar exponent takes the cheaper path."""
    a, b = promote(a, b)
    if isinstance(a, Tensor) and not isinstance(b, Tensor) and xp.ndim(b) == 0:
        return PowScalar.apply(a, b)
    if isinstance(a, (int, float)) and isinstance(b, Tensor) and b.dtype.kind == "f":
        # NOTE: a Python base becomes an array of b's dtype on b's device, so the rule's log(a) lands there too
        a = backend.to_device(xp.asarray(a, dtype=b.dtype), b.device)
    return Pow.apply(a, b)


def square(a) -> Tensor:
    """a * a, elementwise."""
    return PowScalar.apply(a, 2)


def reciprocal(a) -> Tensor:
    """1 / a, elementwise."""
    return PowScalar.apply(a, -1)


def floor_divide(a, b) -> Tensor:
    """a // b (rounded down); piecewise constant, so it carries no gradient."""
    a, b = promote(a, b)
    a = a.data if isinstance(a, Tensor) else a
    b = b.data if isinstance(b, Tensor) else b
    return Tensor._make(xp.asarray(xp.floor_divide(a, b)), None)


class Remainder(Function):
    def forward(self, a, b):
        return xp.remainder(a, b)

    def backward(self, g, m):  # a mod b = a - b floor(a/b): da - floor(a/b) db
        a, b = m.inputs(self)
        na, nb = self.needs_input_grad
        return (m.sum_to(g, self.inputs[0].shape) if na else None,
                m.sum_to(-(g * (a // b)), self.inputs[1].shape) if nb else None)


def remainder(a, b) -> Tensor:
    """a % b (the sign follows b, as in Python)."""
    a, b = promote(a, b)
    return Remainder.apply(a, b)


# --- unary math -------------------------------------------------------------------------------
class Exp(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return xp.exp(a)

    def backward(self, g, m):  # d e^a = e^a da
        return g * _conj_for(g, m.output(self))


class Log(Function):
    def forward(self, a):
        return xp.log(a)

    def backward(self, g, m):  # d ln a = da / a
        return g / _conj_for(g, m.inputs(self)[0])


class Log1p(Function):
    def forward(self, a):
        return xp.log1p(a)

    def backward(self, g, m):  # d ln(1+a) = da / (1+a)
        return g / (_conj_for(g, m.inputs(self)[0]) + 1.0)


class Expm1(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return xp.expm1(a)

    def backward(self, g, m):  # d(e^a - 1) = e^a da
        return g * (_conj_for(g, m.output(self)) + 1.0)


class Sqrt(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return xp.sqrt(a)

    def backward(self, g, m):  # d sqrt(a) = da / (2 sqrt(a))
        return g * 0.5 / _conj_for(g, m.output(self))


class Rsqrt(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return 1.0 / xp.sqrt(a)

    def backward(self, g, m):  # d a^(-1/2) = -1/2 a^(-3/2) da
        y = _conj_for(g, m.output(self))
        return g * (y * y * y) * -0.5


class Abs(Function):
    def forward(self, a):
        return xp.abs(a)

    def backward(self, g, m):  # d|a| = sign(a) da
        return g * m.sign(m.inputs(self)[0])


class Sign(Function):
    uses_inputs = False

    def forward(self, a):
        return xp.sign(a)

    def backward(self, g, m):  # piecewise constant: 0
        return g * 0.0


class Sin(Function):
    def forward(self, a):
        return xp.sin(a)

    def backward(self, g, m):  # d sin a = cos a da
        return g * m.cos(_conj_for(g, m.inputs(self)[0]))


class Cos(Function):
    def forward(self, a):
        return xp.cos(a)

    def backward(self, g, m):  # d cos a = -sin a da
        return -(g * m.sin(_conj_for(g, m.inputs(self)[0])))


class Tanh(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return xp.tanh(a)

    def backward(self, g, m):  # d tanh a = (1 - tanh^2 a) da
        y = _conj_for(g, m.output(self))
        return g * (1.0 - y * y)


class Sigmoid(Function):
    uses_inputs = False
    saves_output = True

    def forward(self, a):
        return backend.expit(a)

    def backward(self, g, m):  # d s(a) = s(a)(1 - s(a)) da
        y = _conj_for(g, m.output(self))
        return g * (y * (1.0 - y))


class Erf(Function):
    def forward(self, a):
        return backend.erf(a)

    def backward(self, g, m):  # d erf a = 2/sqrt(pi) e^(-a^2) da
        a = m.inputs(self)[0]
        return g * m.exp(a * -a) * _TWO_OVER_SQRT_PI


def exp(a) -> Tensor:
    """e ** a."""
    return Exp.apply(floating(a))


def log(a) -> Tensor:
    """Natural logarithm."""
    return Log.apply(floating(a))


def log1p(a) -> Tensor:
    """log(1 + a), accurate for small a."""
    return Log1p.apply(floating(a))


def expm1(a) -> Tensor:
    """exp(a) - 1, accurate for small a."""
    return Expm1.apply(floating(a))


def sqrt(a) -> Tensor:
    """Square root."""
    return Sqrt.apply(floating(a))


def rsqrt(a) -> Tensor:
    """1 / sqrt(a)."""
    return Rsqrt.apply(floating(a))


def abs(a) -> Tensor:
    """|a| (gradient sign(a), 0 at 0)."""
    return Abs.apply(a)


def sign(a) -> Tensor:
    """-1, 0 or 1; zero gradient."""
    return Sign.apply(a)


def sin(a) -> Tensor:
    """Sine."""
    return Sin.apply(floating(a))


def cos(a) -> Tensor:
    """Cosine."""
    return Cos.apply(floating(a))


def tanh(a) -> Tensor:
    """Hyperbolic tangent."""
    return Tanh.apply(floating(a))


def sigmoid(a) -> Tensor:
    """Logistic sigmoid 1 / (1 + e^-a), without overflow at large |a|."""
    return Sigmoid.apply(floating(a))


def erf(a) -> Tensor:
    """Gauss error function."""
    return Erf.apply(floating(a))


# --- comparisons with gradients ----------------------------------------------------------------
class Extremum(Function):
    """Elementwise maximum (``greater``) or minimum of two operands."""

    def forward(self, a, b, greater):
        self.greater = greater
        return xp.maximum(a, b) if greater else xp.minimum(a, b)

    def backward(self, g, m):  # g goes to the selected operand; ties split it evenly (as PyTorch does)
        a, b, _ = m.inputs(self)
        na, nb, _ = self.needs_input_grad
        ga = m.where(a > b if self.greater else a < b, g, m.where(a == b, g * 0.5, 0.0))
        return (m.sum_to(ga, self.inputs[0].shape) if na else None,
                m.sum_to(g - ga, self.inputs[1].shape) if nb else None, None)


class Clamp(Function):
    saves_output = True

    def forward(self, a, lo, hi):
        return xp.clip(a, lo, hi)

    def backward(self, g, m):  # 1 inside [lo, hi] (where clipping left a as it was), 0 outside
        return m.where(m.output(self) == m.inputs(self)[0], g, 0.0), None, None


class Where(Function):
    uses_inputs = False

    def forward(self, cond, a, b):
        self.cond = cond
        return xp.where(cond, a, b)

    def backward(self, g, m):  # g where cond to a, elsewhere to b
        _, na, nb = self.needs_input_grad
        return (None, m.sum_to(m.where(self.cond, g, 0.0), self.inputs[1].shape) if na else None,
                m.sum_to(m.where(self.cond, 0.0, g), self.inputs[2].shape) if nb else None)


class Hypot(Function):
    saves_output = True

    def forward(self, a, b):
        return xp.hypot(a, b)

    def backward(self, g, m):  # d sqrt(a^2 + b^2) = (a da + b db) / h
        a, b = m.inputs(self)
        na, nb = self.needs_input_grad
        gh = g / m.output(self)
        return (m.sum_to(gh * a, a.shape) if na else None, m.sum_to(gh * b, b.shape) if nb else None)


def hypot(a, b) -> Tensor:
    """sqrt(a^2 + b^2) elementwise, without overflow (gradient a/h, b/h; undefined at the origin)."""
    a, b = promote_floating(a, b)
    return Hypot.apply(a, b)


def maximum(a, b) -> Tensor:
    """Elementwise maximum (ties share the gradient)."""
    try:
        return Extremum.apply(*promote(a, b), True)
    except ValueError as exc:  # NOTE: the error names the function called, not the class it shares
        raise type(exc)(str(exc).replace("extremum", "maximum", 1)) from None


def minimum(a, b) -> Tensor:
    """Elementwise minimum (ties share the gradient)."""
    try:
        return Extremum.apply(*promote(a, b), False)
    except ValueError as exc:  # NOTE: the error names the function called, not the class it shares
        raise type(exc)(str(exc).replace("extremum", "minimum", 1)) from None


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


def where(cond, a=None, b=None):
    """a where cond is true, else b (cond carries no gradient); ``where(cond)`` alone is
    ``nonzero(cond, as_tuple=True)``, as in PyTorch."""
    cond = cond.data if isinstance(cond, Tensor) else cond
    if a is None and b is None:
        return tuple(Tensor._make(i.astype(xp.int64), None) for i in xp.nonzero(xp.atleast_1d(cond)))
    return Where.apply(cond, a, b)


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
        raise ShapeError(f"isclose: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from None
    return Tensor._make(xp.asarray(xp.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)), None)


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """True when ``isclose`` holds for every element (a Python bool, as in PyTorch)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).data.all())


# --- copies and conversions ---------------------------------------------------------------------
class Clone(Function):
    uses_inputs = False

    def forward(self, a):
        return a.copy()

    def backward(self, g, m):  # identity
        return g


class ToDevice(Function):
    uses_inputs = False

    def forward(self, a, device):
        return backend.to_device(a, device)

    def backward(self, g, m):  # adjoint: move back to the input's device
        return m.apply(ToDevice, g, self.inputs[0].device), None


def clone(a: Tensor, *, memory_format=None) -> Tensor:
    """A copy of the values that stays in the graph (``memory_format`` is accepted: arrays are C-ordered)."""
    return Clone.apply(a)


def to_device(a: Tensor, device: str) -> Tensor:
    """Move to another device, keeping the graph."""
    return ToDevice.apply(a, device)


# helpers for derivative rules anywhere in ops (m.exp, m.where, ...): raw arrays first, Tensors second
define("exp", xp.exp, exp)
define("log", xp.log, log)
define("sin", xp.sin, sin)
define("cos", xp.cos, cos)
define("sign", xp.sign, sign)
define("tanh", xp.tanh, tanh)
define("sigmoid", backend.expit, sigmoid)
define("erf", backend.erf, erf)
define("where", xp.where, where)

__all__ = ["abs", "add", "hypot",
           "allclose", "clamp", "clone", "cos", "div", "erf", "exp", "expm1", "floor_divide",
           "isclose", "log", "log1p", "maximum", "minimum", "mul", "neg", "pow", "reciprocal", "remainder", "rsqrt",
           "sigmoid", "sign", "sin", "sqrt", "square", "sub", "tanh", "to_device", "true_divide", "where"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["to_device", "abs", "add", "hypot",
           "allclose", "clamp", "clone", "cos", "div", "erf", "exp", "expm1",
           "floor_divide", "isclose", "log", "log1p", "maximum", "minimum", "mul", "neg", "pow", "reciprocal",
           "remainder", "rsqrt", "sigmoid", "sign", "sin", "sqrt", "square", "sub", "tanh", "true_divide"]
