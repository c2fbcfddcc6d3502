"""Tensor creation: from data, constant fills, ranges, and random draws, with PyTorch's keywords.

Every function takes ``dtype=``, ``device=`` (a name or a ``nerve.device``) and ``requires_grad=``; the random
ones take ``generator=`` (a ``nerve.Generator`` or any NumPy Generator; the shared seeded one by default).
``tensor`` copies its input, ``as_tensor`` and ``from_numpy`` share memory, as in PyTorch.
"""
from __future__ import annotations

import numbers

from nerve import backend
from nerve.backend import xp
from nerve.tensor import Tensor


def _dtype(dtype, floating: bool = True):
    if dtype is not None:
        return backend.dtype(dtype)
    return backend.get_default_dtype() if floating else None


def _shape(name: str, size: tuple, keyword=None) -> tuple:
    """The shape from ``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])`` or ``f(size=(2, 3))``."""
    if keyword is not None:
        if size:
            raise TypeError(f"{name}: got the size both positionally {size} and as size={keyword}")
        size = (keyword,)
    if len(size) == 1 and not isinstance(size[0], numbers.Integral):
        size = tuple(size[0])
    if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in size):
        raise TypeError(f"{name}: the size must be integers, got {size}")
    if any(n < 0 for n in size):
        raise RuntimeError(f"{name}: negative dimension in size {tuple(int(n) for n in size)}")
    return tuple(int(n) for n in size)


def _finish(array, requires_grad: bool, device) -> Tensor:
    if device is not None and str(device) != "cpu" and backend.device(device).type != "cpu":
        array = backend.to_device(array, str(device))
    return Tensor(array, requires_grad=requires_grad)


