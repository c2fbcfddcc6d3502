"""LeNet-5 on MNIST digits: trained on the first 8,000 images of the official MNIST test set, tested on its
last 2,000 (the training images are not in ../shared/data/mnist). Adam 1e-3, batch 64, 10 epochs.

Run: python examples/mnist_lenet.py [--data DIR] [--epochs 10] [--limit N]
DIR holds t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) (default ../shared/data/mnist).
Prints the accuracy on the 2,000 held-out images (the goal: at least 97%). ``--limit N`` trains on the first
N of the 8,000 only, for a quick smoke run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve import nn  # noqa: E402
from nerve.data.datasets import load_mnist  # noqa: E402
from nerve.models import LeNet5  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SHARED if os.path.isdir(SHARED) else None)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    nerve.manual_seed(args.seed)
    X, y = load_mnist(root=args.data, train=False, download=False)
    X_train, y_train, X_test, y_test = X[:8000], y[:8000], X[8000:], y[8000:]
    if args.limit:
        X_train, y_train = X_train[:args.limit], y_train[:args.limit]
    print(f"MNIST official test set: training on its first {len(X_train)} images, testing on its last "
          f"{len(X_test)}")
    model = LeNet5()
    optimizer = nerve.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    nerve.train.fit(model, (X_train, y_train), loss=nn.CrossEntropyLoss(), optimizer=optimizer,
                    epochs=args.epochs, batch_size=64, metrics=["accuracy"], verbose=2)
    elapsed = time.perf_counter() - start
    result = nerve.train.evaluate(model, (X_test, y_test), loss="cross_entropy", metrics=["accuracy"],
                                  batch_size=1000)
    print(f"held-out accuracy (last 2,000 test images) {result['accuracy']:.4f}  loss {result['loss']:.4f}  "
          f"({args.epochs} epochs in {elapsed:.1f} s)")


if __name__ == "__main__":
    main()
