"""Swapping a reference model's classifier for transfer learning: ``model.replace_head(num_classes)``."""
from __future__ import annotations

from nerve import nn

__all__ = ["replace_head"]


def replace_head(model: nn.Sequential, num_classes: int, config_key: str) -> nn.Linear:
    """Put a freshly initialised ``Linear(in, num_classes)`` in place of ``model``'s last Linear layer (same dtype
    and device, trainable), record ``num_classes`` in its config under ``config_key``, and return the new layer."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"{type(model).__name__}.replace_head: num_classes must be a positive int, got "
                         f"{num_classes!r}")
    names = [name for name, child in model.named_children() if isinstance(child, nn.Linear)]
    if not names:
        raise ValueError(f"{type(model).__name__}.replace_head: the model has no Linear layer to replace")
    old = model.get_submodule(names[-1])
    head = nn.Linear(old.in_features, num_classes, bias=old.bias is not None, device=old.weight.device,
                     dtype=old.weight.dtype)
    model.add_module(names[-1], head)
    model.config[config_key] = num_classes
    return head
