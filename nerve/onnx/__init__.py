"""ONNX export of nerve models by tracing a forward pass (``pip install 'nerve[onnx]'``)::

    model.eval()
    nerve.onnx.export(model, x, "model.onnx")            # dynamic batch axis, opset 17, IR version 8
    print(nerve.onnx.check(model, "model.onnx", x))     # onnxruntime against nerve, node by node
"""
from nerve.onnx.check import CheckReport, check
from nerve.onnx.export import export
from nerve.onnx.graph import ExportError
from nerve.onnx.ops import CONVERTERS

SUPPORTED_OPS = tuple(sorted(CONVERTERS))

__all__ = ["export", "check", "CheckReport", "ExportError", "SUPPORTED_OPS"]
