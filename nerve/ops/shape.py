"""Shape primitives: reshape/view, permute, squeeze, concat/stack/split, pad, flip, repeat, roll (and
``expand``, through ``broadcast.Expand``).

All are linear: each rule applies the adjoint op (or slices). Multi-output ops (split, chunk, unbind)
are several slicing ops over one input.
"""
from __future__ import annotations

from nerve.autograd.function import Function, ShapeError
from nerve.backend import xp
from nerve.ops.broadcast import Expand
from nerve.ops.elementwise import clone
from nerve.tensor import Tensor


def _shape_arg(shape) -> tuple:
    """Accept ``f(2, 3)`` and ``f((2, 3))`` alike, as PyTorch does."""
    if len(shape) == 1 and not isinstance(shape[0], int):
        return tuple(shape[0])
    return tuple(shape)


class Reshape(Function):
    """The primitive behind ``reshape``/``view``."""

    uses_inputs = False

    def forward(self, a, shape):
        self.in_shape = a.shape
        return a.reshape(shape)

    def backward(self, g, m):  # adjoint: reshape back
        return m.apply(Reshape, g, self.in_shape), None


def reshape(a: Tensor, *shape) -> Tensor:
    """The same values in a new shape (one dimension may be -1)."""
    shape = _shape_arg(shape)
    if shape == a.shape:
        return a
    try:
        return Reshape.apply(a, shape)
    except ValueError:
        raise ShapeError(f"reshape: cannot reshape a tensor of shape {tuple(a.shape)} "
                         f"({a.data.size} elements) into {shape}") from None


def view(a: Tensor, *shape) -> Tensor:
    """reshape's view; ``view(dtype)`` reads the same bytes as another dtype (PyTorch's rule, no gradient)."""
    if len(shape) == 1 and isinstance(shape[0], (str, type, xp.dtype)):
        return a._view_dtype(shape[0])
    return reshape(a, *shape)


