"""Indexing primitives: ``a[key]``, gather/scatter, index_select/add, masked_fill, tril/triu, sort/topk, one_hot.

Reading by index is a gather; its adjoint scatters the gradient back and adds where an index repeats.
Scatter-adds go through ``bincount`` or a sort-and-reduce, both several times faster than ``add.at``.
This module registers ``m.ungather`` (gather's adjoint) for derivative rules anywhere in ops.
"""
from __future__ import annotations

from nerve.autograd.function import Function, ShapeError
from nerve.autograd.rule_math import define
from nerve.backend import xp
from nerve.ops.elementwise import where
from nerve.ops.reduce import ValuesIndices
from nerve.ops.shape import Pad, _along, normalize_dim
from nerve.tensor import Tensor


# --- scatter-add kernels on raw arrays -----------------------------------------------------------
def _scatter_add_flat(out_flat, positions, values) -> None:
    """out_flat[positions] += values, summing repeated positions (all arguments 1-D)."""
    if out_flat.dtype.kind == "f" and out_flat.size <= 4 * positions.size:
        # NOTE: bincount sums in float64 and beats add.at's per-element loop when the output is small.
        out_flat += xp.bincount(positions, weights=values, minlength=out_flat.size).astype(out_flat.dtype)
    else:
        xp.add.at(out_flat, positions, values)


def _index_add(out, idx, g) -> None:
    """out[:, idx, :] += g[:, k, :] for each k: out is (pre, n, post), idx (m,) in [0, n), g (pre, m, post)."""
    pre, n, post = out.shape
    m = idx.size
    if m == 0 or out.size == 0:
        return
    if out.dtype.kind == "f" and (post >= 128 or (n > 8 * m and post >= 32)):
        # NOTE: wide rows: sort the indices and sum runs of equal ones with one reduceat (measured fastest).
        order = xp.argsort(idx, kind="stable")
        ordered = idx[order]
        starts = xp.flatnonzero(xp.concatenate([ordered[:1] > -1, ordered[1:] != ordered[:-1]]))
        out[:, ordered[starts]] += xp.add.reduceat(g[:, order], starts, axis=1)
        return
    positions = ((xp.arange(pre, like=idx)[:, None] * n + idx)[:, :, None] * post
                 + xp.arange(post, like=idx)).reshape(-1)
    _scatter_add_flat(out.reshape(-1), positions, g.reshape(-1))


# --- a[key] -------------------------------------------------------------------------------------
def _unwrap(k):
    if isinstance(k, Tensor):
        return k.data
    if isinstance(k, list):
        k = xp.asarray(k)
        return k.astype(xp.intp) if k.size == 0 else k  # NOTE: [] is an empty index, not a float array
    return k


def _unwrap_key(key):
    """Tensors and lists in the key become arrays (NumPy then applies its indexing rules)."""
    if isinstance(key, tuple):
        return tuple(_unwrap(k) for k in key)
    return _unwrap(key)


def _has_int_array(key) -> bool:
    """True when the key holds an integer array, so that an index may repeat."""
    keys = key if isinstance(key, tuple) else (key,)
    return any(hasattr(k, "dtype") and k.dtype.kind in "iu" and k.ndim > 0 for k in keys)


def _single_array_axis(key, ndim: int):
    """(axis, array) when the key is one integer array on one axis with whole slices elsewhere, else None."""
    keys = key if isinstance(key, tuple) else (key,)
    arrays = [i for i, k in enumerate(keys) if hasattr(k, "dtype") and k.ndim > 0]
    if len(arrays) != 1 or keys[arrays[0]].dtype.kind not in "iu":
        return None
    pos = arrays[0]
    for i, k in enumerate(keys):
        if i != pos and k is not Ellipsis and not (isinstance(k, slice) and k == slice(None)):
            return None
    if Ellipsis in keys[:pos]:
        pos = ndim - (len(keys) - pos)
    return pos, keys[arrays[0]]


def index_backward_array(g, shape: tuple, key):
    """The gradient of ``a[key]`` on raw arrays: ``g`` scattered into zeros of ``shape``, repeats summed."""
    # NOTE: C order, whatever g's layout: the kernels write through reshape views of out.
    out = xp.zeros_like(g, shape=shape, order="C")
    if not _has_int_array(key):  # slices and masks select each element at most once
        out[key] = g
        return out
    single = _single_array_axis(key, len(shape))
    if single is None:
        xp.add.at(out, key, g)
        return out
    axis, idx = single
    if idx.size == 0 or out.size == 0:  # nothing selected: the gradient is all zeros
        return out
    n = shape[axis]
    idx = idx.reshape(-1)
    idx = xp.where(idx < 0, idx + n, idx)
    pre = 1
    for s in shape[:axis]:
        pre *= s
    _index_add(out.reshape(pre, n, -1), idx, g.reshape(pre, idx.size, -1))
    return out


