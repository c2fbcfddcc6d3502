"""Converters of nerve's elementwise, activation, linear-algebra, shape, index and reduction primitives.

Each converter reads its record through the ``Graph`` (``g.value`` for array arguments, ``g.option`` for
the rest) and returns the ONNX name of the op's output.
"""
from __future__ import annotations

import math

import numpy

from nerve.onnx.graph import INT_MAX, ExportError, Graph

__all__ = ["CONVERTERS"]

CONVERTERS: dict = {}


def converts(*names: str):
    def register(fn):
        for name in names:
            CONVERTERS[name] = fn
        return fn
    return register


def _unary(onnx_op: str):
    return lambda g: g.node(onnx_op, [g.value("a")])


def _binary(onnx_op: str):
    return lambda g: g.node(onnx_op, [g.value("a"), g.value("b")])


for _nerve, _onnx in (("Neg", "Neg"), ("Exp", "Exp"), ("Log", "Log"), ("Sqrt", "Sqrt"), ("Abs", "Abs"),
                      ("Sign", "Sign"), ("Sin", "Sin"), ("Cos", "Cos"), ("Tanh", "Tanh"), ("Sigmoid", "Sigmoid"),
                      ("Erf", "Erf"), ("ReLU", "Relu"), ("Clone", "Identity")):
    CONVERTERS[_nerve] = _unary(_onnx)
for _nerve, _onnx in (("Add", "Add"), ("Sub", "Sub"), ("Mul", "Mul"), ("Div", "Div"), ("Pow", "Pow")):
    CONVERTERS[_nerve] = _binary(_onnx)


@converts("Rsqrt")
def _rsqrt(g: Graph) -> str:
    return g.node("Reciprocal", [g.node("Sqrt", [g.value("a")])])


@converts("Log1p")
def _log1p(g: Graph) -> str:
    return g.node("Log", [g.node("Add", [g.value("a"), g.const(numpy.ones((), g.out_dtype()))])])


@converts("Expm1")
def _expm1(g: Graph) -> str:
    return g.node("Sub", [g.node("Exp", [g.value("a")]), g.const(numpy.ones((), g.out_dtype()))])


@converts("PowScalar")
def _pow_scalar(g: Graph) -> str:
    return g.node("Pow", [g.value("a"), g.value("p")])


@converts("Extremum")
def _extremum(g: Graph) -> str:
    return g.node("Max" if g.record.args["greater"] else "Min", [g.value("a"), g.value("b")])


@converts("Clamp")
def _clamp(g: Graph) -> str:
    return g.node("Clip", [g.value("a"), g.value("lo"), g.value("hi")])


@converts("Where")
def _where(g: Graph) -> str:
    return g.node("Where", [g.value("cond", dtype=bool), g.value("a"), g.value("b")])


_COMPARISONS = {"less": "Less", "less_equal": "LessOrEqual", "greater": "Greater", "greater_equal": "GreaterOrEqual",
                "equal": "Equal", "bitwise_and": "And", "bitwise_or": "Or", "bitwise_xor": "Xor"}


@converts("Compare")
def _compare(g: Graph) -> str:
    """Tensor's comparison operators (traced separately: they are not Functions)."""
    fn = getattr(g.record.args["fn"], "__name__", str(g.record.args["fn"]))
    a = g.record.args["a"]
    dtype = numpy.dtype((a.data if hasattr(a, "data") else numpy.asarray(a)).dtype)
    if fn == "not_equal":
        return g.node("Not", [g.node("Equal", [g.value("a", dtype=dtype), g.value("b", dtype=dtype)])])
    if fn not in _COMPARISONS or (fn.startswith("bitwise") and dtype != numpy.bool_):
        raise ExportError(f"nerve.onnx.export: {g.where()} uses {fn} on {dtype}; not exported")
    return g.node(_COMPARISONS[fn], [g.value("a", dtype=dtype), g.value("b", dtype=dtype)])


@converts("Cast")
def _cast(g: Graph) -> str:
    return g.cast(g.value("a"), g.out_dtype())


