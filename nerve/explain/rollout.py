"""Attention rollout (Abnar & Zuidema 2020): how much each input position feeds each output position through
all attention layers at once, by multiplying the layers' attention maps (each averaged over heads and mixed
with the identity for the residual connection) from the first layer up."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from nerve.autograd.grad_mode import no_grad
from nerve.explain.attention import attention_layers
from nerve.nn.module import Module

__all__ = ["attention_rollout", "plot_rollout", "rollout"]

HEAD_FUSIONS = ("mean", "max", "min")


def rollout(maps: Sequence[np.ndarray], head_fusion: str = "mean", discard_ratio: float = 0.0,
            residual: bool = True) -> np.ndarray:
    """Roll out per-layer attention maps, each (N, H, L, L) in layer order, into one (N, L, L) map.

    Per layer: fuse the heads (``head_fusion``), zero the ``discard_ratio`` smallest weights of each map
    (never the diagonal), add the identity and renormalise the rows when ``residual`` (0.5 A + 0.5 I), then
    multiply: R = Â_last ... Â_first. Row i of R says how much output position i draws on each input position.
    """
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"rollout: head_fusion must be one of {HEAD_FUSIONS}, got {head_fusion!r}")
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"rollout: discard_ratio must be in [0, 1), got {discard_ratio}")
    if not maps:
        raise ValueError("rollout: no attention maps")
    result = None
    for i, a in enumerate(maps):
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
            raise ValueError(f"rollout: map {i} has shape {a.shape}; expected self-attention (N, H, L, L)")
        fused = getattr(a, head_fusion)(axis=1)
        n, length = fused.shape[0], fused.shape[-1]
        if discard_ratio > 0:
            flat = fused.reshape(n, -1).copy()
            drop = int(flat.shape[1] * discard_ratio)
            order = np.argsort(flat, axis=1)[:, :drop]
            keep_diag = np.arange(length) * (length + 1)
            for row, idx in zip(flat, order):
                row[np.setdiff1d(idx, keep_diag)] = 0.0
            fused = flat.reshape(fused.shape)
        if residual:
            fused = 0.5 * fused + 0.5 * np.eye(length)
        fused = fused / fused.sum(axis=-1, keepdims=True)
        result = fused if result is None else fused @ result
    return result


def attention_rollout(model: Module, *inputs, head_fusion: str = "mean", discard_ratio: float = 0.0,
                      residual: bool = True) -> np.ndarray:
    """``rollout`` of every self-attention layer of ``model`` for ``model(*inputs)``: (N, L, L) as NumPy.

    The model runs once in eval mode without gradients (modes restored); every layer keeps its weights for it.
    """
    layers = [m for _, m in attention_layers(model)]
    if not layers:
        raise ValueError(f"attention_rollout: {type(model).__name__} has no attention layers "
                         "(nn.MultiheadAttention or GPT's CausalSelfAttention)")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    for layer in layers:
        layer.save_attention = True
    try:
        with no_grad():
            model(*inputs)
        maps = [layer.saved_attention.numpy() for layer in layers if layer.saved_attention is not None]
    finally:
        for layer in layers:
            layer.save_attention = False
            layer.saved_attention = None
        for m, mode in modes:
            m.training = mode
    return rollout(maps, head_fusion, discard_ratio, residual)


def plot_rollout(rolled: np.ndarray, tokens: Sequence[str] | None = None, row: int | None = None, ax=None,
                 title: str | None = None, cmap: str = "magma"):
    """Draw one rolled-out (L, L) map, or with ``row`` the attribution of one output position over the input
    tokens as a token heat map; return the Axes (needs matplotlib)."""
    from nerve.explain.plots import plot_text_attr, pyplot
    rolled = np.asarray(rolled)
    if rolled.ndim != 2:
        raise ValueError(f"plot_rollout: expected one (L, L) map, got shape {rolled.shape}; pick a sample first")
    if row is not None:
        return plot_text_attr(tokens or [str(i) for i in range(rolled.shape[1])], rolled[row], ax=ax,
                              title=title or f"rollout: position {row} draws on", cmap=cmap, signed=False)
    plt = pyplot("plot_rollout")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.3 * rolled.shape[1] + 2, 0.3 * rolled.shape[0] + 1.5))
    image = ax.imshow(rolled, cmap=cmap, vmin=0.0, aspect="auto")
    ax.figure.colorbar(image, ax=ax)
    if tokens is not None:
        ax.set_xticks(range(len(tokens)))
        ax.set_xticklabels(list(tokens), fontsize=7)
        ax.set_yticks(range(len(tokens)))
        ax.set_yticklabels(list(tokens), fontsize=7)
    ax.set_xlabel("input position")
    ax.set_ylabel("output position")
    ax.set_title(title or "attention rollout")
    return ax
