"""Layer attribution with Captum's names: what a hidden layer holds (``LayerActivation``), how much each of its
units carries to the target (``LayerConductance``, ``LayerIntegratedGradients``), where a convolutional layer
looks (``LayerGradCam``), and pixel-sharp class maps (``GuidedBackprop``, ``GuidedGradCam``).

``layer`` is any submodule of the model (or its dotted name); the layer is reached through forward hooks, so
any model built from Modules works (MLP, CNN, RNN, transformer).
"""
from __future__ import annotations

from contextlib import contextmanager

from nerve import functional as F
from nerve.autograd.engine import grad as autograd_grad
from nerve.autograd.function import Function
from nerve.autograd.grad_mode import enable_grad, no_grad
from nerve.backend import xp
from nerve.explain._common import (
    as_inputs, as_output, baselines_for, eval_mode, expand_target, extra_args, find_layer, frozen, gradients,
    model_dtype, repeat_args, select_target,
)
from nerve.explain.attribution import Attribution, approximation_parameters, convergence_delta
from nerve.nn.activation import ReLU
from nerve.tensor import Tensor

__all__ = ["GuidedBackprop", "GuidedGradCam", "LayerActivation", "LayerAttribution", "LayerConductance",
           "LayerGradCam", "LayerIntegratedGradients"]


@contextmanager
def _capture(layer, to_input: bool, replace=None):
    """Record the layer's output (or first input) Tensors of each forward; ``replace`` swaps its output."""
    seen = []

    def hook(module, args, out):
        if replace is not None:
            seen.append(replace)
            return replace
        value = args[0] if to_input else out
        if not to_input and isinstance(out, Tensor) and not out.requires_grad:
            # NOTE: with the parameters frozen, a layer fed by integer inputs (an embedding) starts the graph
            value = Tensor(out.data, requires_grad=True)
            seen.append(value)
            return value
        seen.append(value)
        return None
    handle = layer.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def _one(seen: list, who: str):
    if not seen:
        raise ValueError(f"{who}: the layer did not run during the forward pass")
    value = seen[-1]
    if isinstance(value, tuple):  # recurrent layers return (output, state)
        value = value[0]
    if not isinstance(value, Tensor):
        raise TypeError(f"{who}: the layer gave a {type(value).__name__}, not a Tensor")
    return value


class LayerAttribution(Attribution):
    """Base of the layer methods: the model and one of its layers."""

    def __init__(self, forward_func, layer) -> None:
        super().__init__(forward_func)
        self.layer = find_layer(forward_func, layer, type(self).__name__)

    @staticmethod
    def interpolate(layer_attribution, interpolate_dims: tuple, interpolate_mode: str = "nearest") -> Tensor:
        """Resize (N, C, *S) layer attributions to the spatial size ``interpolate_dims`` (e.g. the input's H, W)."""
        t = layer_attribution if isinstance(layer_attribution, Tensor) else Tensor(layer_attribution)
        with no_grad():
            return F.interpolate(t, size=tuple(interpolate_dims), mode=interpolate_mode)

    def _layer_values(self, arrays: tuple, target, args: tuple, to_input: bool, need_grad: bool = True):
        """(d target / d layer, the layer's values) for one batched forward and backward."""
        leaves = tuple(Tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays)
        with enable_grad(), frozen(self.forward_func), _capture(self.layer, to_input) as seen:
            out = self.forward_func(*leaves, *args)
            h = _one(seen, self.who)
            if not need_grad:
                return None, h.data
            picked = select_target(out, target, self.who)
            if not h.requires_grad:
                raise ValueError(f"{self.who}: the target does not depend on the layer's "
                                 f"{'input' if to_input else 'output'} through a graph")
            (g,) = autograd_grad(picked.sum(), [h], allow_unused=True)
        return (xp.zeros_like(h.data) if g is None else g.data), h.data

    def _arrays(self, inputs):
        arrays, _ = as_inputs(inputs, model_dtype(self.forward_func), self.who) if not _is_int(inputs) else \
            ((_raw(inputs),), False)
        return arrays


def _is_int(inputs) -> bool:
    raw = _raw(inputs[0] if isinstance(inputs, tuple) else inputs)
    return getattr(raw, "dtype", None) is not None and raw.dtype.kind in "iub"


def _raw(x):
    return x.data if isinstance(x, Tensor) else xp.asarray(x)


class LayerActivation(LayerAttribution):
    """The layer's output (or input) for the inputs: what the layer holds, no gradient."""

    def attribute(self, inputs, additional_forward_args=None, attribute_to_layer_input: bool = False) -> Tensor:
        """The layer's values, (N, ...)."""
        arrays = self._arrays(inputs)
        with eval_mode(self.forward_func, self.who), no_grad(), _capture(self.layer, attribute_to_layer_input) \
                as seen:
            self.forward_func(*[Tensor(a) for a in arrays], *extra_args(additional_forward_args))
            return Tensor(_one(seen, self.who).data)


