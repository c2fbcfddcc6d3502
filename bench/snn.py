"""Training-step time of snnTorch tutorial 5's network (784-1000-10 Leaky, β 0.95, 25 steps, batch 128, membrane
cross-entropy summed over steps, Adam 5e-4): nerve vs snnTorch on the same machine (snnTorch when installed).

Rows: "nerve tutorial loop" is the tutorial's code ported line by line (fc1 and fc2 called at every step);
"nerve SpikingMLP" is nerve.models.snn.SpikingMLP (fc1 once, fc2 once over all steps: the same values and
gradients); "snnTorch tutorial loop" is the tutorial itself. Each runs in its own process, taking turns
(bench/_paired.py); ratios are medians of per-round ratios against the first row.

Run: python bench/snn.py [--steps 5] [--rounds 5] [--batch 128] [--num-steps 25]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from _paired import compare, cycling  # noqa: E402

try:
    import snntorch  # noqa: F401
    import torch
except ImportError:
    snntorch = torch = None


def batches(batch: int) -> list:
    rng = np.random.default_rng(0)
    return [(rng.random((batch, 784), dtype=np.float32), rng.integers(0, 10, batch)) for _ in range(4)]


def nerve_runner(kind: str, batch: int, num_steps: int):
    import nerve
    from nerve import nn, snn
    from nerve.models.snn import SpikingMLP
    from nerve.snn import functional as SF

    nerve.manual_seed(0)
    if kind == "model":
        model = SpikingMLP(784, 1000, 10, beta=0.95, num_steps=num_steps)
    else:
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.lif1 = nn.Linear(784, 1000), snn.Leaky(beta=0.95)
                self.fc2, self.lif2 = nn.Linear(1000, 10), snn.Leaky(beta=0.95)

            def forward(self, x):
                mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
                spk2_rec, mem2_rec = [], []
                for _ in range(num_steps):
                    spk1, mem1 = self.lif1(self.fc1(x), mem1)
                    spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                    spk2_rec.append(spk2)
                    mem2_rec.append(mem2)
                return nerve.stack(spk2_rec), nerve.stack(mem2_rec)
        model = Net()
    opt = nerve.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.999))
    loss_fn = SF.ce_membrane_loss()

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return cycling(step, [(nerve.tensor(x), y) for x, y in batches(batch)])


def snntorch_runner(batch: int, num_steps: int):
    import snntorch as snn
    import torch

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.lif1 = torch.nn.Linear(784, 1000), snn.Leaky(beta=0.95)
            self.fc2, self.lif2 = torch.nn.Linear(1000, 10), snn.Leaky(beta=0.95)

        def forward(self, x):
            mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            spk2_rec, mem2_rec = [], []
            for _ in range(num_steps):
                spk1, mem1 = self.lif1(self.fc1(x), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                spk2_rec.append(spk2)
                mem2_rec.append(mem2)
            return torch.stack(spk2_rec), torch.stack(mem2_rec)

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=5e-4, betas=(0.9, 0.999))
    ce = torch.nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        _, mem = net(x)
        loss = sum(ce(mem[t], y) for t in range(num_steps))
        loss.backward()
        opt.step()
    return cycling(step, [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches(batch)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="training steps per burst")
    parser.add_argument("--rounds", type=int, default=5, help="bursts per contender, taken in turn")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--num-steps", type=int, default=25)
    args = parser.parse_args()
    setups = {}
    if snntorch is not None:
        setups["snnTorch tutorial loop"] = (snntorch_runner, args.batch, args.num_steps)
    setups["nerve tutorial loop"] = (nerve_runner, "loop", args.batch, args.num_steps)
    setups["nerve SpikingMLP"] = (nerve_runner, "model", args.batch, args.num_steps)
    print(f"tutorial-5 SNN 784-1000-10, {args.num_steps} steps, batch {args.batch}; numpy {np.__version__}"
          + (f", snntorch {snntorch.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)"
             if snntorch else ", snntorch not installed: nerve alone"))
    results = compare(setups, args.steps, args.rounds)
    first = next(iter(results))
    header = f"{'training step':<26}{'best (ms)':>12}{'median (ms)':>14}{first + ' / this':>34}"
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        print(f"{name:<26}{r['best']:>12.1f}{r['median']:>14.1f}{r['ratio']:>34.2f}")


if __name__ == "__main__":
    main()
