"""Freezing for transfer learning: ``freeze(model, "features")`` stops the named parts' parameters from training
and keeps their BatchNorm layers in inference mode across later ``model.train()`` calls (a sticky freeze, so
the running statistics do not move); ``unfreeze`` undoes it, from a layer on; ``layerwise_lr_groups`` gives
optimiser parameter groups whose learning rate decays towards the input (layer-wise decay)."""
from __future__ import annotations

from nerve.nn.module import Module
from nerve.nn.normalization import BatchNorm1d

__all__ = ["freeze", "unfreeze", "is_frozen", "trainable_parameters", "layerwise_lr_groups"]


def _targets(module: Module, names: tuple, who: str) -> list[Module]:
    if not names:
        return [module]
    found = dict(module.named_modules())
    out = []
    for name in names:
        if not isinstance(name, str) or name not in found or name == "":
            children = [n for n, _ in module.named_children()]
            raise ValueError(f"{who}: {name!r} is not a submodule of {type(module).__name__}; its children are "
                             f"{children} (dotted paths such as '0.conv' reach deeper)")
        out.append(found[name])
    return out


def freeze(module: Module, *names: str) -> Module:
    """Stop training ``module`` (or its submodules ``names``): parameters get ``requires_grad=False`` and
    BatchNorm layers stay in eval mode until ``unfreeze``, whatever ``train()`` says later."""
    for target in _targets(module, names, "freeze"):
        target.requires_grad_(False)
        for m in target.modules():
            if isinstance(m, BatchNorm1d):  # BatchNorm2d derives from it
                m.__dict__["frozen_eval"] = True
                m.__dict__["training"] = False
    return module


def _children_from(module: Module, from_layer) -> list[str]:
    names = [n for n, _ in module.named_children()]
    if isinstance(from_layer, int) and not isinstance(from_layer, bool):
        if not -len(names) <= from_layer < len(names):
            raise ValueError(f"unfreeze: from_layer={from_layer} is out of range for {len(names)} children")
        return names[from_layer:]
    if from_layer not in names:
        raise ValueError(f"unfreeze: from_layer={from_layer!r} is not a child of {type(module).__name__}; its "
                         f"children are {names}")
    return names[names.index(from_layer):]


def unfreeze(module: Module, *names: str, from_layer: int | str | None = None) -> Module:
    """Train ``module`` again (or its submodules ``names``, or its children from ``from_layer`` (a name or an
    index, negative from the end) to the last); BatchNorm layers follow ``train()`` again."""
    if from_layer is not None:
        if names:
            raise ValueError("unfreeze: give names or from_layer, not both")
        names = tuple(_children_from(module, from_layer))
    for target in _targets(module, names, "unfreeze"):
        target.requires_grad_(True)
        for m in target.modules():
            if m.__dict__.pop("frozen_eval", False):
                m.__dict__["training"] = module.training
    return module


def is_frozen(module: Module) -> bool:
    """True when no parameter of ``module`` trains (a module without parameters counts as frozen)."""
    return not any(p.requires_grad for p in module.parameters())


def trainable_parameters(module: Module) -> list:
    """The parameters that train (what to give an optimiser after freezing)."""
    return [p for p in module.parameters() if p.requires_grad]


def layerwise_lr_groups(module: Module, lr: float, decay: float = 0.5, names: list[str] | None = None) -> list[dict]:
    """Parameter groups for an optimiser: the last of ``names`` (default: the children holding parameters, in
    order) gets ``lr``, each earlier one ``decay`` times its successor's rate (ULMFiT's discriminative rates).
    Build the optimiser before freezing (nerve's optimisers refuse frozen parameters; one that holds them skips
    them while they have no gradient, so unfreezing later needs no new optimiser)."""
    if not 0 < decay <= 1:
        raise ValueError(f"layerwise_lr_groups: decay must be in (0, 1], got {decay}")
    if names is None:
        names = [n for n, c in module.named_children() if any(True for _ in c.parameters())]
    parts = _targets(module, tuple(names), "layerwise_lr_groups")
    groups, seen = [], set()
    for depth, part in enumerate(reversed(parts)):
        params = [p for p in part.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            groups.append({"params": params, "lr": lr * decay ** depth})
    rest = [p for p in module.parameters() if id(p) not in seen]
    if rest:
        raise ValueError(f"layerwise_lr_groups: {len(rest)} parameters are outside {names}; name every part "
                         "that holds parameters")
    return groups[::-1]
