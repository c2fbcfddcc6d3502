"""MNIST-1D (Greydanus 2020) with a bidirectional GRU reading each sequence one value per step, as in the
paper's GRU baseline (published test accuracy 91%); the goal here is at least 88%.

Run: python examples/mnist1d_gru.py [--epochs 100] [--hidden 32] [--limit N]
The data set is generated locally by the ``mnist1d`` package (pip install mnist1d) with its default arguments:
4,000 training and 1,000 test sequences of length 40, 10 classes. The classifier is a linear layer over the
GRU's outputs at all 40 steps (both directions), trained with Adam (learning rate decayed by a cosine),
batch 100. Measured with the defaults: 94.3% test accuracy, 100 s of training on one core.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve import nn  # noqa: E402


def load() -> tuple:
    """MNIST-1D as float32 arrays (N, 40, 1) (one feature per step) and int64 labels."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        sys.exit("this example needs the mnist1d package: pip install mnist1d")
    data = make_dataset(get_dataset_args())
    x, x_test = (np.asarray(data[k], dtype=np.float32)[:, :, None] for k in ("x", "x_test"))
    y, y_test = (np.asarray(data[k], dtype=np.int64) for k in ("y", "y_test"))
    return x, y, x_test, y_test


class GRUClassifier(nn.Module):
    """Bidirectional GRU over the sequence, then one linear layer over all its outputs."""

    def __init__(self, hidden: int, length: int, classes: int = 10) -> None:
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden * length, classes)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out.flatten(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training samples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    nerve.manual_seed(args.seed)
    X_train, y_train, X_test, y_test = load()
    if args.limit:
        X_train, y_train = X_train[:args.limit], y_train[:args.limit]
    print(f"MNIST-1D: {len(X_train)} training and {len(X_test)} test sequences of length {X_train.shape[1]}")
    model = GRUClassifier(args.hidden, X_train.shape[1])
    optimizer = nerve.optim.Adam(model.parameters(), lr=args.lr)
    steps = args.epochs * -(-len(X_train) // 100)
    schedule = nerve.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(args.epochs, 1))
    start = time.perf_counter()
    history = nerve.train.fit(model, (X_train, y_train), loss=nn.CrossEntropyLoss(), optimizer=optimizer,
                              epochs=args.epochs, batch_size=100, metrics=["accuracy"], verbose=0,
                              callbacks=[nerve.train.LearningRateScheduler(schedule)])
    elapsed = time.perf_counter() - start
    result = nerve.train.evaluate(model, (X_test, y_test), loss="cross_entropy", metrics=["accuracy"],
                                  batch_size=1000)
    print(f"train accuracy {history.history['accuracy'][-1]:.4f}  test accuracy {result['accuracy']:.4f}  "
          f"test loss {result['loss']:.4f}  ({args.epochs} epochs, {steps} steps, in {elapsed:.1f} s; "
          f"goal >= 0.88)")


if __name__ == "__main__":
    main()