class LayerGradCam(LayerAttribution):
    """Grad-CAM (Selvaraju et al. 2017): the layer's channels weighted by their spatially averaged gradients and
    summed, (N, 1, *S). As Captum, ``relu_attributions=False`` by default (the paper applies a ReLU: pass True)."""

    def attribute(self, inputs, target=None, additional_forward_args=None, attribute_to_layer_input: bool = False,
                  relu_attributions: bool = False, attr_dim_summation: bool = True) -> Tensor:
        """sum_c mean_S(dF/dA_c) * A_c (per channel without ``attr_dim_summation``)."""
        arrays = self._arrays(inputs)
        with eval_mode(self.forward_func, self.who):
            g, a = self._layer_values(arrays, target, extra_args(additional_forward_args), attribute_to_layer_input)
        weights = g.mean(axis=tuple(range(2, g.ndim)), keepdims=True) if g.ndim > 2 else g
        cam = (weights * a).sum(axis=1, keepdims=True) if attr_dim_summation else weights * a
        return Tensor(xp.maximum(cam, 0) if relu_attributions else cam)


class _GuidedReLU(Function):
    """ReLU whose backward passes only positive gradients where the input was positive (guided backprop)."""

    def forward(self, a):
        return xp.maximum(a, 0)

    def backward(self, g, m):  # guided: g where a > 0 and g > 0, else 0
        (a,) = m.inputs(self)
        return g * ((a > 0) & (g > 0))


@contextmanager
def _guided(model):
    handles = [m.register_forward_hook(lambda module, args, out: _GuidedReLU.apply(args[0]))
               for m in model.modules() if isinstance(m, ReLU)]
    try:
        yield len(handles)
    finally:
        for h in handles:
            h.remove()


class GuidedBackprop(Attribution):
    """Guided backpropagation (Springenberg et al. 2015): the input gradient with every ``nn.ReLU`` module passing
    back only positive gradients (ReLUs called as functions inside a forward are not changed, as in Captum)."""

    def attribute(self, inputs, target=None, additional_forward_args=None):
        """The guided gradient, the input's shape."""
        arrays, is_tuple = as_inputs(inputs, model_dtype(self.forward_func), self.who)
        with eval_mode(self.forward_func, self.who), _guided(self.forward_func):
            grads, _ = gradients(self.forward_func, arrays, target, extra_args(additional_forward_args), self.who)
        return as_output(grads, is_tuple)


class GuidedGradCam(LayerAttribution):
    """Guided Grad-CAM: guided backprop times Grad-CAM (with its ReLU) upsampled to the input's spatial size."""

    def attribute(self, inputs, target=None, additional_forward_args=None, interpolate_mode: str = "nearest",
                  attribute_to_layer_input: bool = False) -> Tensor:
        """GuidedBackprop(x) * upsample(relu(Grad-CAM)), broadcast over the input's channels."""
        cam = LayerGradCam(self.forward_func, self.layer).attribute(
            inputs, target, additional_forward_args, attribute_to_layer_input, relu_attributions=True)
        guided = GuidedBackprop(self.forward_func).attribute(inputs, target, additional_forward_args)
        if guided.ndim < 3:
            raise ValueError(f"{self.who}: needs inputs with spatial dimensions (N, C, ...), got {tuple(guided.shape)}")
        up = self.interpolate(cam, guided.shape[2:], interpolate_mode)
        return Tensor(guided.data * up.data)


