"""The ``nerve`` command."""
from __future__ import annotations

import argparse
import sys


def _demo(args) -> int:
    """Train a 2-layer tanh network on generated data and print the loss falling."""
    import nerve

    nerve.manual_seed(args.seed)
    x = nerve.randn(256, 2)
    y = ((x[:, 0] * x[:, 1]) > 0).astype(nerve.float32).reshape(256, 1)
    w1 = (nerve.randn(2, 16) * 0.5).requires_grad_()
    b1 = nerve.zeros(16, requires_grad=True)
    w2 = (nerve.randn(16, 1) * 0.5).requires_grad_()
    b2 = nerve.zeros(1, requires_grad=True)
    params = [w1, b1, w2, b2]
    for step in range(args.epochs + 1):
        p = ((x @ w1 + b1).tanh() @ w2 + b2).sigmoid()
        loss = ((p - y) ** 2).mean()
        for t in params:
            t.grad = None
        loss.backward()
        with nerve.no_grad():
            for t in params:
                t -= t.grad * args.lr
        if step % max(1, args.epochs // 10) == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nerve", description="nerve: train and study neural networks")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a network")
    train.add_argument("--epochs", type=int, default=500)
    train.add_argument("--lr", type=float, default=2.0)
    train.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return _demo(args)


if __name__ == "__main__":
    sys.exit(main())
