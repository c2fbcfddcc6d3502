"""``export``: a traced forward pass written as an ONNX model (weights as initializers, dynamic batch axis)."""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy

import nerve.onnx.layers  # noqa: F401  (registers the layer converters)
from nerve.backend import xp
from nerve.onnx.graph import ExportError, Graph
from nerve.onnx.ops import CONVERTERS
from nerve.onnx.trace import trace
from nerve.tensor import Tensor
from nerve.version import __version__

__all__ = ["export", "ir_version_for", "require_onnx"]

TRACE_KEY = "nerve.trace"


def require_onnx():
    """The onnx module, or an ImportError naming the extra to install."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(f"nerve.onnx needs the onnx package: pip install 'nerve[onnx]' (the import failed: {exc})"
                          ) from None
    return onnx


def ir_version_for(opset: int) -> int:
    """The IR version released with ``opset`` (opset 17 -> IR 8): the oldest that can hold it, so that older
    runtimes, which refuse newer IR versions, still load the file."""
    onnx = require_onnx()
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not 13 <= opset <= newest:
        raise ValueError(f"nerve.onnx.export: opset must be an int in [13, {newest}] (the installed onnx "
                         f"{onnx.__version__}), got {opset!r}")
    return min(ir for _, ir, ai_onnx, *_ in onnx.helper.VERSION_TABLE if ai_onnx >= opset)


def _as_inputs(example_input: Any) -> tuple:
    items = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    return tuple(t if isinstance(t, Tensor) else Tensor(xp.asarray(t)) for t in items)


def _grown(t: Tensor, axes) -> Tensor:
    """``t`` one longer along each of ``axes`` (its first slice repeated): the second trace's input."""
    data = t.data
    for axis in axes:
        data = xp.concatenate([data, xp.take(data, [0], axis=axis)], axis=axis)
    return Tensor(data)


def _outputs(out: Any) -> list:
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)) and all(isinstance(o, Tensor) for o in out):
        return list(out)
    raise ExportError(f"nerve.onnx.export: the model returned {type(out).__name__}; exported are a Tensor or a "
                      "tuple of Tensors")


def _check_eval(model) -> None:
    training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
    if training:
        raise ValueError(f"nerve.onnx.export: the model is in training mode ({', '.join(training[:3])}"
                         f"{', ...' if len(training) > 3 else ''}); call model.eval() first: ONNX gets dropout and "
                         "batch norm as they run in evaluation")


def _value_info(helper, name: str, array, axes: dict):
    dims = [axes.get(i, int(d)) for i, d in enumerate(array.shape)]
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(numpy.dtype(array.dtype)), dims)


def _prune(nodes: list, outputs: list) -> list:
    """The nodes the outputs depend on, in order (tracing records ops whose results go unused)."""
    needed, kept = set(outputs), []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    return kept[::-1]


def build(model, example_input: Any, opset: int = 17, input_names: Sequence[str] | None = None,
          output_names: Sequence[str] | None = None, dynamic_axes: dict | None = None):
    """The ONNX ModelProto of ``model`` traced on ``example_input`` (what ``export`` writes)."""
    onnx = require_onnx()
    helper = onnx.helper
    ir_version = ir_version_for(opset)
    _check_eval(model)
    inputs = _as_inputs(example_input)
    input_names = list(input_names or (["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))]))
    if len(input_names) != len(inputs):
        raise ValueError(f"nerve.onnx.export: {len(input_names)} input_names for {len(inputs)} inputs")
    records, out = trace(model, inputs)
    outputs = _outputs(out)
    output_names = list(output_names or (["output"] if len(outputs) == 1 else
                                         [f"output_{i}" for i in range(len(outputs))]))
    if len(output_names) != len(outputs):
        raise ValueError(f"nerve.onnx.export: {len(output_names)} output_names for {len(outputs)} outputs")
    if dynamic_axes is None:
        dynamic_axes = {name: {0: "batch"} for name in input_names + output_names}
    axes = {name: ({int(a): f"{name}_dim{a}" for a in spec} if isinstance(spec, (list, tuple))
                   else {int(a): str(n) for a, n in spec.items()}) for name, spec in dynamic_axes.items()}
    twins, _ = trace(model, tuple(_grown(t, axes.get(n, {})) for t, n in zip(inputs, input_names)))
    if [r.op for r in twins] != [r.op for r in records]:
        first = next((i for i, (a, b) in enumerate(zip(records, twins)) if a.op is not b.op), min(len(records),
                                                                                                   len(twins)))
        raise ExportError(f"nerve.onnx.export: the model runs different ops when the dynamic axes {axes} change "
                          f"size (op {first} of {len(records)}): its graph depends on the input's shape")
    named = {}
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if t is not None:
            named[id(t)] = named[id(t.data)] = name
    g = Graph(opset, named)
    for t, name in zip(inputs, input_names):
        g.bind(t, name)
    for i, (rec, twin) in enumerate(zip(records, twins)):
        if not g.is_dynamic(list(rec.args.values())):
            continue  # a constant: its value is folded into the ops that use it
        g.record, g.twin = rec, twin
        convert = CONVERTERS.get(rec.op.__name__)
        if convert is None:
            raise ExportError(f"nerve.onnx.export: no ONNX mapping for the op {rec.op.__name__} (called in module "
                              f"'{rec.module}'); nothing was written")
        name = convert(g)
        if name is not None:
            g.bind(rec.out, name)
            if id(rec.out) not in g.preshaped:  # NOTE: a recurrent result's slice is ONNX's output before the reshape
                g.traced.append((name, i))
    g.record = None
    out_names = []
    for t, name in zip(outputs, output_names):
        if id(t) not in g.names:
            raise ExportError(f"nerve.onnx.export: output {name!r} does not depend on the input through nerve's ops")
        g.nodes.append(helper.make_node("Identity", [g.names[id(t)]], [name], name=f"{name}/Identity"))
        out_names.append(name)
    nodes = _prune(g.nodes, out_names)
    used = {i for n in nodes for i in n.input}
    initializers = [onnx.numpy_helper.from_array(numpy.asarray(a), name) for name, a in g.initializers.items()
                    if name in used]
    graph = helper.make_graph(
        nodes, f"nerve {type(model).__name__}",
        [_value_info(helper, n, t.data, axes.get(n, {})) for t, n in zip(inputs, input_names)],
        [_value_info(helper, n, t.data, axes.get(n, {})) for t, n in zip(outputs, output_names)], initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version,
                              producer_name="nerve", producer_version=__version__)
    produced = {o for n in nodes for o in n.output}
    helper.set_model_props(proto, {TRACE_KEY: json.dumps([[n, i] for n, i in g.traced if n in produced])})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model, example_input: Any, path: str | os.PathLike, opset: int = 17,
           input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
           dynamic_axes: dict | None = None):
    """Write ``model`` (in eval mode) to ``path`` as ONNX by tracing ``model(example_input)``; returns the proto.

    Weights become initializers; ``dynamic_axes`` ({name: {axis: label}} as in ``torch.onnx.export``) defaults
    to a dynamic batch axis 0 on every input and output. An op without an ONNX mapping raises ``ExportError``
    naming it and its module, and nothing is written.
    """
    proto = build(model, example_input, opset, input_names, output_names, dynamic_axes)
    require_onnx().save(proto, os.fspath(path))
    return proto
