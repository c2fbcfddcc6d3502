"""PyTorch's padding layers over ``F.pad``: ``ZeroPad``, ``ConstantPad``, ``ReflectionPad``, ``ReplicationPad``
and ``CircularPad`` in 1-d, 2-d and 3-d (batched or unbatched inputs; negative widths crop)."""
from __future__ import annotations

from nerve import functional as F
from nerve.nn.module import Module
from nerve.tensor import Tensor

_SIDES = {1: "left, right", 2: "left, right, top, bottom", 3: "left, right, top, bottom, front, back"}


class _PadNd(Module):
    """``padding``: an int for every side, or one int per side (last dim first, as ``F.pad``)."""

    _n = 1
    _mode = "constant"

    def __init__(self, padding, value: float = 0.0) -> None:
        super().__init__()
        width = 2 * self._n
        widths = (padding,) * width if isinstance(padding, int) else tuple(padding)
        if len(widths) != width or not all(isinstance(w, int) for w in widths):
            raise ValueError(f"{type(self).__name__}: padding must be an int or {width} ints ({_SIDES[self._n]}), "
                             f"got {padding!r}")
        self.padding, self.value = widths, value

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in (self._n + 1, self._n + 2):
            raise ValueError(f"{type(self).__name__}: expected a {self._n + 1}-d or {self._n + 2}-d input, got shape "
                             f"{tuple(input.shape)}")
        if self._mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}" + (f", value={self.value}" if self._mode == "constant" and self.value else "")


class _Fixed(_PadNd):
    def __init__(self, padding) -> None:
        super().__init__(padding)

class ZeroPad1d(_Fixed):
    """Pad with zeros around (N, C, W) inputs (or unbatched)."""

    _n, _mode = 1, "constant"


class ZeroPad2d(_Fixed):
    """Pad with zeros around (N, C, H, W) inputs (or unbatched)."""

    _n, _mode = 2, "constant"


class ZeroPad3d(_Fixed):
    """Pad with zeros around (N, C, D, H, W) inputs (or unbatched)."""

    _n, _mode = 3, "constant"


class ConstantPad1d(_PadNd):
    """Pad with ``value`` around (N, C, W) inputs (or unbatched)."""

    _n, _mode = 1, "constant"


class ConstantPad2d(_PadNd):
    """Pad with ``value`` around (N, C, H, W) inputs (or unbatched)."""

    _n, _mode = 2, "constant"


class ConstantPad3d(_PadNd):
    """Pad with ``value`` around (N, C, D, H, W) inputs (or unbatched)."""

    _n, _mode = 3, "constant"


class ReflectionPad1d(_Fixed):
    """Pad by mirroring at the edges (the edge not repeated) around (N, C, W) inputs (or unbatched)."""

    _n, _mode = 1, "reflect"


class ReflectionPad2d(_Fixed):
    """Pad by mirroring at the edges (the edge not repeated) around (N, C, H, W) inputs (or unbatched)."""

    _n, _mode = 2, "reflect"


class ReflectionPad3d(_Fixed):
    """Pad by mirroring at the edges (the edge not repeated) around (N, C, D, H, W) inputs (or unbatched)."""

    _n, _mode = 3, "reflect"


class ReplicationPad1d(_Fixed):
    """Pad by repeating the edge values around (N, C, W) inputs (or unbatched)."""

    _n, _mode = 1, "replicate"


class ReplicationPad2d(_Fixed):
    """Pad by repeating the edge values around (N, C, H, W) inputs (or unbatched)."""

    _n, _mode = 2, "replicate"


class ReplicationPad3d(_Fixed):
    """Pad by repeating the edge values around (N, C, D, H, W) inputs (or unbatched)."""

    _n, _mode = 3, "replicate"


class CircularPad1d(_Fixed):
    """Pad periodically (wrapping around) around (N, C, W) inputs (or unbatched)."""

    _n, _mode = 1, "circular"


class CircularPad2d(_Fixed):
    """Pad periodically (wrapping around) around (N, C, H, W) inputs (or unbatched)."""

    _n, _mode = 2, "circular"


class CircularPad3d(_Fixed):
    """Pad periodically (wrapping around) around (N, C, D, H, W) inputs (or unbatched)."""

    _n, _mode = 3, "circular"


__all__ = ["ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
           "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
           "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d"]
