"""Integrated gradients (50 Gauss-Legendre steps) over 100 images on SmallCNN: nerve vs Captum on PyTorch.

Run: python bench/explain.py [--images 100] [--steps 50] [--internal-batch 500] [--rounds 5] [--quick]
Prints seconds per attribution call (best and median of the rounds) and the ratio nerve / Captum per round. Both
run the same untrained SmallCNN weights layout (conv32-conv64-maxpool-fc128-fc10) with internal_batch_size scaled
inputs per forward/backward. Captum runs only where torch and captum are installed (never a dependency of nerve);
each library lives in its own process and they take turns (bench/_paired.py).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _paired import compare  # noqa: E402


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(0).random((n, 1, 28, 28), dtype=np.float32)


def setup(lib: str, images: int, steps: int, internal: int):
    """A burst runner: ``run(k)`` computes the IG attributions of ``images`` images k times; returns seconds."""
    import time
    x = _images(images)
    target = list(range(10)) * (images // 10) + list(range(images % 10))
    if lib == "nerve":
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
        import nerve
        from nerve.explain import IntegratedGradients
        from nerve.models import SmallCNN
        nerve.manual_seed(0)
        model = SmallCNN()
        model.eval()
        ig = IntegratedGradients(model)

        def one():
            ig.attribute(x, target=target, n_steps=steps, internal_batch_size=internal)
    else:
        import torch
        from captum.attr import IntegratedGradients as CaptumIG
        torch.manual_seed(0)
        tnn = torch.nn
        model = tnn.Sequential(tnn.Conv2d(1, 32, 3), tnn.ReLU(), tnn.Conv2d(32, 64, 3), tnn.ReLU(), tnn.MaxPool2d(2),
                               tnn.Flatten(), tnn.Linear(9216, 128), tnn.ReLU(), tnn.Linear(128, 10)).eval()
        ig = CaptumIG(model)
        xt = torch.from_numpy(x)

        def one():
            ig.attribute(xt, target=target, n_steps=steps, internal_batch_size=internal)

    def run(k: int) -> float:
        t0 = time.perf_counter()
        for _ in range(k):
            one()
        return time.perf_counter() - t0
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--internal-batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10 images, 5 steps, 2 rounds (smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.images, args.steps, args.rounds, args.internal_batch = 10, 5, 2, 50
    have_captum = all(importlib.util.find_spec(m) is not None for m in ("torch", "captum"))
    setups = {"nerve": (setup, "nerve", args.images, args.steps, args.internal_batch)}
    if have_captum:
        setups["Captum"] = (setup, "captum", args.images, args.steps, args.internal_batch)
    other = "Captum installed" if have_captum else "torch/captum not installed: nerve alone"
    print(f"IntegratedGradients, {args.steps} Gauss-Legendre steps, {args.images} images 1x28x28, SmallCNN, "
          f"internal_batch_size {args.internal_batch}; {other}")
    results = compare(setups, 1, args.rounds)
    print(f"{'':<10}{'best s':>9}{'median s':>10}{'nerve / this':>14}")
    for name, r in results.items():
        print(f"{name:<10}{r['best'] / 1e3:>9.3f}{r['median'] / 1e3:>10.3f}{r['ratio']:>14.2f}")
    nerve_s = results["nerve"]["median"] / 1e3
    line = f"result: nerve {nerve_s:.3f} s per call"
    if have_captum:
        line += f", nerve / Captum {results['Captum']['ratio']:.2f} (target <= 1.0)"
    print(line)


if __name__ == "__main__":
    main()
