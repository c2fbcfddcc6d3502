"""Pictures of a GAN's output: image grids written as PNG (no dependency), and 2-D samples drawn over a
Gaussian mixture's density (matplotlib)."""
from __future__ import annotations

import os
import struct
import zlib
from typing import Any

import numpy

from nerve.backend import to_device
from nerve.tensor import Tensor

__all__ = ["make_grid", "save_image", "plot_samples_2d"]


def _numpy(x: Any) -> numpy.ndarray:
    a = x.data if isinstance(x, Tensor) else x
    return numpy.asarray(to_device(a, "cpu") if not isinstance(a, numpy.ndarray) else a, dtype=numpy.float64)


def make_grid(images: Any, nrow: int = 8, padding: int = 2, value_range: tuple = (-1.0, 1.0)) -> numpy.ndarray:
    """(N, C, H, W) images (or (N, H, W)) tiled ``nrow`` per row into one (H', W', C) uint8 array, values
    mapped from ``value_range`` to 0..255 (a generator with tanh output: (-1, 1))."""
    a = _numpy(images)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or a.shape[1] not in (1, 3) or len(a) == 0:
        raise ValueError(f"make_grid: expected (N, 1 or 3, H, W) images, got shape {a.shape}")
    lo, hi = value_range
    a = numpy.clip((a - lo) / (hi - lo), 0.0, 1.0)
    n, c, h, w = a.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = numpy.ones((rows * (h + padding) + padding, cols * (w + padding) + padding, c))
    for i in range(n):
        y, x = padding + (i // cols) * (h + padding), padding + (i % cols) * (w + padding)
        grid[y:y + h, x:x + w] = a[i].transpose(1, 2, 0)
    return (grid * 255.0 + 0.5).astype(numpy.uint8)


def save_image(images: Any, path: str | os.PathLike, nrow: int = 8, padding: int = 2,
               value_range: tuple = (-1.0, 1.0), scale: int = 2) -> None:
    """Write ``make_grid(images)`` as a PNG (grey or RGB), each pixel ``scale`` x ``scale`` for viewing."""
    grid = make_grid(images, nrow, padding, value_range).repeat(scale, 0).repeat(scale, 1)
    h, w, c = grid.shape
    raw = b"".join(b"\x00" + grid[y].tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 0 if c == 1 else 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(png)


def plot_samples_2d(samples: Any, centers: Any, std: float, path: str | os.PathLike, title: str = "",
                    extent: float | None = None) -> None:
    """Scatter 2-D samples over the density of the equal-weight Gaussian mixture (``centers``, ``std``)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("plot_samples_2d needs matplotlib (pip install matplotlib)") from error
    x, c = _numpy(samples), _numpy(centers)
    if x.ndim != 2 or x.shape[1] != 2 or c.ndim != 2 or c.shape[1] != 2:
        raise ValueError(f"plot_samples_2d: samples {x.shape} and centers {c.shape} must be (N, 2)")
    r = extent or float(numpy.abs(c).max() + 1.0)
    grid = numpy.linspace(-r, r, 300)
    gx, gy = numpy.meshgrid(grid, grid)
    dens = sum(numpy.exp(-((gx - a) ** 2 + (gy - b) ** 2) / (2 * std ** 2)) for a, b in c)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.contourf(gx, gy, dens, levels=12, cmap="Blues")
    ax.scatter(x[:, 0], x[:, 1], s=2, c="tab:red", alpha=0.5, linewidths=0)
    ax.set_xlim(-r, r)
    ax.set_ylim(-r, r)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
