"""Image augmentation on whole batches of arrays shaped (N, C, H, W) (or (N, H, W)).

Each transform draws one set of random parameters per image and applies them to the whole batch at
once: flips with one masked select, shifts and crops with one integer gather, rotation and zoom with one
bilinear gather (an affine resampling shared by both). Every random transform takes ``generator=``
(a NumPy Generator or an int seed); by default it uses nerve's seeded generator when called, whose
state training checkpoints save, so a resumed run augments exactly as an uninterrupted one. Tensors
are accepted too and give Tensors back (augmentation is not differentiated).
"""
from __future__ import annotations

import numbers
from typing import Callable, Sequence

import numpy

from nerve import backend
from nerve.tensor import Tensor

__all__ = ["Transform", "Compose", "RandomHorizontalFlip", "RandomVerticalFlip", "RandomRotation", "RandomShift",
           "RandomCrop", "RandomZoom", "GaussianNoise", "Normalize", "affine_resample"]


def _rng(generator) -> numpy.random.Generator:
    if generator is None:
        return backend.default_generator()
    return generator


def _module(x):
    return backend.array_module(backend.device_of(x))


def _check_images(name: str, x) -> None:
    if x.ndim < 3:
        raise ValueError(f"{name}: expected a batch of images shaped (N, C, H, W) or (N, H, W), got shape "
                         f"{tuple(x.shape)} (reshape flat features to images before augmenting)")


def _float(x):
    """x itself when floating, else converted to the default float dtype."""
    return x if x.dtype.kind == "f" else x.astype(backend.get_default_dtype())


class Transform:
    """Base class: ``__call__`` accepts an array or a Tensor; subclasses implement ``apply(array)``."""

    def __init__(self, generator=None) -> None:
        if isinstance(generator, numbers.Integral):
            generator = numpy.random.default_rng(int(generator))
        self.generator = generator

    def apply(self, x):
        """The transform on a raw array (NumPy or CuPy)."""
        raise NotImplementedError(f"{type(self).__name__} must define apply")

    def __call__(self, x):
        if isinstance(x, Tensor):
            return Tensor._make(self.apply(x.data), None)
        return self.apply(x)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "generator")
        return f"{type(self).__name__}({args})"