@converts("LeakyReLU")
def _leaky_relu(g: Graph) -> str:
    return g.node("LeakyRelu", [g.value("a")], alpha=float(g.record.args["negative_slope"]))


@converts("ELU")
def _elu(g: Graph) -> str:
    return g.node("Elu", [g.value("a")], alpha=float(g.record.args["alpha"]))


@converts("SiLU")
def _silu(g: Graph) -> str:
    a = g.value("a")
    return g.node("Mul", [a, g.node("Sigmoid", [a])])


@converts("Softplus")
def _softplus(g: Graph) -> str:
    """log(1 + exp(beta x)) / beta (nerve's linear tail above ``threshold`` agrees to rounding)."""
    a, beta = g.value("a"), float(g.record.args["beta"])
    if beta == 1.0:
        return g.node("Softplus", [a])
    scaled = g.node("Mul", [a, g.const(numpy.asarray(beta, g.out_dtype()))])
    return g.node("Div", [g.node("Softplus", [scaled]), g.const(numpy.asarray(beta, g.out_dtype()))])


def gelu(g: Graph, x: str, approximate: str) -> str:
    """GELU from primitives (ONNX's own Gelu needs opset 20): exact with Erf, or the tanh form."""
    dtype = g.out_dtype()

    def c(v):
        return g.const(numpy.asarray(v, dtype))
    if approximate == "tanh":
        cube = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Mul", [g.node("Add", [x, g.node("Mul", [cube, c(0.044715)])]), c(math.sqrt(2 / math.pi))])
        gate = g.node("Add", [g.node("Tanh", [inner]), c(1.0)])
    else:
        gate = g.node("Add", [g.node("Erf", [g.node("Mul", [x, c(1 / math.sqrt(2))])]), c(1.0)])
    return g.node("Mul", [g.node("Mul", [x, gate]), c(0.5)])


@converts("GELU")
def _gelu(g: Graph) -> str:
    return gelu(g, g.value("a"), g.record.args["approximate"])


# --- linear algebra ---------------------------------------------------------------------------------------
@converts("MatMul")
def _matmul(g: Graph) -> str:
    return g.node("MatMul", [g.value("a"), g.value("b")])


def linear(g: Graph) -> str:
    x, w, b = g.value("x"), g.value("weight"), g.value("bias")
    if len(g.shape("x")) == 2:
        return g.node("Gemm", [x, w, b], transB=1)
    y = g.node("MatMul", [x, g.node("Transpose", [w], perm=[1, 0])])
    return y if b is None else g.node("Add", [y, b])


CONVERTERS["Linear"] = linear


@converts("LinearGELU")
def _linear_gelu(g: Graph) -> str:
    return gelu(g, linear(g), "none")


@converts("Einsum")
def _einsum(g: Graph) -> str:
    args = g.record.args
    equation = f"{','.join(args['subs'])}->{args['out']}" if not isinstance(args["subs"], str) else args["subs"]
    return g.node("Einsum", [g.value("arrays", i) for i in range(len(args["arrays"]))], equation=equation)


# --- shapes ----------------------------------------------------------------------------------------------
@converts("Reshape")
def _reshape(g: Graph) -> str:
    a = g.value("a")
    if id(g.record.args["a"]) in g.preshaped:
        return a
    return g.node("Reshape", [a, g.ints(g.dynamic_shape(), "shape")])


@converts("Permute")
def _permute(g: Graph) -> str:
    dims = g.record.args["dims"]
    n = len(g.shape("a"))
    return g.node("Transpose", [g.value("a")], perm=[int(d) % n for d in dims])


@converts("Concat")
def _concat(g: Graph) -> str:
    arrays = g.record.args["arrays"]
    n = len(g.shape())
    return g.node("Concat", [g.value("arrays", i) for i in range(len(arrays))], axis=int(g.record.args["axis"]) % n)


