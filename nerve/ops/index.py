"""Indexing primitives: basic and advanced indexing with a scatter-add backward."""
from __future__ import annotations

from nerve.autograd.function import Function
from nerve.backend import xp
from nerve.tensor import Tensor


def _unwrap_key(key):
    if isinstance(key, Tensor):
        return key.data
    if isinstance(key, tuple):
        return tuple(k.data if isinstance(k, Tensor) else k for k in key)
    if isinstance(key, list):
        return xp.asarray(key)
    return key


def _is_basic(key) -> bool:
    """True when the key selects a view (ints, slices, None, Ellipsis): no index repeats."""
    keys = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (int, slice)) for k in keys)


class GetItem(Function):
    uses_inputs = False

    def forward(self, a, key):
        self.key = key
        return a[key]

    def backward(self, g):
        return index_backward(g, self.inputs[0].shape, self.key), None


class IndexBackward(Function):
    """Scatter a gradient into zeros of the input's shape (sums repeated indices)."""

    uses_inputs = False

    def forward(self, g, shape, key):
        self.key = key
        out = xp.zeros(shape, dtype=g.dtype)
        if _is_basic(key):
            out[key] = g
        else:
            xp.add.at(out, key, g)
        return out

    def backward(self, gg):  # linear in g: its derivative gathers again
        return gg[self.key], None, None


def index_backward(g: Tensor, shape: tuple, key) -> Tensor:
    return IndexBackward.apply(g, shape, key)


def index(a: Tensor, key) -> Tensor:
    """``a[key]`` with NumPy's rules: ints, slices, Ellipsis, None, boolean masks, integer arrays."""
    key = _unwrap_key(key)
    try:
        return GetItem.apply(a, key)
    except IndexError as exc:
        raise IndexError(f"index: {exc} (tensor of shape {tuple(a.shape)})") from None


__all__ = ["index"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = []
