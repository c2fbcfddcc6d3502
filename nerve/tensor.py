"""``Tensor``: an array, its gradient, whether it requires one, and the node that made it.

It holds no math of its own: operators and methods call the primitives in ``nerve.ops``.
"""
from __future__ import annotations

import operator
import weakref
from typing import Any, Callable

from nerve import backend
from nerve.backend import xp
from nerve.numerics import array_string


def _as_array(data: Any, dtype=None, device=None):
    """Turn data into an array: Python floats become the default dtype, arrays keep theirs."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = backend.dtype(dtype)
    module = backend.array_module(device) if device is not None else None
    if isinstance(data, (backend.ndarray, backend.generic)) or hasattr(data, "__cuda_array_interface__"):
        array = data
    else:
        array = xp.asarray(data)
        if dtype is None and array.dtype.kind == "f":
            dtype = backend.get_default_dtype()
    if dtype is not None and array.dtype != dtype:
        array = array.astype(dtype)
    if module is not None:
        array = backend.to_device(array, device)
    if isinstance(array, backend.generic):
        array = xp.asarray(array)
    return array


class Tensor:
    """An n-dimensional array that records the operations made on it when it requires grad."""

    __slots__ = ("data", "grad", "_requires_grad", "grad_fn", "_version", "_hooks", "_post_hooks", "__weakref__")
    # NOTE: numpy defers to our reflected operators (ndarray + Tensor -> Tensor.__radd__).
    __array_ufunc__ = None
    # NOTE: set by the first register_post_accumulate_grad_hook; until then backward skips counting leaf uses.
    _any_post_hooks = False

    def __init__(self, data: Any, requires_grad: bool = False, dtype=None, device=None) -> None:
        self.data = _as_array(data, dtype, device)
        self.grad = None
        self.grad_fn = None
        self._version = 0
        self._hooks = self._post_hooks = None
        self._requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, grad_fn) -> "Tensor":
        """Fast constructor for op results: no conversion, no checks."""
        t = object.__new__(cls)
        t.data = data
        t.grad = None
        t.grad_fn = grad_fn
        t._requires_grad = grad_fn is not None
        t._version = 0
        t._hooks = t._post_hooks = None
        return t

    # --- attributes -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def dim(self) -> int:
        """Number of dimensions (PyTorch's name)."""
        return self.data.ndim

    def size(self, dim: int | None = None):
        """The shape, or the length of one dimension (PyTorch's ``size``; see ``numel`` for the count)."""
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        """Number of elements."""
        return int(self.data.size)

    @property
    def device(self) -> backend.device:
        """The ``nerve.device`` holding the values (it compares equal to "cpu" / "cuda" strings)."""
        return backend.device_object(self.data)

    @property
    def is_cuda(self) -> bool:
        return backend.device_of(self.data) == "cuda"

    # NOTE: the getter is a C attrgetter (no Python frame): ops read this flag on every call.
    requires_grad = property(operator.attrgetter("_requires_grad"),
                             lambda self, flag: self.requires_grad_(flag),
                             doc="Whether operations on this tensor are recorded for its gradient.")

    def is_floating_point(self) -> bool:
        """True for floating dtypes (float16/32/64)."""
        return self.data.dtype.kind == "f"

    def is_complex(self) -> bool:
        return self.data.dtype.kind == "c"

    def element_size(self) -> int:
        """Bytes per element."""
        return self.data.dtype.itemsize

    @property
    def itemsize(self) -> int:
        return self.data.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def nelement(self) -> int:
        """Number of elements (PyTorch's older name for ``numel``)."""
        return int(self.data.size)

    def ndimension(self) -> int:
        return self.data.ndim

    def stride(self, dim: int | None = None):
        """Steps between neighbours along each dimension, in elements (NumPy's strides are in bytes)."""
        steps = tuple(s // self.data.dtype.itemsize for s in self.data.strides)
        return steps if dim is None else steps[dim]

    def data_ptr(self) -> int:
        """The address of the first element."""
        return int(self.data.__array_interface__["data"][0] if backend.device_of(self.data) == "cpu"
                   else self.data.data.ptr)

    def get_device(self) -> int:
        """-1 on the CPU, the GPU's index on a GPU (PyTorch's convention)."""
        index = self.device.index
        return -1 if index is None else index

    def pin_memory(self) -> "Tensor":
        """The tensor itself: nerve has no pinned host memory (accepted so PyTorch code runs)."""
        return self

    def is_pinned(self) -> bool:
        return False

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by a recorded op."""
        return self.grad_fn is None

    @property
    def T(self) -> "Tensor":
        return self.permute(*range(self.ndim - 1, -1, -1))

    @property
    def mT(self) -> "Tensor":
        return self.transpose(-2, -1)

    @property
    def mH(self) -> "Tensor":
        """The conjugate transpose of the last two dims (the transpose for real tensors)."""
        t = self.transpose(-2, -1)
        return t.conj() if self.data.dtype.kind == "c" else t

    @property
    def H(self) -> "Tensor":
        """The conjugate transpose of a matrix."""
        if self.ndim != 2:
            raise ValueError(f"Tensor.H: expected a matrix, got shape {tuple(self.shape)} (use mH for batches)")
        return self.mH

    def storage_offset(self) -> int:
        """Where this view starts in its base array, in elements."""
        base = self.data.base if self.data.base is not None else self.data
        if not hasattr(base, "__array_interface__"):
            return 0
        start = self.data.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        return start // self.data.itemsize

    # --- conversion -------------------------------------------------------------------------
    def numpy(self, *, force: bool = False):
        """The values as a NumPy array (shares memory on the CPU; a GPU tensor is copied over).

        Unlike PyTorch, a tensor that requires grad converts without ``force`` (which is accepted).
        """
        return self.data if backend.device_of(self.data) == "cpu" else self.data.get()

    def share_memory_(self) -> "Tensor":
        """The tensor itself: NumPy memory is already visible to forked workers (accepted so PyTorch code runs)."""
        _SHARED[id(self)] = weakref.ref(self, lambda _, key=id(self): _SHARED.pop(key, None))
        return self

    def is_shared(self) -> bool:
        """True after ``share_memory_()``."""
        ref = _SHARED.get(id(self))
        return ref is not None and ref() is self

    def apply_(self, callable: Callable) -> "Tensor":
        """Replace each element by ``callable(element)`` in place (a Python loop: CPU only, no gradient)."""
        if backend.device_of(self.data) != "cpu":
            raise TypeError("apply_ is only implemented on CPU tensors")
        self._check_inplace("apply_")
        values = [callable(v) for v in self.data.reshape(-1).tolist()]
        self.data[...] = xp.asarray(values, dtype=self.data.dtype).reshape(self.data.shape)
        return self

    def map_(self, tensor: "Tensor", callable: Callable) -> "Tensor":
        """Replace each element x by ``callable(x, y)``, y the matching element of ``tensor`` (broadcast)."""
        if backend.device_of(self.data) != "cpu":
            raise TypeError("map_ is only implemented on CPU tensors")
        self._check_inplace("map_")
        other = xp.broadcast_to(tensor.data if isinstance(tensor, Tensor) else xp.asarray(tensor), self.data.shape)
        for index in xp.ndindex(*self.data.shape):
            self.data[index] = callable(self.data[index].item(), other[index].item())
        return self

    def tolist(self):
        return self.numpy().tolist()

    def item(self):
        """The single value as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors convert to a Python number, got shape "
                             f"{tuple(self.shape)}")
        return self.data.reshape(()).item()

    def __array__(self, dtype=None, copy=None):
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def __float__(self) -> float:
        return float(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iub" or self.data.size != 1:
            raise TypeError(f"only integer tensors of a single element can be used as an index, got dtype "
                            f"{self.dtype} and shape {tuple(self.shape)}")
        return int(self.item())

    def __format__(self, spec: str) -> str:
        """A one-element tensor formats as its number (``f"{loss:.3f}"``); others as their repr."""
        if self.data.size == 1 and spec:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.data.size} elements is ambiguous")
        return bool(self.item())

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def to(self, *args, device=None, dtype=None, non_blocking: bool = False, copy: bool = False) -> "Tensor":
        """Move and/or cast as PyTorch's ``to``: ``to("cuda")``, ``to(nerve.device("cpu"))``,
        ``to(nerve.float64)``, ``to(device, dtype)``, ``to(other)`` (other's device and dtype).

        Float-to-float casts and device moves stay in the graph; ``non_blocking`` is accepted (moves are
        synchronous); ``copy=True`` returns a copy even when nothing changes.
        """
        device, dtype = to_arguments("Tensor.to", args, device, dtype)
        out = self
        if dtype is not None and dtype != self.dtype:
            out = out.astype(dtype)
        if device is not None and backend.device_of(out.data) != device.type:
            out = out.to_device(str(device))
        if copy and out is self:
            out = out.clone()
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device=None, non_blocking: bool = False) -> "Tensor":
        return self.to("cuda" if device is None else device)

    def type(self, dtype=None, non_blocking: bool = False):
        """With no argument PyTorch's type name (``"torch.FloatTensor"``); else a cast to ``dtype`` (a dtype or
        a name such as ``"torch.DoubleTensor"``)."""
        if dtype is None:
            return backend.tensor_type_name(self.data)
        if isinstance(dtype, str) and ".cuda." in dtype:
            return self.to("cuda", backend.dtype(dtype.rpartition(".")[2]))
        return self.astype(backend.dtype(dtype))

    def float(self) -> "Tensor":
        return self.astype(xp.float32)

    def double(self) -> "Tensor":
        return self.astype(xp.float64)

    def half(self) -> "Tensor":
        return self.astype(xp.float16)

    def bfloat16(self) -> "Tensor":
        return self.astype(backend.dtype("bfloat16"))

    def long(self) -> "Tensor":
        return self.astype(xp.int64)

    def int(self) -> "Tensor":
        return self.astype(xp.int32)

    def short(self) -> "Tensor":
        return self.astype(xp.int16)

    def char(self) -> "Tensor":
        return self.astype(xp.int8)

    def byte(self) -> "Tensor":
        return self.astype(xp.uint8)

    def bool(self) -> "Tensor":
        return self.astype(xp.bool_)

    def _view_dtype(self, dtype) -> "Tensor":
        """The same bytes read as ``dtype`` (``view(dtype)``): PyTorch's rule, the last dimension scales by the
        ratio of element sizes and must divide evenly; the result leaves the graph unless the dtype is the same."""
        dtype = backend.dtype(dtype)
        if dtype == self.dtype:
            return self
        old, new = self.dtype.itemsize, dtype.itemsize
        if old != new:
            if self.ndim == 0:
                raise RuntimeError(f"view(dtype): a 0-d tensor of {self.dtype} cannot be viewed as {dtype} "
                                   "(different element sizes)")
            if (self.shape[-1] * old) % new:
                raise RuntimeError(f"view(dtype): the last dimension of shape {tuple(self.shape)} times "
                                   f"{old} bytes is not a multiple of {new} bytes ({self.dtype} -> {dtype})")
            if self.data.strides[-1] != old:
                raise RuntimeError(f"view(dtype): the last dimension must be contiguous to view {self.dtype} "
                                   f"as {dtype}; call .contiguous() first")
        return Tensor._make(self.data.view(dtype), None)

    # --- new tensors on this one's device and dtype (PyTorch's ``new_*``) -----------------------
    def _new(self, fill, size, fill_value, dtype, device, requires_grad) -> "Tensor":
        if len(size) == 1 and not isinstance(size[0], int):
            size = tuple(size[0])
        dtype = self.dtype if dtype is None else backend.dtype(dtype)
        device = self.device if device is None else backend.device(device)
        module = backend.array_module(device.type)
        array = module.full(size, fill_value, dtype=dtype) if fill == "full" else getattr(module, fill)(size, dtype)
        return Tensor(array, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """Zeros of ``size`` with this tensor's dtype and device unless given."""
        return self._new("zeros", size, None, dtype, device, requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return self._new("ones", size, None, dtype, device, requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return self._new("empty", size, None, dtype, device, requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return self._new("full", (size,), fill_value, dtype, device, requires_grad)

    def new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """A copy of ``data`` with this tensor's dtype and device unless given (as ``nerve.tensor``)."""
        array = _as_array(data, self.dtype if dtype is None else dtype, self.device if device is None else device)
        if array is data or (isinstance(data, Tensor) and array is data.data):
            array = array.copy()
        return Tensor(array, requires_grad=requires_grad)

    def detach(self) -> "Tensor":
        """The same values, cut from the graph (shares memory)."""
        return Tensor._make(self.data, None)

    def detach_(self) -> "Tensor":
        """Cut this tensor from the graph in place: it becomes a leaf that does not require grad."""
        self.grad_fn = None
        self._requires_grad = False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Mark a leaf as needing its gradient; only floating tensors can (as ``x.requires_grad = True``)."""
        if requires_grad and self.data.dtype.kind not in "fc":
            raise GradDtypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use detach() instead")
        self._requires_grad = bool(requires_grad)
        return self

    # --- autograd (``backward`` is bound by nerve.autograd.engine) ---------------------------
    def register_hook(self, hook: Callable) -> "RemovableHandle":
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor replaces it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook on a tensor that does not require grad")
        target = self if self.grad_fn is None else self.grad_fn
        if target._hooks is None:
            target._hooks = {}
        return RemovableHandle.add(target._hooks, hook)

    def register_post_accumulate_grad_hook(self, hook: Callable) -> "RemovableHandle":
        """Call ``hook(tensor)`` once ``backward()`` has summed this leaf's gradient into ``.grad``: as soon as
        no other part of the graph can add to it, so work on finished gradients (a distributed optimiser's
        allreduce) overlaps the rest of the backward pass."""
        if self.grad_fn is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors accumulate into .grad; "
                               "this tensor was made by " + self.grad_fn.name)
        if not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook on a tensor that does not require grad")
        if self._post_hooks is None:
            self._post_hooks = {}
        Tensor._any_post_hooks = True
        return RemovableHandle.add(self._post_hooks, hook)

    def retain_grad(self) -> None:
        """Keep the gradient of a non-leaf tensor in ``.grad`` after backward."""
        if self.grad_fn is None:
            return
        self.grad_fn._retained = weakref.ref(self)

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    # --- in place ---------------------------------------------------------------------------
    def _check_inplace(self, op: str) -> None:
        if self.requires_grad and _grad_state.enabled:
            kind = "a leaf tensor" if self.grad_fn is None else "a tensor"
            raise RuntimeError(f"{op}: in-place change of {kind} that requires grad would corrupt "
                               "the graph; do it under nerve.no_grad() or use the out-of-place op")
        self._version += 1

    def _inplace(self, op: str, fn, other) -> "Tensor":
        self._check_inplace(op)
        fn(self.data, other.data if isinstance(other, Tensor) else other, out=self.data)
        return self

    def add_(self, other, alpha=1) -> "Tensor":
        if alpha != 1:
            other = (other.data if isinstance(other, Tensor) else other) * alpha
        return self._inplace("add_", xp.add, other)

    def sub_(self, other, alpha=1) -> "Tensor":
        if alpha != 1:
            other = (other.data if isinstance(other, Tensor) else other) * alpha
        return self._inplace("sub_", xp.subtract, other)

    def mul_(self, other) -> "Tensor":
        return self._inplace("mul_", xp.multiply, other)

    def div_(self, other) -> "Tensor":
        return self._inplace("div_", xp.true_divide, other)

    def clamp_(self, min=None, max=None) -> "Tensor":
        self._check_inplace("clamp_")
        xp.clip(self.data, min, max, out=self.data)
        return self

    def fill_(self, value) -> "Tensor":
        self._check_inplace("fill_")
        self.data[...] = value
        return self

    def copy_(self, src) -> "Tensor":
        self._check_inplace("copy_")
        self.data[...] = src.data if isinstance(src, Tensor) else src
        return self

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def __setitem__(self, key, value) -> None:
        self._check_inplace("__setitem__")
        if isinstance(key, Tensor):
            key = key.data
        elif isinstance(key, tuple):
            key = tuple(k.data if isinstance(k, Tensor) else k for k in key)
        self.data[key] = value.data if isinstance(value, Tensor) else value

    # --- operators: arithmetic ones are bound to the ops by nerve.ops' table -------------------
    def __pos__(self):
        return self

    def __lt__(self, other):
        return _compare(xp.less, self, other)

    def __le__(self, other):
        return _compare(xp.less_equal, self, other)

    def __gt__(self, other):
        return _compare(xp.greater, self, other)

    def __ge__(self, other):
        return _compare(xp.greater_equal, self, other)

    def __eq__(self, other):
        return _compare(xp.equal, self, other)

    def __ne__(self, other):
        return _compare(xp.not_equal, self, other)

    def __invert__(self):
        return Tensor._make(xp.invert(self.data), None)

    def __and__(self, other):
        return _compare(xp.bitwise_and, self, other)

    def __or__(self, other):
        return _compare(xp.bitwise_or, self, other)

    def __xor__(self, other):
        return _compare(xp.bitwise_xor, self, other)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        body = array_string(self.numpy())
        extras = []
        if self.data.dtype != backend.get_default_dtype() and self.data.dtype.kind not in "ib":
            extras.append(f"dtype={self.dtype}")
        if backend.device_of(self.data) != "cpu":
            extras.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{type(self.grad_fn).__name__}Backward>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"


class GradDtypeError(RuntimeError, TypeError):
    """Raised when a non-floating tensor is asked to require grad: PyTorch raises RuntimeError here, nerve
    raised TypeError before, so both ``except`` clauses catch it."""


def to_arguments(owner: str, args: tuple, device=None, dtype=None) -> tuple:
    """(device, dtype) from PyTorch's ``to`` arguments: a device (name or object), a dtype (object or name),
    both, or a tensor whose device and dtype are taken."""
    if len(args) > 2:
        raise TypeError(f"{owner}: expected at most (device, dtype), got {len(args)} positional arguments")
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, backend.device) or (isinstance(arg, str) and _names_device(arg)):
            device = arg
        else:
            dtype = arg
    return (None if device is None else backend.device(device)), (None if dtype is None else backend.dtype(dtype))


def _names_device(name: str) -> bool:
    """True when a string names a device (``"cuda:0"``) rather than a dtype (``"float64"``)."""
    try:
        backend.device(name)
        return True
    except RuntimeError:
        return False


class RemovableHandle:
    """What ``register_*hook`` returns (PyTorch's name): ``remove()`` unregisters the hook."""

    _ids = iter(range(1 << 62))

    def __init__(self, hooks: dict, key: int) -> None:
        self._hooks, self._key = hooks, key

    @classmethod
    def add(cls, hooks: dict, hook: Callable) -> "RemovableHandle":
        """Register ``hook`` in ``hooks`` (called in registration order) and return its handle."""
        key = next(cls._ids)
        hooks[key] = hook
        return cls(hooks, key)

    def remove(self) -> None:
        """Unregister the hook (a second call does nothing)."""
        self._hooks.pop(self._key, None)


def _compare(fn, a, b) -> Tensor:
    """Comparisons and bitwise ops: boolean (or integer) results that carry no gradient."""
    a = a.data if isinstance(a, Tensor) else a
    b = b.data if isinstance(b, Tensor) else b
    return Tensor._make(xp.asarray(fn(a, b)), None)


#: tensors marked by share_memory_, by id (weakly held)
_SHARED: dict = {}

# NOTE: grad_mode is imported once Tensor exists: importing it runs nerve.autograd, which needs Tensor.
from nerve.autograd.grad_mode import state as _grad_state  # noqa: E402
