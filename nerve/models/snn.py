"""Spiking reference networks: snnTorch tutorial 5's fully connected SNN and tutorial 6's convolutional SNN.

Both return time-first records ``(spk_rec, mem_rec)`` of the output layer, (num_steps, batch, classes), as
the tutorials do; train them with a loss from ``nerve.snn.functional`` (tutorial 5: ``ce_membrane_loss``,
tutorial 6: ``mse_count_loss(0.8, 0.2)``) and score them with ``SpikeAccuracy`` (prediction by spike count).
"""
from __future__ import annotations

from typing import Callable

from nerve import nn, ops
from nerve.snn import Leaky, surrogate
from nerve.snn.loop import reset
from nerve.tensor import Tensor

__all__ = ["SpikingMLP", "SpikingCNN"]


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
