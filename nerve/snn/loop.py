"""Running a spiking network over time: state resets, recordings, per-layer firing metrics, BPTT with ``fit``.

``TimeLoop(net, num_steps)`` is a Module: each call resets every neuron in ``net``, feeds the input for
``num_steps`` steps (the same static input each step, like snnTorch's tutorials, or a time-first spike train
with ``time_var=True``) and returns ``net``'s outputs stacked time first ((spk_rec, mem_rec) for a network
ending in a neuron with ``output=True``). ``loop.stats()`` gives, per neuron layer, the firing rate, the
fraction of silent and of saturated neurons, and the synaptic operations of the Linear/Conv layers.
``loop.train_step(loss_fn, truncation=k)`` is ``fit``'s ``train_step``: BPTT through all steps, or truncated
to chunks of k steps (an optimiser step per chunk, the state detached between them), logging the metrics.
"""
from __future__ import annotations

from typing import Any, Callable

from nerve import ops
from nerve.backend import xp
from nerve.nn import Conv1d, Conv2d, Linear, Module
from nerve.snn.neurons import SpikingNeuron
from nerve.tensor import Tensor

__all__ = ["reset", "detach_hidden", "TimeLoop", "Recorder"]


def _neurons(model: Module) -> list[tuple[str, SpikingNeuron]]:
    return [(name or type(m).__name__, m) for name, m in model.named_modules() if isinstance(m, SpikingNeuron)]


def reset(model: Module) -> Module:
    """Clear the state of every spiking neuron in ``model`` (snnTorch's ``utils.reset``); returns the model."""
    if not isinstance(model, Module):
        raise TypeError(f"snn.reset: expected an nn.Module, got {type(model).__name__}")
    for _, neuron in _neurons(model):
        neuron.reset_mem()
    return model


def detach_hidden(model: Module) -> Module:
    """Detach every neuron's state from the graph, keeping its values (truncated BPTT)."""
    for _, neuron in _neurons(model):
        neuron.detach_hidden()
    return model


def _fan_out(layer: Module) -> float:
    """Synapses leaving one input value: out_features, or out_channels · kernel area / stride area for a conv."""
    if isinstance(layer, Linear):
        return float(layer.out_features)
    k = float(xp.prod(xp.asarray(layer.kernel_size)))
    s = float(xp.prod(xp.asarray(layer.stride)))
    return layer.out_channels * k / s


class Recorder:
    """Per-layer spike counts of one run (neuron -> (batch, *shape) counts) and synaptic-operation counts."""

    def __init__(self, net: Module) -> None:
        self.net = net
        self.neurons = _neurons(net)
        self.synapses = [(name or type(m).__name__, m) for name, m in net.named_modules()
                         if isinstance(m, (Linear, Conv1d, Conv2d))]
        self.clear()

    def clear(self) -> None:
        self.counts: dict[int, Any] = {}
        self.steps: dict[int, int] = {}
        self.synops: dict[int, float] = {}
        self.batch = 0

    def spikes(self, neuron: SpikingNeuron, spk: Tensor) -> None:
        """Called by a watched neuron's ``fire``: add this step's spikes."""
        key = id(neuron)
        data = spk.data
        if key in self.counts:
            self.counts[key] = self.counts[key] + data
            self.steps[key] += 1
        else:
            self.counts[key], self.steps[key] = data.astype(xp.float32), 1

    def _synapse_hook(self, layer, args, out) -> None:
        x = args[0].data
        self.batch = x.shape[0]
        self.synops[id(layer)] = self.synops.get(id(layer), 0.0) + float(xp.count_nonzero(x)) * _fan_out(layer)

    def __enter__(self) -> "Recorder":
        self.clear()
        for _, n in self.neurons:
            n.monitor = self
        self._handles = [m.register_forward_hook(self._synapse_hook) for _, m in self.synapses]
        return self

    def __exit__(self, *exc) -> None:
        for _, n in self.neurons:
            n.monitor = None
        for h in self._handles:
            h.remove()

    def stats(self) -> dict[str, float]:
        """{layer.rate, layer.silent, layer.saturated} per neuron layer, {layer.synops} per synaptic layer (per
        sample), and the total 'synops'. Rate: spikes per neuron per step; silent/saturated: fraction of
        neurons that never fire / fire at every step, over the whole batch."""
        out: dict[str, float] = {}
        for name, n in self.neurons:
            counts = self.counts.get(id(n))
            if counts is None:
                continue
            steps = self.steps[id(n)]
            per_neuron = counts.reshape(counts.shape[0], -1) if counts.ndim > 1 else counts.reshape(1, -1)
            out[f"{name}.rate"] = float(per_neuron.mean()) / steps
            out[f"{name}.silent"] = float((per_neuron.sum(0) == 0).mean())
            out[f"{name}.saturated"] = float((per_neuron.min(0) >= steps).mean())
        total = 0.0
        for name, m in self.synapses:
            if id(m) in self.synops and self.batch:
                per_sample = self.synops[id(m)] / self.batch
                out[f"{name}.synops"] = per_sample
                total += per_sample
        if self.synapses:
            out["synops"] = total
        return out


