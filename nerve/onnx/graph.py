"""The ONNX graph under construction: value names, initializers, nodes, and the two traces side by side.

Export traces the model twice, the second time with every dynamic axis one longer; a number that differs
between the two traces (a reshape's batch dimension) becomes dynamic, a constant that differs is an error.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy

from nerve.onnx.trace import Record
from nerve.tensor import Tensor

__all__ = ["ExportError", "Graph", "INT_MAX"]

INT_MAX = 2 ** 63 - 1


class ExportError(ValueError):
    """The model cannot be written to ONNX as it is (an op without a mapping, a batch-dependent constant)."""


def _array(value: Any):
    return value.data if isinstance(value, Tensor) else value


def _is_array(value: Any) -> bool:
    return isinstance(value, Tensor) or (hasattr(value, "shape") and hasattr(value, "dtype"))


class Graph:
    """Values by Python identity (Tensors and their arrays) -> ONNX names; nodes and initializers in order."""

    def __init__(self, opset: int, named_tensors: dict) -> None:
        import onnx

        self.helper = onnx.helper
        self.opset = opset
        self.names: dict[int, str] = {}
        self.nodes: list = []
        self.initializers: dict[str, Any] = {}
        self.tensor_names = named_tensors  # id(parameter or buffer) -> its state-dict name
        self.preshaped: set[int] = set()
        self.special: dict[int, Any] = {}
        self.traced: list[tuple[str, int]] = []  # (value name, record index) for check()
        self._count = 0
        self.record: Record | None = None
        self.twin: Record | None = None

    # --- names ------------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def bind(self, obj: Any, name: str) -> None:
        """``obj`` (a Tensor or an array) is the ONNX value ``name``.

        NOTE: values are known by ``id``: the traces' records keep every traced object alive while the graph is
        built, so no id is reused.
        """
        self.names[id(obj)] = name
        if isinstance(obj, Tensor):
            self.names[id(obj.data)] = name

    def is_dynamic(self, value: Any) -> bool:
        if isinstance(value, (tuple, list)):
            return any(self.is_dynamic(v) for v in value)
        return _is_array(value) and (id(value) in self.names or id(value) in self.special)

    def where(self) -> str:
        rec = self.record
        return f"{rec.op.__name__} in module '{rec.module}'"

    def const(self, array, hint: str = "const", dtype=None) -> str:
        """An initializer holding ``array`` (cast to ``dtype`` if given)."""
        array = numpy.asarray(array if dtype is None else numpy.asarray(array).astype(dtype))
        name = self.fresh(hint)
        self.initializers[name] = array
        return name

    def ints(self, values, hint: str = "ints") -> str:
        return self.const(numpy.asarray(list(values), dtype=numpy.int64), hint)

    def value(self, key: str, index: int | None = None, dtype=None) -> str | None:
        """The ONNX name of the record's argument ``key`` (item ``index`` of a tuple argument).

        A parameter or buffer becomes an initializer named after it; any other constant becomes an
        initializer after checking that the second trace computed the same one.
        """
        obj = self.record.args[key] if index is None else self.record.args[key][index]
        if obj is None:
            return None
        if isinstance(obj, numbers.Number) or isinstance(obj, numpy.generic):
            return self.const(numpy.asarray(obj, dtype=dtype if dtype is not None else self.out_dtype()), "scalar")
        if id(obj) in self.names:
            return self.names[id(obj)]
        if id(obj) in self.tensor_names:
            name = self.tensor_names[id(obj)]
            if name not in self.initializers:
                self.initializers[name] = numpy.asarray(_array(obj))
            self.bind(obj, name)
            return name
        if not _is_array(obj):
            raise ExportError(f"nerve.onnx.export: argument {key!r} of {self.where()} is a "
                              f"{type(obj).__name__}, not an array")
        twin = self.twin.args[key] if index is None else self.twin.args[key][index]
        a, b = numpy.asarray(_array(obj)), numpy.asarray(_array(twin))
        if a.shape != b.shape or not numpy.array_equal(a, b, equal_nan=True):
            raise ExportError(
                f"nerve.onnx.export: argument {key!r} of {self.where()} is a constant that changes with the "
                f"input's dynamic axes (shape {a.shape} vs {b.shape} in the two traces): it was computed from "
                "the input outside nerve's ops (x.data, x.numpy(), ...), which ONNX cannot replay")
        return self.const(a if dtype is None else a.astype(dtype), key)

    def shape(self, key: str = None) -> tuple:
        obj = self.record.out if key is None else self.record.args[key]
        return tuple(_array(obj).shape)

    def out_dtype(self):
        return numpy.dtype(_array(self.record.out).dtype)

    # --- nodes ------------------------------------------------------------------------------------
    def node(self, op_type: str, inputs: list, outputs: int | list = 1, **attrs) -> str | list:
        """Append a node; returns its output name (or names when ``outputs`` > 1 or a list)."""
        label = self.record.module if self.record is not None else "graph"
        names = ([self.fresh(f"{label}/{op_type}") for _ in range(outputs)] if isinstance(outputs, int)
                 else outputs)
        self.nodes.append(self.helper.make_node(op_type, ["" if i is None else i for i in inputs], names,
                                                name=self.fresh(f"{label}/{op_type}"), **attrs))
        return names[0] if isinstance(outputs, int) and outputs == 1 else names

    def cast(self, name: str, dtype) -> str:
        return self.node("Cast", [name], to=self.helper.np_dtype_to_tensor_dtype(numpy.dtype(dtype)))

    def reduce(self, op_type: str, name: str, axes, keepdims: bool) -> str:
        """A Reduce* node: axes as an attribute up to opset 17, as an input from 18 (ReduceSum from 13)."""
        axes = None if axes is None else [int(a) for a in axes]
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, [name, None if axes is None else self.ints(axes, "axes")],
                             keepdims=int(keepdims))
        if axes is None:
            return self.node(op_type, [name], keepdims=int(keepdims))
        return self.node(op_type, [name], axes=axes, keepdims=int(keepdims))

    def squeeze(self, name: str, axes) -> str:
        return self.node("Squeeze", [name, self.ints(axes, "axes")])

    def unsqueeze(self, name: str, axes) -> str:
        return self.node("Unsqueeze", [name, self.ints(axes, "axes")])

    def slice(self, name: str, starts, ends, axes, steps=None) -> str:
        steps = [1] * len(axes) if steps is None else steps
        return self.node("Slice", [name, self.ints(starts, "starts"), self.ints(ends, "ends"),
                                   self.ints(axes, "axes"), self.ints(steps, "steps")])

    def dynamic_shape(self) -> list:
        """The output's shape in both traces: the one dimension that differs becomes -1 (Reshape infers it)."""
        a, b = tuple(_array(self.record.out).shape), tuple(_array(self.twin.out).shape)
        varying = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        if len(varying) > 1:
            raise ExportError(f"nerve.onnx.export: {self.where()} gives shape {a} with {len(varying)} dimensions "
                              "that change with the input's dynamic axes; ONNX's Reshape can infer only one")
        return [-1 if i in varying else int(d) for i, d in enumerate(a)]
