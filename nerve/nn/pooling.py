"""Pooling layers: max and average over sliding windows (``MaxPool1d/2d/3d``, ``AvgPool1d/2d/3d``), their
inverse (``MaxUnpool1d/2d/3d``) and pooling over a fixed output grid (``AdaptiveAvgPool1d/2d/3d``,
``AdaptiveMaxPool1d/2d/3d``), with PyTorch's arguments."""
from __future__ import annotations

from nerve.nn.module import Module
from nerve import functional as F
from nerve.tensor import Tensor


def _plain(value):
    """Tuples as lists (for JSON configs), everything else unchanged."""
    return list(value) if isinstance(value, tuple) else value


class _MaxPoolNd(Module):
    _n = 0

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: Tensor):
        """Window maxima (and their flat input positions when ``return_indices``)."""
        fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[self._n - 1]
        return fn(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                  self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")

    def get_config(self) -> dict:
        return {"kernel_size": _plain(self.kernel_size), "stride": _plain(self.stride),
                "padding": _plain(self.padding), "dilation": _plain(self.dilation),
                "return_indices": self.return_indices, "ceil_mode": self.ceil_mode}


class MaxPool1d(_MaxPoolNd):
    """Maximum over windows of (N, C, L); stride defaults to kernel_size, padding counts as -inf."""

    _n = 1


class MaxPool2d(_MaxPoolNd):
    """Maximum over windows of (N, C, H, W): MaxPool2d(2) halves H and W; ``return_indices`` also returns
    each maximum's flat position h * W + w (PyTorch's format)."""

    _n = 2


class MaxPool3d(_MaxPoolNd):
    """Maximum over windows of (N, C, D, H, W); ``return_indices`` gives flat positions (d * H + h) * W + w."""

    _n = 3


class _MaxUnpoolNd(Module):
    _n = 0

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding

    def forward(self, input: Tensor, indices: Tensor, output_size=None) -> Tensor:
        """Each value put back at its index from ``MaxPool(return_indices=True)``, zeros elsewhere."""
        fn = (F.max_unpool1d, F.max_unpool2d, F.max_unpool3d)[self._n - 1]
        return fn(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def get_config(self) -> dict:
        return {"kernel_size": _plain(self.kernel_size), "stride": _plain(self.stride),
                "padding": _plain(self.padding)}


class MaxUnpool1d(_MaxUnpoolNd):
    """The inverse of ``MaxPool1d`` over (N, C, L): values back at their indices, zeros elsewhere."""

    _n = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """The inverse of ``MaxPool2d`` over (N, C, H, W): values back at their indices, zeros elsewhere (the
    decoder half of SegNet-style networks)."""

    _n = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """The inverse of ``MaxPool3d`` over (N, C, D, H, W): values back at their indices, zeros elsewhere."""

    _n = 3


class _AvgPoolNd(Module):
    _n = 0

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input: Tensor) -> Tensor:
        """Window means."""
        if self._n == 1:
            return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                self.count_include_pad)
        fn = F.avg_pool2d if self._n == 2 else F.avg_pool3d
        return fn(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def get_config(self) -> dict:
        config = {"kernel_size": _plain(self.kernel_size), "stride": _plain(self.stride),
                  "padding": _plain(self.padding), "ceil_mode": self.ceil_mode,
                  "count_include_pad": self.count_include_pad}
        if self._n > 1:
            config["divisor_override"] = self.divisor_override
        return config


class AvgPool1d(_AvgPoolNd):
    """Mean over windows of (N, C, L); zero padding is counted unless ``count_include_pad=False``."""

    _n = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """Mean over windows of (N, C, H, W); ``divisor_override`` replaces the window size as divisor."""

    _n = 2


class AvgPool3d(_AvgPoolNd):
    """Mean over windows of (N, C, D, H, W); ``divisor_override`` replaces the window size as divisor."""

    _n = 3


class _AdaptivePool(Module):
    _fn = None

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        """Pool into ``output_size`` bins."""
        return type(self)._fn(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def get_config(self) -> dict:
        return {"output_size": _plain(self.output_size)}


class AdaptiveAvgPool1d(_AdaptivePool):
    """Mean over ``output_size`` bins of (N, C, L), whatever L is."""

    _fn = F.adaptive_avg_pool1d


class AdaptiveAvgPool2d(_AdaptivePool):
    """Mean over an (OH, OW) grid of bins of (N, C, H, W), whatever H and W are; 1 is global average
    pooling (the usual head before a classifier)."""

    _fn = F.adaptive_avg_pool2d


class AdaptiveAvgPool3d(_AdaptivePool):
    """Mean over an (OD, OH, OW) grid of bins of (N, C, D, H, W), whatever D, H and W are (1: global average
    pooling, the head of 3-d classifiers)."""

    _fn = F.adaptive_avg_pool3d


class _AdaptiveMax(_AdaptivePool):
    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input: Tensor):
        """Bin maxima (and their flat input positions when ``return_indices``)."""
        return type(self)._fn(input, self.output_size, self.return_indices)

    def get_config(self) -> dict:
        return {"output_size": _plain(self.output_size), "return_indices": self.return_indices}


class AdaptiveMaxPool1d(_AdaptiveMax):
    """Maximum over ``output_size`` bins of (N, C, L)."""

    _fn = F.adaptive_max_pool1d


class AdaptiveMaxPool2d(_AdaptiveMax):
    """Maximum over an (OH, OW) grid of bins of (N, C, H, W)."""

    _fn = F.adaptive_max_pool2d


class AdaptiveMaxPool3d(_AdaptiveMax):
    """Maximum over an (OD, OH, OW) grid of bins of (N, C, D, H, W)."""

    _fn = F.adaptive_max_pool3d


class _LPPoolNd(Module):
    _n = 1

    def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type, self.kernel_size, self.stride, self.ceil_mode = norm_type, kernel_size, stride, ceil_mode

    def forward(self, input: Tensor) -> Tensor:
        fn = (F.lp_pool1d, F.lp_pool2d, F.lp_pool3d)[self._n - 1]
        return fn(input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPoolNd):
    """Power-average pooling of (N, C, L): (sum of x^p over each window)^(1/p)."""

    _n = 1


class LPPool2d(_LPPoolNd):
    """Power-average pooling of (N, C, H, W): (sum of x^p over each window)^(1/p)."""

    _n = 2


class LPPool3d(_LPPoolNd):
    """Power-average pooling of (N, C, D, H, W): (sum of x^p over each window)^(1/p)."""

    _n = 3
