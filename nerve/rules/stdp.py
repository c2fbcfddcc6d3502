"""Spike-timing-dependent plasticity: pair-based STDP with pre- and post-synaptic traces (Bi & Poo 1998; the
trace form of Morrison et al. 2008, as BindsNET's PostPre and Diehl & Cook 2015 use it).

For a bias-free Linear layer W (post, pre) followed by a spiking neuron, over the steps of one presentation:
    x_pre[t] = x_pre[t−1] e^{−1/τ_pre} + s_pre[t],   x_post[t] = x_post[t−1] e^{−1/τ_post} + s_post[t]
    ΔW = Σ_t A₊ s_post[t] x_pre[t]ᵀ − A₋ x_post[t] s_pre[t]ᵀ
(traces updated with the step's spikes first, so a simultaneous pair adds A₊ − A₋). With all-to-all traces
this is the sum over every spike pair of A₊ e^{−Δt/τ_pre} (post after pre) and −A₋ e^{−Δt/τ_post} (pre after
post); ``trace="nearest"`` sets a trace to 1 at a spike instead of adding 1. ``soft_bounds`` multiplies
potentiation by (w_max − W) and depression by (W − w_min).

``rule.step(x)`` runs the model on x (one call of the neuron is one step; the layer runs once per step, or once
on every step's input (steps, batch, in)) and writes −ΔW averaged over the batch into ``weight.grad``;
``SGD(lr=η)`` then applies it. ``rule.constrain()`` (called by ``fit``'s step after the optimiser) clips W to
[w_min, w_max] and, with ``norm``, rescales each post neuron's incoming weights to sum to ``norm``.
"""
from __future__ import annotations

import math

from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.nn import Linear, Module
from nerve.rules.base import Rule, named_layers
from nerve.tensor import Tensor

__all__ = ["STDP"]


def _post_neuron(model: Module, layer: Linear):
    """The first spiking neuron defined after ``layer`` in the model: the one its output drives.

    NOTE: recognised by its ``fire`` and ``reset_mem`` methods, not by class: rules sit below ``nerve.snn`` in
    the layers and do not import it.
    """
    after = False
    for _, mod in model.named_modules():
        if mod is layer:
            after = True
        elif after and callable(getattr(mod, "fire", None)) and callable(getattr(mod, "reset_mem", None)):
            return mod
    return None


