"""Differentiable primitives, grouped by kind, and the Tensor methods that call them.

Each module lists its public functions in ``__all__`` and those that are also Tensor methods in
``METHODS``; this file re-exports the first and binds the second.
"""
from nerve.ops import attention as _attention, conv as _conv
from nerve.ops import elementwise as _elementwise, index as _index, linalg as _linalg
from nerve.ops import nn_ops as _nn_ops, reduce as _reduce, shape as _shape
from nerve.ops import recurrent as _recurrent
from nerve.ops.attention import *  # noqa: F401,F403
from nerve.ops.conv import *  # noqa: F401,F403
from nerve.ops.elementwise import *  # noqa: F401,F403
from nerve.ops.index import *  # noqa: F401,F403
from nerve.ops.linalg import *  # noqa: F401,F403
from nerve.ops.nn_ops import *  # noqa: F401,F403
from nerve.ops.recurrent import *  # noqa: F401,F403
from nerve.ops.reduce import *  # noqa: F401,F403
from nerve.ops.shape import *  # noqa: F401,F403
from nerve.tensor import Tensor

_MODULES = (_conv, _attention, _elementwise, _index, _linalg, _nn_ops, _recurrent, _reduce, _shape)
__all__ = sorted({name for m in _MODULES for name in m.__all__})

# NOTE: x.exp() is exp(x): each module's METHODS become Tensor methods with the tensor first.
for _module in _MODULES:
    for _name in _module.METHODS:
        setattr(Tensor, _name, getattr(_module, _name))