@converts("Stack")
def _stack(g: Graph) -> str:
    arrays = g.record.args["arrays"]
    axis = int(g.record.args["axis"]) % len(g.shape())
    return g.node("Concat", [g.unsqueeze(g.value("arrays", i), [axis]) for i in range(len(arrays))], axis=axis)


@converts("Expand")
def _expand(g: Graph) -> str:
    """A dimension that changes between the traces is kept from the input (1 in ONNX's broadcasting shape)."""
    src, out = g.shape("a"), g.shape()
    target = list(out)
    twin = tuple(g.twin.out.shape)
    for i, (x, y) in enumerate(zip(out, twin)):
        j = i - (len(out) - len(src))
        if x != y:
            if j < 0 or src[j] != x:
                raise ExportError(f"nerve.onnx.export: {g.where()} broadcasts to a size that changes with the "
                                  f"input's dynamic axes ({out} vs {twin})")
            target[i] = 1
    return g.node("Expand", [g.value("a"), g.ints(target, "shape")])


@converts("Pad")
def _pad(g: Graph) -> str:
    widths = g.record.args["widths"]
    lo, hi = [int(w[0]) for w in widths], [int(w[1]) for w in widths]
    if min(lo + hi) < 0:
        raise ExportError(f"nerve.onnx.export: {g.where()} crops (negative padding {widths}); not exported")
    value = g.const(numpy.asarray(g.record.args["value"] or 0, g.out_dtype()))
    return g.node("Pad", [g.value("a"), g.ints(lo + hi, "pads"), value], mode="constant")


@converts("Flip")
def _flip(g: Graph) -> str:
    dims = [int(d) % len(g.shape("a")) for d in g.record.args["dims"]]
    return g.slice(g.value("a"), [-1] * len(dims), [-INT_MAX] * len(dims), dims, [-1] * len(dims))


@converts("Repeat")
def _repeat(g: Graph) -> str:
    reps = [int(r) for r in g.record.args["reps"]]
    a = g.value("a")
    extra = len(reps) - len(g.shape("a"))
    if extra > 0:
        a = g.unsqueeze(a, list(range(extra)))
    return g.node("Tile", [a, g.ints(reps, "repeats")])


# --- indexing ----------------------------------------------------------------------------------------
@converts("GetItem")
def _getitem(g: Graph) -> str:
    a_obj, key = g.record.args["a"], g.record.args["key"]
    if id(a_obj) in g.special:
        return g.special[id(a_obj)](g, key)
    key1 = key if isinstance(key, tuple) else (key,)
    key2 = g.twin.args["key"] if isinstance(g.twin.args["key"], tuple) else (g.twin.args["key"],)
    if len(key1) != len(key2) or not all(_key_equal(x, y) for x, y in zip(key1, key2)):
        raise ExportError(f"nerve.onnx.export: {g.where()} indexes with {key1}, which changes with the input's "
                          f"dynamic axes ({key2} in the second trace)")
    ndim = len(g.shape("a"))
    if any(k is Ellipsis for k in key1):
        at = key1.index(Ellipsis)
        fill = ndim - sum(1 for k in key1 if k is not None and k is not Ellipsis)
        key1 = key1[:at] + (slice(None),) * fill + key1[at + 1:]
    name = g.value("a")
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    axis = out_axis = 0
    gathers = []
    for k in key1:
        if k is None:
            unsqueeze.append(out_axis)
            out_axis += 1
        elif isinstance(k, slice):
            step = 1 if k.step is None else int(k.step)
            if (k.start, k.stop, k.step) != (None, None, None):
                starts.append((0 if step > 0 else -1) if k.start is None else int(k.start))
                ends.append((INT_MAX if step > 0 else -INT_MAX) if k.stop is None else int(k.stop))
                axes.append(axis)
                steps.append(step)
            axis += 1
            out_axis += 1
        elif isinstance(k, (int, numpy.integer)):
            starts.append(int(k))
            ends.append(INT_MAX if int(k) == -1 else int(k) + 1)
            axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
            axis += 1
        elif hasattr(k, "dtype") and k.dtype.kind in "iu" and not gathers:
            gathers.append((axis, k))
            axis += 1
            out_axis += k.ndim
        else:
            raise ExportError(f"nerve.onnx.export: {g.where()} indexes with {type(k).__name__} "
                              f"{getattr(k, 'dtype', '')}; exported are slices, ints, None and one integer array")
    if axes:
        name = g.slice(name, starts, ends, axes, steps)
    for axis, idx in gathers:
        name = g.node("Gather", [name, g.const(numpy.asarray(idx, numpy.int64), "indices")], axis=axis)
    if squeeze:
        if gathers:
            raise ExportError(f"nerve.onnx.export: {g.where()} mixes integer and array indices")
        name = g.squeeze(name, squeeze)
    if unsqueeze:
        name = g.unsqueeze(name, unsqueeze)
    return name


