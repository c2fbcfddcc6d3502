"""PyTorch's layout conveniences composed from the shape and index primitives (so their gradients are those
primitives' rules): t, narrow, select, take/take_along_dim, the stacks, atleast_nd, ravel, flips and rot90,
diag_embed, block_diag, cartesian_prod, and the triangle index helpers.
"""
from __future__ import annotations

from nerve import backend
from nerve.autograd.function import ShapeError
from nerve.backend import xp
from nerve.ops.index import IndexBackward, gather
from nerve.ops.shape import (
    _as_tensor, concat, expand, flip, meshgrid, normalize_dim, pad, reshape, stack, transpose,
)
from nerve.tensor import Tensor


def t(input: Tensor) -> Tensor:
    """The transpose of a matrix (0-D and 1-D tensors as they are)."""
    if input.ndim > 2:
        raise ShapeError(f"t: expected a tensor with at most 2 dimensions, got shape {tuple(input.shape)}")
    return input if input.ndim < 2 else transpose(input, 0, 1)


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """The ``length`` entries from ``start`` along ``dim`` (a negative start counts from the end)."""
    d = normalize_dim(dim, input.ndim, "narrow")
    n = input.shape[d]
    start = int(start) + (n if start < 0 else 0)
    if not 0 <= start <= n or length < 0 or start + length > n:
        raise IndexError(f"narrow: start {start} and length {length} do not fit dim {d} of size {n}")
    return input[(slice(None),) * d + (slice(start, start + int(length)),)]


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The slice at ``index`` along ``dim``, without that dimension."""
    d = normalize_dim(dim, input.ndim, "select")
    n = input.shape[d]
    if not -n <= index < n:
        raise IndexError(f"select: index {index} is out of range for dim {d} of size {n}")
    return input[(slice(None),) * d + (int(index),)]


def take(input: Tensor, index) -> Tensor:
    """Entries of the flattened input at ``index`` (any shape)."""
    idx = index.data if isinstance(index, Tensor) else xp.asarray(index)
    n = int(input.data.size)
    if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):
        raise IndexError(f"take: index out of range for a tensor of {n} elements")
    return reshape(input, (-1,))[idx]


def take_along_dim(input: Tensor, indices, dim: int | None = None) -> Tensor:
    """``gather`` with broadcasting of input and indices (the flattened input when ``dim`` is None)."""
    idx = indices.data if isinstance(indices, Tensor) else xp.asarray(indices)
    if dim is None:
        return gather(reshape(input, (-1,)), 0, reshape(Tensor._make(idx, None), (-1,)))
    d = normalize_dim(dim, input.ndim, "take_along_dim")
    if idx.ndim != input.ndim:
        raise ShapeError(f"take_along_dim: indices of shape {tuple(idx.shape)} and input of shape "
                         f"{tuple(input.shape)} must have the same number of dimensions")
    out_shape = list(xp.broadcast_shapes(tuple(s for k, s in enumerate(input.shape) if k != d),
                                         tuple(s for k, s in enumerate(idx.shape) if k != d)))
    a_shape, i_shape = list(out_shape), list(out_shape)
    a_shape.insert(d, input.shape[d])
    i_shape.insert(d, idx.shape[d])
    return gather(expand(input, tuple(a_shape)), d, xp.broadcast_to(idx, tuple(i_shape)))


def atleast_1d(*tensors):
    """Each tensor with at least one dimension (one tensor in, one out)."""
    out = [reshape(_as_tensor(x), (1,)) if _as_tensor(x).ndim == 0 else _as_tensor(x) for x in _flat(tensors)]
    return out[0] if len(out) == 1 else tuple(out)


def atleast_2d(*tensors):
    """Each tensor with at least two dimensions: (n,) becomes (1, n)."""
    out = []
    for x in _flat(tensors):
        x = _as_tensor(x)
        out.append(reshape(x, (1,) * (2 - x.ndim) + tuple(x.shape)) if x.ndim < 2 else x)
    return out[0] if len(out) == 1 else tuple(out)


def atleast_3d(*tensors):
    """Each tensor with at least three dimensions: (n,) becomes (1, n, 1), (m, n) becomes (m, n, 1)."""
    out = []
    for x in _flat(tensors):
        x = _as_tensor(x)
        shape = {0: (1, 1, 1), 1: (1,) + tuple(x.shape) + (1,), 2: tuple(x.shape) + (1,)}.get(x.ndim)
        out.append(reshape(x, shape) if shape else x)
    return out[0] if len(out) == 1 else tuple(out)


def _flat(tensors) -> list:
    return list(tensors[0]) if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)) else list(tensors)


def hstack(tensors) -> Tensor:
    """Join along dim 1 (dim 0 for 1-D tensors)."""
    ts = [atleast_1d(x) for x in tensors]
    return concat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    """Join along dim 0 after making each tensor at least 2-D."""
    return concat([atleast_2d(x) for x in tensors], 0)


row_stack = vstack


def dstack(tensors) -> Tensor:
    """Join along dim 2 after making each tensor at least 3-D."""
    return concat([atleast_3d(x) for x in tensors], 2)


def column_stack(tensors) -> Tensor:
    """Join columns: 0-D and 1-D tensors become (n, 1) columns first."""
    cols = []
    for x in tensors:
        x = _as_tensor(x)
        cols.append(reshape(x, (-1, 1)) if x.ndim < 2 else x)
    return concat(cols, 1)


def ravel(input: Tensor) -> Tensor:
    """The values as a 1-D tensor."""
    return reshape(input, (-1,))


def fliplr(input: Tensor) -> Tensor:
    """Reverse dim 1."""
    if input.ndim < 2:
        raise ShapeError(f"fliplr: expected at least 2 dimensions, got shape {tuple(input.shape)}")
    return flip(input, 1)


def flipud(input: Tensor) -> Tensor:
    """Reverse dim 0."""
    if input.ndim < 1:
        raise ShapeError("flipud: expected at least 1 dimension, got a 0-d tensor")
    return flip(input, 0)


def rot90(input: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:
    """Rotate by 90 degrees k times in the plane of ``dims`` (from the first toward the second)."""
    d0, d1 = (normalize_dim(d, input.ndim, "rot90") for d in dims)
    if len(dims) != 2 or d0 == d1:
        raise ValueError(f"rot90: dims must be two different dims, got {tuple(dims)}")
    k %= 4
    if k == 0:
        return input
    if k == 2:
        return flip(input, d0, d1)
    if k == 1:
        return transpose(flip(input, d1), d0, d1)
    return flip(transpose(input, d0, d1), d1)


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices whose ``offset`` diagonal (in dims dim1, dim2 of the output) holds the last dim of input."""
    n = input.shape[-1] + abs(int(offset))
    k = xp.arange(input.shape[-1])
    key = (Ellipsis, k + max(-offset, 0), k + max(offset, 0))
    key = tuple(backend.to_device(x, input.device) if hasattr(x, "dtype") else x for x in key)
    out = IndexBackward.apply(input, tuple(input.shape[:-1]) + (n, n), key)
    nd = out.ndim
    d1, d2 = normalize_dim(dim1, nd, "diag_embed"), normalize_dim(dim2, nd, "diag_embed")
    if d1 == d2:
        raise ValueError(f"diag_embed: dim1 {dim1} and dim2 {dim2} must differ")
    order = list(range(nd - 2))
    for pos, src in sorted(((d1, nd - 2), (d2, nd - 1))):
        order.insert(pos, src)
    return out.permute(*order)


