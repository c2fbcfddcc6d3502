"""Feedback alignment (random, sign-symmetric or transposed feedback) and direct feedback alignment.

Both work through forward hooks, with no change to the model's ``forward``: while the rule is active, each
``Linear``/``Conv2d`` layer sees a detached copy of its input, and its output passes through a node whose
backward hands the output's gradient on unchanged (so the layer's own weights get their true local gradient
from it) and gives the layer's input the rule's stand-in for the gradient instead of Wᵀ·g.
"""
from __future__ import annotations

import math

from nerve import backend, ops
from nerve.autograd.function import Function
from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.nn import Conv2d, Linear, Module, init
from nerve.rules.base import Rule, named_layers
from nerve.tensor import Tensor

__all__ = ["FeedbackAlignment", "DirectFeedbackAlignment"]

_KINDS = (Linear, Conv2d)


class _Feedback(Function):
    """The identity on a layer's output that routes the rule's stand-in gradient to the layer's input."""

    uses_inputs = False
    once_differentiable = True

    def forward(self, out, x, route):
        self.route = route
        return out

    def backward(self, g, m):  # d out = g; d x = route(g): the rule's feedback in place of Wᵀ g
        return g, self.route(g) if self.needs_input_grad[1] else None, None


def _fan_in(weight: Tensor) -> int:
    return int(math.prod(weight.shape[1:]))


def _uniform(shape: tuple, bound: float, like: Tensor, generator) -> Tensor:
    """A fixed matrix drawn from U(-bound, bound) on the weight's device and dtype."""
    t = Tensor._make(xp.empty(shape, dtype=like.dtype), None)
    init.uniform_(t, -bound, bound, generator=generator)
    return t.to(like.device) if like.device != "cpu" else t