def tensor(data, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (lists, scalars, arrays, Tensors); Python floats get the default
    dtype, arrays keep theirs. ``pin_memory`` is accepted and does nothing (there is no pinned memory)."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (backend.ndarray, backend.generic)) or hasattr(data, "__cuda_array_interface__"):
        data = data.copy()
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def from_numpy(array) -> Tensor:
    """A tensor sharing memory with a NumPy array (its dtype kept): a change on one side shows on the other."""
    if not isinstance(array, backend.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor._make(array, None)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor without copying when it can be: a Tensor of the right dtype and device is returned
    itself, an array of the right dtype is shared; anything else is converted (a copy)."""
    if isinstance(data, Tensor):
        out = data if dtype is None else data.to(dtype=dtype)
        return out if device is None else out.to(device)
    return Tensor(data, dtype=dtype, device=device)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False, out=None, **kwargs) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)``, ``zeros((2, 3))``, ``zeros(size=(2, 3))``."""
    shape = _shape("zeros", size, kwargs.pop("size", None))
    return _check_out("zeros", out, _finish(xp.zeros(shape, dtype=_dtype(dtype)), requires_grad, device), kwargs)


def ones(*size, dtype=None, device=None, requires_grad: bool = False, out=None, **kwargs) -> Tensor:
    """A tensor of ones."""
    shape = _shape("ones", size, kwargs.pop("size", None))
    return _check_out("ones", out, _finish(xp.ones(shape, dtype=_dtype(dtype)), requires_grad, device), kwargs)


def empty(*size, dtype=None, device=None, requires_grad: bool = False, out=None, **kwargs) -> Tensor:
    """An uninitialised tensor (contents arbitrary)."""
    shape = _shape("empty", size, kwargs.pop("size", None))
    return _check_out("empty", out, _finish(xp.empty(shape, dtype=_dtype(dtype)), requires_grad, device), kwargs)


def _check_out(name: str, out, result: Tensor, kwargs: dict) -> Tensor:
    """Keywords PyTorch's creation functions take that change nothing here (``layout``, ``pin_memory``);
    ``out=`` writes into an existing tensor."""
    unknown = set(kwargs) - {"layout", "pin_memory", "memory_format"}
    if unknown:
        raise TypeError(f"{name}: unexpected keyword argument(s) {sorted(unknown)}")
    if out is None:
        return result
    if out.shape != result.shape:
        raise RuntimeError(f"{name}: out has shape {tuple(out.shape)}, the result has {tuple(result.shape)}")
    return out.copy_(result)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with one value (a bool or int value gives bool or int64, a float the default dtype)."""
    if dtype is None and isinstance(fill_value, (bool, numbers.Integral)):
        dtype = xp.bool_ if isinstance(fill_value, bool) else xp.int64
    shape = _shape("full", (size,))
    return _finish(xp.full(shape, fill_value, dtype=_dtype(dtype)), requires_grad, device)


def _is_float(value) -> bool:
    if isinstance(value, Tensor):
        return value.dtype.kind == "f"
    return isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Evenly spaced values in [start, end); integer arguments give int64, any float the default dtype."""
    if end is None:
        start, end = 0, start
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: the range [{start}, {end}) with step {step} runs the wrong way")
    floating = any(_is_float(v) for v in (start, end, step))
    array = xp.arange(start, end, step, dtype=_dtype(dtype, floating) or xp.int64)
    return _finish(array, requires_grad, device)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``steps`` values from start to end inclusive."""
    if steps < 0:
        raise RuntimeError(f"linspace: steps must be non-negative, got {steps}")
    return _finish(xp.linspace(start, end, steps, dtype=_dtype(dtype)), requires_grad, device)


def logspace(start, end, steps: int, base: float = 10.0, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` values from base**start to base**end, evenly spaced in the exponent."""
    if steps < 0:
        raise RuntimeError(f"logspace: steps must be non-negative, got {steps}")
    return _finish(xp.logspace(start, end, steps, base=base, dtype=_dtype(dtype)), requires_grad, device)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Identity matrix (n x m)."""
    return _finish(xp.eye(n, m, dtype=_dtype(dtype)), requires_grad, device)


def _like(fn, t: Tensor, dtype, device, requires_grad, **extra) -> Tensor:
    return fn(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad, **extra)


def zeros_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False, **kwargs) -> Tensor:
    return _like(zeros, input, dtype, device, requires_grad, **kwargs)


def ones_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False, **kwargs) -> Tensor:
    return _like(ones, input, dtype, device, requires_grad, **kwargs)


def empty_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False, **kwargs) -> Tensor:
    return _like(empty, input, dtype, device, requires_grad, **kwargs)


def full_like(input: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return full(input.shape, fill_value, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)


def _gen(generator):
    if generator is None:
        return backend.default_generator()
    if not hasattr(generator, "bit_generator"):
        raise TypeError(f"generator must be a nerve.Generator (or a NumPy Generator), got {type(generator).__name__}")
    return generator


def _floating(name: str, dtype) -> xp.dtype:
    dtype = _dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating dtype, got {dtype}")
    return dtype


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """Uniform samples in [0, 1)."""
    shape = _shape("rand", size, kwargs.pop("size", None))
    array = _gen(generator).random(shape).astype(_floating("rand", dtype))
    return _check_out("rand", None, _finish(array, requires_grad, device), kwargs)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """Standard normal samples."""
    shape = _shape("randn", size, kwargs.pop("size", None))
    array = _gen(generator).standard_normal(shape).astype(_floating("randn", dtype))
    return _check_out("randn", None, _finish(array, requires_grad, device), kwargs)


def randint(*args, size=None, low=None, high=None, generator=None, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """Integers in [low, high): ``randint(high, size)``, ``randint(low, high, size)`` and their keyword forms
    (``randint(low=2, high=5, size=(3,))``); int64 unless ``dtype`` says otherwise."""
    args = list(args)
    if size is None and args and isinstance(args[-1], (tuple, list)):
        size = args.pop()
    if len(args) == 2:
        low, high = args
    elif len(args) == 1:
        if high is None:
            high = args[0]
        else:
            low = args[0]
    elif len(args) > 2:
        raise TypeError(f"randint: expected (high, size) or (low, high, size), got {len(args)} numbers")
    if high is None:
        raise TypeError("randint: missing high (call randint(high, size) or randint(low, high, size))")
    if size is None:
        raise TypeError("randint: missing size (call randint(high, size) or randint(low, high, size))")
    low = 0 if low is None else low
    if low >= high:
        raise RuntimeError(f"randint: expected low < high, got low={low}, high={high}")
    dtype = backend.dtype(dtype) if dtype is not None else xp.dtype(xp.int64)
    shape = _shape("randint", (size,))
    array = _gen(generator).integers(low, high, size=shape).astype(dtype)
    return _finish(array, requires_grad, device)


def randperm(n: int, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A random permutation of 0..n-1 (int64 unless ``dtype`` says otherwise)."""
    if n < 0:
        raise RuntimeError(f"randperm: n must be non-negative, got {n}")
    dtype = backend.dtype(dtype) if dtype is not None else xp.dtype(xp.int64)
    return _finish(_gen(generator).permutation(int(n)).astype(dtype), requires_grad, device)


def rand_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    return _like(rand, input, dtype, device, requires_grad, generator=generator)


def randn_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    return _like(randn, input, dtype, device, requires_grad, generator=generator)


def randint_like(input: Tensor, low: int, high: int | None = None, dtype=None, device=None,
                 requires_grad: bool = False, generator=None) -> Tensor:
    """``randint_like(t, high)`` or ``randint_like(t, low, high)``: integers shaped like ``t``, in its dtype."""
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype, device=device or input.device,
                   requires_grad=requires_grad, generator=generator)
