"""Shape primitives: reshape/view, expand/broadcast_to."""
from __future__ import annotations

from nerve.autograd.function import Function
from nerve.backend import xp
from nerve.tensor import Tensor


def _shape_arg(shape) -> tuple:
    """Accept ``f(2, 3)`` and ``f((2, 3))`` alike, as PyTorch does."""
    if len(shape) == 1 and not isinstance(shape[0], int):
        return tuple(shape[0])
    return tuple(shape)


class Reshape(Function):
    uses_inputs = False

    def forward(self, a, shape):
        self.in_shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return g.reshape(self.in_shape), None


class Expand(Function):
    uses_inputs = False

    def forward(self, a, shape):
        return xp.broadcast_to(a, shape)

    def backward(self, g):
        from nerve.ops.reduce import sum_to
        return sum_to(g, self.inputs[0].shape), None


def reshape(a: Tensor, *shape) -> Tensor:
    """The same values in a new shape (one dimension may be -1)."""
    shape = _shape_arg(shape)
    if shape == a.shape:
        return a
    try:
        return Reshape.apply(a, shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {tuple(a.shape)} "
                         f"({a.data.size} elements) into {shape}") from None


view = reshape


def expand(a: Tensor, *shape) -> Tensor:
    """Broadcast to a larger shape without copying (-1 keeps a dimension)."""
    shape = _shape_arg(shape)
    lead = len(shape) - a.ndim
    if lead < 0:
        raise ValueError(f"expand: cannot expand shape {tuple(a.shape)} to fewer dimensions {shape}")
    shape = tuple(a.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    if shape == a.shape:
        return a
    try:
        return Expand.apply(a, shape)
    except ValueError:
        raise ValueError(f"expand: shape {tuple(a.shape)} does not broadcast to {shape}") from None


def broadcast_to(a: Tensor, shape) -> Tensor:
    """NumPy's name for ``expand``."""
    return expand(a, tuple(shape))


class Permute(Function):
    uses_inputs = False

    def forward(self, a, dims):
        self.dims = dims
        return a.transpose(dims)

    def backward(self, g):
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return g.permute(*inverse), None


def permute(a: Tensor, *dims) -> Tensor:
    """Reorder the dimensions: output dimension i is input dimension dims[i]."""
    dims = _shape_arg(dims)
    if sorted(d % max(a.ndim, 1) for d in dims) != list(range(a.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {a.ndim} dimensions of a tensor "
                         f"of shape {tuple(a.shape)}")
    dims = tuple(d % a.ndim for d in dims)
    if dims == tuple(range(a.ndim)):
        return a
    return Permute.apply(a, dims)


def transpose(a: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions."""
    dims = list(range(a.ndim))
    try:
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    except IndexError:
        raise IndexError(f"transpose: dims ({dim0}, {dim1}) out of range for shape {tuple(a.shape)}") from None
    return permute(a, *dims)


swapaxes = transpose


def unsqueeze(a: Tensor, dim: int) -> Tensor:
    """Insert a dimension of size 1 at ``dim``."""
    nd = a.ndim + 1
    if not -nd <= dim < nd:
        raise IndexError(f"unsqueeze: dim {dim} out of range for a tensor with {a.ndim} dimensions")
    dim %= nd
    return reshape(a, a.shape[:dim] + (1,) + a.shape[dim:])


def squeeze(a: Tensor, dim=None) -> Tensor:
    """Drop dimensions of size 1 (all of them, or those in ``dim`` that have size 1)."""
    if dim is None:
        return reshape(a, tuple(s for s in a.shape if s != 1))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    for d in dims:
        if not -max(a.ndim, 1) <= d < max(a.ndim, 1):
            raise IndexError(f"squeeze: dim {d} out of range for a tensor with {a.ndim} dimensions")
    drop = {d % a.ndim for d in dims if a.ndim and a.shape[d] == 1}
    return reshape(a, tuple(s for i, s in enumerate(a.shape) if i not in drop))


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions start_dim..end_dim into one."""
    if a.ndim == 0:
        return reshape(a, (1,))
    start, end = start_dim % a.ndim, end_dim % a.ndim
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(a, a.shape[:start] + (-1,) + a.shape[end + 1:]) if a.data.size else reshape(
        a, a.shape[:start] + (0,) + a.shape[end + 1:])


__all__ = ["broadcast_to", "expand", "flatten", "permute", "reshape", "squeeze", "swapaxes", "transpose", "unsqueeze", "view"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["broadcast_to", "expand", "flatten", "permute", "reshape", "squeeze", "swapaxes", "transpose", "unsqueeze", "view"]
