"""``check``: run an exported file in onnxruntime and compare every traced value with nerve's."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy

from nerve.onnx.export import TRACE_KEY, _as_inputs, _check_eval, _outputs, require_onnx
from nerve.onnx.trace import trace

__all__ = ["check", "CheckReport"]


@dataclass
class CheckReport:
    """onnxruntime against nerve: ``ok``, the outputs' largest difference, the first node that diverges."""

    ok: bool
    max_abs_diff: float
    first_divergence: str | None
    compared: int

    def __str__(self) -> str:
        if self.ok:
            return f"ok: {self.compared} values agree; outputs differ by at most {self.max_abs_diff:.3g}"
        return f"diverges: {self.first_divergence}; outputs differ by up to {self.max_abs_diff:.3g}"


def _session(proto):
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(f"nerve.onnx.check needs onnxruntime: pip install 'nerve[onnx]' ({exc})") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def check(model, path: str | os.PathLike, inputs: Any, rtol: float = 1e-5, atol: float = 1e-5) -> CheckReport:
    """Run the ONNX file at ``path`` on ``inputs`` with onnxruntime and compare it with ``model``'s forward.

    Every value the export traced is compared in graph order; the report names the first node whose output
    differs from nerve's beyond ``atol + rtol * |nerve|`` (and the module it came from).
    """
    onnx = require_onnx()
    _check_eval(model)
    proto = onnx.load(os.fspath(path))
    props = {p.key: p.value for p in proto.metadata_props}
    traced = json.loads(props.get(TRACE_KEY, "[]"))
    tensors = _as_inputs(inputs)
    records, out = trace(model, tensors)
    outputs = _outputs(out)
    helper = onnx.helper
    existing = {o.name for o in proto.graph.output}
    for name, index in traced:
        if name not in existing and index < len(records):
            dtype = helper.np_dtype_to_tensor_dtype(numpy.dtype(records[index].out.data.dtype))
            proto.graph.output.append(helper.make_tensor_value_info(name, dtype, None))
    session = _session(proto)
    feed = {i.name: numpy.asarray(t.data) for i, t in zip(proto.graph.input, tensors)}
    names = [o.name for o in session.get_outputs()]
    results = dict(zip(names, session.run(names, feed)))
    first, compared = None, 0
    for name, index in traced:
        if index >= len(records) or name not in results:
            continue
        want, got = numpy.asarray(records[index].out.data), results[name]
        compared += 1
        if want.shape != got.shape or not numpy.allclose(got, want, rtol=rtol, atol=atol):
            node = next((n for n in proto.graph.node if name in n.output), None)
            rec = records[index]
            detail = (f"shape {got.shape} vs nerve's {want.shape}" if want.shape != got.shape
                      else f"max |diff| {float(numpy.max(numpy.abs(got - want))):.3g}")
            first = (f"node {node.name if node else name!r} ({node.op_type if node else '?'}) for nerve's "
                     f"{rec.op.__name__} in module '{rec.module}': {detail}")
            break
    diff = 0.0
    for o, t in zip(proto.graph.output, outputs):
        got, want = results[o.name], numpy.asarray(t.data)
        if got.shape != want.shape:
            diff = numpy.inf
            first = first or f"output {o.name!r} has shape {got.shape}, nerve's {want.shape}"
        else:
            diff = max(diff, float(numpy.max(numpy.abs(got - want))) if want.size else 0.0)
            if not numpy.allclose(got, want, rtol=rtol, atol=atol):
                first = first or f"output {o.name!r} differs by {diff:.3g}"
    return CheckReport(first is None, diff, first, compared)