class GetItem(Function):
    """The primitive behind ``a[key]``."""

    uses_inputs = False

    def forward(self, a, key):
        self.key = key
        return a[key]

    def backward(self, g, m):  # adjoint: scatter into zeros, summing repeats
        return m.apply(IndexBackward, g, self.inputs[0].shape, self.key), None


class IndexBackward(Function):
    """Scatter a gradient into zeros of the input's shape (sums repeated indices)."""

    uses_inputs = False

    def forward(self, g, shape, key):
        self.key = key
        return index_backward_array(g, shape, key)

    def backward(self, gg, m):  # adjoint: gather again
        return m.apply(GetItem, gg, self.key), None, None


def index(a: Tensor, key) -> Tensor:
    """``a[key]`` with NumPy's rules: ints, slices, Ellipsis, None, boolean masks, integer arrays, lists."""
    key = _unwrap_key(key)
    try:
        return GetItem.apply(a, key)
    except IndexError as exc:
        raise IndexError(f"index: {exc} (tensor of shape {tuple(a.shape)})") from None


# --- gather and scatter along a dimension -----------------------------------------------------------
def _index_array(index, op: str):
    """The raw integer array behind an index argument."""
    idx = index.data if isinstance(index, Tensor) else xp.asarray(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got dtype {idx.dtype}")
    return idx


def _check_bounds(idx, n: int, dim: int, op: str) -> None:
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= n:
            raise IndexError(f"{op}: index {lo if lo < 0 else hi} is out of bounds for dim {dim} with size {n}")


def _check_along(op: str, a: Tensor, d: int, idx, src: Tensor | None = None) -> None:
    """PyTorch's rules: same ndim; index no larger than the input (except in ``d``) nor than src."""
    if idx.ndim != a.ndim or (src is not None and src.ndim != a.ndim):
        extra = "" if src is None else f", src {tuple(src.shape)}"
        raise ShapeError(f"{op}: index and input must have the same number of dimensions, got input "
                         f"{tuple(a.shape)}, index {tuple(idx.shape)}{extra}")
    for k in range(a.ndim):
        if (k != d and idx.shape[k] > a.shape[k]) or (src is not None and idx.shape[k] > src.shape[k]):
            what = f"input {tuple(a.shape)}" if k != d and idx.shape[k] > a.shape[k] else f"src {tuple(src.shape)}"
            raise ShapeError(f"{op}: index of shape {tuple(idx.shape)} is larger than {what} in dim {k}")
    _check_bounds(idx, a.shape[d] if a.ndim else 1, d, op)


def _coords(idx, dim: int) -> tuple:
    """An index tuple addressing, for each entry of ``idx``, the position it names along ``dim``."""
    out = []
    for k, n in enumerate(idx.shape):
        if k == dim:
            out.append(idx)
        else:
            out.append(xp.arange(n, like=idx).reshape((1,) * k + (n,) + (1,) * (idx.ndim - k - 1)))
    return tuple(out)


def _scatter_add_along(out, dim: int, idx, values) -> None:
    """out[coords(idx)] += values, summing repeats; ``values`` has idx's shape."""
    if idx.size == 0:
        return
    strides = [1] * out.ndim
    for k in range(out.ndim - 2, -1, -1):
        strides[k] = strides[k + 1] * out.shape[k + 1]
    positions = sum(c * s for c, s in zip(_coords(idx, dim), strides))
    _scatter_add_flat(out.reshape(-1), xp.broadcast_to(positions, idx.shape).reshape(-1), values.reshape(-1))


def _prefix(shape) -> tuple:
    """The key that cuts an array down to its leading ``shape`` block (where a smaller index applies)."""
    return tuple(slice(0, s) for s in shape)


def _cut(shape, dim: int) -> tuple:
    """Like ``_prefix`` but keeping all of ``dim`` (gather reads anywhere along it)."""
    return tuple(slice(None) if k == dim else slice(0, s) for k, s in enumerate(shape))


def _gather_array(a, idx, dim: int):
    return xp.take_along_axis(a[_cut(idx.shape, dim)], idx, axis=dim)


def _gather_backward_array(g, shape: tuple, idx, dim: int, unique: bool):
    """Scatter-add ``g`` into zeros of ``shape`` at the positions gather read."""
    out = xp.zeros_like(g, shape=shape, order="C")  # C order: scatter writes through out.reshape(-1)
    if unique:  # indices from sort/topk: no repeats, a plain assignment
        xp.put_along_axis(out[_cut(idx.shape, dim)], idx, g, axis=dim)
    else:
        _scatter_add_along(out, dim, idx, g)
    return out


class Gather(Function):
    """The primitive behind ``gather``, ``sort`` and ``topk`` (``unique``: indices never repeat)."""

    uses_inputs = False

    def forward(self, a, idx, dim, unique):
        self.idx, self.dim, self.unique = idx, dim, unique
        return _gather_array(a, idx, dim)

    def backward(self, g, m):  # adjoint: out = a[coords], so da = scatter-add of g at coords
        return m.apply(GatherBackward, g, self.inputs[0].shape, self.idx, self.dim, self.unique), None, None, None


class GatherBackward(Function):
    """Scatter-add ``g`` into zeros of the input's shape at the gathered positions."""

    uses_inputs = False

    def forward(self, g, shape, idx, dim, unique):
        self.idx, self.dim, self.unique = idx, dim, unique
        return _gather_backward_array(g, shape, idx, dim, unique)

    def backward(self, gg, m):  # adjoint: gather again
        return m.apply(Gather, gg, self.idx, self.dim, self.unique), None, None, None, None


def gather(input: Tensor, dim: int, index) -> Tensor:
    """out[i][j][k] = input[i][index[i][j][k]][k] for dim=1 (PyTorch's gather); out has index's shape."""
    idx = _index_array(index, "gather")
    d = normalize_dim(dim, input.ndim, "gather")
    _check_along("gather", input, d, idx)
    if input.ndim == 0:
        return input
    return Gather.apply(input, idx, d, False)


class ScatterAdd(Function):
    """The primitive behind ``scatter_add``."""

    uses_inputs = False

    def forward(self, a, src, idx, dim):
        self.idx, self.dim = idx, dim
        out = a.copy()
        _scatter_add_along(out, dim, idx, src[_prefix(idx.shape)].astype(a.dtype, copy=False))
        return out

    def backward(self, g, m):  # d input = g; d src = g gathered at the positions, zero where src was unused
        na, ns = self.needs_input_grad[:2]
        gs = _src_grad(g, m, self.idx, self.dim, self.inputs[1].shape) if ns else None
        return g if na else None, gs, None, None


class Scatter(Function):
    """The primitive behind ``scatter``."""

    uses_inputs = False

    def forward(self, a, src, idx, dim):
        self.idx, self.dim = idx, dim
        out = a.copy()
        values = src[_prefix(idx.shape)] if xp.ndim(src) else src
        out[_coords(idx, dim)] = values
        return out

    def backward(self, g, m):  # overwritten entries of input get no gradient (scatter 0 there); src gets g there
        na, ns = self.needs_input_grad[:2]
        ga = m.apply(Scatter, g, 0, self.idx, self.dim) if na else None
        return ga, _src_grad(g, m, self.idx, self.dim, self.inputs[1].shape) if ns else None, None, None


def _src_grad(g, m, idx, dim: int, src_shape: tuple):
    """The gradient of scatter's ``src``: g at the scattered positions, zero-padded to src's shape."""
    out = m.apply(Gather, g, idx, dim, False)
    if out.shape == src_shape:
        return out
    return m.apply(Pad, out, tuple((0, want - have) for have, want in zip(idx.shape, src_shape)), 0)


def _scatter_args(op: str, input: Tensor, dim: int, index, src):
    idx = _index_array(index, op)
    d = normalize_dim(dim, input.ndim, op)
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have at least one dimension, got shape ()")
    _check_along(op, input, d, idx, src if isinstance(src, Tensor) else None)
    return idx, d


def scatter_add(input: Tensor, dim: int, index, src: Tensor) -> Tensor:
    """A copy of input with src[i][j][k] added at [i][index[i][j][k]][k] (dim=1); repeats add up."""
    src = src if isinstance(src, Tensor) else Tensor(src)
    idx, d = _scatter_args("scatter_add", input, dim, index, src)
    return ScatterAdd.apply(input, src, idx, d)


def scatter(input: Tensor, dim: int, index, src=None, *, value=None) -> Tensor:
    """A copy of input with src (a tensor or a number) or ``value`` written at [i][index[i][j][k]][k] (dim=1).

    Where an index repeats, which write wins is unspecified (as in PyTorch).
    """
    if (src is None) == (value is None):
        raise TypeError("scatter: give exactly one of src and value")
    src = value if src is None else src
    if not isinstance(src, Tensor):
        src = xp.asarray(src, dtype=input.dtype)
        if src.ndim:
            src = Tensor._make(src, None)
    idx, d = _scatter_args("scatter", input, dim, index, src)
    return Scatter.apply(input, src, idx, d)


def index_select(input: Tensor, dim: int, index) -> Tensor:
    """The entries of ``input`` at positions ``index`` (1-D) along ``dim``."""
    idx, d = _dim_index(input, dim, index, "index_select")
    return GetItem.apply(input, (slice(None),) * d + (idx,))


def _dim_index(input: Tensor, dim: int, index, op: str) -> tuple:
    """(index as a checked, in-bounds 1-D integer array, dim as a non-negative int) for ``op`` on ``input``."""
    idx = _index_array(index, op)
    if idx.ndim > 1:
        raise ValueError(f"{op}: index must be 1-D, got shape {tuple(idx.shape)}")
    d = normalize_dim(dim, input.ndim, op)
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have at least one dimension, got shape ()")
    _check_bounds(idx, input.shape[d], d, op)
    return idx.reshape(-1), d


class IndexAdd(Function):
    """The primitive behind ``index_add``; ``key`` is (whole slices..., index), the rows written along dim."""

    uses_inputs = False

    def forward(self, a, src, key, alpha):
        self.key, self.alpha = key, alpha
        out = a.copy()  # C order: the kernel writes through a reshape view
        idx, d = key[-1], len(key) - 1
        if idx.size and out.size:
            values = src.astype(a.dtype, copy=False)
            if alpha != 1:
                values = values * alpha
            pre = 1
            for s in a.shape[:d]:
                pre *= s
            _index_add(out.reshape(pre, a.shape[d], -1), idx, values.reshape(pre, idx.size, -1))
        return out

    def backward(self, g, m):  # d input = g; d source = alpha g[index] along dim (an index_select)
        na, ns = self.needs_input_grad[:2]
        gs = None
        if ns:
            gs = m.apply(GetItem, g, self.key)
            gs = gs if self.alpha == 1 else gs * self.alpha
        return g if na else None, gs, None, None


def index_add(input: Tensor, dim: int, index, source, alpha=1) -> Tensor:
    """A copy of input with alpha * source[.., i, ..] added at [.., index[i], ..] along ``dim``; repeats add up."""
    idx, d = _dim_index(input, dim, index, "index_add")
    source = source if isinstance(source, Tensor) else Tensor(source, dtype=input.dtype)
    want = input.shape[:d] + (idx.size,) + input.shape[d + 1:]
    if source.shape != want:
        raise ShapeError(f"index_add: source of shape {tuple(source.shape)} does not match input "
                         f"{tuple(input.shape)} and an index of length {idx.size} along dim {d}: expected {want}")
    if source.dtype != input.dtype:
        raise TypeError(f"index_add: input ({input.dtype}) and source ({source.dtype}) must have the same dtype")
    return IndexAdd.apply(input, source, (slice(None),) * d + (idx,), alpha)


# --- masks and triangles ------------------------------------------------------------------------
def masked_fill(input: Tensor, mask, value) -> Tensor:
    """A copy of input with ``value`` where ``mask`` (boolean, broadcastable to input) is true."""
    m = mask.data if isinstance(mask, Tensor) else xp.asarray(mask)
    if m.dtype != bool:
        raise TypeError(f"masked_fill: mask must be boolean, got dtype {m.dtype}")
    try:
        fits = xp.broadcast_shapes(m.shape, input.shape) == input.shape
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(f"masked_fill: mask of shape {tuple(m.shape)} does not broadcast to the input's "
                         f"shape {tuple(input.shape)}")
    if isinstance(value, Tensor):
        if value.ndim:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape {tuple(value.shape)}")
        value = value.astype(input.dtype)
    else:
        value = input.dtype.type(value)
    return where(m, value, input)


class Triangle(Function):
    """The primitive behind ``tril`` and ``triu``."""

    uses_inputs = False

    def forward(self, a, diagonal, upper):
        self.diagonal, self.upper = diagonal, upper
        return xp.triu(a, diagonal) if upper else xp.tril(a, diagonal)

    def backward(self, g, m):  # adjoint (a mask): the kept triangle passes the gradient through
        return m.apply(Triangle, g, self.diagonal, self.upper), None, None


def _triangle(input: Tensor, diagonal: int, upper: bool) -> Tensor:
    if input.ndim < 2:
        name = "triu" if upper else "tril"
        raise ValueError(f"{name}: input must have at least 2 dimensions, got shape {tuple(input.shape)}")
    return Triangle.apply(input, int(diagonal), upper)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dimensions (entries above ``diagonal`` set to zero)."""
    return _triangle(input, diagonal, False)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dimensions (entries below ``diagonal`` set to zero)."""
    return _triangle(input, diagonal, True)


# --- ordering -------------------------------------------------------------------------------------
def _sort_key(a, descending: bool):
    """An array whose ascending order is the wanted order of ``a``."""
    if not descending:
        return a
    if a.dtype.kind in "ub":
        a = a.astype(xp.int64)
    return -a


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> ValuesIndices:
    """Sorted values along ``dim`` and where they came from.

    The sort is always stable (equal values keep their order); ``stable`` is accepted as in PyTorch.
    """
    d = normalize_dim(dim, input.ndim, "sort")
    if input.ndim == 0:
        return ValuesIndices(input, Tensor._make(xp.zeros_like(input.data, dtype=xp.int64), None))
    idx = xp.argsort(_sort_key(input.data, descending), axis=d, kind="stable").astype(xp.int64, copy=False)
    return ValuesIndices(Gather.apply(input, idx, d, True), Tensor._make(idx, None))


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:
    """The ``k`` largest (or smallest) values along ``dim`` and their indices."""
    d = normalize_dim(dim, input.ndim, "topk")
    n = input.shape[d] if input.ndim else 1
    if not isinstance(k, int) or not 0 <= k <= n:
        raise ValueError(f"topk: k ({k}) is out of range for dim {d} of size {n} (tensor of shape "
                         f"{tuple(input.shape)})")
    if input.ndim == 0:
        return sort(input)
    key = _sort_key(input.data, largest)
    if k == n or k == 0:
        idx = xp.argsort(key, axis=d, kind="stable")
    else:
        idx = xp.argpartition(key, k - 1, axis=d)
    idx = idx[_along(d, slice(0, k))]
    if sorted and 0 < k < n:
        order = xp.argsort(xp.take_along_axis(key, idx, axis=d), axis=d, kind="stable")
        idx = xp.take_along_axis(idx, order, axis=d)
    idx = idx.astype(xp.int64, copy=False)
    return ValuesIndices(Gather.apply(input, idx, d, True), Tensor._make(idx, None))


def _ungather(g, shape: tuple, idx, dim: int, unique: bool = False) -> Tensor:
    """``g`` scatter-added into zeros of ``shape`` at the positions ``gather(dim, idx)`` reads."""
    return GatherBackward.apply(g, shape, idx, dim, unique)


# --- one-hot --------------------------------------------------------------------------------------
def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot vectors in a new last dimension of size ``num_classes`` (max + 1 when -1); no gradient."""
    idx = tensor.data if isinstance(tensor, Tensor) else xp.asarray(tensor)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor of class indices, got dtype {idx.dtype}")
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0:
            raise ValueError(f"one_hot: class values must be non-negative, got {lo}")
        if num_classes == -1:
            num_classes = hi + 1
        elif hi >= num_classes:
            raise ValueError(f"one_hot: class value {hi} is out of range for num_classes={num_classes}")
    elif num_classes == -1:
        raise ValueError("one_hot: cannot infer num_classes from an empty tensor; pass num_classes")
    if num_classes < 0:
        raise ValueError(f"one_hot: num_classes must be -1 or non-negative, got {num_classes}")
    out = xp.zeros_like(idx, dtype=xp.int64, shape=idx.shape + (num_classes,))
    if idx.size:
        xp.put_along_axis(out, idx[..., None].astype(xp.int64), 1, axis=-1)
    return Tensor._make(out, None)


# helper for derivative rules anywhere in ops: m.ungather(g, shape, idx, dim, unique), gather's adjoint
define("ungather", _gather_backward_array, _ungather)

def index_put_(input: Tensor, indices: tuple, values, accumulate: bool = False) -> Tensor:
    """``input[indices] = values`` in place; with ``accumulate``, repeated indices add up (``+=`` per
    occurrence), as PyTorch's ``index_put_``."""
    if not isinstance(indices, tuple):
        raise TypeError(f"index_put_: indices must be a tuple of index tensors, got {type(indices).__name__}")
    input._check_inplace("index_put_")
    key = tuple(k.data if isinstance(k, Tensor) else k for k in indices)
    v = values.data if isinstance(values, Tensor) else values
    if accumulate:
        xp.add.at(input.data, key, v)
    else:
        input.data[key] = v
    input._version += 1
    return input


__all__ = ["gather", "index", "index_add", "index_select", "masked_fill", "one_hot", "scatter", "scatter_add", "sort",
           "topk", "tril", "triu"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["index_put_", "gather", "index_add", "index_select", "masked_fill", "scatter", "scatter_add", "sort", "topk",
           "tril", "triu"]
