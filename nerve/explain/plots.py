"""Pictures of attributions (matplotlib, an optional dependency): heat-map overlays of images and a grid of them
per method, bar charts of tabular features, token heat maps of text.

``visualize_image_attr`` keeps Captum's name, methods and signs, but takes nerve's channels-first layout:
an attribution (C, H, W) or (H, W), and an image (C, H, W) or (H, W).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["attribution_grid", "normalize_attr", "plot_feature_attr", "plot_text_attr", "visualize_image_attr"]

SIGNS = ("absolute_value", "positive", "negative", "all")
IMAGE_METHODS = ("heat_map", "blended_heat_map", "original_image", "masked_image")


def pyplot(who: str):
    """matplotlib.pyplot (Agg when no display is needed), or a clear ImportError naming ``who``."""
    try:
        import matplotlib
        if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f"{who} needs matplotlib (pip install matplotlib, or nerve[plot]); the attributions "
                          "themselves need no plotting library") from None
    return plt


def _array(x) -> np.ndarray:
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float64)


def normalize_attr(attr, sign: str = "absolute_value", outlier_perc: float = 2.0) -> np.ndarray:
    """One (H, W) map in [-1, 1] (Captum's normalisation): channels summed, the ``sign`` kept, divided by the
    (100 - outlier_perc) percentile of the kept magnitudes and clipped."""
    a = _array(attr)
    if a.ndim == 3:
        a = a.sum(axis=0)
    if a.ndim != 2:
        raise ValueError(f"normalize_attr: expected an attribution (C, H, W) or (H, W), got shape {a.shape}")
    if sign not in SIGNS:
        raise ValueError(f"normalize_attr: sign must be one of {SIGNS}, got {sign!r}")
    a = {"absolute_value": np.abs(a), "positive": np.maximum(a, 0), "negative": -np.minimum(a, 0), "all": a}[sign]
    scale = np.percentile(np.abs(a), 100 - outlier_perc)
    return np.clip(a / scale, -1, 1) if scale > 0 else np.zeros_like(a)


def _image(x) -> np.ndarray:
    img = _array(x)
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
    low, high = img.min(), img.max()
    return (img - low) / (high - low) if high > low else np.zeros_like(img)


def visualize_image_attr(attr, original_image=None, method: str = "blended_heat_map", sign: str = "absolute_value",
                         ax=None, outlier_perc: float = 2.0, cmap: str | None = None, alpha_overlay: float = 0.5,
                         show_colorbar: bool = False, title: str | None = None):
    """Draw an image attribution: "heat_map", "blended_heat_map" (over the grey image, each pixel's opacity
    growing with |attribution|), "original_image" or "masked_image" (the image times the normalised magnitude);
    return the Axes."""
    if method not in IMAGE_METHODS:
        raise ValueError(f"visualize_image_attr: method must be one of {IMAGE_METHODS}, got {method!r}")
    if method != "heat_map" and original_image is None:
        raise ValueError(f"visualize_image_attr: method {method!r} needs original_image")
    plt = pyplot("visualize_image_attr")
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    heat = normalize_attr(attr, sign, outlier_perc) if method != "original_image" else None
    cmap = cmap or ("bwr" if sign == "all" else {"positive": "Greens", "negative": "Reds"}.get(sign, "autumn_r"))
    vmin = -1 if sign == "all" else 0
    image = None
    if method == "original_image":
        ax.imshow(_image(original_image), cmap="gray")
    elif method == "heat_map":
        image = ax.imshow(heat, cmap=cmap, vmin=vmin, vmax=1)
    elif method == "blended_heat_map":
        # NOTE: unlike Captum's uniform alpha, each pixel's opacity grows with its |attribution|, so the image
        # stays visible where the map is near 0
        ax.imshow(_image(original_image), cmap="gray")
        colours = plt.get_cmap(cmap)((heat - vmin) / (1 - vmin))
        colours[..., 3] = np.clip(np.abs(heat) * (1 + alpha_overlay), 0, 1)
        ax.imshow(colours)
        image = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(vmin, 1))
    else:
        img = _image(original_image)
        ax.imshow(img * (np.abs(heat)[..., None] if img.ndim == 3 else np.abs(heat)), cmap="gray")
    if show_colorbar and image is not None:
        ax.figure.colorbar(image, ax=ax, fraction=0.046)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    return ax


def attribution_grid(images, attributions: Mapping[str, object], labels: Sequence[str] | None = None,
                     top_classes: Sequence[str] | None = None, path=None, sign: str = "absolute_value",
                     method: str = "blended_heat_map", title: str | None = None):
    """One figure: a row per image (the image, then each method's overlay), titled with its label and top class;
    saved to ``path`` if given; returns the Figure. ``attributions`` maps a method name to (N, C, H, W) maps."""
    plt = pyplot("attribution_grid")
    imgs = _array(images)
    if imgs.ndim == 3:
        imgs = imgs[:, None]
    n = len(imgs)
    for name, attr in attributions.items():
        if _array(attr).shape[0] != n:
            raise ValueError(f"attribution_grid: {name!r} has {_array(attr).shape[0]} maps for {n} images")
    cols = 1 + len(attributions)
    fig, axes = plt.subplots(n, cols, figsize=(1.6 * cols, 1.6 * n + 0.4), squeeze=False)
    for i in range(n):
        caption = " / ".join(x for x in ((labels[i] if labels is not None else None),
                                         (f"pred {top_classes[i]}" if top_classes is not None else None)) if x)
        visualize_image_attr(None, imgs[i], "original_image", ax=axes[i, 0], title=caption or None)
        for j, (name, attr) in enumerate(attributions.items(), start=1):
            visualize_image_attr(_array(attr)[i], imgs[i], method, sign, ax=axes[i, j],
                                 title=name if i == 0 else None)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_feature_attr(attr, feature_names: Sequence[str] | None = None, ax=None, title: str | None = None,
                      top: int | None = None):
    """Bar chart of tabular attributions (F,) or their mean over a batch (N, F), largest magnitude first;
    positive bars push towards the target, negative away. Returns the Axes."""
    plt = pyplot("plot_feature_attr")
    a = _array(attr)
    if a.ndim == 2:
        a = a.mean(axis=0)
    if a.ndim != 1:
        raise ValueError(f"plot_feature_attr: expected (F,) or (N, F) attributions, got shape {_array(attr).shape}")
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(len(a))]
    if len(names) != len(a):
        raise ValueError(f"plot_feature_attr: {len(names)} feature names for {len(a)} attributions")
    order = np.argsort(-np.abs(a))[:top]
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 0.28 * len(order) + 1))
    ax.barh(range(len(order)), a[order], color=["tab:red" if v > 0 else "tab:blue" for v in a[order]])
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels([names[i] for i in order], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel("attribution")
    if title:
        ax.set_title(title)
    return ax


def plot_text_attr(tokens: Sequence[str], attr, ax=None, title: str | None = None, cmap: str = "RdBu_r",
                   signed: bool = True, wrap: int = 16):
    """Token heat map: each token in a box coloured by its attribution (red positive, blue negative with the
    default ``cmap``; ``signed=False`` for weights in [0, max]), ``wrap`` tokens per line. Returns the Axes."""
    plt = pyplot("plot_text_attr")
    a = _array(attr)
    if a.ndim == 2:  # (L, E) from an embedding layer: one value per token
        a = a.sum(axis=1)
    if a.ndim != 1 or len(a) != len(tokens):
        raise ValueError(f"plot_text_attr: {len(tokens)} tokens for attributions of shape {_array(attr).shape}")
    scale = np.abs(a).max() or 1.0
    values = a / scale
    colours = plt.get_cmap(cmap)((values + 1) / 2 if signed else values)
    lines = (len(tokens) + wrap - 1) // wrap
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * min(len(tokens), wrap) + 0.5, 0.45 * lines + 0.5))
    for i, (tok, colour) in enumerate(zip(tokens, colours)):
        r, c = divmod(i, wrap)
        light = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 0.5
        ax.text(c + 0.5, -r, str(tok), ha="center", va="center", fontsize=9, color="black" if light else "white",
                bbox={"facecolor": colour, "edgecolor": "none", "boxstyle": "round,pad=0.25"})
    ax.set_xlim(0, min(len(tokens), wrap))
    ax.set_ylim(-lines + 0.5, 0.5)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return ax
