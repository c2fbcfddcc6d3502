"""Converters of nerve's layer kernels: convolution, pooling, normalisation, embedding, attention (as
primitive ops) and the fused recurrent layer (ONNX's own LSTM/GRU/RNN with the gate rows reordered)."""
from __future__ import annotations

import math

import numpy

from nerve.onnx.graph import ExportError, Graph
from nerve.onnx.ops import CONVERTERS, converts
from nerve.tensor import Tensor

__all__ = ["CONVERTERS"]


def _window(g: Graph, geom) -> dict:
    """kernel, strides, dilations and pads (ONNX's begin..., end...) giving exactly ``geom.out`` positions."""
    hi = [(o - 1) * s + d * (k - 1) + 1 - n - lo
          for o, s, d, k, n, lo in zip(geom.out, geom.stride, geom.dilation, geom.kernel, geom.size, geom.lo)]
    if min(hi) < 0 or min(geom.lo) < 0:
        raise ExportError(f"nerve.onnx.export: {g.where()} crops its input (padding {geom.lo}, {geom.hi}); "
                          "not exported")
    return {"kernel_shape": list(geom.kernel), "strides": list(geom.stride), "dilations": list(geom.dilation),
            "pads": [*geom.lo, *hi]}


@converts("Conv")
def _conv(g: Graph) -> str:
    geom = g.record.args["geom"]
    return g.node("Conv", [g.value("x"), g.value("w"), g.value("b")], group=int(geom.groups), **_window(g, geom))


