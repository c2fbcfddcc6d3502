"""``torch.testing``: ``assert_close`` (PyTorch's tolerances by dtype, comparison of nested sequences and mappings,
its messages naming the mismatched count and the greatest absolute and relative differences with their indices)
and ``make_tensor``."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import numpy as np

from nerve import backend
from nerve.creation import as_tensor
from nerve.tensor import Tensor

#: PyTorch's default (rtol, atol) per dtype; integer and bool dtypes compare exactly
_TOLERANCES = {np.dtype(np.float16): (1e-3, 1e-5), np.dtype(np.float32): (1.3e-6, 1e-5),
               np.dtype(np.float64): (1e-7, 1e-7), np.dtype(np.complex64): (1.3e-6, 1e-5),
               np.dtype(np.complex128): (1e-7, 1e-7)}


def _tolerances(*dtypes) -> tuple:
    pairs = [_TOLERANCES.get(np.dtype(d), (0.0, 0.0)) for d in dtypes]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


def _fail(message: str, msg) -> None:
    if callable(msg):
        raise AssertionError(msg(message))
    raise AssertionError(message if msg is None else msg)


def _dtype_name(dtype) -> str:
    return f"nerve.{np.dtype(dtype).name}"


def _is_number(x) -> bool:
    return isinstance(x, (bool, int, float, complex, np.number)) and not isinstance(x, Tensor)


def _compare_arrays(actual, expected, rtol, atol, equal_nan, msg, what: str) -> None:
    a, e = np.asarray(actual), np.asarray(expected)
    if a.dtype.kind == "b":
        a, e = a.astype(np.int64), e.astype(np.int64)
    close = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if close.all():
        return
    exact = rtol == 0 and atol == 0
    total, bad = a.size, int((~close).sum())
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        wide = np.complex128 if a.dtype.kind == "c" or e.dtype.kind == "c" else np.float64
        diff = np.abs(a.astype(wide) - e.astype(wide)).astype(np.float64)
        rel = diff / np.abs(e.astype(wide)).astype(np.float64)
    lines = [f"{what} are not {'equal' if exact else 'close'}!", ""]
    if a.ndim == 0 and what == "Scalars":
        lines.append(f"Expected {expected} but got {actual}.")
        lines.append(f"Absolute difference: {_num(diff.item())}" + ("" if exact else f" (up to {atol} allowed)"))
        lines.append(f"Relative difference: {_num(rel.item())}" + ("" if exact else f" (up to {rtol} allowed)"))
        _fail("\n".join(lines), msg)
    diff = np.where(close, 0.0, diff)  # NOTE: a NaN matched by equal_nan is no difference
    rel = np.where(close, 0.0, rel)
    lines.append(f"Mismatched elements: {bad} / {total} ({100.0 * bad / total:.1f}%)")
    for name, values, allowed in (("absolute", diff, atol), ("relative", rel, rtol)):
        flat = values.reshape(-1)
        nans = np.flatnonzero(np.isnan(flat))
        at = int(nans[0]) if nans.size else int(np.argmax(flat))
        index = tuple(int(i) for i in np.unravel_index(at, values.shape))
        lines.append(f"Greatest {name} difference: {_num(flat[at])} at index {index}"
                     + ("" if exact else f" (up to {allowed} allowed)"))
    _fail("\n".join(lines), msg)


def _num(v) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() and math.isfinite(v) else repr(v)


def assert_close(actual: Any, expected: Any, *, allow_subclasses: bool = True, rtol: float | None = None,
                 atol: float | None = None, equal_nan: bool = False, check_device: bool = True,
                 check_dtype: bool = True, check_layout: bool = True, check_stride: bool = False,
                 msg: str | Callable[[str], str] | None = None) -> None:
    """Raise AssertionError unless ``actual`` and ``expected`` are close: |actual - expected| <= atol + rtol
    |expected| elementwise, with PyTorch's defaults for the dtype (float32: rtol 1.3e-6, atol 1e-5; float64: 1e-7,
    1e-7; integers exactly). Tensors, NumPy arrays, numbers, and sequences or mappings of them compare; shape,
    dtype (``check_dtype``) and device (``check_device``) must agree too. ``msg`` replaces the message (a callable
    receives it)."""
    if (rtol is None) != (atol is None):
        missing = "atol" if atol is None else "rtol"
        raise ValueError(f"Both 'rtol' and 'atol' must be either specified or omitted, but got no {missing}.")
    if isinstance(actual, (Tensor, np.ndarray)) or isinstance(expected, (Tensor, np.ndarray)):
        if type(actual) is not type(expected) and not (allow_subclasses and isinstance(actual, type(expected))):
            raise TypeError(f"No comparison pair was able to handle inputs of type {type(actual)} and "
                            f"{type(expected)}.")
        _compare_tensors(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, msg)
    elif _is_number(actual) and _is_number(expected):
        kinds = [np.asarray(v).dtype for v in (actual, expected)]
        wide = [np.dtype(np.float64) if d.kind == "f" else np.dtype(np.complex128) if d.kind == "c" else d
                for d in kinds]
        r, a = _tolerances(*wide) if rtol is None else (rtol, atol)
        _compare_arrays(actual, expected, r, a, equal_nan, msg, "Scalars")
    elif isinstance(actual, Mapping) and isinstance(expected, Mapping):
        if set(actual) != set(expected):
            missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
            _fail(f"The keys of the mappings do not match:\nMissing keys in the actual mapping: {missing}\n"
                  f"Additional keys in the actual mapping: {extra}", msg)
        for key in expected:
            assert_close(actual[key], expected[key], allow_subclasses=allow_subclasses, rtol=rtol, atol=atol,
                         equal_nan=equal_nan, check_device=check_device, check_dtype=check_dtype, msg=msg)
    elif (isinstance(actual, Sequence) and isinstance(expected, Sequence) and not isinstance(actual, str)
          and not isinstance(expected, str)):
        if len(actual) != len(expected):
            _fail(f"The length of the sequences mismatch: {len(actual)} != {len(expected)}", msg)
        for a, e in zip(actual, expected):
            assert_close(a, e, allow_subclasses=allow_subclasses, rtol=rtol, atol=atol, equal_nan=equal_nan,
                         check_device=check_device, check_dtype=check_dtype, msg=msg)
    else:
        raise TypeError(f"No comparison pair was able to handle inputs of type {type(actual)} and {type(expected)}.")


def _compare_tensors(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, msg) -> None:
    def values(x):
        return x.numpy() if isinstance(x, Tensor) else x

    if tuple(actual.shape) != tuple(expected.shape):
        _fail(f"The values for attribute 'shape' do not match: {tuple(actual.shape)} != {tuple(expected.shape)}.",
              msg)
    if check_device and isinstance(actual, Tensor) and actual.device != expected.device:
        _fail(f"The values for attribute 'device' do not match: {actual.device} != {expected.device}.", msg)
    if check_dtype and actual.dtype != expected.dtype:
        _fail(f"The values for attribute 'dtype' do not match: {_dtype_name(actual.dtype)} != "
              f"{_dtype_name(expected.dtype)}.", msg)
    r, a = _tolerances(actual.dtype, expected.dtype) if rtol is None else (rtol, atol)
    _compare_arrays(values(actual), values(expected), r, a, equal_nan, msg, "Tensor-likes")


def assert_allclose(actual, expected, rtol: float | None = None, atol: float | None = None, equal_nan: bool = True,
                    msg: str = "") -> None:
    """The older ``torch.testing.assert_allclose``: ``assert_close`` without the dtype check, NaN equal."""
    assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=False, msg=msg or None)


def make_tensor(*shape, dtype, device=None, low: float | None = None, high: float | None = None,
                requires_grad: bool = False, noncontiguous: bool = False, exclude_zero: bool = False,
                memory_format=None) -> Tensor:
    """A random tensor of ``shape`` and ``dtype`` with values in [low, high) (default [-9, 9]; integers
    [-9, 10); booleans either value); ``exclude_zero`` replaces zeros by the smallest positive step."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    dt = backend.dtype(dtype)
    rng = backend.generator()  # the seeded global generator: nerve.manual_seed makes this repeatable
    lo = -9 if low is None else low
    hi = (9 if dt.kind in "fc" else 10) if high is None else high
    if lo > hi:
        raise ValueError(f"make_tensor: low {lo} must not exceed high {hi}")
    if dt.kind == "b":
        values = rng.integers(0, 2, size=shape).astype(bool)
    elif dt.kind in "iu":
        values = rng.integers(math.ceil(lo), math.ceil(hi), size=shape).astype(dt)
    elif dt.kind == "c":
        values = (rng.uniform(lo, hi, size=shape) + 1j * rng.uniform(lo, hi, size=shape)).astype(dt)
    else:
        values = rng.uniform(lo, hi, size=shape).astype(dt)
    if exclude_zero and dt.kind != "b":
        values[values == 0] = 1 if dt.kind in "iu" else np.finfo(dt).tiny
    out = as_tensor(values)
    if device is not None:
        out = out.to(device)
    return out.requires_grad_(requires_grad) if requires_grad else out


__all__ = ["assert_allclose", "assert_close", "make_tensor"]
