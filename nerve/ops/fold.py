"""Sliding-window extraction and its adjoint: ``unfold`` (im2col: every window of a (N, C, H, W) tensor as a
column) and ``fold`` (col2im: columns summed back into an image, overlaps added). Each primitive's rule is the
other, so both are differentiable to every order."""
from __future__ import annotations

from nerve.autograd.function import Function, ShapeError
from nerve.backend import xp
from nerve.tensor import Tensor

__all__ = ["unfold2d", "fold2d", "window_params"]
METHODS: list = []


def _pair(value, name: str, op: str, minimum: int) -> tuple:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints >= {minimum}, got {value!r}")
    return pair


def window_params(op: str, kernel_size, dilation, padding, stride) -> tuple:
    """(kernel, dilation, padding, stride) as pairs, checked: kernel, dilation, stride >= 1, padding >= 0."""
    return (_pair(kernel_size, "kernel_size", op, 1), _pair(dilation, "dilation", op, 1),
            _pair(padding, "padding", op, 0), _pair(stride, "stride", op, 1))


def _blocks(op: str, size: tuple, kernel, dilation, padding, stride) -> tuple:
    """The number of window positions along H and W of an image of spatial ``size``."""
    out = tuple((size[i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(2))
    if min(out) < 1:
        raise ShapeError(f"{op}: no window of kernel {kernel} (dilation {dilation}) fits a spatial size {size} "
                         f"padded by {padding}")
    return out


def _slices(i: int, j: int, blocks, dilation, stride) -> tuple:
    """The (padded) image positions kernel offset (i, j) reads for every window."""
    hi, wi = i * dilation[0], j * dilation[1]
    return (slice(hi, hi + stride[0] * (blocks[0] - 1) + 1, stride[0]),
            slice(wi, wi + stride[1] * (blocks[1] - 1) + 1, stride[1]))


class Unfold(Function):
    """(N, C, H, W) -> (N, C*kh*kw, L): column l holds window l, channel-major then kernel row, column."""

    uses_inputs = False

    def forward(self, a, kernel, dilation, padding, stride):
        n, c, h, w = a.shape
        self.args, self.size = (kernel, dilation, padding, stride), (h, w)
        blocks = _blocks("unfold", (h, w), kernel, dilation, padding, stride)
        padded = xp.pad(a, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
        out = xp.empty((n, c, kernel[0], kernel[1]) + blocks, dtype=a.dtype)
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                out[:, :, i, j] = padded[(Ellipsis,) + _slices(i, j, blocks, dilation, stride)]
        return out.reshape(n, c * kernel[0] * kernel[1], blocks[0] * blocks[1])

    def backward(self, g, m):  # adjoint: fold the columns back
        return m.apply(Fold, g, self.size, *self.args), None, None, None, None


class Fold(Function):
    """(N, C*kh*kw, L) -> (N, C, H, W): each column added into its window, overlaps summed."""

    uses_inputs = False

    def forward(self, a, size, kernel, dilation, padding, stride):
        n, ck, length = a.shape
        self.args = (kernel, dilation, padding, stride)
        blocks = _blocks("fold", size, kernel, dilation, padding, stride)
        k = kernel[0] * kernel[1]
        if ck % k or length != blocks[0] * blocks[1]:
            raise ShapeError(f"fold: input of shape {tuple(a.shape)} does not fit output_size {size} with kernel "
                             f"{kernel}: dim 1 must be a multiple of {k} and dim 2 equal {blocks[0] * blocks[1]} "
                             f"(the number of windows, {blocks[0]} x {blocks[1]})")
        cols = a.reshape(n, ck // k, kernel[0], kernel[1], *blocks)
        out = xp.zeros((n, ck // k, size[0] + 2 * padding[0], size[1] + 2 * padding[1]), dtype=a.dtype)
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                out[(Ellipsis,) + _slices(i, j, blocks, dilation, stride)] += cols[:, :, i, j]
        return out[:, :, padding[0]:padding[0] + size[0], padding[1]:padding[1] + size[1]].copy()

    def backward(self, g, m):  # adjoint: unfold the image
        return (m.apply(Unfold, g, *self.args),) + (None,) * 5


def unfold2d(input: Tensor, kernel, dilation, padding, stride) -> Tensor:
    """The primitive behind ``F.unfold`` on a (N, C, H, W) tensor (checked pairs from ``window_params``)."""
    return Unfold.apply(input, kernel, dilation, padding, stride)


def fold2d(input: Tensor, size: tuple, kernel, dilation, padding, stride) -> Tensor:
    """The primitive behind ``F.fold`` on a (N, C*kh*kw, L) tensor."""
    return Fold.apply(input, size, kernel, dilation, padding, stride)