@converts("ConvTranspose")
def _conv_transpose(g: Graph) -> str:
    """The adjoint of a convolution of geometry ``geom``: ONNX's pads and output_padding that give its input size."""
    geom = g.record.args["geom"]
    covered = [(o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(geom.out, geom.stride, geom.dilation, geom.kernel)]
    pads_end, extra = [], []
    for c, n, lo, hi in zip(covered, geom.size, geom.lo, geom.hi):
        rest = c - lo - n  # what ONNX must cut at the end (negative: zeros it must add)
        pads_end.append(max(rest, 0))
        extra.append(max(-rest, 0))
    return g.node("ConvTranspose", [g.value("y"), g.value("w"), g.value("b")], group=int(geom.groups),
                  kernel_shape=list(geom.kernel), strides=list(geom.stride), dilations=list(geom.dilation),
                  pads=[*geom.lo, *pads_end], output_padding=extra)


@converts("MaxPool")
def _max_pool(g: Graph) -> str:
    return g.node("MaxPool", [g.value("x")], **_window(g, g.record.args["geom"]))


@converts("AvgPool")
def _avg_pool(g: Graph) -> str:
    """Window sums (AveragePool counting the padding, times the window size) over nerve's divisor."""
    geom, divisor = g.record.args["geom"], g.record.args["divisor"]
    attrs = _window(g, geom)
    if set(attrs.pop("dilations")) != {1}:
        raise ExportError(f"nerve.onnx.export: {g.where()} with dilation {geom.dilation}; not exported")
    y = g.node("AveragePool", [g.value("x")], count_include_pad=1, **attrs)
    size = math.prod(geom.kernel)
    if numpy.ndim(divisor) == 0 and float(divisor) == size:
        return y
    # NOTE: nerve's divisor array is channels-last, (*out, 1); ONNX's output is (N, C, *out)
    factor = size / numpy.asarray(divisor.data if isinstance(divisor, Tensor) else divisor, dtype=numpy.float64)
    factor = factor.reshape(tuple(geom.out))
    return g.node("Mul", [y, g.const(factor.astype(g.out_dtype()), "divisor")])


@converts("Normalize")
def _normalize(g: Graph) -> str:
    """LayerNormalization over trailing dims with matching affine, else mean/variance from primitives."""
    args = g.record.args
    x_shape, n = g.shape("x"), len(g.shape("x"))
    dims = sorted(int(d) % n for d in args["dims"])
    w, b = args["weight"], args["bias"]
    trailing = dims == list(range(dims[0], n))
    affine_ok = all(t is None or tuple(t.shape) == tuple(x_shape[dims[0]:]) for t in (w, b))
    if args.get("stats") is None and trailing and affine_ok and w is not None:
        return g.node("LayerNormalization", [g.value("x"), g.value("weight"), g.value("bias")], axis=dims[0],
                      epsilon=float(args["eps"]))
    x = g.value("x")
    dtype = g.out_dtype()
    if args.get("stats") is not None:
        mean, var = (g.const(numpy.asarray(s, dtype), "stat") for s in args["stats"])
    else:
        mean = g.reduce("ReduceMean", x, dims, True)
    centred = g.node("Sub", [x, mean])
    if args.get("stats") is None:
        var = g.reduce("ReduceMean", g.node("Mul", [centred, centred]), dims, True)
    std = g.node("Sqrt", [g.node("Add", [var, g.const(numpy.asarray(args["eps"], dtype))])])
    out = g.node("Div", [centred, std])
    if w is not None:
        out = g.node("Mul", [out, g.value("weight")])
    return out if b is None else g.node("Add", [out, g.value("bias")])


@converts("Embedding")
def _embedding(g: Graph) -> str:
    idx = g.value("indices")
    if numpy.dtype(g.record.args["indices"].dtype) not in (numpy.int64, numpy.int32):
        idx = g.cast(idx, numpy.int64)
    return g.node("Gather", [g.value("weight"), idx], axis=0)


def _attention(g: Graph, q: str, k: str, v: str, rank: int, bias: str | None) -> str:
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    scores = g.node("MatMul", [q, g.node("Transpose", [k], perm=perm)])
    scores = g.node("Mul", [scores, g.const(numpy.asarray(g.record.args["scale"], g.out_dtype()), "scale")])
    if bias is not None:
        scores = g.node("Add", [scores, bias])
    return g.node("MatMul", [g.node("Softmax", [scores], axis=-1), v])


def _no_dropout(g: Graph) -> None:
    if g.record.args["dropout_p"] > 0:
        raise ExportError(f"nerve.onnx.export: {g.where()} drops attention weights (dropout_p="
                          f"{g.record.args['dropout_p']}); export in eval mode with dropout_p=0")


@converts("ScaledDotProductAttention")
def _sdpa(g: Graph) -> str:
    _no_dropout(g)
    return _attention(g, g.value("q"), g.value("k"), g.value("v"), len(g.shape("k")), g.value("bias"))


@converts("PackedSelfAttention")
def _packed(g: Graph) -> str:
    """qkv (B, T, 3E) -> heads (3, B, H, T, D) by Reshape/Transpose/Gather; heads merged back to (B, T, E)."""
    _no_dropout(g)
    args = g.record.args
    heads, batch_first = int(args["num_heads"]), bool(args["batch_first"])
    e = g.shape("qkv")[-1] // 3
    parts = g.node("Reshape", [g.value("qkv"), g.ints([0, 0, 3, heads, e // heads], "shape")])
    parts = g.node("Transpose", [parts], perm=[2, 0, 3, 1, 4] if batch_first else [2, 1, 3, 0, 4])
    q, k, v = (g.node("Gather", [parts, g.const(numpy.asarray(i, numpy.int64), "index")], axis=0) for i in range(3))
    out = _attention(g, q, k, v, 4, g.value("bias"))
    out = g.node("Transpose", [out], perm=[0, 2, 1, 3] if batch_first else [2, 0, 1, 3])
    return g.node("Reshape", [out, g.ints([0, 0, e], "shape")])


# --- the fused recurrent layer ---------------------------------------------------------------------------
#: nerve's (PyTorch's) gate blocks in ONNX's order: LSTM i f g o -> i o f c; GRU r z n -> z r h
_GATES = {"lstm": ("LSTM", [0, 3, 1, 2]), "gru": ("GRU", [1, 0, 2]), "rnn_tanh": ("RNN", [0]), "rnn_relu": ("RNN", [0])}


def _reorder(a, blocks: list, hidden: int):
    return numpy.concatenate([a[i * hidden:(i + 1) * hidden] for i in blocks])


def _param(g: Graph, key: str):
    obj = g.record.args[key]
    if obj is None:
        return None
    if g.is_dynamic(obj):
        raise ExportError(f"nerve.onnx.export: {g.where()} has a {key} computed from the input; exported "
                          "recurrent weights are constants")
    return numpy.asarray(obj.data if isinstance(obj, Tensor) else obj)


def _state(g: Graph, key: str) -> str | None:
    """An initial state as ONNX's (1, B, H); None for zeros (ONNX's default)."""
    obj = g.record.args[key]
    if obj is None or (not g.is_dynamic(obj) and not numpy.any(obj.data if isinstance(obj, Tensor) else obj)):
        return None
    return g.unsqueeze(g.value(key), [0])


@converts("RecurrentLayer")
def _recurrent(g: Graph) -> None:
    args = g.record.args
    mode = args["mode"]
    if args["mask"] is not None:
        raise ExportError(f"nerve.onnx.export: {g.where()} has a padding mask (lengths); not exported")
    op_type, blocks = _GATES[mode]
    w_ih, w_hh, b_ih, b_hh = (_param(g, k) for k in ("w_ih", "w_hh", "b_ih", "b_hh"))
    hidden = w_hh.shape[1]
    w = g.const(_reorder(w_ih, blocks, hidden)[None], "W")
    r = g.const(_reorder(w_hh, blocks, hidden)[None], "R")
    b = None
    if b_ih is not None:
        b = g.const(numpy.concatenate([_reorder(b_ih, blocks, hidden), _reorder(b_hh, blocks, hidden)])[None], "B")
    x = g.value("x")
    batch_first = bool(args["batch_first"])
    if batch_first:
        x = g.node("Transpose", [x], perm=[1, 0, 2])
    attrs = {"hidden_size": int(hidden), "direction": "reverse" if args["reverse"] else "forward"}
    if op_type == "GRU":
        attrs["linear_before_reset"] = 1
    if mode.startswith("rnn"):
        attrs["activations"] = ["Relu" if mode == "rnn_relu" else "Tanh"]
    inputs = [x, w, r, b, None, _state(g, "h0")]
    if op_type == "LSTM":
        inputs.append(_state(g, "c0"))
    outs = g.node(op_type, inputs, 3 if op_type == "LSTM" else 2, **attrs)
    y = g.squeeze(outs[0], [1])
    if batch_first:
        y = g.node("Transpose", [y], perm=[1, 0, 2])
    shape = g.shape("x")
    n = shape[0] * shape[1] * hidden
    batch = shape[0] if batch_first else shape[1]
    parts = {0: y, n: g.squeeze(outs[1], [0])}
    if op_type == "LSTM":
        parts[n + batch * hidden] = g.squeeze(outs[2], [0])

    def pick(g: Graph, key) -> str:
        """nerve's layer slices its flat result into outputs, h_n, c_n: each slice is one of ONNX's outputs."""
        start = key.start if isinstance(key, slice) and key.start is not None else 0
        if not isinstance(key, slice) or start not in parts:
            raise ExportError(f"nerve.onnx.export: {g.where()} reads the recurrent layer's result at {key}")
        g.preshaped.add(id(g.record.out))
        return parts[start]

    g.special[id(g.record.out)] = pick