class TimeLoop(Module):
    """Run ``net`` for ``num_steps`` steps from a fresh state; outputs stacked time first.

    Input: static (batch, ...) fed at every step (``time_var=False``, snnTorch tutorial 5), or a spike train
    (num_steps, batch, ...) (``time_var=True``; (batch, num_steps, ...) with ``time_first=False``).
    ``encoder(x) -> (num_steps, batch, ...)`` (e.g. ``lambda x: spikegen.rate(x, num_steps=25)``) turns a
    static batch into a train first. ``monitor=True`` records the metrics ``stats()`` returns.
    """

    def __init__(self, net: Module, num_steps: int, time_var: bool = False, time_first: bool = True,
                 encoder: Callable | None = None, monitor: bool = True) -> None:
        super().__init__()
        if not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"TimeLoop: num_steps must be a positive int, got {num_steps!r}")
        if not _neurons(net):
            raise ValueError(f"TimeLoop: {type(net).__name__} holds no spiking neuron (nerve.snn.Leaky, ...)")
        self.net, self.num_steps = net, num_steps
        self.time_var, self.time_first, self.encoder = bool(time_var or encoder is not None), time_first, encoder
        self.recorder = Recorder(net) if monitor else None

    def _inputs(self, x) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor._make(xp.asarray(x), None)
        if self.encoder is not None:
            x = self.encoder(x)
        elif self.time_var and not self.time_first:
            x = ops.swapaxes(x, 0, 1) if x.ndim >= 2 else x
        if self.time_var and (x.ndim < 2 or x.shape[0] != self.num_steps):
            raise ValueError(f"TimeLoop: time_var input must be (num_steps={self.num_steps}, batch, ...)"
                             f"{'' if self.time_first else ' after moving time first'}, got shape {tuple(x.shape)}")
        return x

    def run(self, x: Tensor, start: int, stop: int):
        """Steps ``start``..``stop``−1 on prepared input, continuing the current state; outputs stacked."""
        outs = [self.net(x[t] if self.time_var else x) for t in range(start, stop)]
        if isinstance(outs[0], (tuple, list)):
            return tuple(ops.stack([o[i] for o in outs]) for i in range(len(outs[0])))
        return ops.stack(outs)

    def forward(self, x):
        x = self._inputs(x)
        reset(self.net)
        if self.recorder is None:
            return self.run(x, 0, self.num_steps)
        with self.recorder:
            return self.run(x, 0, self.num_steps)

    def stats(self) -> dict[str, float]:
        """Per-layer firing metrics of the last call (see ``Recorder.stats``)."""
        if self.recorder is None:
            raise RuntimeError("TimeLoop.stats: this loop was built with monitor=False")
        return self.recorder.stats()

    def train_step(self, loss_fn: Callable, truncation: int | None = None) -> Callable:
        """``fit``'s ``train_step``: BPTT over all steps, or over chunks of ``truncation`` steps (truncated BPTT:
        an optimiser step per chunk, the state detached between chunks). Logs the loss and ``stats()``."""
        if truncation is not None and (not isinstance(truncation, int) or truncation < 1):
            raise ValueError(f"TimeLoop.train_step: truncation must be a positive int or None, got {truncation!r}")
        k = truncation or self.num_steps

        def step(model, batch, optimizer) -> dict:
            if model is not self:
                raise ValueError("TimeLoop.train_step: fit's model must be the TimeLoop the step was made from")
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise ValueError("TimeLoop.train_step: batches must be (inputs, targets)")
            x, target = self._inputs(batch[0]), batch[1]
            reset(self.net)
            chunks, losses = [], []
            recorder = self.recorder if self.recorder is not None else _Null()
            with recorder:
                for start in range(0, self.num_steps, k):
                    optimizer.zero_grad()
                    out = self.run(x, start, min(start + k, self.num_steps))
                    loss = loss_fn(out, target)
                    loss.backward()
                    optimizer.step()
                    detach_hidden(self.net)
                    chunks.append(out)
                    losses.append(float(loss.item()))
            if isinstance(chunks[0], tuple):
                output = tuple(ops.cat([c[i].detach() for c in chunks]) for i in range(len(chunks[0])))
            else:
                output = ops.cat([c.detach() for c in chunks])
            logs = {"loss": sum(losses) / len(losses)}
            if self.recorder is not None:
                logs.update(self.recorder.stats())
            logs["output"], logs["target"] = output, target
            return logs
        return step

    def extra_repr(self) -> str:
        return f"num_steps={self.num_steps}, time_var={self.time_var}"


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None