class Compose:
    """Apply transforms one after another."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


class _RandomFlip(Transform):
    axis = -1

    def __init__(self, p: float = 0.5, generator=None) -> None:
        super().__init__(generator)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must lie in [0, 1], got {p}")
        self.p = float(p)

    def apply(self, x):
        _check_images(type(self).__name__, x)
        flip = _rng(self.generator).random(x.shape[0]) < self.p
        mask = _module(x).asarray(flip).reshape((-1,) + (1,) * (x.ndim - 1))
        return _module(x).where(mask, _module(x).flip(x, axis=self.axis), x)


class RandomHorizontalFlip(_RandomFlip):
    """Mirror each image left-right with probability ``p``."""

    axis = -1


class RandomVerticalFlip(_RandomFlip):
    """Mirror each image top-bottom with probability ``p``."""

    axis = -2


def _window(x, top, left, height: int, width: int, fill: float):
    """out[n, ..., i, j] = x[n, ..., top[n] + i, left[n] + j], or ``fill`` outside x: one integer gather."""
    n, (h, w) = x.shape[0], x.shape[-2:]
    rows = top[:, :, None] + numpy.arange(height)[None, :, None]          # (N, height, 1)
    cols = left[:, None, :] + numpy.arange(width)[None, None, :]          # (N, 1, width)
    valid = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).reshape(n, 1, -1)
    index = (numpy.clip(rows, 0, h - 1) * w + numpy.clip(cols, 0, w - 1)).reshape(n, 1, -1)
    mod = _module(x)
    flat = x.reshape(n, -1, h * w)
    out = mod.take_along_axis(flat, mod.asarray(index), axis=2)
    out = mod.where(mod.asarray(valid), out, mod.asarray(fill, dtype=x.dtype))
    return out.reshape(x.shape[:-2] + (height, width))


class RandomShift(Transform):
    """Translate each image by whole pixels, up to ``max_shift`` each way, filling with ``fill``.

    ``max_shift`` is a pixel count (int) or a fraction of the height and width (float < 1).
    """

    def __init__(self, max_shift: int | float, fill: float = 0.0, generator=None) -> None:
        super().__init__(generator)
        if max_shift < 0:
            raise ValueError(f"RandomShift: max_shift must be non-negative, got {max_shift}")
        self.max_shift = max_shift
        self.fill = fill

    def apply(self, x):
        _check_images("RandomShift", x)
        h, w = x.shape[-2:]
        if isinstance(self.max_shift, numbers.Integral):
            sy = sx = int(self.max_shift)
        else:
            sy, sx = int(round(self.max_shift * h)), int(round(self.max_shift * w))
        rng = _rng(self.generator)
        dy = rng.integers(-sy, sy + 1, size=(x.shape[0], 1))
        dx = rng.integers(-sx, sx + 1, size=(x.shape[0], 1))
        return _window(x, -dy, -dx, h, w, self.fill)


class RandomCrop(Transform):
    """Pad each image by ``padding`` (with ``fill``) and cut a random ``size`` window (default: input size)."""

    def __init__(self, size: int | tuple | None = None, padding: int = 0, fill: float = 0.0,
                 generator=None) -> None:
        super().__init__(generator)
        self.size = (size, size) if isinstance(size, numbers.Integral) else size
        self.padding = int(padding)
        self.fill = fill

    def apply(self, x):
        _check_images("RandomCrop", x)
        h, w = x.shape[-2:]
        height, width = self.size if self.size is not None else (h, w)
        p = self.padding
        if height > h + 2 * p or width > w + 2 * p:
            raise ValueError(f"RandomCrop: crop size ({height}, {width}) is larger than the padded image "
                             f"({h + 2 * p}, {w + 2 * p})")
        rng = _rng(self.generator)
        top = rng.integers(0, h + 2 * p - height + 1, size=(x.shape[0], 1)) - p
        left = rng.integers(0, w + 2 * p - width + 1, size=(x.shape[0], 1)) - p
        return _window(x, top, left, height, width, self.fill)


def affine_resample(x, matrices, fill: float = 0.0):
    """Resample each image of a batch through its own affine map, bilinearly, in one gather.

    ``matrices`` (N, 2, 3) maps an output pixel's (row, col), taken relative to the image centre, to the
    input position it reads: ``src = M[:, :2] @ dst + M[:, 2]`` (centre-relative); outside is ``fill``.
    """
    _check_images("affine_resample", x)
    x = _float(x)
    n, (h, w) = x.shape[0], x.shape[-2:]
    matrices = numpy.asarray(matrices, dtype=numpy.float64)
    if matrices.shape != (n, 2, 3):
        raise ValueError(f"affine_resample: expected matrices of shape ({n}, 2, 3), got {matrices.shape}")
    mod = _module(x)
    # NOTE: a border of `fill` (1 pixel before, 2 after) lets every clipped source position read real
    # memory, so no per-corner bounds masks are needed: far-away positions land on the border.
    padded = mod.full(x.shape[:-2] + (h + 3, w + 3), fill, dtype=x.dtype)
    padded[..., 1:h + 1, 1:w + 1] = x
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    ct = numpy.float32 if x.dtype.itemsize <= 4 else numpy.float64
    rows = (numpy.arange(h, dtype=ct) - ct(cy))[:, None]
    cols = (numpy.arange(w, dtype=ct) - ct(cx))[None, :]
    m = matrices.astype(ct)[:, :, :, None, None]
    sy = numpy.clip(m[:, 0, 0] * rows + m[:, 0, 1] * cols + (m[:, 0, 2] + ct(cy)), -1, h).reshape(n, -1)
    sx = numpy.clip(m[:, 1, 0] * rows + m[:, 1, 1] * cols + (m[:, 1, 2] + ct(cx)), -1, w).reshape(n, -1)
    y0, x0 = numpy.floor(sy), numpy.floor(sx)
    fy, fx = (sy - y0).astype(x.dtype), (sx - x0).astype(x.dtype)
    stride = w + 3
    base = (y0.astype(numpy.int64) + 1) * stride + (x0.astype(numpy.int64) + 1)          # (N, HW)
    index = base[:, None, :] + numpy.array([0, 1, stride, stride + 1])[None, :, None]    # (N, 4, HW)
    flat = padded.reshape(n, -1, (h + 3) * stride)
    g = mod.take_along_axis(flat, mod.asarray(index.reshape(n, 1, -1)), axis=2)
    g = g.reshape(n, flat.shape[1], 4, h * w)
    fy, fx = mod.asarray(fy[:, None, :]), mod.asarray(fx[:, None, :])
    top = g[:, :, 0] + fx * (g[:, :, 1] - g[:, :, 0])
    bottom = g[:, :, 2] + fx * (g[:, :, 3] - g[:, :, 2])
    return (top + fy * (bottom - top)).reshape(x.shape)


def _range(name: str, value, around: float) -> tuple:
    """(low, high) from a number d (-> around -d..around +d) or a pair."""
    if isinstance(value, numbers.Real):
        if value < 0:
            raise ValueError(f"{name}: expected a non-negative number or a (low, high) pair, got {value}")
        return (around - value, around + value)
    low, high = value
    if low > high:
        raise ValueError(f"{name}: expected low <= high, got ({low}, {high})")
    return (float(low), float(high))


class RandomRotation(Transform):
    """Rotate each image about its centre by an angle in degrees drawn from [-degrees, degrees] (or a pair).

    Positive angles turn counter-clockwise as displayed (row 0 at the top); bilinear, ``fill`` outside.
    """

    def __init__(self, degrees: float | tuple, fill: float = 0.0, generator=None) -> None:
        super().__init__(generator)
        self.degrees = _range("RandomRotation", degrees, 0.0)
        self.fill = fill

    def apply(self, x):
        _check_images("RandomRotation", x)
        angle = numpy.deg2rad(_rng(self.generator).uniform(*self.degrees, size=x.shape[0]))
        c, s = numpy.cos(angle), numpy.sin(angle)
        zero = numpy.zeros_like(c)
        # source (row, col) = [[cos, sin], [-sin, cos]] @ output (row, col): the inverse rotation
        matrices = numpy.stack([numpy.stack([c, s, zero], 1), numpy.stack([-s, c, zero], 1)], 1)
        return affine_resample(x, matrices, self.fill)


class RandomZoom(Transform):
    """Scale each image about its centre by a factor drawn from ``scale`` (> 1 zooms in); bilinear."""

    def __init__(self, scale: tuple = (0.9, 1.1), fill: float = 0.0, generator=None) -> None:
        super().__init__(generator)
        low, high = _range("RandomZoom", scale, 1.0)
        if low <= 0:
            raise ValueError(f"RandomZoom: scale factors must be positive, got ({low}, {high})")
        self.scale = (low, high)
        self.fill = fill

    def apply(self, x):
        _check_images("RandomZoom", x)
        inv = 1.0 / _rng(self.generator).uniform(*self.scale, size=x.shape[0])
        zero = numpy.zeros_like(inv)
        matrices = numpy.stack([numpy.stack([inv, zero, zero], 1), numpy.stack([zero, inv, zero], 1)], 1)
        return affine_resample(x, matrices, self.fill)


class GaussianNoise(Transform):
    """Add normal noise N(mean, std^2) to every value, optionally clipping to ``clip=(low, high)``."""

    def __init__(self, std: float = 0.1, mean: float = 0.0, clip: tuple | None = None, generator=None) -> None:
        super().__init__(generator)
        if std < 0:
            raise ValueError(f"GaussianNoise: std must be non-negative, got {std}")
        self.std, self.mean, self.clip = float(std), float(mean), clip

    def apply(self, x):
        x = _float(x)
        noise = _rng(self.generator).normal(self.mean, self.std, size=x.shape).astype(x.dtype)
        out = x + _module(x).asarray(noise)
        if self.clip is not None:
            out = _module(x).clip(out, self.clip[0], self.clip[1])
        return out


class Normalize(Transform):
    """``(x - mean) / std``, per channel (axis 1) for images, per feature (last axis) for (N, D) data."""

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        super().__init__(None)
        self.mean = numpy.asarray(mean, dtype=numpy.float64)
        self.std = numpy.asarray(std, dtype=numpy.float64)
        if numpy.any(self.std == 0):
            raise ValueError(f"Normalize: std must be non-zero, got {self.std.tolist()}")

    def apply(self, x):
        x = _float(x)
        mean, std = self.mean, self.std
        if x.ndim >= 3 and mean.ndim == 1:
            shape = (1, -1) + (1,) * (x.ndim - 2)
            mean, std = mean.reshape(shape), std.reshape(shape)
            if mean.size not in (1, x.shape[1]):
                raise ValueError(f"Normalize: {mean.size} channel means for images with {x.shape[1]} channels "
                                 f"(shape {tuple(x.shape)})")
        mod = _module(x)
        return (x - mod.asarray(mean.astype(x.dtype))) / mod.asarray(std.astype(x.dtype))

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"

