"""Fashion-MNIST with the classic small CNN (conv32-conv64-maxpool-fc128-fc10), Adam 1e-3, batch 64, 3 epochs.

Run: python examples/fashion_cnn.py [--data DIR] [--epochs 3] [--limit N]
DIR holds the four Fashion-MNIST IDX files (default: ../shared/data/fashion-mnist when it exists, else nerve's
own search and download). Trains on the 60,000 training images, prints the accuracy on the 10,000 test images
(the goal: at least 90%). ``--limit N`` keeps the first N training and test images, for a quick smoke run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve import nn  # noqa: E402
from nerve.data.datasets import load_fashion_mnist  # noqa: E402
from nerve.models import SmallCNN  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fashion-mnist")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SHARED if os.path.isdir(SHARED) else None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N train and test images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    nerve.manual_seed(args.seed)
    X_train, y_train = load_fashion_mnist(root=args.data, train=True)
    X_test, y_test = load_fashion_mnist(root=args.data, train=False)
    if args.limit:
        X_train, y_train, X_test, y_test = X_train[:args.limit], y_train[:args.limit], X_test[:args.limit], \
            y_test[:args.limit]
    print(f"Fashion-MNIST: {len(X_train)} training and {len(X_test)} test images {X_train.shape[1:]}")
    model = SmallCNN()
    optimizer = nerve.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    nerve.train.fit(model, (X_train, y_train), loss=nn.CrossEntropyLoss(), optimizer=optimizer,
                    epochs=args.epochs, batch_size=64, metrics=["accuracy"], verbose=2)
    elapsed = time.perf_counter() - start
    result = nerve.train.evaluate(model, (X_test, y_test), loss="cross_entropy", metrics=["accuracy"],
                                  batch_size=1000)
    print(f"test accuracy {result['accuracy']:.4f}  test loss {result['loss']:.4f}  "
          f"({args.epochs} epochs in {elapsed:.1f} s)")


if __name__ == "__main__":
    main()