def expand(a: Tensor, *shape) -> Tensor:
    """Broadcast to a larger shape without copying (-1 keeps a dimension)."""
    shape = _shape_arg(shape)
    lead = len(shape) - a.ndim
    if lead < 0:
        raise ShapeError(f"expand: cannot expand shape {tuple(a.shape)} to fewer dimensions {shape}")
    shape = tuple(a.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    if shape == a.shape:
        return a
    try:
        return Expand.apply(a, shape)
    except ValueError:
        raise ShapeError(f"expand: shape {tuple(a.shape)} does not broadcast to {shape}") from None


def broadcast_to(a: Tensor, shape) -> Tensor:
    """NumPy's name for ``expand``."""
    return expand(a, tuple(shape))


class Permute(Function):
    """The primitive behind ``permute``/``transpose``."""

    uses_inputs = False

    def forward(self, a, dims):
        self.dims = dims
        return a.transpose(dims)

    def _inverse(self) -> tuple:
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return tuple(inverse)

    def backward(self, g, m):  # adjoint: the inverse permutation
        return m.apply(Permute, g, self._inverse()), None


def permute(a: Tensor, *dims) -> Tensor:
    """Reorder the dimensions: output dimension i is input dimension dims[i]."""
    dims = _shape_arg(dims)
    if sorted(d % max(a.ndim, 1) for d in dims) != list(range(a.ndim)):
        raise ShapeError(f"permute: {dims} is not a permutation of the {a.ndim} dimensions of a tensor "
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


def normalize_dim(dim: int, ndim: int, op: str) -> int:
    """``dim`` as a non-negative axis, or an IndexError naming ``op`` (a 0-d tensor accepts 0 and -1)."""
    size = max(ndim, 1)
    if not isinstance(dim, (int, xp.integer)) or not -size <= dim < size:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return int(dim) % size


def _dims_arg(dims, ndim: int, op: str) -> tuple:
    """A tuple of distinct non-negative axes from an int or a sequence."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    out = tuple(normalize_dim(d, ndim, op) for d in dims)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dims {dims} repeat a dimension")
    return out


def _along(dim: int, key) -> tuple:
    """An index tuple that applies ``key`` to axis ``dim`` and keeps the others whole."""
    return (slice(None),) * dim + (key,)


def _as_tensor(t) -> Tensor:
    return t if isinstance(t, Tensor) else Tensor(t)


# --- joining and splitting --------------------------------------------------------------------
class Concat(Function):
    """The primitive behind ``concat``."""

    uses_inputs = False

    def forward(self, *arrays, axis):
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        return xp.concatenate(arrays, axis=axis)

    def backward(self, g, m):  # adjoint: each input gets its own slice of the gradient
        grads, start = [], 0
        for size, need in zip(self.sizes, self.needs_input_grad):
            grads.append(g[_along(self.axis, slice(start, start + size))] if need else None)
            start += size
        return tuple(grads)


class Stack(Function):
    """The primitive behind ``stack``."""

    uses_inputs = False

    def forward(self, *arrays, axis):
        self.axis = axis
        return xp.stack(arrays, axis=axis)

    def backward(self, g, m):  # adjoint: input i gets the gradient's i-th entry along the new axis
        return tuple(g[_along(self.axis, i)] if need else None
                     for i, need in enumerate(self.needs_input_grad))


def concat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension; all other dimensions must match."""
    tensors = [_as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concat: expected a non-empty sequence of tensors")
    first = tensors[0]
    if first.ndim == 0:
        raise ValueError("concat: zero-dimensional tensors cannot be concatenated; use stack")
    d = normalize_dim(dim, first.ndim, "concat")
    for t in tensors[1:]:
        if t.ndim != first.ndim or t.shape[:d] + t.shape[d + 1:] != first.shape[:d] + first.shape[d + 1:]:
            raise ShapeError(f"concat: tensors must have the same shape except in dim {d}, got "
                             f"{tuple(first.shape)} and {tuple(t.shape)}")
    return Concat.apply(*tensors, axis=d)


cat = concat


def stack(tensors, dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dimension ``dim``."""
    tensors = [_as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    first = tensors[0]
    d = normalize_dim(dim, first.ndim + 1, "stack")
    for t in tensors[1:]:
        if t.shape != first.shape:
            raise ShapeError(f"stack: tensors must all have the same shape, got {tuple(first.shape)} "
                             f"and {tuple(t.shape)}")
    return Stack.apply(*tensors, axis=d)


def split(a: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Cut along ``dim`` into pieces of one size (an int; the last may be smaller) or of the given sizes."""
    d = normalize_dim(dim, a.ndim, "split")
    if a.ndim == 0:
        raise ValueError("split: cannot split a zero-dimensional tensor")
    n = a.shape[d]
    if isinstance(split_size_or_sections, (int, xp.integer)):
        size = int(split_size_or_sections)
        if size < 0 or (size == 0 and n > 0):
            raise ValueError(f"split: split_size must be positive, got {size} for dim {d} of size {n}")
        if n == 0:
            sizes = [0]
        else:
            sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != n:
            raise ValueError(f"split: sections {sizes} must be non-negative and sum to the size {n} of "
                             f"dim {d} (tensor of shape {tuple(a.shape)})")
    pieces, start = [], 0
    for size in sizes:
        pieces.append(a[_along(d, slice(start, start + size))])
        start += size
    return tuple(pieces)


def chunk(a: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Cut into ``chunks`` pieces of ceil(size / chunks) along ``dim`` (fewer if size runs out, as PyTorch)."""
    if not isinstance(chunks, (int, xp.integer)) or chunks < 1:
        raise ValueError(f"chunk: chunks must be a positive integer, got {chunks}")
    d = normalize_dim(dim, a.ndim, "chunk")
    if a.ndim == 0:
        raise ValueError("chunk: cannot chunk a zero-dimensional tensor")
    return split(a, -(-a.shape[d] // chunks), d)


def unbind(a: Tensor, dim: int = 0) -> tuple:
    """The slices along ``dim``, each without that dimension."""
    if a.ndim == 0:
        raise ValueError("unbind: cannot unbind a zero-dimensional tensor")
    d = normalize_dim(dim, a.ndim, "unbind")
    return tuple(a[_along(d, i)] for i in range(a.shape[d]))


# --- padding, flipping, rolling ---------------------------------------------------------------
def _pad_array(a, widths: tuple, value):
    """Pad (positive widths) and crop (negative widths) each dimension by (before, after)."""
    shape = tuple(n + lo + hi for n, (lo, hi) in zip(a.shape, widths))
    out = xp.full_like(a, value, shape=shape)
    src, dst = [], []
    for n, m, (lo, hi) in zip(a.shape, shape, widths):
        if n + min(lo, 0) + min(hi, 0) <= 0:  # everything cropped away
            return out
        src.append(slice(max(-lo, 0), n - max(-hi, 0)))
        dst.append(slice(max(lo, 0), m - max(hi, 0)))
    out[tuple(dst)] = a[tuple(src)]
    return out


class Pad(Function):
    """The primitive behind ``pad`` (constant value; negative widths crop)."""

    uses_inputs = False

    def forward(self, a, widths, value):
        self.widths = widths
        return _pad_array(a, widths, value)

    def _back(self) -> tuple:
        return tuple((-lo, -hi) for lo, hi in self.widths)

    def backward(self, g, m):  # adjoint: padding with -widths crops the pad, restores cropped parts as 0
        return m.apply(Pad, g, self._back(), 0), None, None


def pad(a: Tensor, pad: tuple, value: float = 0.0) -> Tensor:
    """Constant padding; ``pad`` = (left, right) for the last dim, then the one before, ... (negative crops)."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > a.ndim:
        raise ValueError(f"pad: pad must have an even length of at most 2 * {a.ndim} entries for a tensor "
                         f"of shape {tuple(a.shape)}, got {pad}")
    widths = [(0, 0)] * a.ndim
    for i in range(len(pad) // 2):
        widths[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    shape = tuple(n + lo + hi for n, (lo, hi) in zip(a.shape, widths))
    if any(s < 0 for s in shape):
        raise ShapeError(f"pad: padding {pad} of a tensor of shape {tuple(a.shape)} gives a negative size {shape}")
    return Pad.apply(a, tuple(widths), value)


class Flip(Function):
    """The primitive behind ``flip``."""

    uses_inputs = False

    def forward(self, a, dims):
        self.dims = dims
        return xp.flip(a, axis=dims)

    def backward(self, g, m):  # adjoint: flipping is its own inverse
        return m.apply(Flip, g, self.dims), None


def flip(a: Tensor, *dims) -> Tensor:
    """Reverse the order of the entries along each dimension in ``dims``."""
    dims = _dims_arg(_shape_arg(dims), a.ndim, "flip")
    if not dims or a.ndim == 0:
        return a
    return Flip.apply(a, dims)


class Roll(Function):
    """The primitive behind ``roll``."""

    uses_inputs = False

    def forward(self, a, shifts, dims):
        self.shifts, self.dims = shifts, dims
        return xp.roll(a, shifts, axis=dims)

    def _back(self):
        return tuple(-s for s in self.shifts) if isinstance(self.shifts, tuple) else -self.shifts

    def backward(self, g, m):  # adjoint: roll back by the same amount
        return m.apply(Roll, g, self._back(), self.dims), None, None


def roll(a: Tensor, shifts, dims=None) -> Tensor:
    """Shift entries cyclically along ``dims`` (the flattened tensor when None), as ``numpy.roll``."""
    if dims is None:
        if not isinstance(shifts, int):
            raise ValueError(f"roll: without dims, shifts must be a single int, got {shifts}")
        return Roll.apply(a, shifts, None)
    if isinstance(dims, int) and isinstance(shifts, int):
        return Roll.apply(a, shifts, normalize_dim(dims, a.ndim, "roll"))
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    return Roll.apply(a, shifts, tuple(normalize_dim(d, a.ndim, "roll") for d in dims))


def movedim(a: Tensor, source, destination) -> Tensor:
    """Move dimensions ``source`` to positions ``destination``, keeping the others in order."""
    src = _dims_arg(source, a.ndim, "movedim")
    dst = _dims_arg(destination, a.ndim, "movedim")
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {source} and destination {destination} must have the same length")
    order = [d for d in range(a.ndim) if d not in src]
    for to, frm in sorted(zip(dst, src)):
        order.insert(to, frm)
    return permute(a, *order)


moveaxis = movedim


# --- repeating --------------------------------------------------------------------------------
class Repeat(Function):
    """The primitive behind ``Tensor.repeat`` and ``tile``."""

    uses_inputs = False

    def forward(self, a, reps):
        self.in_shape = a.shape
        self.shape = (1,) * (len(reps) - a.ndim) + a.shape
        self.reps = reps
        return xp.tile(a.reshape(self.shape), reps)

    def _interleaved(self) -> tuple:
        return tuple(x for r, n in zip(self.reps, self.shape) for x in (r, n))

    def backward(self, g, m):  # adjoint: sum the copies, viewed as (r0, n0, r1, n1, ...), over the r axes
        interleaved = self._interleaved()
        return m.sum(g.reshape(interleaved), tuple(range(0, len(interleaved), 2))).reshape(self.in_shape), None


def repeat(a: Tensor, *sizes) -> Tensor:
    """Tile the tensor ``sizes[i]`` times along dimension i (PyTorch's ``Tensor.repeat``)."""
    reps = tuple(int(s) for s in _shape_arg(sizes))
    if len(reps) < a.ndim:
        raise ShapeError(f"repeat: got {len(reps)} repeat counts {reps} for a tensor of shape "
                         f"{tuple(a.shape)}; give at least one per dimension")
    if any(r < 0 for r in reps):
        raise ValueError(f"repeat: repeat counts must be non-negative, got {reps}")
    return Repeat.apply(a, reps)


def tile(a: Tensor, *reps) -> Tensor:
    """Tile as ``numpy.tile``: missing leading repeat counts are 1, extra ones add dimensions."""
    reps = tuple(int(r) for r in _shape_arg(reps))
    return repeat(a, *((1,) * (a.ndim - len(reps)) + reps))


class RepeatInterleave(Function):
    """The primitive behind ``repeat_interleave`` with one count."""

    uses_inputs = False

    def forward(self, a, repeats, axis):
        self.repeats, self.axis = repeats, axis
        return xp.repeat(a, repeats, axis=axis)

    def _split_shape(self) -> tuple:
        shape, d = self.inputs[0].shape, self.axis
        return shape[:d] + (shape[d], self.repeats) + shape[d + 1:]

    def backward(self, g, m):  # adjoint: each entry's copies are adjacent; view (..., n, r, ...), sum over r
        return m.sum(g.reshape(self._split_shape()), self.axis + 1), None, None


def repeat_interleave(a: Tensor, repeats, dim: int | None = None) -> Tensor:
    """Repeat each entry along ``dim`` (of the flattened tensor when None), as ``numpy.repeat``.

    ``repeats`` is one count or one count per entry; per-entry counts go through indexing.
    """
    if dim is None:
        a, dim = flatten(a), 0
    d = normalize_dim(dim, a.ndim, "repeat_interleave")
    if a.ndim == 0:
        a = reshape(a, (1,))
    if isinstance(repeats, Tensor):
        repeats = repeats.data
    if not isinstance(repeats, int):
        counts = xp.asarray(repeats)
        if counts.dtype.kind not in "iu" or counts.ndim > 1:
            raise TypeError(f"repeat_interleave: repeats must be an int or a 1-D integer tensor, got dtype "
                            f"{counts.dtype} and shape {tuple(counts.shape)}")
        if counts.size == 1:
            repeats = int(counts.reshape(()))
        else:
            if counts.shape != (a.shape[d],):
                raise ValueError(f"repeat_interleave: repeats has shape {tuple(counts.shape)}, expected one "
                                 f"count per entry of dim {d} ({a.shape[d]},) of a tensor of shape {tuple(a.shape)}")
            if counts.size and counts.min() < 0:
                raise ValueError(f"repeat_interleave: repeats must be non-negative, got {int(counts.min())}")
            return a[_along(d, xp.repeat(xp.arange(a.shape[d], like=counts), counts))]
    if repeats < 0:
        raise ValueError(f"repeat_interleave: repeats must be non-negative, got {repeats}")
    return RepeatInterleave.apply(a, repeats, d)


# --- PyTorch's shape conveniences ---------------------------------------------------------------------
def view_as(a: Tensor, other: Tensor) -> Tensor:
    """``a`` in the shape of ``other``."""
    return reshape(a, tuple(other.shape))


reshape_as = view_as


def expand_as(a: Tensor, other: Tensor) -> Tensor:
    """``a`` broadcast to the shape of ``other``."""
    return expand(a, tuple(other.shape))


def is_contiguous(a: Tensor) -> bool:
    """Whether the values lie in row-major order without gaps."""
    return bool(a.data.flags.c_contiguous)


def contiguous(a: Tensor) -> Tensor:
    """``a`` itself when its memory is row-major already, else a row-major copy (in the graph)."""
    return a if a.data.flags.c_contiguous else clone(a)


def unflatten(a: Tensor, dim: int, sizes) -> Tensor:
    """Split dimension ``dim`` into ``sizes`` (one entry may be -1), the inverse of ``flatten``."""
    d = normalize_dim(dim, a.ndim, "unflatten")
    sizes = tuple(int(s) for s in sizes)
    known = 1
    for s in sizes:
        known *= s if s != -1 else 1
    n = a.shape[d] if a.ndim else 1
    if sizes.count(-1) > 1 or (-1 not in sizes and known != n) or (-1 in sizes and (known == 0 or n % known)):
        raise ShapeError(f"unflatten: sizes {sizes} do not multiply to the size {n} of dim {d} "
                           f"(tensor of shape {tuple(a.shape)})")
    sizes = tuple(n // known if s == -1 else s for s in sizes)
    return reshape(a, a.shape[:d] + sizes + a.shape[d + 1:])


def unfold(a: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """Every slice of length ``size`` along ``dimension``, ``step`` apart, in a new last dimension
    (PyTorch's ``Tensor.unfold``; for im2col see ``F.unfold``)."""
    d = normalize_dim(dimension, a.ndim, "unfold")
    n = a.shape[d] if a.ndim else 1
    if step < 1 or not 0 <= size <= n:
        raise ShapeError(f"unfold: size {size} must be in [0, {n}] (size of dim {d}) and step {step} >= 1 "
                           f"(tensor of shape {tuple(a.shape)})")
    if a.ndim == 0:
        return reshape(a, (1,))
    count = (n - size) // step + 1
    idx = xp.arange(count, like=a.data)[:, None] * step + xp.arange(size, like=a.data)
    windows = a[_along(d, idx)]
    return movedim(windows, d + 1, -1)


def meshgrid(*tensors, indexing: str = "ij") -> tuple:
    """Coordinate grids from 1-D tensors: with "ij" output k varies along dimension k; "xy" swaps the first two."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    tensors = [_as_tensor(t) for t in tensors]
    for t in tensors:
        if t.ndim > 1:
            raise ValueError(f"meshgrid: expected 0-D or 1-D tensors, got shape {tuple(t.shape)}")
    tensors = [reshape(t, (-1,)) for t in tensors]
    swap = indexing == "xy" and len(tensors) >= 2
    order = list(range(len(tensors)))
    if swap:
        order[0], order[1] = 1, 0
    shape = tuple(tensors[k].shape[0] for k in order)
    grids = []
    for k, t in enumerate(tensors):
        pos = order.index(k)
        view_shape = [1] * len(tensors)
        view_shape[pos] = t.shape[0]
        grids.append(expand(reshape(t, tuple(view_shape)), shape))
    return tuple(grids)


__all__ = ["ShapeError", "broadcast_to", "cat", "chunk", "concat", "expand", "flatten", "flip", "movedim", "moveaxis",
           "pad", "permute", "repeat", "repeat_interleave", "reshape", "roll", "split", "squeeze", "stack", "swapaxes",
           "tile", "transpose", "unbind", "unsqueeze", "view", "meshgrid", "unflatten"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["broadcast_to", "chunk", "expand", "flatten", "flip", "movedim", "moveaxis", "permute", "repeat",
           "repeat_interleave", "reshape", "roll", "split", "squeeze", "swapaxes", "tile", "transpose", "unbind",
           "unsqueeze", "view", "view_as", "reshape_as", "expand_as", "contiguous", "is_contiguous", "unflatten",
           "unfold"]
