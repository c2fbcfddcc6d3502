"""Adversarial examples and adversarial training on MNIST (or Fashion-MNIST) with nerve.robust.

Trains a CNN (conv5x5(16)-pool-conv5x5(32)-pool-fc100-fc10) cleanly, with FGSM mixing (Goodfellow et al. 2015)
and with PGD (Madry et al. 2018), then tables each model's accuracy under FGSM and PGD-20 at each ε, and checks
PGD against the gradient-free Square attack on a subset (the check against gradient masking).

MNIST: trains on the first 8,000 images of the official MNIST test set and tests on its last 2,000 (the training
images are not in ../shared/data/mnist); ε ∈ {0, 0.05, 0.1, 0.2, 0.3}. Fashion-MNIST (``--dataset fashion``):
trains on the first ``--train`` training images, tests on the first ``--test`` test images; ε ∈ {0, 0.05, 0.1}.

Run: python examples/adversarial_mnist.py [--dataset mnist|fashion] [--data DIR] [--epochs 8] [--out runs]
Tiny run: --limit 256 --test 64 --epochs 1 --train-steps 2 --steps 2 --square-n 16 --square-queries 5
``--save DIR`` keeps the trained weights; ``--load DIR --test-start K --test N`` evaluates them on test images
K..K+N-1 without training (slices of one test set can then be evaluated in parallel processes).
Writes OUT/adversarial_<dataset>_grid.png (originals, amplified perturbations and PGD examples against the first
model, with their predictions) and OUT/adversarial_<dataset>_curve.png (accuracy against ε of the last model).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve import nn  # noqa: E402
from nerve.data.datasets import load_fashion_mnist, load_mnist  # noqa: E402
from nerve.robust import (  # noqa: E402
    FGSM, PGD, AdversarialStep, Square, plot_adversarial_examples, robust_accuracy,
)

HERE = os.path.dirname(__file__)
SHARED = {"mnist": os.path.join(HERE, "..", "..", "shared", "data", "mnist"),
          "fashion": os.path.join(HERE, "..", "..", "shared", "data", "fashion-mnist")}
EPS = {"mnist": [0.0, 0.05, 0.1, 0.2, 0.3], "fashion": [0.0, 0.05, 0.1]}
FASHION = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]


def cnn() -> nn.Module:
    """Madry et al.'s MNIST network at half the filters and a tenth of the hidden units."""
    return nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 7 * 7, 100), nn.ReLU(), nn.Linear(100, 10))


def load(args):
    if args.dataset == "mnist":
        X, y = load_mnist(root=args.data, train=False, download=False)
        X_train, y_train, X_test, y_test = X[:8000], y[:8000], X[8000:], y[8000:]
    else:
        X_train, y_train = load_fashion_mnist(root=args.data, train=True, download=False)
        X_test, y_test = load_fashion_mnist(root=args.data, train=False, download=False)
        X_train, y_train = X_train[:args.train], y_train[:args.train]
    if args.limit:
        X_train, y_train = X_train[:args.limit], y_train[:args.limit]
    start = args.test_start
    X_test, y_test = X_test[start:start + args.test if args.test else None], y_test[start:start + args.test
                                                                                 if args.test else None]
    return X_train, y_train, X_test, y_test


