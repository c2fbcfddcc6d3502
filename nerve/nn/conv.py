"""Convolution layers: ``Conv1d``, ``Conv2d``, ``Conv3d`` and the transposed ``ConvTranspose1d/2d/3d``.

Weights, biases and their initialisation follow PyTorch: weight (out, in / groups, *kernel) for a
convolution, (in, out / groups, *kernel) for a transposed one, kaiming_uniform_(a=sqrt(5)) and a bias from
U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
"""
from __future__ import annotations

from nerve import functional as F
from nerve.autograd import ShapeError
from nerve.nn import init
from nerve.nn.linear import _empty
from nerve.nn.module import Module
from nerve.ops import ntuple
from nerve.tensor import Tensor

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


def _size_text(t: tuple) -> str:
    """A kernel size as written in layer names: "3" for (3, 3), "(3, 5)" otherwise."""
    return str(t[0]) if len(set(t)) == 1 else str(t)


class _ConvNd(Module):
    """Shared parameters, checks and representation of the convolution layers."""

    _n = 0
    _transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride, padding, dilation, groups: int,
                 bias: bool, padding_mode: str, output_padding=0, device=None, dtype=None) -> None:
        super().__init__()
        name, n = type(self).__name__, self._n
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"{name}: in_channels and out_channels must be positive, got {in_channels} and "
                             f"{out_channels}")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels {in_channels} and out_channels "
                             f"{out_channels}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = ntuple(kernel_size, n, "kernel_size", name)
        self.stride = ntuple(stride, n, "stride", name)
        self.dilation = ntuple(dilation, n, "dilation", name)
        if isinstance(padding, str):
            if self._transposed:
                raise ValueError(f"{name}: padding must be ints, got {padding!r}")
            if padding not in ("valid", "same"):
                raise ValueError(f"{name}: padding must be 'valid', 'same' or ints, got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' needs stride 1, got stride {self.stride}")
            self.padding = padding
        else:
            self.padding = ntuple(padding, n, "padding", name)
        self.output_padding = ntuple(output_padding, n, "output_padding", name)
        self.groups, self.padding_mode = groups, padding_mode
        shape = ((in_channels, out_channels // groups) if self._transposed
                 else (out_channels, in_channels // groups)) + self.kernel_size
        self.weight = _empty(shape, device, dtype)
        if bias:
            self.bias = _empty((out_channels,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) for the weight, U(+-1/sqrt(fan_in)) for the bias."""
        init.default_(self.weight, self.bias)

    def _describe(self) -> str:
        return f"{type(self).__name__}({self.in_channels} -> {self.out_channels}, k={_size_text(self.kernel_size)})"

    def _check(self, input: Tensor) -> None:
        """A wrong number of dims or channels is a ShapeError (a RuntimeError, PyTorch's class); a wrong dtype a
        TypeError."""
        n = self._n
        if input.ndim not in (n + 1, n + 2) or input.shape[input.ndim - n - 1] != self.in_channels:
            raise ShapeError(f"{self._describe()}: expected input (N, {self.in_channels}, {_SPATIAL[n]}), got "
                             f"{tuple(input.shape)}")
        if input.dtype != self.weight.dtype:
            raise TypeError(f"{self._describe()}: input has dtype {input.dtype} but the weights are "
                            f"{self.weight.dtype}; convert the input (x.astype(...)) or the model (model.to(dtype))")

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0,) * self._n:
            text += f", padding={self.padding!r}"
        if self.dilation != (1,) * self._n:
            text += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._n:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        return text

    def get_config(self) -> dict:
        config = {"in_channels": self.in_channels, "out_channels": self.out_channels,
                  "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                  "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
                  "dilation": list(self.dilation), "groups": self.groups, "bias": self.bias is not None,
                  "padding_mode": self.padding_mode}
        if self._transposed:
            config["output_padding"] = list(self.output_padding)
        return config


class _Conv(_ConvNd):
    """A convolution layer over ``_n`` spatial dims."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None,
                 dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, 0, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        """The cross-correlation of the input with the weight, plus the bias."""
        self._check(input)
        padding = self.padding
        if self.padding_mode != "zeros":
            if padding == "same":
                total = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation)]
                widths = [(t // 2, t - t // 2) for t in total]
            elif padding == "valid":
                widths = [(0, 0)] * self._n
            else:
                widths = [(p, p) for p in padding]
            flat = tuple(w for pair in reversed(widths) for w in pair)
            input = F.pad(input, flat, mode=self.padding_mode)
            padding = 0
        conv = (F.conv1d, F.conv2d, F.conv3d)[self._n - 1]
        return conv(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv1d(_Conv):
    """1-d convolution over (N, C_in, L) inputs, e.g. sequences and signals: weight (C_out, C_in / groups, k).

    padding: int, "valid" or "same"; padding_mode: "zeros", "reflect", "replicate" or "circular".
    """

    _n = 1


class Conv2d(_Conv):
    """2-d convolution over (N, C_in, H, W) images: weight (C_out, C_in / groups, kh, kw).

    stride, padding (int, pair, "valid" or "same"), dilation, groups (groups = C_in = C_out is a depthwise
    convolution), bias, padding_mode ("zeros", "reflect", "replicate", "circular"), as in PyTorch.
    """

    _n = 2


class Conv3d(_Conv):
    """3-d convolution over (N, C_in, D, H, W) volumes (video, medical scans): weight
    (C_out, C_in / groups, kD, kH, kW); the same arguments and padding modes as ``Conv2d``."""

    _n = 3


class _ConvTranspose(_ConvNd):
    """A transposed convolution layer (the gradient of a convolution in its input) over ``_n`` dims."""

    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        if padding_mode != "zeros":
            raise ValueError(f"{type(self).__name__}: only padding_mode='zeros' is supported, got {padding_mode!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device, dtype)

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        """The transposed convolution; ``output_size`` picks the output_padding that reaches that size."""
        self._check(input)
        extra = self.output_padding
        if output_size is not None:
            extra = self._output_padding(input, output_size)
        conv = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[self._n - 1]
        return conv(input, self.weight, self.bias, self.stride, self.padding, extra, self.groups, self.dilation)

    def _output_padding(self, input: Tensor, output_size) -> tuple:
        n = self._n
        want = tuple(int(s) for s in output_size)[-n:]
        smallest = tuple((s - 1) * st - 2 * p + d * (k - 1) + 1 for s, st, p, d, k in
                         zip(input.shape[-n:], self.stride, self.padding, self.dilation, self.kernel_size))
        extra = tuple(w - s for w, s in zip(want, smallest))
        if len(want) != n or any(e < 0 or (e >= st and e >= d) for e, st, d in zip(extra, self.stride,
                                                                               self.dilation)):
            raise ValueError(f"{self._describe()}: output_size {tuple(output_size)} is not reachable from input "
                             f"{tuple(input.shape)}: sizes from {smallest} up to stride - 1 more")
        return extra


class ConvTranspose1d(_ConvTranspose):
    """Transposed 1-d convolution over (N, C_in, L): weight (C_in, C_out / groups, k); upsamples by stride."""

    _n = 1


class ConvTranspose2d(_ConvTranspose):
    """Transposed 2-d convolution over (N, C_in, H, W) (decoders, GAN generators): weight
    (C_in, C_out / groups, kh, kw); output (H - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1."""

    _n = 2


class ConvTranspose3d(_ConvTranspose):
    """Transposed 3-d convolution over (N, C_in, D, H, W) (volume decoders): weight (C_in, C_out / groups, kD,
    kH, kW); output (in - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1 per dim."""

    _n = 3
