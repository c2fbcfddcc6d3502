"""Fashion-MNIST with an MLP 784-256-128-64-10 (ReLU), Adam 1e-3, batch 128, 5 epochs.

Run: python examples/fashion_mlp.py [--data DIR]
DIR holds the four Fashion-MNIST IDX files (default: ../shared/data/fashion-mnist when it exists, else
nerve's own search: $NERVE_DATA, Debian's package, the cache, then a download). Prints the test accuracy;
PyTorch on this machine reaches 87.3% with the same setup.
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

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fashion-mnist")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SHARED if os.path.isdir(SHARED) else None)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    nerve.manual_seed(args.seed)
    X_train, y_train = load_fashion_mnist(root=args.data, train=True, flatten=True)
    X_test, y_test = load_fashion_mnist(root=args.data, train=False, flatten=True)
    model = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )
    optimizer = nerve.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    nerve.train.fit(model, (X_train, y_train), loss=nn.CrossEntropyLoss(), optimizer=optimizer,
                    epochs=args.epochs, batch_size=128, metrics=["accuracy"], verbose=2)
    elapsed = time.perf_counter() - start
    result = nerve.train.evaluate(model, (X_test, y_test), loss="cross_entropy", metrics=["accuracy"],
                                  batch_size=1000)
    print(f"test accuracy {result['accuracy']:.4f}  test loss {result['loss']:.4f}  "
          f"({args.epochs} epochs in {elapsed:.1f} s)")


if __name__ == "__main__":
    main()