def block_diag(*tensors) -> Tensor:
    """A block-diagonal matrix from matrices (0-D and 1-D tensors count as 1 x n rows)."""
    mats = [reshape(_as_tensor(x), (1, -1)) if _as_tensor(x).ndim < 2 else _as_tensor(x) for x in tensors]
    for m in mats:
        if m.ndim != 2:
            raise ShapeError(f"block_diag: expected tensors with at most 2 dimensions, got shape {tuple(m.shape)}")
    cols = sum(m.shape[1] for m in mats)
    rows, start = [], 0
    for m in mats:
        rows.append(pad(m, (start, cols - start - m.shape[1])))
        start += m.shape[1]
    return concat(rows, 0)


def cartesian_prod(*tensors) -> Tensor:
    """Every combination of one entry from each 1-D tensor, as rows (like itertools.product)."""
    if len(tensors) == 1:
        return _as_tensor(tensors[0])
    grids = meshgrid(*tensors, indexing="ij")
    return stack([reshape(g, (-1,)) for g in grids], 1)


def numel(input) -> int:
    """The number of elements (``torch.numel``)."""
    return int(input.data.size) if isinstance(input, Tensor) else int(xp.size(input))


def fill_diagonal_(input: Tensor, fill_value, wrap: bool = False) -> Tensor:
    """Write ``fill_value`` on the main diagonal in place (all dims equal, or a tall matrix; ``wrap`` restarts
    the diagonal every ncols + 1 rows, as NumPy and PyTorch)."""
    if input.ndim < 2 or (input.ndim > 2 and len(set(input.shape)) != 1):
        raise ShapeError(f"fill_diagonal_: expected a matrix or a tensor with all dims equal, got shape "
                         f"{tuple(input.shape)}")
    input._check_inplace("fill_diagonal_")
    xp.fill_diagonal(input.data, fill_value, wrap=wrap)
    return input


