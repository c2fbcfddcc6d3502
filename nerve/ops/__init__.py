"""Differentiable primitives, one module per family, and the one table that binds Tensor's operators
and methods to them.

Each module lists its public functions in ``__all__`` and those that are also Tensor methods in
``METHODS`` (``x.exp()`` is ``exp(x)``); this file re-exports the first and binds the second, with the
operators (``x + y`` is ``add(x, y)``) and PyTorch's in-place variants (``x.exp_()`` writes ``exp(x)`` into
``x``). ``nerve.tensor`` holds no math and imports none of this.
"""
from importlib import import_module

from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.tensor import Tensor

FAMILIES = ("broadcast", "dtypes", "elementwise", "elementwise_math", "activation", "reduce", "shape", "index",
            "selection", "layout", "cumulative", "sampling", "linalg", "conv", "pool", "loss",
            "normalization", "embedding", "attention", "recurrent", "special", "contraction", "decomp", "spectral",
            "numeric", "fold", "ctc")
_modules = [import_module(f"nerve.ops.{name}") for name in FAMILIES]
for _module in _modules:
    globals().update({name: getattr(_module, name) for name in _module.__all__})
__all__ = sorted({name for m in _modules for name in m.__all__})


def _reflected(op):
    def method(self, other):
        return op(other, self)
    method.__name__ = f"r{op.__name__}"
    return method


# NOTE: operators are the op functions themselves (no extra frame); reflected ones swap the operands.
_OPERATORS = {
    "__add__": add, "__radd__": _reflected(add), "__sub__": sub, "__rsub__": _reflected(sub),  # noqa: F821
    "__mul__": mul, "__rmul__": _reflected(mul), "__truediv__": div, "__rtruediv__": _reflected(div),  # noqa: F821
    "__floordiv__": floor_divide, "__rfloordiv__": _reflected(floor_divide),  # noqa: F821
    "__mod__": remainder, "__rmod__": _reflected(remainder), "__pow__": pow, "__rpow__": _reflected(pow),  # noqa: F821
    "__matmul__": matmul, "__rmatmul__": _reflected(matmul),  # noqa: F821
    "__neg__": neg, "__abs__": abs, "__getitem__": index,  # noqa: F821
    "__lshift__": bitwise_left_shift, "__rlshift__": _reflected(bitwise_left_shift),  # noqa: F821
    "__rshift__": bitwise_right_shift, "__rrshift__": _reflected(bitwise_right_shift),  # noqa: F821
    "__rand__": _reflected(bitwise_and), "__ror__": _reflected(bitwise_or),  # noqa: F821
    "__rxor__": _reflected(bitwise_xor),  # noqa: F821
}
for _name, _fn in _OPERATORS.items():
    setattr(Tensor, _name, _fn)
for _module in _modules:
    for _name in _module.METHODS:
        setattr(Tensor, _name, getattr(_module, _name))
Tensor.real = property(real, doc="The real part (the tensor itself when real).")  # noqa: F821
Tensor.imag = property(imag, doc="The imaginary part of a complex tensor.")  # noqa: F821


# --- PyTorch's in-place variants: x.exp_() writes exp(x) into x (ops whose in-place method Tensor lacks) ---------
_INPLACE = ["abs", "neg", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh", "sigmoid",
            "floor", "ceil", "round", "trunc", "frac", "sign", "reciprocal", "square", "pow", "remainder", "fmod",
            "clamp_min", "clamp_max", "clip", "lerp", "addcmul", "addcdiv", "masked_fill", "scatter", "scatter_add",
            "scatter_reduce", "index_add", "index_fill", "index_copy", "masked_scatter", "atan2", "hypot", "copysign",
            "logit", "xlogy", "floor_divide", "true_divide", "relu", "logical_not", "bitwise_not", "exp2", "log2",
            "log10", "erf", "asin", "acos", "atan", "sinh", "cosh"]
_RESHAPING = ["squeeze", "unsqueeze", "t", "transpose", "swapaxes"]


def _inplace_method(op, name: str, reshaping: bool):
    def method(self, *args, **kwargs):
        self._check_inplace(name)
        with no_grad():
            out = op(self, *args, **kwargs)
        if reshaping:
            self.data = out.data
            return self
        if out.shape != self.shape:
            raise ShapeError(f"{name}: the result of shape {tuple(out.shape)} does not fit the tensor of shape "  # noqa: F821
                             f"{tuple(self.shape)} it is written into")
        try:
            xp.copyto(self.data, out.data, casting="same_kind")
        except TypeError:
            raise RuntimeError(f"{name}: the result's dtype {out.dtype} cannot be written into a tensor of dtype "
                               f"{self.dtype}") from None
        return self
    method.__name__ = name
    method.__doc__ = f"In-place ``{op.__name__}``: the result is written into this tensor."
    return method


for _name in _INPLACE + _RESHAPING:
    if not hasattr(Tensor, _name + "_"):
        setattr(Tensor, _name + "_", _inplace_method(globals()[_name], _name + "_", _name in _RESHAPING))
