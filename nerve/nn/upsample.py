"""``Upsample`` (nearest, linear, bilinear) and the fixed-mode ``UpsamplingNearest2d``/``UpsamplingBilinear2d``."""
from __future__ import annotations

from nerve.nn.module import Module
from nerve import functional as F
from nerve.tensor import Tensor


def _plain(value):
    """Tuples as lists (for JSON configs), everything else unchanged."""
    return list(value) if isinstance(value, tuple) else value


class Upsample(Module):
    """Resize (N, C, *S) to ``size`` or ``S * scale_factor``: mode "nearest", "linear" (1-d), "bilinear"
    (2-d) or "trilinear" (3-d); ``align_corners`` as in PyTorch (linear modes)."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None) -> None:
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError(f"{type(self).__name__}: give exactly one of size and scale_factor")
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners

    def forward(self, input: Tensor) -> Tensor:
        """The resized input."""
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"

    def get_config(self) -> dict:
        return {"size": _plain(self.size), "scale_factor": _plain(self.scale_factor), "mode": self.mode,
                "align_corners": self.align_corners}


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour upsampling of (N, C, H, W)."""

    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, "nearest")

    def get_config(self) -> dict:
        config = super().get_config()
        return {"size": config["size"], "scale_factor": config["scale_factor"]}


class UpsamplingBilinear2d(Upsample):
    """Bilinear upsampling of (N, C, H, W) with aligned corners (PyTorch's definition of this layer)."""

    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, "bilinear", True)

    def get_config(self) -> dict:
        config = super().get_config()
        return {"size": config["size"], "scale_factor": config["scale_factor"]}
