"""Differentiable primitives, grouped by kind, and the Tensor methods that call them."""
from nerve.ops.elementwise import (
    abs, add, astype, clamp, clone, cos, div, elu, erf, exp, expm1, floor_divide, gelu, leaky_relu,
    log, log1p, maximum, minimum, mul, neg, pow, relu, remainder, rsqrt, sigmoid, sign, silu, sin,
    softplus, sqrt, sub, tanh, to_device, where,
)
from nerve.ops.index import index
from nerve.ops.linalg import matmul
from nerve.ops.reduce import mean, sum, sum_to
from nerve.ops.shape import (
    broadcast_to, expand, flatten, permute, reshape, squeeze, swapaxes, transpose, unsqueeze, view,
)
from nerve.tensor import Tensor

# NOTE: each name below becomes a Tensor method with the tensor as first argument (x.exp() == exp(x)).
_METHODS = (
    "abs", "add", "astype", "clamp", "clone", "elu", "gelu", "leaky_relu", "silu", "softplus",
    "remainder", "floor_divide", "where", "cos", "div", "exp", "expm1", "log", "log1p", "maximum",
    "minimum", "mul", "pow", "relu", "rsqrt", "sigmoid", "sign", "sin", "sqrt", "sub", "tanh", "erf",
    "matmul", "mean", "sum", "broadcast_to", "expand", "permute", "reshape", "swapaxes",
    "transpose", "view", "flatten", "squeeze", "unsqueeze",
)
for _name in _METHODS:
    setattr(Tensor, _name, globals()[_name])

__all__ = sorted({n for n in globals() if not n.startswith("_")} - {"Tensor"})