def _conv_geometry(name: str, layer: Conv2d, who: str) -> tuple:
    """(padding pair) for a convolution whose input gradient ``conv_transpose2d`` can give, else a clear error."""
    if layer.padding_mode != "zeros":
        raise ValueError(f"{who}: layer {name!r} ({layer!r}) uses padding_mode={layer.padding_mode!r}; the "
                         "feedback path supports zero padding only")
    if layer.padding == "valid":
        return (0, 0)
    if layer.padding == "same":
        total = [d * (k - 1) for k, d in zip(layer.kernel_size, layer.dilation)]
        if any(t % 2 for t in total):
            raise ValueError(f"{who}: layer {name!r} ({layer!r}) pads unevenly ('same' with an even kernel); "
                             "use explicit padding")
        return tuple(t // 2 for t in total)
    return tuple(layer.padding)


def _conv_input_grad(g, b: Tensor, layer: Conv2d, padding: tuple, in_shape: tuple):
    """The input gradient of ``layer``'s convolution with weight ``b`` for output gradient ``g`` (arrays)."""
    extra = tuple(size - ((o - 1) * s - 2 * p + d * (k - 1) + 1) for size, o, s, p, d, k in zip(
        in_shape[-2:], g.shape[-2:], layer.stride, padding, layer.dilation, layer.kernel_size))
    with no_grad():
        return ops.conv_transpose2d(Tensor._make(g, None), b, None, layer.stride, padding, extra, layer.groups,
                                    layer.dilation).data


class _HookedRule(Rule):
    """Shared machinery: detach each layer's input before forward, attach the feedback node after it."""

    def __init__(self, model: Module, layers, who: str) -> None:
        super().__init__(model)
        self.layers = named_layers(model, _KINDS, layers, who)
        if not self.layers:
            raise ValueError(f"{who}: the model has no Linear or Conv2d layer to train")
        self._by_name = dict(self.layers)
        self._padding = {}
        for name, layer in self.layers:
            if isinstance(layer, Conv2d):
                self._padding[name] = _conv_geometry(name, layer, who)
        self._inputs: dict[int, Tensor] = {}

    def _install(self) -> list:
        handles = []
        for index, (name, layer) in enumerate(self.layers):
            if index >= self._first:
                handles.append(layer.register_forward_pre_hook(self._detach_input))
                handles.append(layer.register_forward_hook(self._attach(index, name, layer)))
        return handles

    _first = 0  #: the first layer (in self.layers) whose input gets the rule's feedback

    def _detach_input(self, layer: Module, args: tuple):
        x = args[0]
        if isinstance(x, Tensor) and x.requires_grad:
            self._inputs[id(layer)] = x
            return (x.detach(), *args[1:])
        return None

    def _attach(self, index: int, name: str, layer: Module):
        def hook(module, args, out):
            x = self._inputs.pop(id(module), None)
            if x is None:
                return None  # an input that needs no gradient: backprop's own node serves
            return _Feedback.apply(out, x, self._route(index, name, layer, tuple(x.shape)))
        return hook

    def _route(self, index: int, name: str, layer: Module, in_shape: tuple):
        """The function from the layer output's gradient to the stand-in for its input's gradient (arrays)."""
        raise NotImplementedError


class FeedbackAlignment(_HookedRule):
    """Feedback alignment (Lillicrap et al. 2016): each layer sends its error back through a fixed matrix B.

    ``feedback``: "random" (B fixed, drawn like the layer's own initial weights, U(±1/√fan_in), times
    ``scale``), "sign" (sign symmetry, Liao et al. 2016: B = sign(W)·c with c = ``scale`` or, by default, the
    mean |W| at construction, so updates keep backprop's size) or "transpose" (B = W: exactly backprop, the
    check that the machinery is right). B has W's shape and stands where Wᵀ stands in backprop: the layer's
    input gets g·B (Linear) or the transposed convolution of g with B (Conv2d). Layers are trained in place:
    ``Linear`` and ``Conv2d``, in any container, with any activation, normalisation or residual path between.
    """

    def __init__(self, model: Module, feedback: str = "random", seed: int | None = None, scale: float | None = None,
                 layers=None) -> None:
        if feedback not in ("random", "sign", "transpose"):
            raise ValueError(f"FeedbackAlignment: feedback must be 'random', 'sign' or 'transpose', got {feedback!r}")
        super().__init__(model, layers, "FeedbackAlignment")
        self.feedback, self.seed, self.scale = feedback, seed, scale
        gen = backend.generator(seed, stream=0xFA)
        for name, layer in self.layers:
            w = layer.weight
            if feedback == "random":
                bound = (1.0 if scale is None else scale) / math.sqrt(_fan_in(w))
                self.buffers[f"B.{name}"] = _uniform(tuple(w.shape), bound, w, gen)
            elif feedback == "sign":
                c = float(xp.abs(w.data).mean()) if scale is None else float(scale)
                self.buffers[f"c.{name}"] = Tensor._make(xp.asarray(c, dtype=w.dtype), None)

    def feedback_matrix(self, name: str) -> Tensor:
        """The matrix that stands in for W in layer ``name``'s backward pass (now)."""
        layer = self._by_name[name]
        if self.feedback == "random":
            return self.buffers[f"B.{name}"]
        if self.feedback == "sign":
            return Tensor._make(xp.sign(layer.weight.data) * self.buffers[f"c.{name}"].data, None)
        return layer.weight.detach()

    def _route(self, index: int, name: str, layer: Module, in_shape: tuple):
        if isinstance(layer, Linear):
            def route(g):
                return g @ self.feedback_matrix(name).data
        else:
            padding = self._padding[name]

            def route(g):
                return _conv_input_grad(g, self.feedback_matrix(name), layer, padding, in_shape)
        return route

    def __repr__(self) -> str:
        return f"FeedbackAlignment(feedback={self.feedback!r}, layers={[n for n, _ in self.layers]})"


class DirectFeedbackAlignment(_HookedRule):
    """Direct feedback alignment (Nøkland 2016): the output error e goes straight to every hidden layer.

    e is the gradient of the loss at the last layer's output (for softmax cross-entropy, ŷ − y). The input
    of every layer after the first (the output of the hidden layer before it, whatever its shape) gets
    B_l·e instead of backprop's gradient, through its own fixed matrix B_l of shape (that layer's features,
    the output's features), drawn like the weight of a Linear from the output back to the layer,
    U(±1/√out_features), times ``scale``. The gradient then passes through the layer's local nonlinearity
    into its weights, as in the paper. Matrices for convolutional inputs are drawn at the first forward pass
    (their size is the feature map's), from the rule's seed, so the result does not depend on when.
    """

    def __init__(self, model: Module, seed: int | None = None, scale: float = 1.0, layers=None) -> None:
        super().__init__(model, layers, "DirectFeedbackAlignment")
        if len(self.layers) < 2:
            raise ValueError(f"DirectFeedbackAlignment: needs at least two Linear/Conv2d layers (hidden and output), "
                             f"the model has {[n for n, _ in self.layers]}")
        last_name, last = self.layers[-1]
        if not isinstance(last, Linear):
            raise ValueError(f"DirectFeedbackAlignment: the output layer {last_name!r} ({last!r}) must be a Linear "
                             "layer: its features are what the error is projected from")
        self.seed, self.scale = seed if seed is not None else int(backend.default_generator().integers(2**31)), scale
        self.out_features = last.out_features
        self._error = None
        for index, (name, layer) in enumerate(self.layers[1:], start=1):
            if isinstance(layer, Linear):
                self._matrix(index, name, layer.in_features, layer.weight)

    def _matrix(self, index: int, name: str, features: int, like: Tensor) -> Tensor:
        key = f"B.{name}"
        if key not in self.buffers:
            gen = backend.generator(self.seed, stream=0xDFA + index)
            self.buffers[key] = _uniform((features, self.out_features), self.scale / math.sqrt(self.out_features),
                                         like, gen)
        b = self.buffers[key]
        if b.shape[0] != features:
            raise ValueError(f"DirectFeedbackAlignment: layer {name!r} gets {features} input features but its "
                             f"feedback matrix has {b.shape[0]} rows")
        return b

    _first = 1  # the first layer's input is the data

    def _route(self, index: int, name: str, layer: Module, in_shape: tuple):
        last = index == len(self.layers) - 1
        b = self._matrix(index, name, int(math.prod(in_shape[1:])), layer.weight)

        def route(g):
            if last:
                if g.ndim != 2:
                    raise ValueError(f"DirectFeedbackAlignment: the output must be (batch, features), got "
                                     f"{tuple(g.shape)}")
                self._error = g
            e = self._error
            if e is None or e.shape[0] != in_shape[0]:
                raise RuntimeError(f"DirectFeedbackAlignment: layer {name!r} needs the output error of this batch; "
                                   "run backward from a loss of the model's output")
            return (e @ b.data.T).reshape(in_shape)
        return route

    def __repr__(self) -> str:
        return f"DirectFeedbackAlignment(seed={self.seed}, layers={[n for n, _ in self.layers]})"
