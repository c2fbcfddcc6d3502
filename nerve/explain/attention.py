"""Attention maps as an explanation: which positions a chosen attention layer and head looked at for an input.

Works with any model built from ``nn.MultiheadAttention`` (transformer layers and stacks) or GPT's
``CausalSelfAttention``: the chosen layer keeps its attention weights for one forward pass.
"""
from __future__ import annotations

from typing import Sequence

from nerve.autograd.grad_mode import no_grad
from nerve.nn.module import Module

__all__ = ["attention_layers", "attention_maps", "plot_attention"]


def attention_layers(model: Module) -> list:
    """(qualified name, module) of every attention layer of ``model``, in module order (what ``layer`` indexes)."""
    return [(name, m) for name, m in model.named_modules() if hasattr(m, "save_attention")]


def attention_maps(model: Module, *inputs, layer: int | str = -1, head: int | None = None):
    """The attention weights of one layer for ``model(*inputs)``, as a NumPy array (N, H, L, S), or (N, L, S)
    for one ``head``; row i holds how query position i spread its attention over the S key positions.

    ``layer`` indexes ``attention_layers(model)`` (decoder layers count self- and cross-attention separately)
    or names a module ("transformer.h.2.attn"). The model runs once in eval mode without gradients; its mode
    is restored afterwards.
    """
    layers = attention_layers(model)
    if not layers:
        raise ValueError(f"attention_maps: {type(model).__name__} has no attention layers (nn.MultiheadAttention "
                         "or GPT's CausalSelfAttention)")
    names = [name for name, _ in layers]
    if isinstance(layer, str):
        if layer not in names:
            raise ValueError(f"attention_maps: no attention layer named {layer!r}; choose from {names}")
        target = layers[names.index(layer)][1]
    else:
        if not -len(layers) <= layer < len(layers):
            raise IndexError(f"attention_maps: layer {layer} is out of range for {len(layers)} attention layers "
                             f"{names}")
        target = layers[layer][1]
    was_training = model.training
    model.eval()
    target.save_attention = True
    try:
        with no_grad():
            model(*inputs)
        weights = target.saved_attention.numpy()
    finally:
        target.save_attention = False
        target.saved_attention = None
        model.train(was_training)
    if head is None:
        return weights
    if not -weights.shape[1] <= head < weights.shape[1]:
        raise IndexError(f"attention_maps: head {head} is out of range for {weights.shape[1]} heads")
    return weights[:, head]


def plot_attention(weights, query_labels: Sequence[str] | None = None, key_labels: Sequence[str] | None = None,
                   ax=None, title: str | None = None, cmap: str = "viridis"):
    """Draw one (L, S) attention map as a heat map (queries down, keys across) with matplotlib; return the Axes."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plot_attention needs matplotlib (pip install matplotlib); attention_maps returns the "
                          "weights without it") from None
    if getattr(weights, "ndim", 0) != 2:
        raise ValueError(f"plot_attention: expected one (L, S) map, got shape {getattr(weights, 'shape', None)}; "
                         "pick a sample and a head first, e.g. attention_maps(...)[0, head]")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.3 * weights.shape[1] + 2, 0.3 * weights.shape[0] + 1.5))
    image = ax.imshow(weights, cmap=cmap, vmin=0.0, aspect="auto")
    ax.figure.colorbar(image, ax=ax)
    for labels, ticks, label in ((query_labels, ax.set_yticks, ax.set_yticklabels),
                                 (key_labels, ax.set_xticks, ax.set_xticklabels)):
        if labels is not None:
            ticks(range(len(labels)))
            label(list(labels), fontsize=7)
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")
    if title:
        ax.set_title(title)
    return ax
