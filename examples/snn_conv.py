"""snnTorch tutorial 6 in nerve: a convolutional SNN (12C5-MP2-64C5-MP2-FC10, Leaky β 0.5, fast_sigmoid slope 25,
50 steps) on Fashion-MNIST, trained by BPTT with the tutorial's recipe: MSE on spike counts (correct class firing
80% of the steps, the others 20%), Adam 1e-2 (betas 0.9, 0.999), batch 128, prediction by spike count.

Run: python examples/snn_conv.py [--iters 150] [--data DIR] [--test N] [--seed 0]
Prints the training accuracy every 25 iterations, the test accuracy, and seconds per iteration.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve.data.datasets import load_fashion_mnist  # noqa: E402
from nerve.models.snn import SpikingCNN  # noqa: E402
from nerve.snn import functional as SF  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fashion-mnist")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SHARED if os.path.isdir(SHARED) else None)
    parser.add_argument("--iters", type=int, default=150)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--test", type=int, default=10000, help="test images to score")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    nerve.manual_seed(args.seed)
    Xtr, ytr = load_fashion_mnist(root=args.data, train=True)
    Xte, yte = load_fashion_mnist(root=args.data, train=False)
    Xte, yte = Xte[:args.test], yte[:args.test]
    model = SpikingCNN(beta=0.5, num_steps=args.steps)
    optimizer = nerve.optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.999))
    loss_fn = SF.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(Xtr))
    start = time.perf_counter()
    for it in range(args.iters):
        idx = order[(it * args.batch) % len(Xtr):][:args.batch]
        x, y = nerve.tensor(Xtr[idx]), ytr[idx]
        optimizer.zero_grad()
        out = model(x)
        loss = loss_fn(out, y)
        loss.backward()
        optimizer.step()
        if (it + 1) % 25 == 0 or it + 1 == args.iters:
            print(f"iteration {it + 1}: loss {loss.item():.3f}  train batch accuracy {SF.accuracy_rate(out, y):.3f}",
                  flush=True)
    per_iter = (time.perf_counter() - start) / args.iters
    metric = SF.SpikeAccuracy()
    with nerve.no_grad():
        for i in range(0, len(Xte), 500):
            metric.update(model(nerve.tensor(Xte[i:i + 500])), yte[i:i + 500])
    print(f"test accuracy {metric.result():.4f} on {len(Xte)} images after {args.iters} iterations  "
          f"({per_iter:.2f} s/iteration)")


if __name__ == "__main__":
    main()
