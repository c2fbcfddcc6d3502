"""Backprop, feedback alignment, sign symmetry and direct feedback alignment: same model, data, optimiser, fit.

Run: python examples/feedback_alignment.py [--part fashion|lillicrap|cnn|all] [--epochs 10] [--data DIR]
  fashion:   Fashion-MNIST (60k/10k), MLP 784-256-256-10 tanh, SGD 0.05 momentum 0.9, batch 64: test accuracy
             per epoch for each rule, and the hidden layers' angles to backprop's update at the end.
  lillicrap: Lillicrap et al.'s MNIST setup, 784-1000-10 sigmoid, squared error, on the offline split (train on
             the first 8,000 images of the official test set, test on the last 2,000): BP and FA, Adam 1e-3
             (plain SGD on squared error with 1,000 sigmoid units needs a rate below ~5e-3 to stay stable, and
             then learns slowly: 86% for BP after 20 epochs at 3e-4 with momentum 0.9).
  cnn:       SmallCNN (conv32-conv64-pool-fc128) on Fashion-MNIST, BP against DFA (Adam 1e-3, batch 64).
``--cosine`` decays the fashion part's rate to 0 over the epochs (the same schedule for every rule).
``--limit N`` trains on the first N images only (a smoke test). Prints one table per part.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
import nerve.functional as F  # noqa: E402
from nerve import nn, rules  # noqa: E402
from nerve.data.datasets import load_fashion_mnist, load_mnist  # noqa: E402
from nerve.models import SmallCNN  # noqa: E402
from nerve.optim.lr_scheduler import CosineAnnealingLR  # noqa: E402
from nerve.train import AlignmentLogger, fit  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
RULES = {"BP": lambda m, s: rules.Backprop(m), "FA": lambda m, s: rules.FeedbackAlignment(m, seed=s),
         "sign": lambda m, s: rules.FeedbackAlignment(m, feedback="sign"),
         "DFA": lambda m, s: rules.DirectFeedbackAlignment(m, seed=s)}


def shared(name: str) -> str | None:
    path = os.path.join(SHARED, name)
    return path if os.path.isdir(path) else None


def run_rule(name, build, train, test, epochs, seed, loss, optimizer, batch_size, align=True, cosine=False):
    """Train one model with one rule; (per-epoch test accuracies, final alignment angles, seconds)."""
    nerve.manual_seed(seed)
    model = build()
    rule = RULES[name](model, seed)
    callbacks = [AlignmentLogger(rule, train[0][:512], train[1][:512], loss)] if align and name != "BP" else []
    opt = optimizer(model)
    scheduler = CosineAnnealingLR(opt, T_max=epochs) if cosine else None
    start = time.perf_counter()
    hist = fit(model, train, loss=loss, optimizer=opt, epochs=epochs, batch_size=batch_size, scheduler=scheduler,
               validation_data=test, metrics=["accuracy"], rule=rule, callbacks=callbacks, verbose=0)
    seconds = time.perf_counter() - start
    angles = {k: v[-1] for k, v in hist.history.items() if k.startswith("align")}
    return hist.history["val_accuracy"], angles, seconds


def table(title: str, results: dict) -> None:
    print(f"\n{title}")
    names = list(results)
    epochs = len(next(iter(results.values()))[0])
    print("epoch " + "".join(f"{n:>9}" for n in names))
    for e in range(epochs):
        print(f"{e + 1:5d} " + "".join(f"{100 * results[n][0][e]:8.2f}%" for n in names))
    print("time  " + "".join(f"{results[n][2]:8.1f}s" for n in names))
    for n in names:
        if results[n][1]:
            print(f"{n} angles at the end (degrees): " +
                  ", ".join(f"{k} {v:.1f}" for k, v in results[n][1].items()))


def fashion(args) -> None:
    xtr, ytr = load_fashion_mnist(root=args.data or shared("fashion-mnist"), train=True, flatten=True)
    xte, yte = load_fashion_mnist(root=args.data or shared("fashion-mnist"), train=False, flatten=True)
    if args.limit:
        xtr, ytr, xte, yte = xtr[:args.limit], ytr[:args.limit], xte[:args.limit], yte[:args.limit]

    def build():
        return nn.Sequential(nn.Linear(784, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 10))

    def sgd(model):
        return nerve.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    results = {name: run_rule(name, build, (xtr, ytr), (xte, yte), args.epochs, args.seed, "cross_entropy", sgd, 64,
                              cosine=args.cosine) for name in RULES}
    schedule = ", cosine decay over the epochs" if args.cosine else ""
    table(f"Fashion-MNIST, MLP 784-256-256-10 tanh, SGD 0.05 momentum 0.9{schedule}, batch 64, {len(xtr)} training "
          "images: test accuracy", results)
    for name in ("FA", "DFA"):
        print(f"fashion {name} gap to BP after {args.epochs} epochs: "
              f"{100 * (results['BP'][0][-1] - results[name][0][-1]):.2f} points")


def lillicrap(args) -> None:
    x, _ = load_mnist(root=args.mnist or shared("mnist"), train=False, flatten=True)
    _, y = load_mnist(root=args.mnist or shared("mnist"), train=False, flatten=True)
    xtr, ytr, xte, yte = x[:8000], y[:8000], x[8000:], y[8000:]
    if args.limit:
        xtr, ytr = xtr[:args.limit], ytr[:args.limit]

    def build():
        return nn.Sequential(nn.Linear(784, 1000), nn.Sigmoid(), nn.Linear(1000, 10))

    def squared_error(out, target):
        return 0.5 * ((out - F.one_hot(target, 10).astype(out.dtype)) ** 2).sum(1).mean()

    def adam(model):
        return nerve.optim.Adam(model.parameters(), lr=1e-3)

    results = {name: run_rule(name, build, (xtr, ytr), (xte, yte), args.epochs, args.seed, squared_error, adam, 32)
               for name in ("BP", "FA")}
    table("MNIST split (train 8,000 / test 2,000 of the official test set), 784-1000-10 sigmoid, squared error, "
          "Adam 1e-3, batch 32: test accuracy", results)


def cnn(args) -> None:
    root = args.data or shared("fashion-mnist")
    xtr, ytr = load_fashion_mnist(root=root, train=True, flatten=False)
    xte, yte = load_fashion_mnist(root=root, train=False, flatten=False)
    xtr, xte = xtr.reshape(-1, 1, 28, 28), xte.reshape(-1, 1, 28, 28)
    if args.limit:
        xtr, ytr, xte, yte = xtr[:args.limit], ytr[:args.limit], xte[:args.limit], yte[:args.limit]

    def adam(model):
        return nerve.optim.Adam(model.parameters(), lr=1e-3)

    epochs = min(args.epochs, args.cnn_epochs)
    results = {name: run_rule(name, SmallCNN, (xtr, ytr), (xte, yte), epochs, args.seed, "cross_entropy", adam, 64,
                              align=False) for name in ("BP", "DFA")}
    table(f"Fashion-MNIST, SmallCNN, Adam 1e-3, batch 64, {len(xtr)} training images: test accuracy", results)
    print(f"cnn DFA gap to BP after {epochs} epochs: {100 * (results['BP'][0][-1] - results['DFA'][0][-1]):.2f} "
          "points")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("fashion", "lillicrap", "cnn", "all"), default="all")
    parser.add_argument("--data", help="the Fashion-MNIST directory")
    parser.add_argument("--mnist", help="the MNIST directory (the official test set is enough)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--cnn-epochs", type=int, default=3, dest="cnn_epochs")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--cosine", action="store_true", help="fashion: the rate decays to 0 over the epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for part, fn in (("fashion", fashion), ("lillicrap", lillicrap), ("cnn", cnn)):
        if args.part in (part, "all"):
            fn(args)
    if args.limit:
        print(f"(smoke run on {args.limit} images: the figures mean nothing)")


if __name__ == "__main__":
    main()
