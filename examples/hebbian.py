"""Hebbian learning without labels: Oja's and Sanger's rules find principal components, and Krotov & Hopfield's
competing hidden units learn Fashion-MNIST features that a linear read-out uses better than random ones.

Run: python examples/hebbian.py [--part pca|krotov|all] [--units 400] [--epochs 5] [--data DIR] [--png PATH]
  pca:    Oja (one unit) and Sanger (5 units) on scikit-learn's digits, centred: |cos| with PCA's components.
  krotov: KrotovHopfield (p, k, Δ) on the 60,000 Fashion-MNIST training images without labels, SGD with a
          linearly decaying rate; then the weights are frozen and a linear read-out on relu(W v) (standardised)
          is trained with Adam for --readout-epochs; the same read-out on the same number of frozen random
          features (the same initial weights, untrained) is the baseline. Saves the receptive fields as a PNG.
``--limit N`` uses the first N images only (a smoke test).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve import nn, rules  # noqa: E402
from nerve.data.datasets import load_fashion_mnist  # noqa: E402
from nerve.explain import image_grid  # noqa: E402
from nerve.optim import SGD, Adam  # noqa: E402
from nerve.optim.lr_scheduler import ExponentialLR, LambdaLR  # noqa: E402
from nerve.train import evaluate, fit  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fashion-mnist")


def cosines(w: np.ndarray, components: np.ndarray) -> list:
    return [abs(float(w[i] @ components[i])) / float(np.linalg.norm(w[i])) for i in range(len(w))]


def pca(args) -> None:
    x = load_digits().data / 16.0
    x = (x - x.mean(0)).astype(np.float32)
    components = PCA(5).fit(x).components_
    for name, rule_cls, units in (("Oja", rules.Oja, 1), ("Sanger", rules.Sanger, 5)):
        nerve.manual_seed(args.seed)
        layer = nn.Linear(64, units, bias=False)
        opt = SGD(layer.parameters(), lr=0.05)
        start = time.perf_counter()
        fit(layer, x, optimizer=opt, epochs=args.pca_epochs, batch_size=16, verbose=0, rule=rule_cls(layer),
            scheduler=ExponentialLR(opt, 0.93))
        cos = cosines(layer.weight.data, components)
        print(f"{name}: |cos| with principal components 1..{units}: " + " ".join(f"{c:.4f}" for c in cos) +
              f"  ({args.pca_epochs} epochs, {time.perf_counter() - start:.1f} s)")


def readout_accuracy(w: np.ndarray, train: tuple, test: tuple, epochs: int, seed: int) -> float:
    """Test accuracy of a linear classifier on the frozen, standardised features relu(x wᵀ)."""
    ftr, fte = np.maximum(train[0] @ w.T, 0), np.maximum(test[0] @ w.T, 0)
    mean, std = ftr.mean(0), ftr.std(0) + 1e-6
    ftr, fte = ((ftr - mean) / std).astype(np.float32), ((fte - mean) / std).astype(np.float32)
    nerve.manual_seed(seed)
    head = nn.Linear(w.shape[0], 10)
    fit(head, (ftr, train[1]), loss="cross_entropy", optimizer=Adam(head.parameters(), lr=1e-3), epochs=epochs,
        batch_size=128, verbose=0)
    return evaluate(head, (fte, test[1]), metrics=["accuracy"])["accuracy"]


def save_fields(w: np.ndarray, path: str, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(-np.abs(w).sum(1))[:100]  # the 100 units with the most weight
    grid = image_grid(w[order].reshape(-1, 28, 28), ncols=10)
    fig, ax = plt.subplots(figsize=(7, 7.4))
    ax.imshow(grid, cmap="bwr", interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, bbox_inches="tight", dpi=110)
    plt.close(fig)


def krotov(args) -> None:
    root = args.data or (SHARED if os.path.isdir(SHARED) else None)
    train = load_fashion_mnist(root=root, train=True, flatten=True)
    test = load_fashion_mnist(root=root, train=False, flatten=True)
    if args.limit:
        train, test = (train[0][:args.limit], train[1][:args.limit]), (test[0][:args.limit], test[1][:args.limit])
    nerve.manual_seed(args.seed)
    layer = nn.Linear(784, args.units, bias=False)
    nn.init.normal_(layer.weight, 0.0, 1.0)  # the authors' start: N(0, 1) weights
    random_w = layer.weight.data.copy()
    opt = SGD(layer.parameters(), lr=args.lr)
    rule = rules.KrotovHopfield(layer, p=args.p, k=args.k, delta=args.delta, normalize=True)
    start = time.perf_counter()
    fit(layer, train[0], optimizer=opt, epochs=args.epochs, batch_size=100, verbose=0, rule=rule,
        scheduler=LambdaLR(opt, lambda e: 1.0 - e / args.epochs))
    seconds = time.perf_counter() - start
    learned = readout_accuracy(layer.weight.data, train, test, args.readout_epochs, args.seed)
    random = readout_accuracy(random_w, train, test, args.readout_epochs, args.seed)
    print(f"KrotovHopfield {args.units} units, p={args.p}, k={args.k}, delta={args.delta}: {args.epochs} epochs "
          f"without labels on {len(train[0])} images in {seconds:.1f} s")
    print(f"linear read-out ({args.readout_epochs} epochs): Hebbian features {100 * learned:.2f}%, "
          f"random features {100 * random:.2f}%, difference {100 * (learned - random):+.2f} points")
    save_fields(layer.weight.data, args.png, f"Krotov-Hopfield receptive fields ({args.epochs} epochs)")
    print(f"receptive fields: {args.png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("pca", "krotov", "all"), default="all")
    parser.add_argument("--data", help="the Fashion-MNIST directory")
    parser.add_argument("--units", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=5, help="Hebbian epochs (Krotov-Hopfield)")
    parser.add_argument("--pca-epochs", type=int, default=60, dest="pca_epochs")
    parser.add_argument("--readout-epochs", type=int, default=5, dest="readout_epochs")
    parser.add_argument("--p", type=float, default=2.0)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--delta", type=float, default=0.4)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", default=os.path.join("runs", "krotov_fields.png"))
    args = parser.parse_args()
    if args.part in ("pca", "all"):
        pca(args)
    if args.part in ("krotov", "all"):
        krotov(args)
    if args.limit:
        print(f"(smoke run on {args.limit} images: the figures mean nothing)")


if __name__ == "__main__":
    main()