def _triangle_indices(row: int, col: int, offset: int, upper: bool) -> Tensor:
    r, c = xp.indices((row, col))
    keep = (c - r >= offset) if upper else (c - r <= offset)
    return Tensor._make(xp.stack([r[keep], c[keep]]).astype(xp.int64), None)


def tril_indices(row: int, col: int, offset: int = 0) -> Tensor:
    """(2, n) indices of the lower triangle of a row x col matrix, row by row."""
    return _triangle_indices(row, col, offset, False)


def triu_indices(row: int, col: int, offset: int = 0) -> Tensor:
    """(2, n) indices of the upper triangle of a row x col matrix, row by row."""
    return _triangle_indices(row, col, offset, True)


def tensor_split(input: Tensor, indices_or_sections, dim: int = 0) -> tuple:
    """Views along ``dim``: ``n`` parts as equal as possible (the first ones one longer), or cut at the given
    indices (NumPy's array_split)."""
    d = normalize_dim(dim, input.ndim, "tensor_split")
    size = input.shape[d]
    if isinstance(indices_or_sections, Tensor):
        indices_or_sections = indices_or_sections.tolist()
    if isinstance(indices_or_sections, int):
        n = indices_or_sections
        if n < 1:
            raise ValueError(f"tensor_split: the number of sections must be positive, got {n}")
        q, r = divmod(size, n)
        cuts = [k * q + min(k, r) for k in range(1, n)]
    else:
        cuts = [min(max(int(c), 0), size) for c in indices_or_sections]
    bounds = [0, *cuts, size]
    return tuple(narrow(input, d, lo, max(hi - lo, 0)) if hi > lo else narrow(input, d, min(lo, size), 0)
                 for lo, hi in zip(bounds[:-1], bounds[1:]))


__all__ = ["numel", "tensor_split", "atleast_1d", "atleast_2d", "atleast_3d", "block_diag", "cartesian_prod",
           "column_stack", "diag_embed", "dstack", "fliplr", "flipud", "hstack", "narrow", "ravel", "rot90",
           "row_stack", "select", "t", "take", "take_along_dim", "tril_indices", "triu_indices", "vstack"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["tensor_split", "fill_diagonal_", "diag_embed", "fliplr", "flipud", "narrow", "ravel", "rot90", "select",
           "t", "take", "take_along_dim"]
