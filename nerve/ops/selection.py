"""Selection primitives on top of indexing: scatter_reduce, argsort, nonzero, masked_select, diag, diagonal.

``scatter_reduce`` is a primitive with one rule per reduction (PyTorch's formulas: ties of amax/amin share
the gradient, prod is exact with zeros at first order); the others are compositions of ``a[key]``, whose
rule scatters the gradient back.
"""
from __future__ import annotations

from nerve import backend
from nerve.autograd.function import Function, ShapeError
from nerve.backend import xp
from nerve.ops.index import (
    Gather, GetItem, IndexBackward, Scatter, ScatterAdd, _coords, _dim_index, _prefix, _scatter_args, _sort_key,
)
from nerve.ops.elementwise import where
from nerve.ops.reduce import ValuesIndices
from nerve.ops.shape import Pad, _as_tensor, expand, movedim, normalize_dim
from nerve.tensor import Tensor

_UFUNC = {"sum": "add", "mean": "add", "prod": "multiply", "amax": "maximum", "amin": "minimum"}


def _identity(reduce: str, dtype):
    """The value a position starts from when ``include_self`` is False."""
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    if dtype.kind == "f":
        return -xp.inf if reduce == "amax" else xp.inf
    info = xp.iinfo(dtype) if dtype.kind in "iu" else None
    return (info.min if reduce == "amax" else info.max) if info else reduce == "amin"


class ScatterReduce(Function):
    """The primitive behind ``scatter_reduce``: src[j] reduced into input at index[j] along ``dim``."""

    saves_output = True

    def forward(self, a, src, idx, dim, reduce, include_self):
        self.idx, self.dim, self.reduce, self.include_self = idx, dim, reduce, include_self
        coords = _coords(idx, dim)
        values = src[_prefix(idx.shape)].astype(a.dtype, copy=False)
        out = a.copy()
        hit = xp.zeros_like(a, dtype=bool)
        hit[coords] = True
        self.hit = hit
        if not include_self:
            out[hit] = _identity(reduce, a.dtype)
        getattr(xp, _UFUNC[reduce]).at(out, coords, values)
        count = xp.zeros_like(a, dtype=a.dtype if a.dtype.kind == "f" else xp.int64)
        xp.add.at(count, coords, 1)
        if include_self:
            count += 1
        self.count = xp.maximum(count, 1)  # positions nobody scattered into keep the input: divide by 1
        if reduce == "mean":
            out = out // self.count if a.dtype.kind in "iub" else (out / self.count).astype(a.dtype, copy=False)
        return out

    def backward(self, g, m):
        a, src = m.inputs(self)[:2]
        na, ns = self.needs_input_grad[:2]
        idx, dim, reduce = self.idx, self.dim, self.reduce
        src_cut = src[_prefix(idx.shape)]
        if reduce in ("sum", "mean"):  # adjoint of the (weighted) sum: g / count to self and to each src
            gs = g if reduce == "sum" else g / self.count
            ga, gsrc = gs, m.apply(Gather, gs, idx, dim, False)
        elif reduce == "prod":
            ga, gsrc = self._prod_grads(g, m, a, src_cut)
        else:  # amax/amin: the gradient goes to the values equal to the result, shared evenly among ties
            out = m.output(self)
            self_is = (a == out).astype(g.dtype) if self.include_self else (~self.hit).astype(g.dtype)
            src_is = (src_cut == m.apply(Gather, out, idx, dim, False)).astype(g.dtype)
            share = g / m.apply(ScatterAdd, self_is, src_is, idx, dim)
            ga, gsrc = share * self_is, src_is * m.apply(Gather, share, idx, dim, False)
        if not self.include_self:
            ga = m.where(self.hit, 0.0, g)
        if gsrc.shape != xp.shape(src):
            gsrc = m.apply(Pad, gsrc, tuple((0, want - have) for have, want in zip(idx.shape, xp.shape(src))), 0)
        return ga if na else None, gsrc if ns else None, None, None, None, None

    def _prod_grads(self, g, m, a, src_cut):
        """d prod / d x = the product of the other contributions: out / x without zeros; with one zero, the
        product of the nonzeros at that zero and 0 elsewhere; with more zeros, 0."""
        idx, dim = self.idx, self.dim
        base = m.where(a == 0, 1.0, a) if self.include_self else a * 0.0 + 1.0
        src_safe = m.where(src_cut == 0, 1.0, src_cut)
        nonzero_prod = m.apply(ScatterReduce, base, src_safe, idx, dim, "prod", True)
        zeros_self = (a == 0).astype(g.dtype) if self.include_self else (a * 0.0).astype(g.dtype)
        zeros = m.apply(ScatterAdd, zeros_self, (src_cut == 0).astype(g.dtype), idx, dim)
        gp = g * nonzero_prod

        def others(x, x_safe, gp_x, zeros_x):
            return m.where(x == 0, m.where(zeros_x == 1, gp_x, 0.0), m.where(zeros_x == 0, gp_x / x_safe, 0.0))

        ga = others(a, base, gp, zeros)
        gsrc = others(src_cut, src_safe, m.apply(Gather, gp, idx, dim, False),
                      m.apply(Gather, zeros, idx, dim, False))
        return ga, gsrc


