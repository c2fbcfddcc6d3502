"""Numeric facts and printing: ``finfo``/``iinfo`` (PyTorch's fields over NumPy's), ``set_printoptions`` /
``get_printoptions`` and the formatter Tensor's repr uses (PyTorch's layout: fixed decimals, or scientific
notation when the values span more than 1000x or leave [1e-4, 1e8], whole numbers as ``1.``).

Imports only the backend, so ``nerve.tensor`` can use it.
"""
from __future__ import annotations

import math

from nerve import backend
from nerve.backend import xp

_PROFILES = {"default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
             "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
             "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80)}
PRINT_OPTS = dict(_PROFILES["default"], sci_mode=None)


def _dtype(type, name: str, kinds: str):
    dt = backend.get_default_dtype() if type is None else backend.dtype(type)
    if dt.kind not in kinds:
        raise TypeError(f"{name}: expected a {'floating point' if 'f' in kinds else 'integer'} dtype, got {dt}")
    return dt


class finfo:
    """Machine limits of a floating dtype (the default dtype when None): bits, eps, max, min, tiny,
    smallest_normal, resolution, dtype (its name)."""

    def __init__(self, type=None) -> None:
        dt = _dtype(type, "finfo", "fc")
        info = xp.finfo(dt)
        self.bits = int(info.bits)
        self.eps, self.max, self.min = float(info.eps), float(info.max), float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)
        self.dtype = str(xp.dtype(info.dtype).name)

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """Limits of an integer (or bool) dtype: bits, max, min, dtype (its name)."""

    def __init__(self, type) -> None:
        dt = _dtype(type, "iinfo", "iub")
        if dt.kind == "b":
            self.bits, self.min, self.max = 8, 0, 1
        else:
            info = xp.iinfo(dt)
            self.bits, self.min, self.max = int(info.bits), int(info.min), int(info.max)
        self.dtype = str(dt.name)

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


def set_printoptions(precision: int | None = None, threshold: float | None = None, edgeitems: int | None = None,
                     linewidth: int | None = None, profile: str | None = None, sci_mode: bool | None = None) -> None:
    """How tensors print: digits after the point, the size above which they are summarised, the items kept at
    each edge then, the line width; ``profile`` 'default', 'short' or 'full' first; ``sci_mode`` True/False forces
    scientific notation on or off (None: chosen from the values)."""
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of {sorted(_PROFILES)}, got {profile!r}")
        PRINT_OPTS.update(_PROFILES[profile])
    for key, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                       ("linewidth", linewidth)):
        if value is not None:
            PRINT_OPTS[key] = value
    PRINT_OPTS["sci_mode"] = sci_mode


def get_printoptions() -> dict:
    """The current print options (a copy)."""
    return dict(PRINT_OPTS)


def _float_formatter(values):
    """PyTorch's choice of one format for every float in a tensor, padded to one width."""
    p = PRINT_OPTS["precision"]
    shown = _sample(values)
    finite = shown[xp.isfinite(shown)]
    nonzero = xp.abs(finite[finite != 0])
    whole = bool((finite == xp.ceil(finite)).all())
    sci = False
    if nonzero.size:
        lo, hi = float(nonzero.min()), float(nonzero.max())
        sci = hi / lo > 1000.0 or hi > 1e8 or (not whole and lo < 1e-4)
    if PRINT_OPTS["sci_mode"] is not None:
        sci = PRINT_OPTS["sci_mode"]

    def fmt(v) -> str:
        if not math.isfinite(v):
            return str(float(v))
        if sci:
            return f"{v:.{p}e}"
        return f"{v:.0f}." if whole else f"{v:.{p}f}"

    width = max((len(fmt(float(v))) for v in shown), default=0)
    return lambda v: fmt(float(v)).rjust(width)


def _sample(values):
    """The values that will be shown (the edges when summarised), for the common width."""
    threshold, edge = PRINT_OPTS["threshold"], PRINT_OPTS["edgeitems"]
    if values.size <= threshold or values.ndim == 0:
        return values.reshape(-1)
    index = tuple(xp.r_[0:min(edge, n), max(n - edge, 0):n] if n > 2 * edge else slice(None) for n in values.shape)
    return values[xp.ix_(*[i if not isinstance(i, slice) else xp.arange(n) for i, n in zip(index, values.shape)])
                  ].reshape(-1)


def array_string(values, prefix: str = "tensor(") -> str:
    """The body of a tensor's repr under the print options."""
    threshold = PRINT_OPTS["threshold"]
    options = dict(separator=", ", prefix=prefix, edgeitems=PRINT_OPTS["edgeitems"],
                   max_line_width=PRINT_OPTS["linewidth"],
                   threshold=int(min(threshold, 2 ** 62)) if threshold != math.inf else 2 ** 62)
    if values.dtype.kind == "f" and values.size:
        options["formatter"] = {"float_kind": _float_formatter(values.astype(xp.float64))}
    else:
        options["precision"] = PRINT_OPTS["precision"]
    return xp.array2string(values, **options).replace(", ...,", ",  ...,")  # PyTorch's spacing


__all__ = ["finfo", "get_printoptions", "iinfo", "set_printoptions"]