class LayerConductance(LayerAttribution):
    """Conductance of the layer's units (Dhamdhere et al. 2018): along the path from the baseline, the change of
    each unit times the target's gradient with respect to it, summed. As Captum: the path takes ``n_steps + 1``
    points of ``method`` (its alphas only, no step weights) and sums ∂F/∂h(x_k) · (h(x_{k+1}) - h(x_k))."""

    def has_convergence_delta(self) -> bool:
        return True

    def attribute(self, inputs, baselines=None, target=None, additional_forward_args=None, n_steps: int = 50,
                  method: str = "gausslegendre", internal_batch_size: int | None = None,
                  return_convergence_delta: bool = False, attribute_to_layer_input: bool = False):
        """Conductance per unit, the layer's shape (N, ...); with ``return_convergence_delta`` also
        sum(conductance) - (F(x) - F(x')) per example."""
        arrays, _ = as_inputs(inputs, model_dtype(self.forward_func), self.who)
        bases = baselines_for(arrays, baselines, self.who)
        args = extra_args(additional_forward_args)
        if not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"{self.who}: n_steps must be a positive int, got {n_steps!r}")
        alphas = approximation_parameters(method)[1](n_steps + 1)
        n = arrays[0].shape[0]
        per_chunk = len(alphas) if internal_batch_size is None else max(2, internal_batch_size // n)
        grads, evals = [], []
        with eval_mode(self.forward_func, self.who):
            for start in range(0, len(alphas), per_chunk):
                alpha = alphas[start:start + per_chunk]
                k = len(alpha)
                scaled = tuple((b[None] + xp.asarray(alpha, dtype=a.dtype).reshape((k,) + (1,) * a.ndim)
                                * (a - b)[None]).reshape((k * n,) + a.shape[1:]) for a, b in zip(arrays, bases))
                g, h = self._layer_values(scaled, expand_target(target, k), repeat_args(args, k),
                                          attribute_to_layer_input)
                grads.append(g.reshape((k, n) + g.shape[1:]))
                evals.append(h.reshape((k, n) + h.shape[1:]))
            g, h = xp.concatenate(grads), xp.concatenate(evals)
            conductance = (g[:-1] * (h[1:] - h[:-1])).sum(axis=0)
            if not return_convergence_delta:
                return Tensor(conductance)
            delta = convergence_delta(self.forward_func, [conductance], bases, arrays, target, args, self.who)
        return Tensor(conductance), Tensor(delta)


class LayerIntegratedGradients(LayerAttribution):
    """Integrated gradients of the layer's output (Captum's LayerIntegratedGradients): the path runs from the
    layer's values at the baseline inputs to those at the inputs, the layer's output being replaced by each
    point. Attributes token ids through their embedding layer (baselines: e.g. a padding token)."""

    def has_convergence_delta(self) -> bool:
        return True

    def attribute(self, inputs, baselines=None, target=None, additional_forward_args=None, n_steps: int = 50,
                  method: str = "gausslegendre", internal_batch_size: int | None = None,
                  return_convergence_delta: bool = False, attribute_to_layer_input: bool = False):
        """(h(x) - h(x')) * sum_k step_k * dF/dh at h(x') + alpha_k (h(x) - h(x')), the layer's shape."""
        if attribute_to_layer_input:
            raise ValueError(f"{self.who}: attribute_to_layer_input is not supported; attribute the previous layer")
        arrays = tuple(_raw(a) for a in (inputs if isinstance(inputs, tuple) else (inputs,)))
        if baselines is None:
            bases = tuple(xp.zeros_like(a) for a in arrays)
        elif _raw(baselines[0] if isinstance(baselines, tuple) else baselines).dtype.kind in "iub":
            bases = tuple(xp.broadcast_to(_raw(b), a.shape) for a, b in
                          zip(arrays, baselines if isinstance(baselines, tuple) else (baselines,)))
        else:
            bases = baselines_for(arrays, baselines, self.who)
        args = extra_args(additional_forward_args)
        step_sizes, alphas = approximation_parameters(method)
        steps, points = step_sizes(n_steps), alphas(n_steps)
        n = arrays[0].shape[0]
        per_chunk = n_steps if internal_batch_size is None else max(1, internal_batch_size // n)
        with eval_mode(self.forward_func, self.who):
            h_x = self._activation(arrays, args)
            h_b = self._activation(bases, args)
            total = xp.zeros_like(h_x)
            for start in range(0, n_steps, per_chunk):
                alpha, w = points[start:start + per_chunk], steps[start:start + per_chunk]
                k = len(alpha)
                shape = (k,) + (1,) * h_x.ndim
                scaled = (h_b[None] + xp.asarray(alpha, dtype=h_x.dtype).reshape(shape) * (h_x - h_b)[None])
                leaf = Tensor(scaled.reshape((k * n,) + h_x.shape[1:]), requires_grad=True)
                repeated = tuple(Tensor(xp.concatenate([a] * k)) for a in arrays)
                with enable_grad(), frozen(self.forward_func), _capture(self.layer, False, replace=leaf):
                    out = self.forward_func(*repeated, *repeat_args(args, k))
                    picked = select_target(out, expand_target(target, k), self.who)
                    (g,) = autograd_grad(picked.sum(), [leaf], allow_unused=True)
                if g is not None:
                    total += (g.data.reshape((k,) + h_x.shape) * xp.asarray(w, dtype=h_x.dtype).reshape(shape)).sum(0)
            attribution = total * (h_x - h_b)
            if not return_convergence_delta:
                return Tensor(attribution)
            delta = convergence_delta(self.forward_func, [attribution], bases, arrays, target, args, self.who)
        return Tensor(attribution), Tensor(delta)

    def _activation(self, arrays: tuple, args: tuple):
        with no_grad(), _capture(self.layer, False) as seen:
            self.forward_func(*[Tensor(a) for a in arrays], *args)
            return _one(seen, self.who).data