def scatter_reduce(input: Tensor, dim: int, index, src, reduce: str, *, include_self: bool = True) -> Tensor:
    """src reduced into a copy of input at [i][index[i][j][k]][k] (dim=1) with "sum", "prod", "mean",
    "amax" or "amin"; ``include_self=False`` leaves input's own values out where something is scattered."""
    if reduce not in _UFUNC:
        raise ValueError(f"scatter_reduce: reduce must be one of {sorted(_UFUNC)}, got {reduce!r}")
    src = src if isinstance(src, Tensor) else Tensor(src, dtype=input.dtype)
    idx, d = _scatter_args("scatter_reduce", input, dim, index, src)
    return ScatterReduce.apply(input, src, idx, d, reduce, bool(include_self))


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort ``input`` along ``dim`` (always a stable sort); int64, no gradient."""
    d = normalize_dim(dim, input.ndim, "argsort")
    if input.ndim == 0:
        return Tensor._make(xp.zeros_like(input.data, dtype=xp.int64), None)
    idx = xp.argsort(_sort_key(input.data, descending), axis=d, kind="stable")
    return Tensor._make(idx.astype(xp.int64, copy=False), None)


def nonzero(input, *, as_tuple: bool = False):
    """Indices of the nonzero entries: an (n, ndim) int64 tensor, or one 1-D tensor per dimension."""
    data = input.data if isinstance(input, Tensor) else xp.asarray(input)
    found = xp.nonzero(data if data.ndim else data.reshape(1))
    if as_tuple:
        return tuple(Tensor._make(f.astype(xp.int64, copy=False), None) for f in found)
    out = xp.stack(found, axis=1) if data.ndim else xp.zeros_like(found[0], shape=(found[0].size, 0))
    return Tensor._make(out.astype(xp.int64, copy=False), None)


argwhere = nonzero


def masked_select(input: Tensor, mask) -> Tensor:
    """The entries where ``mask`` is true as a 1-D tensor (input and mask broadcast together)."""
    mask = mask.data if isinstance(mask, Tensor) else xp.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"masked_select: mask must be boolean, got dtype {mask.dtype}")
    try:
        shape = xp.broadcast_shapes(mask.shape, input.shape)
    except ValueError:
        raise ShapeError(f"masked_select: mask of shape {tuple(mask.shape)} and input of shape "
                           f"{tuple(input.shape)} do not broadcast") from None
    return GetItem.apply(expand(input, shape), xp.broadcast_to(mask, shape))


def _diagonal_key(n1: int, n2: int, offset: int, like):
    """(rows, cols) of the ``offset`` diagonal of an (n1, n2) matrix."""
    size = max(0, min(n1 + min(offset, 0), n2 - max(offset, 0)))
    k = xp.arange(size, like=like)
    return k + max(-offset, 0), k + max(offset, 0)


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The ``offset`` diagonal of the matrices in dims ``dim1`` and ``dim2``, as a last dimension."""
    d1, d2 = normalize_dim(dim1, input.ndim, "diagonal"), normalize_dim(dim2, input.ndim, "diagonal")
    if d1 == d2 or input.ndim < 2:
        raise ShapeError(f"diagonal: dim1 {dim1} and dim2 {dim2} must be two different dims of a tensor "
                           f"with at least 2 dimensions, got shape {tuple(input.shape)}")
    moved = movedim(input, (d1, d2), (-2, -1))
    rows, cols = _diagonal_key(moved.shape[-2], moved.shape[-1], int(offset), input.data)
    return moved[..., rows, cols]


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D input as the ``diagonal`` of a square matrix of zeros; a 2-D input's ``diagonal`` as 1-D."""
    input = _as_tensor(input)
    if input.ndim == 2:
        rows, cols = _diagonal_key(input.shape[0], input.shape[1], int(diagonal), input.data)
        return input[rows, cols]
    if input.ndim != 1:
        raise ShapeError(f"diag: expected a 1-D or 2-D tensor, got shape {tuple(input.shape)}")
    n = input.shape[0] + abs(int(diagonal))
    key = _diagonal_key(n, n, int(diagonal), input.data)
    return IndexBackward.apply(input, (n, n), key)


