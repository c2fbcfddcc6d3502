"""The namespace a derivative rule is written against, so that each primitive has one rule.

A primitive's ``backward(self, g, m)`` reads its saved values through ``m`` (``m.inputs(self)``,
``m.output(self)``), wraps constants with ``m.const`` and calls other primitives with
``m.apply(Op, ...)`` or the helpers ops register with ``define`` (``m.sum_to``, ``m.exp``, ...).
The engine passes ``ARRAY`` on the first-order path: values are raw arrays and ``m.apply`` runs the
op's forward alone, so a rule costs what a hand-written array rule costs. Under ``create_graph=True``
it passes ``TENSOR``: values are Tensors and ``m.apply`` records nodes, so the same rule is
differentiated again, to any order. Arithmetic operators work the same on both.
"""
from __future__ import annotations

from nerve.tensor import Tensor

_new = object.__new__


class ArrayMath:
    """Rule values as raw arrays: the fast first-order path."""

    tensors = False

    @staticmethod
    def inputs(node) -> list:
        """The node's inputs as arrays (non-Tensor arguments as they were given)."""
        return [t.data if isinstance(t, Tensor) else t for t in node.inputs]

    @staticmethod
    def output(node):
        """The forward result (the op must set ``saves_output = True``)."""
        return node._out

    @staticmethod
    def const(array):
        """A value that carries no gradient (a mask, a sign)."""
        return array

    @staticmethod
    def apply(op, *args, **options):
        """Another primitive's forward on arrays, recording nothing."""
        return _new(op).forward(*args, **options)


class TensorMath:
    """Rule values as Tensors: the rule records a graph and can be differentiated again."""

    tensors = True

    @staticmethod
    def inputs(node) -> list:
        return list(node.inputs)

    @staticmethod
    def output(node):
        return Tensor._make(node._out, node)

    @staticmethod
    def const(array):
        return array if isinstance(array, Tensor) else Tensor._make(array, None)

    @staticmethod
    def apply(op, *args, **options):
        return op.apply(*args, **options)


ARRAY = ArrayMath()
TENSOR = TensorMath()


def define(name: str, on_arrays, on_tensors) -> None:
    """Add a helper to the namespace: ``m.<name>`` is ``on_arrays`` on the fast path, ``on_tensors`` else.

    Ops modules call this for the few functions rules use (``sum_to``, ``exp``, ``where``, ...).
    """
    if hasattr(ArrayMath, name):
        raise ValueError(f"rule namespace: {name!r} is defined twice")
    setattr(ArrayMath, name, staticmethod(on_arrays))
    setattr(TensorMath, name, staticmethod(on_tensors))
