"""``nerve.jit``: TorchScript's entry points, so scripts that script or trace a model for speed run unchanged.

``script`` and ``trace`` return the model (or function) itself: nerve runs eagerly, and the results are the
same. ``save``/``load`` of TorchScript archives are not supported: save weights with ``nerve.save`` and
export the graph with ``nerve.onnx.export``.
"""
from __future__ import annotations

from typing import Any

__all__ = ["script", "trace", "ignore", "unused", "export", "save", "load", "is_scripting", "is_tracing"]


def script(obj: Any, *args, **kwargs) -> Any:
    """The module or function itself (accepted for TorchScript scripts)."""
    return obj


def trace(func: Any, example_inputs: Any = None, *args, **kwargs) -> Any:
    """The module or function itself (accepted for TorchScript scripts)."""
    return func


def ignore(fn: Any = None, **kwargs) -> Any:
    """Decorator accepted for TorchScript scripts."""
    return fn if fn is not None else (lambda f: f)


unused = export = ignore


def is_scripting() -> bool:
    return False


def is_tracing() -> bool:
    return False


def save(m: Any, f: Any, *args, **kwargs) -> None:
    raise NotImplementedError("nerve.jit.save: nerve has no TorchScript archives; save the weights with "
                              "nerve.save(model.state_dict(), path) or the graph with nerve.onnx.export")


def load(f: Any, *args, **kwargs) -> Any:
    raise NotImplementedError("nerve.jit.load: nerve cannot read TorchScript archives; load a state dict with "
                              "nerve.load, or run an exported ONNX file with onnxruntime")