# --- writing along a dim or a mask ----------------------------------------------------------------------
def index_fill(input: Tensor, dim: int, index, value) -> Tensor:
    """A copy of input with ``value`` (a number or 0-d tensor) in the slices ``index`` along ``dim``."""
    idx, d = _dim_index(input, dim, index, "index_fill")
    shape = [1] * input.ndim
    shape[d] = input.shape[d]
    mask = xp.zeros_like(idx, dtype=bool, shape=(input.shape[d],))
    mask[idx] = True
    if isinstance(value, Tensor):
        if value.ndim:
            raise ShapeError(f"index_fill: value must be a number or a 0-d tensor, got shape {tuple(value.shape)}")
        value = value.astype(input.dtype)
    else:
        value = input.dtype.type(value)
    return where(mask.reshape(shape), value, input)


def index_copy(input: Tensor, dim: int, index, source: Tensor) -> Tensor:
    """A copy of input with the slices ``index`` along ``dim`` replaced by those of ``source``."""
    idx, d = _dim_index(input, dim, index, "index_copy")
    want = input.shape[:d] + (idx.size,) + input.shape[d + 1:]
    source = source if isinstance(source, Tensor) else Tensor(source, dtype=input.dtype)
    if tuple(source.shape) != want:
        raise ShapeError(f"index_copy: source of shape {tuple(source.shape)} does not match input "
                         f"{tuple(input.shape)} and an index of length {idx.size} along dim {d}: expected {want}")
    shape = [1] * input.ndim
    shape[d] = idx.size
    return Scatter.apply(input, source, xp.broadcast_to(idx.reshape(shape), want), d)


def masked_scatter(input: Tensor, mask, source: Tensor) -> Tensor:
    """A copy of input with the entries of ``source``, in order, written where ``mask`` (broadcast) is true."""
    m = mask.data if isinstance(mask, Tensor) else xp.asarray(mask)
    if m.dtype != bool:
        raise TypeError(f"masked_scatter: mask must be boolean, got dtype {m.dtype}")
    try:
        m = xp.broadcast_to(m, input.shape)
    except ValueError:
        raise ShapeError(f"masked_scatter: mask of shape {tuple(m.shape)} does not broadcast to the input's shape "
                         f"{tuple(input.shape)}") from None
    k = int(m.sum())
    if source.numel() < k:
        raise ShapeError(f"masked_scatter: the mask selects {k} entries but source has only {source.numel()}")
    placed = IndexBackward.apply(source.reshape(-1)[:k], tuple(input.shape), m)
    return where(m, placed, input)


