"""Spiking reference networks: snnTorch tutorial 5's fully connected SNN and tutorial 6's convolutional SNN.

Both return time-first records ``(spk_rec, mem_rec)`` of the output layer, (num_steps, batch, classes), as
the tutorials do; train them with a loss from ``nerve.snn.functional`` (tutorial 5: ``ce_membrane_loss``,
tutorial 6: ``mse_count_loss(0.8, 0.2)``) and score them with ``SpikeAccuracy`` (prediction by spike count).
Also Diehl & Cook (2015)'s unsupervised network for STDP and its label-assignment read-out.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from nerve import backend, nn, ops
from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.snn import Leaky, spikegen, surrogate
from nerve.snn.loop import reset
from nerve.snn.neurons import SpikingNeuron
from nerve.tensor import Tensor

__all__ = ["SpikingMLP", "SpikingCNN", "SpikeCount", "DiehlCook", "DiehlCookLayer", "assign_labels",
           "predict_by_assignment"]


def nerve_rand(shape: tuple, dtype):
    """Uniform [0, 1) draws from nerve's seeded generator, on the backend's device."""
    return xp.asarray(backend.default_generator().random(shape)).astype(dtype)


class SpikingMLP(nn.Module):
    """num_inputs -> Linear -> Leaky -> Linear -> Leaky, run ``num_steps`` with the input as a constant current.

    The dynamics are tutorial 5's (β 0.95, threshold 1, subtract reset, atan surrogate). NOTE: the input
    current fc1(x) is the same at every step, so it is computed once; and since layer 2 does not feed back,
    fc2 runs once on all steps' hidden spikes stacked. Both give the tutorial's exact values and gradients.
    """

    def __init__(self, num_inputs: int = 784, num_hidden: int = 1000, num_outputs: int = 10, beta: float = 0.95,
                 num_steps: int = 25, spike_grad: Callable | None = None) -> None:
        super().__init__()
        if num_steps < 1:
            raise ValueError(f"SpikingMLP: num_steps must be >= 1, got {num_steps}")
        self.fc1 = nn.Linear(num_inputs, num_hidden)
        self.lif1 = Leaky(beta=beta, spike_grad=spike_grad)
        self.fc2 = nn.Linear(num_hidden, num_outputs)
        self.lif2 = Leaky(beta=beta, spike_grad=spike_grad)
        self.num_steps = num_steps
        self.config = {"num_inputs": num_inputs, "num_hidden": num_hidden, "num_outputs": num_outputs,
                       "beta": beta, "num_steps": num_steps}

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.ndim != 2:
            x = ops.reshape(x, (x.shape[0], -1))
        reset(self)
        cur1 = self.fc1(x)
        spk1 = ops.stack([self.lif1(cur1)[0] for _ in range(self.num_steps)])
        cur2 = self.fc2(spk1)
        spk2, mem2 = zip(*[self.lif2(cur2[t]) for t in range(self.num_steps)])
        return ops.stack(list(spk2)), ops.stack(list(mem2))

    def get_config(self) -> dict:
        """Constructor arguments, saved with the weights."""
        return dict(self.config)


class SpikingCNN(nn.Module):
    """Tutorial 6: 12C5-MP2-64C5-MP2-FC10 with Leaky neurons (β 0.5, fast_sigmoid slope 25), ``num_steps`` steps.

    Input (batch, 1, 28, 28) as a constant current. The first conv runs once (its input does not change).
    """

    def __init__(self, num_outputs: int = 10, beta: float = 0.5, num_steps: int = 50,
                 spike_grad: Callable | None = None) -> None:
        super().__init__()
        spike_grad = spike_grad or surrogate.fast_sigmoid(slope=25)
        self.conv1, self.conv2 = nn.Conv2d(1, 12, 5), nn.Conv2d(12, 64, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(64 * 4 * 4, num_outputs)
        self.lif1, self.lif2, self.lif3 = (Leaky(beta=beta, spike_grad=spike_grad) for _ in range(3))
        self.num_steps = num_steps
        self.config = {"num_outputs": num_outputs, "beta": beta, "num_steps": num_steps}

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"SpikingCNN: expected (batch, 1, 28, 28) images, got {tuple(x.shape)}")
        reset(self)
        cur1 = self.pool(self.conv1(x))
        spk, mem = [], []
        for _ in range(self.num_steps):
            spk1, _ = self.lif1(cur1)
            spk2, _ = self.lif2(self.pool(self.conv2(spk1)))
            spk3, mem3 = self.lif3(self.fc(ops.reshape(spk2, (spk2.shape[0], -1))))
            spk.append(spk3)
            mem.append(mem3)
        return ops.stack(spk), ops.stack(mem)

    def get_config(self) -> dict:
        """Constructor arguments, saved with the weights."""
        return dict(self.config)


class SpikeCount(nn.Module):
    """A spiking network's output spike counts (batch, classes), for tools that expect class scores per sample
    (``nerve.train.predict``, ``argmax``, the plain accuracy metric); the wrapped network returns time-first
    records (spk_rec, ...) or spk_rec."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)
        spk = out[0] if isinstance(out, (tuple, list)) else out
        return ops.sum(spk, 0)


