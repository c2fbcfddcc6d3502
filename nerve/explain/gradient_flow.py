"""Why a network does not learn: per-layer gradient and activation statistics, the fit callback that logs them,
warnings that name the layer where gradients vanish or explode, and the gradient-flow plot.

Statistics per layer holding parameters (Linear, Conv, ...; its output is h): ``grad_norm`` (L2 norm of the
gradients of its parameters), ``act_grad_norm`` (L2 norm of dL/dh over the batch), ``act_mean``/``act_std`` of h,
``update_ratio`` (||ΔW|| / ||W|| of the step, in training). Per activation module: ``dead_frac`` (ReLU family:
units that are zero for every example of the batch) or ``saturated_frac`` (sigmoid: outputs below 0.01 or above
0.99; tanh: |output| above 0.99, over all values), with ``act_mean``/``act_std``.
"""
from __future__ import annotations

import math
import re
import warnings
from typing import Callable, Mapping, Sequence

import numpy as np

from nerve.autograd.grad_mode import enable_grad
from nerve.backend import xp
from nerve.nn.activation import ELU, GELU, LeakyReLU, ReLU, Sigmoid, Tanh
from nerve.nn.module import Module
from nerve.tensor import Tensor
from nerve.train.callbacks import Callback

__all__ = ["GradientFlowMonitor", "LayerProbe", "check_flow", "gradient_flow", "plot_gradient_flow", "statistic_values"]

_RELUS = (ReLU, LeakyReLU, ELU, GELU)
REMEDIES_VANISH = ("initialisation matched to the activation (Glorot for tanh/sigmoid, He for ReLU), normalisation "
                   "(BatchNorm/LayerNorm), residual connections, or ReLU-family activations instead of sigmoid")
REMEDIES_EXPLODE = ("gradient clipping (nn.utils.clip_grad_norm_), a lower learning rate, normalisation "
                    "(BatchNorm/LayerNorm), or a smaller initialisation scale")


def _norm(a) -> float:
    return float(xp.sqrt((a.astype(xp.float64) ** 2).sum()))


class LayerProbe:
    """Hooks on a model's layers for one forward/backward: keeps each layer's output with its gradient retained,
    then computes the statistics listed in the module's docstring."""

    def __init__(self, model: Module, layers: Sequence[str] | None = None) -> None:
        named = dict(model.named_modules())
        if layers is not None:
            missing = [n for n in layers if n not in named]
            if missing:
                raise ValueError(f"LayerProbe: no layers named {missing} in {type(model).__name__}")
            self.layers = [(n, named[n]) for n in layers]
        else:
            self.layers = [(n, m) for n, m in named.items() if n and list(m.parameters(recurse=False))]
        self.activations = [(n, m) for n, m in named.items() if isinstance(m, _RELUS + (Sigmoid, Tanh))]
        self.outputs: dict = {}
        self.handles: list = []
        self.weights: dict = {}

    def attach(self, snapshot: bool = False) -> None:
        """Start recording the next forward pass (and keep the weights to measure the update with ``snapshot``)."""
        self.outputs = {}
        for name, module in self.layers + self.activations:
            self.handles.append(module.register_forward_hook(self._hook(name)))
        if snapshot:
            self.weights = {name: [p.data.copy() for p in m.parameters(recurse=False)] for name, m in self.layers}

    def _hook(self, name: str) -> Callable:
        def hook(module, args, out):
            out = out[0] if isinstance(out, tuple) else out
            if isinstance(out, Tensor):
                if out.requires_grad:
                    out.retain_grad()
                self.outputs[name] = out
        return hook

    def detach(self) -> None:
        """Remove the hooks."""
        for h in self.handles:
            h.remove()
        self.handles = []

    def statistics(self) -> dict:
        """{layer name: {statistic: value}} of the recorded pass (after its backward)."""
        stats: dict = {}
        for name, module in self.layers:
            row = {}
            params = list(module.parameters(recurse=False))
            grads = [p.grad.data for p in params if p.grad is not None]
            if grads:
                row["grad_norm"] = math.sqrt(sum(_norm(g) ** 2 for g in grads))
            out = self.outputs.get(name)
            if out is not None:
                h = out.data
                row["act_mean"], row["act_std"] = float(h.mean()), float(h.std())
                if out.grad is not None:
                    row["act_grad_norm"] = _norm(out.grad.data)
            if name in self.weights:
                before = self.weights[name]
                change = math.sqrt(sum(_norm(p.data - b) ** 2 for p, b in zip(params, before)))
                size = math.sqrt(sum(_norm(b) ** 2 for b in before))
                row["update_ratio"] = change / size if size > 0 else float("nan")
            stats[name] = row
        for name, module in self.activations:
            out = self.outputs.get(name)
            if out is None:
                continue
            h = out.data
            row = {"act_mean": float(h.mean()), "act_std": float(h.std())}
            if isinstance(module, _RELUS):
                flat = h.reshape(h.shape[0], -1) if h.ndim > 1 else h.reshape(1, -1)
                row["dead_frac"] = float((flat <= 0).all(axis=0).mean())
            elif isinstance(module, Sigmoid):
                row["saturated_frac"] = float(((h < 0.01) | (h > 0.99)).mean())
            else:
                row["saturated_frac"] = float((abs(h) > 0.99).mean())
            stats[name] = row
        return stats