# --- order statistics and counting ----------------------------------------------------------------------
def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> ValuesIndices:
    """The k-th smallest value along ``dim`` (k from 1) and its index; the gradient goes to that entry."""
    d = normalize_dim(dim, input.ndim, "kthvalue")
    n = input.shape[d] if input.ndim else 1
    if not 1 <= k <= n:
        raise IndexError(f"kthvalue: k ({k}) is out of range for dim {d} of size {n}")
    if input.ndim == 0:
        return ValuesIndices(input, Tensor._make(xp.zeros_like(input.data, dtype=xp.int64), None))
    order = xp.argsort(input.data, axis=d, kind="stable")
    idx = xp.take(order, [k - 1], axis=d).astype(xp.int64)
    values = Gather.apply(input, idx, d, True)
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return ValuesIndices(values, Tensor._make(idx, None))


def median(input: Tensor, dim: int | None = None, keepdim: bool = False):
    """The lower median (PyTorch's: no averaging of the two middle values); with ``dim``, values and indices."""
    if dim is None:
        flat = input.reshape(-1)
        if flat.shape[0] == 0:
            raise RuntimeError("median: cannot take the median of an empty tensor")
        return kthvalue(flat, (flat.shape[0] + 1) // 2, 0).values
    d = normalize_dim(dim, input.ndim, "median")
    return kthvalue(input, ((input.shape[d] if input.ndim else 1) + 1) // 2, d, keepdim)


def nanmedian(input: Tensor, dim: int | None = None, keepdim: bool = False):
    """``median`` of the values that are not NaN (NaN where all are); with ``dim``, values and indices."""
    x, d = (input.reshape(-1), 0) if dim is None else (input, normalize_dim(dim, input.ndim, "nanmedian"))
    if x.ndim == 0:
        x = x.reshape(1)
    if x.shape[d] == 0:
        raise RuntimeError("nanmedian: cannot take the median of an empty dimension")
    order = xp.argsort(x.data, axis=d, kind="stable")  # NaN sort last
    kept = (~xp.isnan(x.data)).sum(axis=d, keepdims=True)
    idx = xp.take_along_axis(order, xp.maximum((kept + 1) // 2 - 1, 0), axis=d).astype(xp.int64)
    values = Gather.apply(x, idx, d, True)
    if dim is None:
        return values.reshape(())
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    if input.ndim == 0:
        values, idx = values.reshape(()), idx.reshape(())
    return ValuesIndices(values, Tensor._make(idx, None))


def mode(input: Tensor, dim: int = -1, keepdim: bool = False) -> ValuesIndices:
    """The most frequent value along ``dim`` (the smallest among equally frequent ones) and the last index
    holding it, as PyTorch on the CPU; the gradient goes to that entry."""
    x = input.reshape(1) if input.ndim == 0 else input
    d = normalize_dim(dim, x.ndim, "mode")
    if x.shape[d] == 0:
        raise RuntimeError("mode: cannot take the mode of an empty dimension")
    rows = xp.moveaxis(x.data, d, -1).reshape(-1, x.shape[d])
    picks = xp.empty_like(rows, dtype=xp.int64, shape=(rows.shape[0],))
    for r, row in enumerate(rows):  # NOTE: a Python loop over rows; the mode has no vectorised NumPy form
        values, counts = xp.unique(row, return_counts=True)
        best = values[xp.argmax(counts)]  # unique sorts, argmax takes the first (smallest) of the most frequent
        picks[r] = xp.flatnonzero(row == best)[-1]
    shape = list(xp.moveaxis(x.data, d, -1).shape[:-1])
    idx = xp.moveaxis(picks.reshape(shape + [1]), -1, d)
    values = Gather.apply(x, idx, d, True)
    if not keepdim or input.ndim == 0:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return ValuesIndices(values, Tensor._make(idx, None))


def quantile(input: Tensor, q, dim: int | None = None, keepdim: bool = False, *,
             interpolation: str = "linear") -> Tensor:
    """The ``q``-quantiles (a number or 1-D tensor in [0, 1]) along ``dim`` (all values when None), with
    NumPy's and PyTorch's interpolation modes; q's dimension comes first when q is a tensor."""
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise ValueError(f"quantile: unknown interpolation {interpolation!r}")
    qs = q.data if isinstance(q, Tensor) else xp.asarray(q, dtype=xp.float64)
    if qs.ndim > 1 or (qs < 0).any() or (qs > 1).any():
        raise ValueError(f"quantile: q must be a number or a 1-D tensor with values in [0, 1], got {q!r}")
    if dim is None:
        x, d = input.reshape(-1), 0
    else:
        x, d = input, normalize_dim(dim, input.ndim, "quantile")
    n = x.shape[d]
    if n == 0:
        raise RuntimeError("quantile: cannot take quantiles of an empty dimension")
    sorted_x = Gather.apply(x, xp.argsort(x.data, axis=d, kind="stable"), d, True)
    pos = qs.reshape(-1).astype(xp.float64) * (n - 1)
    lo, hi = xp.floor(pos).astype(xp.int64), xp.ceil(pos).astype(xp.int64)
    if interpolation == "nearest":
        lo = hi = xp.round(pos).astype(xp.int64)  # NOTE: half to even, as NumPy and PyTorch
    elif interpolation == "lower":
        hi = lo
    elif interpolation == "higher":
        lo = hi
    frac = {"midpoint": xp.where(hi > lo, 0.5, 0.0)}.get(interpolation, pos - lo)
    below, above = sorted_x.index_select(d, lo), sorted_x.index_select(d, hi)
    shape = [1] * x.ndim
    shape[d] = pos.size
    out = below + (above - below) * xp.asarray(frac, dtype=x.dtype).reshape(shape)
    out = out.movedim(d, 0)  # q first, as PyTorch
    if keepdim:
        kept = list(input.shape) if dim is not None else [1] * input.ndim
        if dim is not None:
            kept[d] = 1
        out = out.reshape((pos.size,) + tuple(kept))
    return out.reshape(out.shape[1:]) if qs.ndim == 0 else out


def msort(input: Tensor) -> Tensor:
    """``input`` sorted along dim 0."""
    return input.sort(0).values


def count_nonzero(input, dim=None) -> Tensor:
    """The number of nonzero entries over ``dim`` (all when None); int64."""
    data = input.data if isinstance(input, Tensor) else xp.asarray(input)
    axes = None if dim is None else tuple(normalize_dim(d, data.ndim, "count_nonzero")
                                          for d in ((dim,) if isinstance(dim, int) else dim))
    return Tensor._make(xp.asarray(xp.count_nonzero(data, axis=axes)).astype(xp.int64), None)


def histc(input, bins: int = 100, min: float = 0.0, max: float = 0.0) -> Tensor:
    """Counts of the values in ``bins`` equal bins over [min, max] (the data's range when both are 0); values
    outside are left out; the input's dtype, no gradient."""
    data = input.data if isinstance(input, Tensor) else xp.asarray(input)
    lo, hi = float(min), float(max)
    if lo == hi == 0.0 and data.size:
        lo, hi = float(data.min()), float(data.max())
    if lo == hi:
        lo, hi = lo - 1.0, hi + 1.0
    if lo > hi or bins < 1:
        raise RuntimeError(f"histc: need bins >= 1 and min <= max, got bins={bins}, min={min}, max={max}")
    counts, _ = xp.histogram(data, bins=int(bins), range=(lo, hi))
    return Tensor._make(counts.astype(data.dtype if data.dtype.kind == "f" else backend.get_default_dtype()), None)


def bincount(input, weights=None, minlength: int = 0) -> Tensor:
    """How often each value 0..max occurs in a 1-D non-negative integer tensor (summed weights if given)."""
    data = input.data if isinstance(input, Tensor) else xp.asarray(input)
    if data.ndim != 1 or data.dtype.kind not in "iu" or (data.size and int(data.min()) < 0):
        raise RuntimeError(f"bincount: expected a 1-D tensor of non-negative integers, got shape "
                           f"{tuple(data.shape)} and dtype {data.dtype}")
    w = weights.data if isinstance(weights, Tensor) else weights
    out = xp.bincount(data, weights=w, minlength=minlength)
    return Tensor._make(out if w is not None else out.astype(xp.int64), None)


def searchsorted(sorted_sequence, values, *, right: bool = False, side: str | None = None,
                 out_int32: bool = False) -> Tensor:
    """Where each value would go in the sorted last dimension of ``sorted_sequence`` to keep it sorted."""
    seq = sorted_sequence.data if isinstance(sorted_sequence, Tensor) else xp.asarray(sorted_sequence)
    vals = values.data if isinstance(values, Tensor) else xp.asarray(values)
    side = side or ("right" if right else "left")
    if seq.ndim <= 1:
        out = xp.searchsorted(seq, vals, side=side)
    else:
        if seq.shape[:-1] != vals.shape[:-1]:
            raise ShapeError(f"searchsorted: leading dims of sorted_sequence {tuple(seq.shape)} and values "
                             f"{tuple(vals.shape)} must match")
        rows_s, rows_v = seq.reshape(-1, seq.shape[-1]), vals.reshape(-1, vals.shape[-1])
        out = xp.stack([xp.searchsorted(s, v, side=side) for s, v in zip(rows_s, rows_v)]).reshape(vals.shape)
    return Tensor._make(xp.asarray(out).astype(xp.int32 if out_int32 else xp.int64), None)


def bucketize(input, boundaries, *, out_int32: bool = False, right: bool = False) -> Tensor:
    """The bucket i of each value among sorted 1-D ``boundaries``: boundaries[i-1] < x <= boundaries[i]
    (with ``right``, boundaries[i-1] <= x < boundaries[i])."""
    return searchsorted(boundaries, input, right=right, out_int32=out_int32)


def unique(input, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None):
    """The distinct values (sorted; distinct slices along ``dim`` when given), with where each entry went and
    how often each occurs when asked."""
    data = input.data if isinstance(input, Tensor) else xp.asarray(input)
    axis = None if dim is None else normalize_dim(dim, data.ndim, "unique")
    values, inverse, counts = xp.unique(data, return_inverse=True, return_counts=True, axis=axis)
    out = [Tensor._make(values, None)]
    if return_inverse:
        shape = data.shape if axis is None else (data.shape[axis],)
        out.append(Tensor._make(inverse.reshape(shape).astype(xp.int64), None))
    if return_counts:
        out.append(Tensor._make(counts.astype(xp.int64), None))
    return out[0] if len(out) == 1 else tuple(out)


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False) -> Tensor:
    """Whether each element of ``elements`` occurs in ``test_elements`` (a bool tensor; no gradient)."""
    a = elements.data if isinstance(elements, Tensor) else xp.asarray(elements)
    b = test_elements.data if isinstance(test_elements, Tensor) else xp.asarray(test_elements)
    return Tensor._make(xp.isin(a, b, assume_unique=assume_unique, invert=invert), None)


__all__ = ["isin", "argsort", "argwhere", "bincount", "bucketize", "count_nonzero", "diag", "diagonal", "histc",
           "index_copy", "index_fill", "kthvalue", "masked_scatter", "masked_select", "median", "mode", "msort",
           "nanmedian", "nonzero", "quantile", "scatter_reduce", "searchsorted", "unique"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["argsort", "argwhere", "bincount", "count_nonzero", "diag", "diagonal", "histc", "index_copy", "index_fill",
           "kthvalue", "masked_scatter", "masked_select", "median", "mode", "msort", "nanmedian", "nonzero", "quantile",
           "scatter_reduce", "unique"]