class DiehlCookLayer(SpikingNeuron):
    """Diehl & Cook (2015)'s excitatory layer in discrete time: leaky integration (no integration while
    refractory), lateral inhibition from the other neurons' spikes of the previous step, and an adaptive
    threshold θ + θ_i that each spike raises by ``theta_plus`` (in training) and that decays very slowly.

    U[t] = max(−θ, β U[t−1] + (1 − ref) (I[t] − w_inh (ΣS[t−1] − S_i[t−1])));  S = H(U − θ − θ_i);  U ← 0 after
    a spike, then ``refractory`` silent steps. θ_i (``theta``) is a persistent buffer (saved with the weights).
    """

    state_names = ("mem", "spk", "refrac")

    def __init__(self, n_neurons: int, beta: float = math.exp(-1 / 100), threshold: float = 20.0,
                 w_inh: float = 10.0, theta_plus: float = 0.05, theta_decay: float = math.exp(-1 / 1e7),
                 refractory: int = 5) -> None:
        super().__init__(threshold, surrogate.heaviside(), reset_mechanism="zero")
        self._decay("beta", beta, False)
        self.register_buffer("theta", Tensor._make(xp.zeros(n_neurons, dtype=self.threshold.dtype), None))
        self.w_inh, self.theta_plus, self.theta_decay, self.refractory = w_inh, theta_plus, theta_decay, refractory

    def forward(self, input_: Tensor) -> Tensor:
        cur = input_.data
        mem, spk, ref = (self._state(n, None, input_).data for n in self.state_names)
        inhib = self.w_inh * (spk.sum(-1, keepdims=True) - spk) if spk.ndim else 0.0
        thr = float(self.threshold.data)
        mem = xp.maximum(self.beta.data * mem + (ref == 0) * (cur - inhib), -thr)
        spk = (mem > thr + self.theta.data).astype(cur.dtype)
        mem = mem * (1 - spk)
        ref = xp.where(spk > 0, self.refractory, xp.maximum(ref - 1, 0)) if ref.ndim else spk * self.refractory
        if self.training:
            self.theta.data[...] = (self.theta.data + self.theta_plus * spk.sum(0)) * self.theta_decay
        self.mem, self.spk, self.refrac = (Tensor._make(a, None) for a in (mem, spk, ref.astype(cur.dtype)))
        out = Tensor._make(spk, None)
        if self.monitor is not None:
            self.monitor.spikes(self, out)
        return out


class DiehlCook(nn.Module):
    """Diehl & Cook (2015)-style unsupervised network: Poisson input (pixel · ``rate`` per step) -> bias-free
    Linear (weights U(0, 0.3)) -> ``DiehlCookLayer``; ``num_steps`` steps per image. Train its ``fc`` with
    ``nerve.rules.STDP``; read it out with ``assign_labels``/``predict_by_assignment``. Returns (T, B, n) spikes.
    """

    def __init__(self, n_input: int = 784, n_neurons: int = 100, num_steps: int = 100, rate: float = 0.2,
                 **neuron_kwargs) -> None:
        super().__init__()
        self.fc = nn.Linear(n_input, n_neurons, bias=False)
        with no_grad():
            self.fc.weight.data[...] = nerve_rand((n_neurons, n_input), self.fc.weight.dtype) * 0.3
        self.exc = DiehlCookLayer(n_neurons, **neuron_kwargs)
        self.num_steps, self.rate = num_steps, rate

    def forward(self, x: Tensor) -> Tensor:
        x = x if x.ndim == 2 else ops.reshape(x, (x.shape[0], -1))
        reset(self)
        spikes = spikegen.rate(x, num_steps=self.num_steps, gain=self.rate)
        cur = self.fc(spikes)  # NOTE: the input train is known in advance: one GEMM for every step
        return ops.stack([self.exc(cur[t]) for t in range(self.num_steps)])


def assign_labels(counts, labels, num_classes: int = 10):
    """Each neuron's class: the one for which its mean spike count over ``counts`` (samples, neurons) is highest."""
    counts, labels = np.asarray(counts, dtype=np.float64), np.asarray(labels)
    rates = np.zeros((num_classes, counts.shape[1]))
    for c in range(num_classes):
        if (labels == c).any():
            rates[c] = counts[labels == c].mean(0)
    return rates.argmax(0)


def predict_by_assignment(counts, assignments, num_classes: int = 10):
    """Predicted class per sample: the class whose assigned neurons fire most on average (Diehl & Cook)."""
    counts = np.asarray(counts, dtype=np.float64)
    scores = np.full((counts.shape[0], num_classes), -1.0)
    for c in range(num_classes):
        mine = assignments == c
        if mine.any():
            scores[:, c] = counts[:, mine].mean(1)
    return scores.argmax(1)
