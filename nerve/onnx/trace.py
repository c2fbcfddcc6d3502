"""Tracing a forward pass: every primitive ``Function.apply`` call, its arguments and the module it ran in.

nerve records the graph of Function nodes only where gradients flow, and without the forward's options; the
tracer wraps ``Function.apply`` for the length of one forward pass instead, so nothing escapes it.
"""
from __future__ import annotations

import inspect
import sys
from contextlib import contextmanager
from typing import Any, NamedTuple

from nerve.autograd.function import Function
from nerve.autograd.grad_mode import no_grad
from nerve.tensor import Tensor

__all__ = ["Record", "trace", "Compare"]

_tensor_module = sys.modules[Tensor.__module__]  # NOTE: the module, not nerve.tensor (the creation function)

_SIGNATURES: dict = {}


class Record(NamedTuple):
    """One primitive call: its class, its arguments by the names of ``forward``, its output, its module."""

    op: type
    args: dict
    out: Tensor
    module: str


def _bind(cls: type, inputs: tuple, options: dict) -> dict:
    sig = _SIGNATURES.get(cls)
    if sig is None:
        sig = _SIGNATURES[cls] = inspect.signature(cls.forward)
    bound = sig.bind(None, *inputs, **options)
    bound.apply_defaults()
    args = dict(bound.arguments)
    args.pop(next(iter(sig.parameters)))
    return args


class Compare:
    """Stands for Tensor's comparisons (``x > 0``, ``a == b``) in a record: they are not Functions (no gradient)."""


@contextmanager
def _recording(model, records: list):
    """Wrap ``Function.apply`` and hook every module so that each call is recorded with its module's path."""
    stack = ["(top)"]
    handles = []
    for name, module in model.named_modules():
        label = name or type(model).__name__
        handles.append(module.register_forward_pre_hook(lambda m, args, label=label: stack.append(label)))
        handles.append(module.register_forward_hook(lambda m, args, out: stack.pop() and None))
    original = Function.__dict__["apply"]

    def apply(cls, *inputs, **options):
        out = original.__func__(cls, *inputs, **options)
        records.append(Record(cls, _bind(cls, inputs, options), out, stack[-1]))
        return out

    compare = _tensor_module._compare

    def traced_compare(fn, a, b):
        out = compare(fn, a, b)
        records.append(Record(Compare, {"fn": fn, "a": a, "b": b}, out, stack[-1]))
        return out

    Function.apply = classmethod(apply)
    # NOTE: Tensor's comparison operators call the module-level _compare, so replacing it traces them too
    _tensor_module._compare = traced_compare
    try:
        yield
    finally:
        Function.apply = original
        _tensor_module._compare = compare
        for handle in handles:
            handle.remove()


def trace(model, inputs: tuple) -> tuple[list[Record], Any]:
    """(the primitive calls of ``model(*inputs)`` in order, its output), without recording gradients."""
    records: list[Record] = []
    with no_grad(), _recording(model, records):
        out = model(*inputs)
    return records, out