def _key_equal(a, b) -> bool:
    if isinstance(a, slice) and isinstance(b, slice):
        return (a.start, a.stop, a.step) == (b.start, b.stop, b.step)
    if hasattr(a, "shape") or hasattr(b, "shape"):
        return hasattr(a, "shape") and hasattr(b, "shape") and numpy.array_equal(a, b)
    return a == b or (a is None and b is None)


# --- reductions ------------------------------------------------------------------------------------
def _axes(g: Graph, key: str = "axes"):
    axes = g.record.args[key]
    n = len(g.shape("a"))
    if axes is None:
        return None
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    return sorted(int(a) % n for a in axes)


def _reduction(onnx_op: str):
    return lambda g: g.reduce(onnx_op, g.value("a"), _axes(g), bool(g.record.args["keepdim"]))


CONVERTERS["Sum"] = _reduction("ReduceSum")
CONVERTERS["LogSumExp"] = _reduction("ReduceLogSumExp")
CONVERTERS["Prod"] = _reduction("ReduceProd")


@converts("Extreme")
def _extreme(g: Graph) -> str:
    return g.reduce("ReduceMax" if g.record.args["largest"] else "ReduceMin", g.value("a"), _axes(g),
                    bool(g.record.args["keepdim"]))


@converts("Var")
def _var(g: Graph) -> str:
    """sum((a - mean)^2) / (n - correction), n the count over the reduced axes (fixed by the traces)."""
    axes = _axes(g)
    shape1, shape2 = g.shape("a"), tuple(g.twin.args["a"].shape)
    picked = range(len(shape1)) if axes is None else axes
    n1, n2 = math.prod(shape1[i] for i in picked), math.prod(shape2[i] for i in picked)
    if n1 != n2:
        raise ExportError(f"nerve.onnx.export: {g.where()} reduces over a dynamic axis; not exported")
    a = g.value("a")
    centred = g.node("Sub", [a, g.reduce("ReduceMean", a, axes, True)])
    total = g.reduce("ReduceSum", g.node("Mul", [centred, centred]), axes, bool(g.record.args["keepdim"]))
    return g.node("Div", [total, g.const(numpy.asarray(n1 - g.record.args["correction"], g.out_dtype()))])


@converts("Softmax", "LogSoftmax")
def _softmax(g: Graph) -> str:
    axes = _axes(g)
    if axes is None or len(axes) != 1:
        raise ExportError(f"nerve.onnx.export: {g.where()} over axes {g.record.args['axes']}; exported over one axis")
    return g.node(g.record.op.__name__, [g.value("a")], axis=axes[0])


@converts("Cumsum")
def _cumsum(g: Graph) -> str:
    return g.node("CumSum", [g.value("a"), g.const(numpy.asarray(int(g.record.args["axis"]), numpy.int64))])


@converts("Norm")
def _norm(g: Graph) -> str:
    p = g.record.args["p"]
    if p not in (1, 2):
        raise ExportError(f"nerve.onnx.export: {g.where()} with p={p}; exported are p=1 and p=2")
    return g.reduce("ReduceL1" if p == 1 else "ReduceL2", g.value("a"), _axes(g), bool(g.record.args["keepdim"]))
