"""``Tensor``: an array, its gradient, whether it requires one, and the node that made it.

It holds no math of its own: operators and methods call the primitives in ``nerve.ops``.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable

from nerve import backend
from nerve.backend import xp


def _as_array(data: Any, dtype=None, device=None):
    """Turn data into an array: Python floats become the default dtype, arrays keep theirs."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = xp.dtype(dtype)
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

    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "_version", "_hooks", "__weakref__")
    # NOTE: numpy defers to our reflected operators (ndarray + Tensor -> Tensor.__radd__).
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype=None, device=None) -> None:
        self.data = _as_array(data, dtype, device)
        self.grad = None
        self.grad_fn = None
        self._version = 0
        self._hooks = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, grad_fn) -> "Tensor":
        """Fast constructor for op results: no conversion, no checks."""
        t = object.__new__(cls)
        t.data = data
        t.grad = None
        t.grad_fn = grad_fn
        t.requires_grad = grad_fn is not None
        t._version = 0
        t._hooks = None
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
    def device(self) -> str:
        return backend.device_of(self.data)

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

    # --- conversion -------------------------------------------------------------------------
    def numpy(self):
        """The values as a NumPy array (shares memory on the CPU)."""
        return self.data if self.device == "cpu" else self.data.get()

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

    def to(self, device=None, dtype=None) -> "Tensor":
        """Move to a device and/or cast to a dtype; ``to("cuda")``, ``to(nerve.float64)``."""
        if dtype is None and device is not None and not isinstance(device, str):
            device, dtype = None, device
        out = self
        if dtype is not None and xp.dtype(dtype) != self.dtype:
            out = out.astype(dtype)
        if device is not None and backend.device_of(out.data) != str(device).split(":")[0]:
            out = out.to_device(device)
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def float(self) -> "Tensor":
        return self.astype(xp.float32)

    def double(self) -> "Tensor":
        return self.astype(xp.float64)

    def long(self) -> "Tensor":
        return self.astype(xp.int64)

    def detach(self) -> "Tensor":
        """The same values, cut from the graph (shares memory)."""
        return Tensor._make(self.data, None)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Mark a leaf as needing its gradient; only floating tensors can."""
        if requires_grad and self.data.dtype.kind not in "fc":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use detach() instead")
        self.requires_grad = bool(requires_grad)
        return self

    # --- autograd (``backward`` is bound by nerve.autograd.engine) ---------------------------
    def register_hook(self, hook: Callable) -> Callable:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor replaces it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook on a tensor that does not require grad")
        target = self if self.grad_fn is None else self.grad_fn
        if target._hooks is None:
            target._hooks = []
        target._hooks.append(hook)
        return lambda: target._hooks.remove(hook)

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
        body = xp.array2string(self.numpy(), separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self.data.dtype != backend.get_default_dtype() and self.data.dtype.kind not in "ib":
            extras.append(f"dtype={self.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{type(self.grad_fn).__name__}Backward>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"


def _compare(fn, a, b) -> Tensor:
    """Comparisons and bitwise ops: boolean (or integer) results that carry no gradient."""
    a = a.data if isinstance(a, Tensor) else a
    b = b.data if isinstance(b, Tensor) else b
    return Tensor._make(xp.asarray(fn(a, b)), None)


# NOTE: grad_mode is imported once Tensor exists: importing it runs nerve.autograd, which needs Tensor.
from nerve.autograd.grad_mode import state as _grad_state  # noqa: E402