def train(method: str, X, y, args) -> tuple[nn.Module, float]:
    """A model trained cleanly or adversarially (or loaded from --load); returns it and the seconds per epoch."""
    nerve.manual_seed(args.seed)
    model = cnn()
    weights = f"adversarial_{args.dataset}_{method}.safetensors"
    if args.load:
        model.load_state_dict(nerve.load(os.path.join(args.load, weights)))
        print(f"--- loaded {method}-trained weights from {os.path.join(args.load, weights)}")
        return model, float("nan")
    optimizer = nerve.optim.Adam(model.parameters(), lr=1e-3)
    eps = EPS[args.dataset][-1]
    step = None
    if method != "clean":
        ramp = args.ramp * ((len(X) + args.batch - 1) // args.batch)
        step = AdversarialStep(method, eps=eps, steps=args.train_steps, ramp=ramp if method == "pgd" else 0)
    print(f"--- training: {method}" + (f" (eps {eps}, {args.train_steps} PGD steps, ε ramp over {args.ramp} epochs)"
                                      if method == "pgd" else f" (eps {eps})" if step else ""))
    start = time.perf_counter()
    nerve.train.fit(model, (X, y), loss=nn.CrossEntropyLoss() if step is None else None, optimizer=optimizer,
                    train_step=step, epochs=args.epochs, batch_size=args.batch,
                    metrics=["accuracy"] if step is None else [], verbose=2)
    seconds = (time.perf_counter() - start) / max(args.epochs, 1)
    if args.save:
        os.makedirs(args.save, exist_ok=True)
        nerve.save(model.state_dict(), os.path.join(args.save, weights))
    return model, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["mnist", "fashion"], default="mnist")
    parser.add_argument("--data", default=None, help="directory of the IDX files (default ../shared/data/...)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--methods", default="clean,fgsm,pgd", help="comma-separated: clean, fgsm, pgd, fast, trades")
    parser.add_argument("--train-steps", type=int, default=10, help="PGD steps while training (alpha 2.5 eps/steps)")
    parser.add_argument("--ramp", type=int, default=1, help="epochs over which PGD training's eps grows from 0")
    parser.add_argument("--steps", type=int, default=20, help="PGD steps when evaluating (alpha 2.5 eps/steps)")
    parser.add_argument("--square-n", type=int, default=500, help="test images for the Square-vs-PGD check")
    parser.add_argument("--square-queries", type=int, default=1000)
    parser.add_argument("--train", type=int, default=8000, help="Fashion-MNIST: first N training images")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    parser.add_argument("--test", type=int, default=None, help="test on N test images only")
    parser.add_argument("--test-start", type=int, default=0, help="the first test image used (default 0)")
    parser.add_argument("--save", default=None, help="folder to save each trained model's weights in")
    parser.add_argument("--load", default=None, help="folder of weights saved by --save: evaluate, do not train")
    parser.add_argument("--out", default="runs", help="folder for the PNGs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.data = args.data or (SHARED[args.dataset] if os.path.isdir(SHARED[args.dataset]) else None)
    X_train, y_train, X_test, y_test = load(args)
    eps_list, top = EPS[args.dataset], EPS[args.dataset][-1]
    print(f"{args.dataset}: training on {len(X_train)} images, testing on {len(X_test)}; eps {eps_list}")
    os.makedirs(args.out, exist_ok=True)
    summary = []
    for method in args.methods.split(","):
        model, per_epoch = train(method, X_train, y_train, args)
        nerve.manual_seed(args.seed)
        attacks = [FGSM(model, eps=top), PGD(model, eps=top, alpha=2.5 * top / args.steps, steps=args.steps)]
        report = robust_accuracy(model, (X_test, y_test), attacks, eps=eps_list)
        print(f"\n{method}-trained model ({per_epoch:.1f} s per training epoch)\n{report.table()}")
        n = min(args.square_n, len(X_test))
        sq = robust_accuracy(model, (X_test[:n], y_test[:n]),
                             [Square(model, eps=top, n_queries=args.square_queries), attacks[1]], eps=[top])
        square_acc, pgd_acc = (row[0] for row in sq.accuracy.values())
        print(f"gradient-masking check on the first {n} test images at eps {top}: Square ({args.square_queries} "
              f"queries) {square_acc:.4f}, PGD-{args.steps} {pgd_acc:.4f}, both {sq.robust['Linf'][0]:.4f}")
        pgd_row = list(report.accuracy.values())[1]
        summary.append((method, report.clean, pgd_row[-1], square_acc, pgd_acc, per_epoch))
        if method == args.methods.split(",")[-1]:
            report.plot(os.path.join(args.out, f"adversarial_{args.dataset}_curve.png"),
                        title=f"{args.dataset}, {method}-trained CNN")
        if method == args.methods.split(",")[0]:
            plot_adversarial_examples(PGD(model, eps=top, alpha=2.5 * top / args.steps, steps=args.steps),
                                      X_test[:10], y_test[:10],
                                      os.path.join(args.out, f"adversarial_{args.dataset}_grid.png"),
                                      class_names=FASHION if args.dataset == "fashion" else None)
    print(f"\nsummary ({args.dataset}, eps {top}, PGD-{args.steps}):")
    for method, clean, pgd, square, pgd_sub, per_epoch in summary:
        print(f"{method:<6} clean {clean:.4f}  PGD {pgd:.4f}  Square-subset {square:.4f}  PGD-subset {pgd_sub:.4f}  "
              f"{per_epoch:.1f} s/epoch")


if __name__ == "__main__":
    main()