class STDP(Rule):
    """Pair-based STDP on the bias-free Linear layers of a spiking network (see the module docstring)."""

    supervised = False

    def __init__(self, model: Module, layers=None, a_plus: float = 1e-2, a_minus: float = 1e-4,
                 tau_pre: float = 20.0, tau_post: float = 20.0, trace: str = "all", w_min: float = 0.0,
                 w_max: float = 1.0, soft_bounds: bool = False, norm: float | None = None) -> None:
        super().__init__(model)
        if trace not in ("all", "nearest"):
            raise ValueError(f"STDP: trace must be 'all' or 'nearest', got {trace!r}")
        if tau_pre <= 0 or tau_post <= 0:
            raise ValueError(f"STDP: tau_pre and tau_post must be > 0, got {tau_pre}, {tau_post}")
        if a_plus < 0 or a_minus < 0:
            raise ValueError(f"STDP: a_plus and a_minus must be >= 0, got {a_plus}, {a_minus}")
        if not w_min < w_max:
            raise ValueError(f"STDP: needs w_min < w_max, got {w_min}, {w_max}")
        chosen = named_layers(model, (Linear,), layers, "STDP")
        if not chosen:
            raise ValueError("STDP: the model has no Linear layer")
        self.layers, self.post = [], {}
        for name, layer in chosen:
            if layer.bias is not None:
                raise ValueError(f"STDP: layer {name!r} has a bias; STDP trains bias-free Linear layers")
            neuron = _post_neuron(model, layer)
            if neuron is None:
                raise ValueError(f"STDP: layer {name!r} is not followed by a spiking neuron (nerve.snn.Leaky, ...)")
            self.layers.append((name, layer))
            self.post[id(layer)] = neuron
        self.a_plus, self.a_minus, self.trace = a_plus, a_minus, trace
        self.decay_pre, self.decay_post = math.exp(-1.0 / tau_pre), math.exp(-1.0 / tau_post)
        self.w_min, self.w_max, self.soft_bounds, self.norm = w_min, w_max, soft_bounds, norm

    # --- the update ----------------------------------------------------------------------------------
    def delta(self, w, pre, post, name: str = "layer"):
        """ΣΔW over a batch for spike trains ``pre`` (steps, batch, in) and ``post`` (steps, batch, out)."""
        if pre.ndim != 3 or post.ndim != 3 or pre.shape[:2] != post.shape[:2]:
            raise ValueError(f"STDP: layer {name!r}: pre spikes {pre.shape} and post spikes {post.shape} must be "
                             "(steps, batch, features) with the same steps and batch")
        if not bool(((pre == 0) | (pre == 1)).all()):
            bad = pre[(pre != 0) & (pre != 1)].ravel()[:3].tolist()
            raise ValueError(f"STDP: layer {name!r} received non-binary input (e.g. {bad}); STDP needs spike "
                             "trains (encode the data with nerve.snn.spikegen.rate)")
        x_pre, x_post = xp.empty_like(pre), xp.empty_like(post)
        a, b = 0.0, 0.0
        for t in range(pre.shape[0]):
            a = x_pre[t] = self._trace(a, pre[t], self.decay_pre)
            b = x_post[t] = self._trace(b, post[t], self.decay_post)
        # NOTE: Σ_t of the batch's outer products is one GEMM over the (steps · batch) rows.
        flat = lambda z: z.reshape(-1, z.shape[-1])  # noqa: E731
        plus = flat(post).T @ flat(x_pre)
        minus = flat(x_post).T @ flat(pre)
        if self.soft_bounds:
            return self.a_plus * plus * (self.w_max - w) - self.a_minus * minus * (w - self.w_min)
        return self.a_plus * plus - self.a_minus * minus

    def _trace(self, x, s, decay):
        if self.trace == "nearest":
            return xp.where(s > 0, 1.0, x * decay).astype(s.dtype)
        return x * decay + s

    def step(self, *inputs) -> dict:
        """Run the model on one batch (spike trains or what its encoder takes) and write −mean ΔW into each
        layer's ``weight.grad``; logs the update's norm and the post-synaptic spikes per sample."""
        if len(inputs) != 1:
            raise ValueError(f"STDP.step: expected one input batch, got {len(inputs)} arrays")
        pre: dict[int, list] = {id(layer): [] for _, layer in self.layers}
        post: dict[int, list] = {id(layer): [] for _, layer in self.layers}
        handles = []
        for _, layer in self.layers:
            handles.append(layer.register_forward_hook(lambda m, a, out: pre[id(m)].append(a[0].data)))
            key = id(layer)
            handles.append(self.post[key].register_forward_hook(
                lambda m, a, out, key=key: post[key].append((out if isinstance(out, Tensor) else out[0]).data)))
        self._run(inputs[0], handles)
        total, spikes = 0.0, 0.0
        for name, layer in self.layers:
            p, q = pre[id(layer)], post[id(layer)]
            if not p or not q:
                raise RuntimeError(f"STDP.step: layer {name!r} or its neuron was not called by the model's forward")
            # NOTE: the layer may run once per step (batch, in) or once on every step's input (steps, batch, in).
            batch = q[0].shape[0]
            q = xp.stack([s.reshape(batch, -1) for s in q])
            p = xp.concatenate([s.reshape(-1, batch, s.shape[-1]) for s in p])
            delta = self.delta(layer.weight.data, p, q, name) / batch
            g = layer.weight.grad
            if g is None:
                layer.weight.grad = Tensor._make((-delta).astype(layer.weight.dtype, copy=False), None)
            else:
                g.data -= delta
            total += float(xp.sqrt((delta * delta).sum()))
            spikes += float(q.sum()) / batch
        self._check_finite(self.layers)
        return {"update": total, "post_spikes": spikes}

    def constrain(self) -> None:
        """Clip each trained weight to [w_min, w_max]; with ``norm``, rescale each row to sum to ``norm``."""
        with no_grad():
            for _, layer in self.layers:
                w = layer.weight.data
                xp.clip(w, self.w_min, self.w_max, out=w)
                if self.norm is not None:
                    sums = w.sum(1, keepdims=True)
                    w *= xp.where(sums > 0, self.norm / xp.where(sums > 0, sums, 1), 1).astype(w.dtype)
                layer.weight._version += 1

    def train_step(self, model: Module, inputs: tuple, target, optimizer, loss_fn) -> tuple:
        """``fit``'s step: the base class's, then ``constrain()``."""
        out = super().train_step(model, inputs, target, optimizer, loss_fn)
        self.constrain()
        return out

    def __repr__(self) -> str:
        return (f"STDP(layers={[n for n, _ in self.layers]}, a_plus={self.a_plus}, a_minus={self.a_minus}, "
                f"trace={self.trace!r})")
