"""Pre-trained weights: small networks trained by ``examples/pretrain.py`` that ship with nerve
(``nerve/models/weights/``, checked against their sha256: a digits MLP, a Fashion-MNIST LeNet-5, a character GPT
on tiny Shakespeare), earlier runs' weights as a starting point (``load_init``, what ``nerve train --init``
calls), and PyTorch safetensors files for matching architectures.

Each shipped file's metadata holds the architecture and its config, the training recipe, and the classifiers' test
accuracy and input scaling (``info['input_mean']``, ``info['input_std']``) or the GPT's characters and
validation loss.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from nerve.io import load, load_metadata
from nerve.models.cnn import LeNet5
from nerve.models.gpt import GPT
from nerve.models.mlp import MLP
from nerve.nn.freeze import freeze
from nerve.nn.module import Module

__all__ = ["pretrained", "pretrained_info", "available", "load_init", "load_torch_state", "freeze_by_spec", "WEIGHTS"]

WEIGHTS = Path(__file__).resolve().parent / "weights"
ARCHITECTURES = {"MLP": MLP, "LeNet5": LeNet5, "GPT": GPT}
#: the metadata every shipped file holds (JSON values)
INFO_KEYS = ("architecture", "config", "data", "classes", "recipe", "test_accuracy", "input_mean", "input_std",
             "chars", "val_loss")
TEXT_KEYS = ("architecture", "data", "recipe", "chars")  # NOTE: nerve.save stores strings as they are, the rest as JSON

#: name: (file in WEIGHTS, its sha256), written by examples/pretrain.py
REGISTRY = {
    "digits-mlp": ("digits_mlp.safetensors", "d07703d60efa77d83e4c4f0237e1564e107caf5755a6225a643cf969f26049a1"),
    "fashion-lenet": ("fashion_lenet.safetensors", "1feb9c6560c1c7c845af3477c284fa49024624e3613cf6928c49c24a5dd095e2"),
    "shakespeare-gpt": ("shakespeare_gpt.safetensors",
                        "6440d0d538219ac3742aae364f2d7ca099a6f70d2bae9e74ff7f35791499a985"),
}


def available() -> list[str]:
    """The names ``pretrained`` accepts."""
    return sorted(REGISTRY)


def _path(name: str) -> Path:
    if name not in REGISTRY:
        raise ValueError(f"pretrained: no weights named {name!r}; available: {available()}")
    path = WEIGHTS / REGISTRY[name][0]
    if not path.exists():
        raise FileNotFoundError(f"pretrained: {path} is missing from the installed package (reinstall nerve)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != REGISTRY[name][1]:
        raise ValueError(f"pretrained: {path} has sha256 {digest}, not the {REGISTRY[name][1]} it shipped with; "
                         "the file is corrupt or was changed")
    return path


def pretrained_info(name: str) -> dict:
    """The shipped file's metadata: architecture, config, recipe, accuracy, input scaling, sha256."""
    path = _path(name)
    meta = load_metadata(path)
    info = {k: meta[k] if k in TEXT_KEYS else json.loads(meta[k]) for k in INFO_KEYS if k in meta}
    info["sha256"] = REGISTRY[name][1]
    return info


def pretrained(name: str, num_classes: int | None = None) -> Module:
    """The network ``name`` with its shipped weights, in eval mode (``model.pretrained_info`` holds its
    metadata); ``num_classes`` swaps a classifier's last layer for a new one with that many outputs."""
    info = pretrained_info(name)
    if num_classes is not None and not hasattr(ARCHITECTURES[info["architecture"]], "replace_head"):
        raise ValueError(f"pretrained: {name} ({info['architecture']}) is not a classifier; num_classes does not "
                         "apply")
    model = ARCHITECTURES[info["architecture"]](**info["config"])
    state = load(_path(name))
    model.load_state_dict(state)
    model.eval()
    model.pretrained_info = info
    if num_classes is not None:
        model.replace_head(num_classes)
    return model


def _weights_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        if not (path / "model.safetensors").exists():
            raise FileNotFoundError(f"load_init: {path} is a directory without model.safetensors (a run directory "
                                    "of nerve train holds one)")
        return path / "model.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"load_init: no file {path}")
    return path


def load_init(model: Module, path: str | os.PathLike, skip_mismatched: bool = False) -> dict:
    """Start ``model`` from the weights of a run directory or a weights file (fine-tuning; ``nerve train --init``).

    Every key must match in name and shape (one error lists the missing, unexpected and mis-shaped keys), unless
    ``skip_mismatched``: then the keys that match are loaded and the rest reported (a new head keeps its
    initialisation). Returns {'loaded', 'skipped', 'missing'} key lists.
    """
    state = load(_weights_file(path))
    if not isinstance(state, dict):
        raise ValueError(f"load_init: {path} holds a {type(state).__name__}, not a dict of weights")
    state = {k: v for k, v in state.items() if not k.startswith("preprocess.")}
    own = model.state_dict()
    skipped = []
    if skip_mismatched:
        skipped = sorted(k for k, v in state.items() if k not in own or tuple(v.shape) != tuple(own[k].shape))
        state = {k: v for k, v in state.items() if k not in skipped}
    model.load_state_dict(state, strict=not skip_mismatched)
    return {"loaded": sorted(state), "skipped": skipped, "missing": sorted(set(own) - set(state))}


def load_torch_state(model: Module, path_or_state) -> dict:
    """Load PyTorch weights (a safetensors file or a dict of arrays/Tensors) into the matching nerve model.

    Keys are matched by name (nerve's Sequential and layer names are PyTorch's; a 'module.' prefix from
    DataParallel is dropped); when the names differ (a custom ``nn.Module`` with conv1/fc1 attributes) but the
    tensors agree in number, order and shape, they are matched in order. Returns {model key: file key}.
    """
    state = load(path_or_state) if isinstance(path_or_state, (str, os.PathLike)) else dict(path_or_state)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    own = model.state_dict()
    if set(own) <= set(state) or not own:
        mapping = {k: k for k in own}
    else:
        theirs, mine = list(state.items()), list(own.items())
        same = len(theirs) == len(mine) and all(tuple(getattr(v, "shape", ())) == tuple(t.shape)
                                                for (_, v), (_, t) in zip(theirs, mine))
        if not same:
            model.load_state_dict(state)  # NOTE: raises, listing the missing, unexpected and mis-shaped keys
        mapping = {k: theirs[i][0] for i, (k, _) in enumerate(mine)}
    model.load_state_dict({k: state[v] for k, v in mapping.items()})
    return mapping


def freeze_by_spec(model: Module, spec: str) -> list[str]:
    """Freeze what ``nerve train --freeze`` names: comma-separated submodule names, or ``features`` for every
    child before the head (the last child holding parameters). Returns the frozen names."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ValueError(f"--freeze: no submodule named in {spec!r}")
    if "features" in names and "features" not in dict(model.named_children()):
        holding = [n for n, c in model.named_children() if any(True for _ in c.parameters())]
        if len(holding) < 2:
            raise ValueError(f"--freeze features: {type(model).__name__} has no layers before its head")
        children = [n for n, _ in model.named_children()]
        before_head = children[:children.index(holding[-1])]
        names = [n for n in names if n != "features"] + [n for n in before_head if n not in names]
    freeze(model, *names)
    return names
