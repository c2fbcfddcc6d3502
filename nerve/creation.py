"""Tensor creation: from data, constant fills, ranges, and random draws from the seeded generator."""
from __future__ import annotations

from nerve import backend
from nerve.backend import xp
from nerve.tensor import Tensor


def _dtype(dtype, floating: bool = True):
    if dtype is not None:
        return xp.dtype(dtype)
    return backend.get_default_dtype() if floating else None


def _shape(size) -> tuple:
    if len(size) == 1 and not isinstance(size[0], int):
        return tuple(size[0])
    return tuple(size)


def _finish(array, requires_grad: bool, device) -> Tensor:
    if device is not None and str(device) != "cpu":
        array = backend.to_device(array, device)
    return Tensor(array, requires_grad=requires_grad)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor from data (lists, scalars, arrays); Python floats get the default dtype."""
    if isinstance(data, Tensor):
        data = data.data.copy()
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def from_numpy(array) -> Tensor:
    """A tensor sharing memory with a NumPy array (its dtype kept)."""
    return Tensor._make(array, None)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but returns ``data`` itself when it is already a matching Tensor."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtype):
        return data if device is None else data.to(device)
    return Tensor(data, dtype=dtype, device=device)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros."""
    return _finish(xp.zeros(_shape(size), dtype=_dtype(dtype)), requires_grad, device)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _finish(xp.ones(_shape(size), dtype=_dtype(dtype)), requires_grad, device)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor (contents arbitrary)."""
    return _finish(xp.empty(_shape(size), dtype=_dtype(dtype)), requires_grad, device)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with one value."""
    if dtype is None and isinstance(fill_value, (bool, int)):
        dtype = xp.asarray(fill_value).dtype
    return _finish(xp.full(tuple(size), fill_value, dtype=_dtype(dtype)), requires_grad, device)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Evenly spaced values in [start, end); integer arguments give int64."""
    if end is None:
        start, end = 0, start
    floating = any(isinstance(v, float) for v in (start, end, step))
    array = xp.arange(start, end, step, dtype=_dtype(dtype, floating) or xp.int64)
    return _finish(array, requires_grad, device)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``steps`` values from start to end inclusive."""
    return _finish(xp.linspace(start, end, steps, dtype=_dtype(dtype)), requires_grad, device)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Identity matrix (n x m)."""
    return _finish(xp.eye(n, m, dtype=_dtype(dtype)), requires_grad, device)


def _like(fn, t: Tensor, dtype, device, requires_grad, *args) -> Tensor:
    return fn(*args, t.shape, dtype=dtype or t.dtype, device=device or t.device,
              requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(zeros, t, dtype, device, requires_grad)


def ones_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(ones, t, dtype, device, requires_grad)


def empty_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(empty, t, dtype, device, requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


def _gen(generator):
    return generator if generator is not None else backend.default_generator()


def rand(*size, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Uniform samples in [0, 1)."""
    array = _gen(generator).random(_shape(size)).astype(_dtype(dtype))
    return _finish(array, requires_grad, device)


def randn(*size, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Standard normal samples."""
    array = _gen(generator).standard_normal(_shape(size)).astype(_dtype(dtype))
    return _finish(array, requires_grad, device)


def randint(low: int, high: int | None = None, size=(), dtype=None, device=None,
            generator=None) -> Tensor:
    """Integers in [low, high) (``randint(high, size=...)`` takes low = 0)."""
    if high is None:
        low, high = 0, low
    array = _gen(generator).integers(low, high, size=tuple(size), dtype=xp.dtype(dtype or xp.int64))
    return _finish(array, False, device)


def randperm(n: int, device=None, generator=None) -> Tensor:
    """A random permutation of 0..n-1."""
    return _finish(_gen(generator).permutation(n).astype(xp.int64), False, device)


def rand_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    return rand(t.shape, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad, generator=generator)


def randn_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype, device=device or t.device,
                 requires_grad=requires_grad, generator=generator)


def randint_like(t: Tensor, low: int, high: int | None = None, dtype=None, generator=None) -> Tensor:
    return randint(low, high, t.shape, dtype=dtype or t.dtype, device=t.device, generator=generator)
