"""Convolution filters and feature maps as image grids, and matplotlib plots of them.

The grid functions return NumPy arrays (so they work without matplotlib and can be saved or tested); the
``plot_`` functions draw those grids and need matplotlib (``pip install nerve[plot]``).
"""
from __future__ import annotations

import math

import numpy as np

from nerve.autograd.grad_mode import no_grad
from nerve.nn.conv import _ConvNd
from nerve.nn.module import Module
from nerve.tensor import Tensor


def first_conv(model: Module) -> _ConvNd:
    """The first convolution layer of ``model`` in definition order (or ``model`` itself if it is one)."""
    for module in model.modules():
        if isinstance(module, _ConvNd):
            return module
    raise ValueError(f"first_conv: {type(model).__name__} has no convolution layer")


def image_grid(tiles: np.ndarray, ncols: int | None = None, padding: int = 1, normalize: str | None = "each",
               pad_value: float = 1.0) -> np.ndarray:
    """Tile images (T, h, w) or RGB images (T, h, w, 3) into one (H, W) or (H, W, 3) array.

    normalize: "each" scales every tile to [0, 1] on its own (filters), "all" scales all tiles together
    (to compare magnitudes), None keeps the values. ``padding`` pixels of ``pad_value`` separate the tiles.
    """
    tiles = np.asarray(tiles, dtype=np.float64)
    if tiles.ndim not in (3, 4) or (tiles.ndim == 4 and tiles.shape[-1] != 3) or len(tiles) == 0:
        raise ValueError(f"image_grid: expected tiles (T, h, w) or (T, h, w, 3) with T >= 1, got {tiles.shape}")
    if normalize not in ("each", "all", None):
        raise ValueError(f"image_grid: normalize must be 'each', 'all' or None, got {normalize!r}")
    if normalize is not None:
        axes = tuple(range(1, tiles.ndim)) if normalize == "each" else None
        low, high = tiles.min(axis=axes, keepdims=True), tiles.max(axis=axes, keepdims=True)
        tiles = (tiles - low) / np.where(high > low, high - low, 1.0)
    count = len(tiles)
    ncols = ncols or int(math.ceil(math.sqrt(count)))
    nrows = int(math.ceil(count / ncols))
    h, w = tiles.shape[1:3]
    grid = np.full((nrows * (h + padding) + padding, ncols * (w + padding) + padding) + tiles.shape[3:],
                   pad_value, dtype=np.float64)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncols)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top:top + h, left:left + w] = tile
    return grid


def filter_grid(model: Module, ncols: int | None = None, padding: int = 1,
                normalize: str | None = "each") -> np.ndarray:
    """The first convolution layer's filters as one image: an RGB tile per filter for 3 input channels, else
    a grey tile per (filter, input channel) pair, a filter per row (1-d kernels become 1-pixel-high tiles)."""
    conv = first_conv(model)
    w = conv.weight.detach().numpy().astype(np.float64)
    if conv._transposed:
        w = w.swapaxes(0, 1)
    if w.ndim == 3:  # 1-d kernels (O, C, k) as (O, C, 1, k)
        w = w[:, :, None, :]
    out_c, in_c = w.shape[:2]
    if in_c == 3:
        return image_grid(w.transpose(0, 2, 3, 1), ncols, padding, normalize)
    return image_grid(w.reshape((out_c * in_c,) + w.shape[2:]), ncols or (in_c if in_c > 1 else None),
                      padding, normalize)


def _find_layer(model: Module, layer) -> Module:
    if isinstance(layer, Module):
        return layer
    if isinstance(layer, int):
        children = list(model.children())
        if not -len(children) <= layer < len(children):
            raise IndexError(f"feature_maps: layer index {layer} is out of range for {len(children)} children")
        return children[layer]
    modules = dict(model.named_modules())
    if layer not in modules:
        raise KeyError(f"feature_maps: no layer named {layer!r}; names are {[n for n in modules if n]}")
    return modules[layer]


def feature_maps(model: Module, input, layer) -> np.ndarray:
    """The output of ``layer`` (a module, a child index or a dotted name) when ``model`` sees one input.

    ``input``: one example (C, *S) or a batch of one (1, C, *S). Runs in eval mode without a graph (the
    model's modes are restored) and returns the layer's output for that example, e.g. (C_out, H, W).
    """
    target = _find_layer(model, layer)
    params = list(model.parameters())
    x = input if isinstance(input, Tensor) else Tensor(np.asarray(input), dtype=params[0].dtype if params else None)
    convs = [m for m in model.modules() if isinstance(m, _ConvNd)]
    if convs and x.ndim == convs[0]._n + 1:  # one unbatched example (C, *S)
        x = x.unsqueeze(0)
    if x.shape[0] != 1:
        raise ValueError(f"feature_maps: expected one example, got a batch of shape {tuple(x.shape)}")
    seen = []
    handle = target.register_forward_hook(lambda module, args, out: seen.append(out))
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with no_grad():
            model(x)
    finally:
        handle.remove()
        for m, mode in modes:
            m.training = mode
    if not seen:
        raise ValueError(f"feature_maps: layer {layer!r} did not run during the forward pass")
    out = seen[0][0] if isinstance(seen[0], tuple) else seen[0]
    return np.asarray(out.detach().numpy()[0], dtype=np.float64)


def feature_map_grid(model: Module, input, layer, max_maps: int = 64, ncols: int | None = None,
                     padding: int = 1, normalize: str | None = "all") -> np.ndarray:
    """``feature_maps`` of the first ``max_maps`` channels tiled into one image (1-d maps as rows)."""
    maps = feature_maps(model, input, layer)
    if maps.ndim == 1:
        raise ValueError(f"feature_map_grid: layer {layer!r} gives a vector of {maps.shape[0]} values, not maps")
    if maps.ndim == 2:  # (C, L): one 1-pixel-high row per channel
        maps = maps[:, None, :]
    return image_grid(maps[:max_maps], ncols, padding, normalize)


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install matplotlib (or nerve[plot]); the *_grid "
                          "functions return the images as arrays without it") from exc
    return plt


def _show(grid: np.ndarray, title: str, path, cmap: str):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6 * grid.shape[0] / max(grid.shape[1], 1) + 0.5))
    ax.imshow(grid, cmap=None if grid.ndim == 3 else cmap, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    if path is not None:
        fig.savefig(path, bbox_inches="tight")
    return fig


def plot_filters(model: Module, path=None, cmap: str = "gray", **grid_options):
    """Plot ``filter_grid(model)`` with matplotlib; save it to ``path`` if given; return the Figure."""
    conv = first_conv(model)
    return _show(filter_grid(model, **grid_options), f"{conv._describe()}: filters", path, cmap)


def plot_feature_maps(model: Module, input, layer, path=None, cmap: str = "viridis", **grid_options):
    """Plot ``feature_map_grid(model, input, layer)`` with matplotlib; save to ``path``; return the Figure."""
    return _show(feature_map_grid(model, input, layer, **grid_options), f"feature maps of {layer!r}"
                 if not isinstance(layer, Module) else "feature maps", path, cmap)
