"""Casts and PyTorch's type promotion for binary ops.

PyTorch promotes differently from NumPy: an integer tensor with a Python float, or integers divided, give
the default float dtype (not float64); an int32 tensor with a float32 tensor gives float32; a 0-d tensor
or a Python number never widens a tensor of its own category. ``promote`` casts the operands so that
NumPy's arithmetic then gives PyTorch's dtype.
"""
from __future__ import annotations

from functools import reduce

from nerve import backend
from nerve.autograd.function import Function
from nerve.backend import xp
from nerve.tensor import Tensor

#: PyTorch's categories: bool < integer < floating < complex
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


class Cast(Function):
    uses_inputs = False

    def forward(self, a, dtype):
        return a.astype(dtype)

    def backward(self, g, m):  # adjoint: cast back to the input's dtype (the real part for a real input)
        dtype = self.inputs[0].dtype
        if g.dtype.kind == "c" and dtype.kind != "c":
            g = m.real(g)
        return m.apply(Cast, g, dtype), None


def astype(a: Tensor, dtype) -> Tensor:
    """Cast to ``dtype`` (a dtype or its name); casts to integer or boolean types leave the graph."""
    dtype = backend.dtype(dtype)
    if dtype == a.dtype:
        return a
    if dtype.kind not in "fc":
        return Tensor._make(a.data.astype(dtype), None)
    return Cast.apply(a, dtype)


def type_as(a: Tensor, other) -> Tensor:
    """``a`` cast to ``other``'s dtype."""
    return astype(a, other.dtype)


def _default_complex():
    return xp.dtype(xp.complex128 if backend.get_default_dtype() == xp.float64 else xp.complex64)


def _classify(x) -> tuple:
    """(category, priority, dtype): priority 2 for a tensor with dimensions, 1 for a 0-d one, 0 for a number."""
    data = x.data if isinstance(x, Tensor) else x
    if hasattr(data, "dtype") and hasattr(data, "ndim") and not isinstance(data, (bool, int, float, complex)):
        return _CATEGORY[data.dtype.kind], 2 if data.ndim else 1, data.dtype
    if isinstance(x, bool):
        return 0, 0, xp.dtype(xp.bool_)
    if isinstance(x, int):
        return 1, 0, xp.dtype(xp.int64)
    if isinstance(x, float):
        return 2, 0, backend.get_default_dtype()
    if isinstance(x, complex):
        return 3, 0, _default_complex()
    raise TypeError(f"result_type: unsupported operand {x!r} of type {type(x).__name__}")


def promote_types(type1, type2):
    """The smallest dtype both dtypes cast to safely, as ``torch.promote_types`` (int with float: the float)."""
    t1, t2 = xp.dtype(type1), xp.dtype(type2)
    c1, c2 = _CATEGORY[t1.kind], _CATEGORY[t2.kind]
    if c1 != c2:
        return t1 if c1 > c2 else t2
    return xp.promote_types(t1, t2)


def result_type(*operands):
    """The dtype PyTorch gives a binary op on ``operands`` (tensors, arrays or Python numbers).

    The highest category present wins; within it, tensors with dimensions outrank 0-d tensors, which
    outrank Python numbers, and only the top-ranked ones are promoted together.
    """
    kinds = [_classify(x) for x in operands]
    top = max(c for c, _, _ in kinds)
    best = max(p for c, p, _ in kinds if c == top)
    if top == 3 and best == 0 and any(c == 2 and p and d == xp.float64 for c, p, d in kinds):
        return xp.dtype(xp.complex128)  # a complex number with a float64 tensor: complex128, as PyTorch
    return reduce(xp.promote_types, [d for c, p, d in kinds if c == top and p == best])


def _cast_to(x, dtype):
    if isinstance(x, Tensor):
        return astype(x, dtype) if x.data.dtype != dtype else x
    if hasattr(x, "dtype") and hasattr(x, "astype") and x.dtype != dtype:
        return x.astype(dtype)
    return x


def promote(a, b) -> tuple:
    """``a`` and ``b`` cast so that NumPy's arithmetic on them gives PyTorch's result dtype.

    Python numbers stay as they are: NumPy treats them as weak, so they take the tensor's dtype.
    """
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            if a.data.dtype == b.data.dtype:
                return a, b
        elif b.__class__ in (int, float) and a.data.dtype.kind == "f":
            return a, b
    elif isinstance(b, Tensor) and a.__class__ in (int, float) and b.data.dtype.kind == "f":
        return a, b
    want = result_type(a, b)
    return _cast_to(a, want), _cast_to(b, want)


def floating(x):
    """``x`` itself when floating (or not a tensor), else cast to the default dtype, as PyTorch's float ops do."""
    if isinstance(x, Tensor) and x.data.dtype.kind not in "fc":
        return astype(x, backend.get_default_dtype())
    return x


def promote_floating(a, b) -> tuple:
    """``promote``, then integer or boolean results go to the default dtype (true division, atan2, ...)."""
    a, b = promote(a, b)
    t = a if isinstance(a, Tensor) else b
    if isinstance(t, Tensor) and t.data.dtype.kind not in "fc":
        dtype = backend.get_default_dtype()
        return _cast_to(a, dtype), _cast_to(b, dtype)
    return a, b


__all__ = ["astype", "promote_types", "result_type"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["astype", "type_as"]
