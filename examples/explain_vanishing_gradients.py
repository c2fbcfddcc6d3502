"""Vanishing gradients, measured: dL/dh per layer of 20-layer, 256-unit networks at initialisation and after one
epoch on Fashion-MNIST.

Six networks (784 -> 20 x 256 -> 10): sigmoid with the "standard" initialisation U(-1/sqrt(n), 1/sqrt(n)) (Glorot
& Bengio 2010's name for it; PyTorch's Linear default is close), tanh with Glorot, ReLU with Glorot, ReLU with He,
ReLU with He plus BatchNorm, and a residual network (h <- h + Linear(ReLU(h)), He initialisation scaled by
1/sqrt(20) so that the 20 branches add up to about one layer's variance). At initialisation the gradient is taken
on a batch of 256 N(0, I) inputs with 10-way cross-entropy against random labels; after one epoch (SGD with
momentum, lr 0.01, batch 128) on Fashion-MNIST test images. Prints the table of ||dL/dh|| at layers 1, 10 and 20
and the ratio layer 1 / layer 20, and draws the gradient-flow plot.

Run:  python examples/explain_vanishing_gradients.py [--data DIR] [--train 10000] [--out runs/vanishing.png]
Quick check:  python examples/explain_vanishing_gradients.py --train 256 --depth 6
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve import explain, nn  # noqa: E402
from nerve import functional as F  # noqa: E402
from nerve.data.datasets import load_fashion_mnist  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fashion-mnist")


class Residual(nn.Module):
    """h + Linear(ReLU(h))."""

    def __init__(self, width: int, scale: float) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        nn.init.kaiming_normal_(self.linear.weight, nonlinearity="relu")
        with nerve.no_grad():
            self.linear.weight.mul_(scale)
        nn.init.zeros_(self.linear.bias)

    def forward(self, h):
        return h + self.linear(F.relu(h))


def standard_(w) -> None:
    bound = 1.0 / math.sqrt(w.shape[1])
    nn.init.uniform_(w, -bound, bound)


def build(name: str, depth: int, width: int = 256) -> nn.Module:
    """The network ``name``: depth hidden Linear layers of ``width`` units and a 10-way output layer."""
    if name == "residual":
        layers = [nn.Linear(784, width)]
        nn.init.kaiming_normal_(layers[0].weight, nonlinearity="relu")
        layers += [Residual(width, 1 / math.sqrt(depth)) for _ in range(depth - 1)]
        return nn.Sequential(*layers, nn.ReLU(), nn.Linear(width, 10))
    act, init = {"sigmoid, standard init": (nn.Sigmoid, standard_),
                 "tanh, Glorot": (nn.Tanh, nn.init.xavier_uniform_),
                 "ReLU, Glorot": (nn.ReLU, nn.init.xavier_uniform_),
                 "ReLU, He": (nn.ReLU, lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")),
                 "ReLU, He + BatchNorm": (nn.ReLU, lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"))}[name]
    layers = []
    for i in range(depth):
        linear = nn.Linear(784 if i == 0 else width, width)
        init(linear.weight)
        nn.init.zeros_(linear.bias)
        layers += [linear] + ([nn.BatchNorm1d(width)] if "BatchNorm" in name else []) + [act()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


NAMES = ("sigmoid, standard init", "tanh, Glorot", "ReLU, Glorot", "ReLU, He", "ReLU, He + BatchNorm", "residual")


def hidden_flow(model: nn.Module, x, y, depth: int) -> np.ndarray:
    """||dL/dh|| at the output of each of the ``depth`` hidden layers (Linear outputs; the residual blocks' sums)."""
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, Residual))
             and not (isinstance(m, nn.Linear) and n.endswith(".linear"))][:depth]
    stats = explain.gradient_flow(model, x, y, layers=names)
    return np.array([stats[n]["act_grad_norm"] for n in names])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SHARED if os.path.isdir(SHARED) else None)
    parser.add_argument("--train", type=int, default=10000, help="training images for the one epoch")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--out", default=os.path.join("runs", "vanishing_gradients.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    X, y = load_fashion_mnist(root=args.data, train=True)
    Xt, yt = load_fashion_mnist(root=args.data, train=False)
    X, y = X[:args.train].reshape(-1, 784), y[:args.train]
    mean, std = X.mean(), X.std()
    X = ((X - mean) / std).astype(np.float32)
    xt = ((Xt[:256].reshape(-1, 784) - mean) / std).astype(np.float32)
    rng = np.random.default_rng(args.seed)
    x0, y0 = rng.standard_normal((256, 784)).astype(np.float32), rng.integers(0, 10, 256)
    d = args.depth
    mid = d // 2
    print(f"||dL/dh|| per hidden layer of {d}-layer, 256-unit networks (layer 1 = next to the input); "
          f"one epoch = {len(X)} Fashion-MNIST images")
    print(f"{'network':<24}{'when':<12}{'layer 1':>11}{f'layer {mid}':>11}{f'layer {d}':>11}{'1 / ' + str(d):>11}"
          f"{'test acc':>10}")
    flows = {}
    for name in NAMES:
        nerve.manual_seed(args.seed)
        model = build(name, d)
        init_flow = hidden_flow(model, x0, y0, d)
        t0 = time.perf_counter()
        nerve.train.fit(model, (X, y), loss="cross_entropy", epochs=1, batch_size=128, verbose=0,
                        optimizer=nerve.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
        acc = _accuracy(model, ((Xt[:2000].reshape(-1, 784) - mean) / std).astype(np.float32), yt[:2000])
        trained_flow = hidden_flow(model, xt, yt[:256], d)
        for when, flow, extra in (("init", init_flow, ""), ("1 epoch", trained_flow, f"{acc:>10.3f}")):
            print(f"{name if when == 'init' else '':<24}{when:<12}{flow[0]:>11.2e}{flow[mid - 1]:>11.2e}"
                  f"{flow[-1]:>11.2e}{flow[0] / flow[-1]:>11.2e}{extra}")
        flows[name] = (init_flow, trained_flow, time.perf_counter() - t0)
    sig, he = flows["sigmoid, standard init"][0], flows["ReLU, He"][0]
    print(f"result: at initialisation sigmoid loses {math.log10(sig[-1] / sig[0]):.1f} orders of magnitude from "
          f"layer {d} to layer 1; ReLU + He changes by a factor {max(he[0] / he[-1], he[-1] / he[0]):.2f}")
    _plot(flows, d, args.out)


def _accuracy(model, x, y) -> float:
    out = nerve.train.predict(model, x, batch_size=1000).numpy()
    return float((out.argmax(1) == y).mean())


def _plot(flows: dict, depth: int, path: str) -> None:
    from nerve.explain.plots import pyplot
    plt = pyplot("explain_vanishing_gradients")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, k, title in ((axes[0], 0, "at initialisation (N(0, I) inputs)"), (axes[1], 1, "after one epoch")):
        for name, flow in flows.items():
            ax.semilogy(range(1, depth + 1), flow[k], marker="o", ms=3, label=name)
        ax.set_title(title)
        ax.set_xlabel("hidden layer (1 = next to the input)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("||dL/dh||")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
