"""Generated two-dimensional toy problems for quick experiments: moons, circles, spirals, XOR.

Each returns NumPy arrays ``(X, y)``: X float32 (n_samples, 2), y int64, classes as balanced as
``n_samples`` allows. ``generator`` is a NumPy Generator or an int seed (default: nerve's seeded generator).
"""
from __future__ import annotations

import numbers

import numpy

from nerve import backend

__all__ = ["make_moons", "make_circles", "make_spirals", "make_xor"]


def _setup(name: str, n_samples: int, n_classes: int, noise: float, generator) -> tuple:
    """Validate the arguments; return the generator and the per-class counts."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < n_classes:
        raise ValueError(f"{name}: n_samples must be an integer >= {n_classes} (one per class), got {n_samples!r}")
    if noise < 0:
        raise ValueError(f"{name}: noise must be non-negative, got {noise}")
    if isinstance(generator, numbers.Integral):
        generator = numpy.random.default_rng(int(generator))
    elif generator is None:
        generator = backend.default_generator()
    counts = [n_samples // n_classes + (k < n_samples % n_classes) for k in range(n_classes)]
    return generator, counts


def _finish(parts: list, noise: float, shuffle: bool, rng: numpy.random.Generator) -> tuple:
    """Stack the per-class point sets, add Gaussian noise, optionally shuffle, cast."""
    x = numpy.concatenate(parts)
    y = numpy.concatenate([numpy.full(len(p), k, dtype=numpy.int64) for k, p in enumerate(parts)])
    if noise > 0:
        x = x + rng.normal(0.0, noise, size=x.shape)
    if shuffle:
        order = rng.permutation(len(x))
        x, y = x[order], y[order]
    return x.astype(numpy.float32), y


def make_moons(n_samples: int = 200, *, noise: float = 0.1, shuffle: bool = True, generator=None) -> tuple:
    """Two interleaving half circles (class 0 the upper, class 1 the lower), plus Gaussian ``noise``."""
    rng, (n0, n1) = _setup("make_moons", n_samples, 2, noise, generator)
    t0, t1 = numpy.linspace(0, numpy.pi, n0), numpy.linspace(0, numpy.pi, n1)
    upper = numpy.stack([numpy.cos(t0), numpy.sin(t0)], 1)
    lower = numpy.stack([1 - numpy.cos(t1), 0.5 - numpy.sin(t1)], 1)
    return _finish([upper, lower], noise, shuffle, rng)


def make_circles(n_samples: int = 200, *, noise: float = 0.05, factor: float = 0.5, shuffle: bool = True,
                 generator=None) -> tuple:
    """Two concentric circles: class 0 of radius 1, class 1 of radius ``factor`` (0 < factor < 1)."""
    if not 0 < factor < 1:
        raise ValueError(f"make_circles: factor must lie in (0, 1), got {factor}")
    rng, (n0, n1) = _setup("make_circles", n_samples, 2, noise, generator)
    t0 = numpy.linspace(0, 2 * numpy.pi, n0, endpoint=False)
    t1 = numpy.linspace(0, 2 * numpy.pi, n1, endpoint=False)
    outer = numpy.stack([numpy.cos(t0), numpy.sin(t0)], 1)
    inner = factor * numpy.stack([numpy.cos(t1), numpy.sin(t1)], 1)
    return _finish([outer, inner], noise, shuffle, rng)


def make_spirals(n_samples: int = 300, n_classes: int = 3, *, noise: float = 0.05, turns: float = 1.0,
                 shuffle: bool = True, generator=None) -> tuple:
    """``n_classes`` interleaved spiral arms from the origin outwards to radius 1, each ``turns`` turns long."""
    if n_classes < 2:
        raise ValueError(f"make_spirals: n_classes must be at least 2, got {n_classes}")
    rng, counts = _setup("make_spirals", n_samples, n_classes, noise, generator)
    parts = []
    for k, n in enumerate(counts):
        r = numpy.linspace(0.05, 1.0, n)
        angle = 2 * numpy.pi * (turns * r + k / n_classes)
        parts.append(r[:, None] * numpy.stack([numpy.cos(angle), numpy.sin(angle)], 1))
    return _finish(parts, noise, shuffle, rng)


def make_xor(n_samples: int = 200, *, noise: float = 0.1, shuffle: bool = True, generator=None) -> tuple:
    """Points spread uniformly over the four quadrants of [-1, 1]^2; class 1 where the coordinates' signs differ."""
    rng, (n0, n1) = _setup("make_xor", n_samples, 2, noise, generator)
    parts = []
    for n, signs in ((n0, ((1, 1), (-1, -1))), (n1, ((1, -1), (-1, 1)))):
        half = (n + 1) // 2
        points = [rng.uniform(0.05, 1.0, size=(m, 2)) * numpy.asarray(s) for m, s in zip((half, n - half), signs)]
        parts.append(numpy.concatenate(points))
    return _finish(parts, noise, shuffle, rng)