def gradient_flow(model: Module, inputs, target, loss_fn: Callable | None = None,
                  layers: Sequence[str] | None = None, train_mode: bool = True) -> dict:
    """The statistics of one forward and backward of ``loss_fn(model(inputs), target)`` (cross-entropy by
    default), without an optimiser step: {layer: {statistic: value}} in the model's layer order. The parameters'
    ``.grad`` are left as they were."""
    from nerve import functional as F
    loss_fn = loss_fn or F.cross_entropy
    probe = LayerProbe(model, layers)
    params = list(model.parameters())
    saved = [p.grad for p in params]
    modes = [(m, m.training) for m in model.modules()]
    model.train(train_mode)
    for p in params:
        p.grad = None
    probe.attach()
    try:
        with enable_grad():
            x = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
            loss = loss_fn(model(x), target)
            loss.backward()
        return probe.statistics()
    finally:
        probe.detach()
        for p, g in zip(params, saved):
            p.grad = g
        for m, mode in modes:
            m.training = mode


def check_flow(stats: Mapping[str, Mapping[str, float]], vanish_ratio: float, explode: float,
               who: str) -> list[str]:
    """Messages for vanishing (dL/dh of the first layer below ``vanish_ratio`` times the last's) and exploding
    (non-finite, or a gradient norm above ``explode``) gradients, each naming the layer and the remedies."""
    messages = []
    rows = [(n, r) for n, r in stats.items() if "act_grad_norm" in r]
    for name, row in stats.items():
        for key in ("grad_norm", "act_grad_norm"):
            value = row.get(key)
            if value is None:
                continue
            if not math.isfinite(value):
                messages.append(f"{who}: gradients explode: {key} of layer {name!r} is {value}; try "
                                f"{REMEDIES_EXPLODE}")
            elif value > explode:
                messages.append(f"{who}: gradients explode: {key} of layer {name!r} is {value:.3g} (> {explode:g}); "
                                f"try {REMEDIES_EXPLODE}")
    if len(rows) >= 2:
        (first, f), (last, la) = rows[0], rows[-1]
        if la["act_grad_norm"] > 0 and f["act_grad_norm"] / la["act_grad_norm"] < vanish_ratio:
            messages.append(f"{who}: gradients vanish: dL/dh at the first layer {first!r} is "
                            f"{f['act_grad_norm'] / la['act_grad_norm']:.2e} of that at the last layer {last!r} "
                            f"(below {vanish_ratio:g}); try {REMEDIES_VANISH}")
    return messages


class GradientFlowMonitor(Callback):
    """Per-layer diagnostics during ``fit``: every ``every`` batches (and on each epoch's first batch) the
    statistics of that step are measured; the last measurement of each epoch goes into the epoch's logs as
    ``"<layer>/<statistic>"`` (so History, CSVLogger and TensorBoard get them: list this callback before
    CSVLogger), ``self.records`` keeps them all (epoch, batch, stats), and vanishing or exploding gradients
    raise a warning naming the layer, once per layer and kind."""

    def __init__(self, every: int = 50, layers: Sequence[str] | None = None, vanish_ratio: float = 1e-3,
                 explode: float = 1e3, warn: bool = True) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"GradientFlowMonitor: every must be a positive int, got {every!r}")
        self.every, self.layer_names, self.vanish_ratio, self.explode, self.warn = (every, layers, vanish_ratio,
                                                                                    explode, warn)
        self.records: list = []
        self.probe: LayerProbe | None = None
        self._active = False
        self._latest: dict | None = None
        self._warned: set = set()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.probe = LayerProbe(self.model, self.layer_names)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._latest = None

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._active = batch % self.every == 0 or self._latest is None
        if self._active:
            self.probe.attach(snapshot=True)

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self._active:
            return
        self.probe.detach()
        stats = self.probe.statistics()
        self.probe.outputs = {}
        self._active = False
        self._latest = stats
        self.records.append((self.trainer.epoch, batch, stats))
        if self.warn:
            for message in check_flow(stats, self.vanish_ratio, self.explode, "GradientFlowMonitor"):
                key = re.match(r"[^:]*: (gradients \w+): [^']*'([^']*)'", message).groups()  # (kind, layer)
                if key not in self._warned:
                    self._warned.add(key)
                    warnings.warn(message, stacklevel=2)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None and self._latest:
            for name, row in self._latest.items():
                for key, value in row.items():
                    logs[f"{name}/{key}"] = value

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.probe is not None:
            self.probe.detach()


def plot_gradient_flow(runs: Mapping[str, Mapping[str, Mapping[str, float]]] | Mapping[str, Mapping[str, float]],
                       statistic: str = "act_grad_norm", path=None, ax=None, title: str | None = None):
    """Gradient-flow plot: ``statistic`` per layer (log scale, input side on the left), one line per run.

    ``runs``: {run name: statistics from ``gradient_flow``} or one run's statistics. Returns the Axes.
    """
    from nerve.explain.plots import pyplot
    plt = pyplot("plot_gradient_flow")
    if runs and all(isinstance(v, Mapping) and all(isinstance(x, (int, float)) for x in v.values())
                    for v in runs.values()):
        runs = {"": runs}
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for name, stats in runs.items():
        values = [(layer, row[statistic]) for layer, row in stats.items() if statistic in row]
        if not values:
            raise ValueError(f"plot_gradient_flow: run {name!r} has no {statistic!r} values")
        ax.semilogy(range(1, len(values) + 1), [max(v, 1e-300) for _, v in values], marker="o", ms=3,
                    label=name or None)
    ax.set_xlabel("layer (input side first)")
    ax.set_ylabel(statistic)
    ax.grid(True, which="major", alpha=0.3)
    if any(runs):
        ax.legend(fontsize=7)
    ax.set_title(title or f"gradient flow: {statistic} per layer")
    if path is not None:
        ax.figure.tight_layout()
        ax.figure.savefig(path, dpi=110)
    return ax


def statistic_values(stats: Mapping[str, Mapping[str, float]], statistic: str) -> np.ndarray:
    """One statistic over the layers that have it, in layer order, as a NumPy array."""
    return np.array([row[statistic] for row in stats.values() if statistic in row])
