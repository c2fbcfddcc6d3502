"""Transfer learning on Fashion-MNIST (the protocol of Keras' mnist_transfer_cnn): pre-train LeNet-5 on classes
0-4, then learn classes 5-9 from 10, 100 or all training images per class four ways:

  (a) frozen features + head         the pre-trained convolutional layers frozen (Keras' feature_layers), the
                                     fully connected classifier trained on (a new last layer)
  (p) linear probe                   everything pre-trained frozen but a new last layer
  (b) fine-tuning                    the whole pre-trained network and a new last layer at a small rate
                                     (--finetune-lr; --head-lr gives the new layer its own)
  (k) (a), then fine-tuning          Keras' two-phase recipe: (a), then everything unfrozen at --finetune-lr for
                                     as many steps again (twice the budget)
  (c) from scratch                   the same architecture, freshly initialised, everything trained
  (d) frozen random features + head  freshly initialised convolutional layers frozen, the classifier trained

over several seeds (which images are drawn and the new layers' initialisation), tested on the test set's images
of classes 5-9. Then the same four from nerve's shipped Fashion-MNIST network (``pretrained("fashion-lenet")``,
all ten classes) to MNIST: the official test set split into its first 8,000 images (training) and last 2,000
(test), as nerve's examples use it.

    python examples/transfer_fashion.py --data /work/shared/data
    python examples/transfer_fashion.py --tiny                       # seconds: a smoke test

Training budget per run: max(--steps, 2 epochs) Adam steps of batch 64 at lr 1e-3 (fine-tuning: see (b)).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import nerve
from nerve import nn, optim
from nerve.models import LeNet5
from nerve.models.pretrained import pretrained
from nerve.nn.freeze import freeze, trainable_parameters, unfreeze
from nerve.train import evaluate, fit

CONDITIONS = ("a", "p", "b", "k", "c", "d")
NAMES = {"a": "frozen features + head", "p": "linear probe", "b": "fine-tuning", "k": "(a), then fine-tuning",
         "c": "from scratch", "d": "frozen random + head"}


def _scaled(X, mean: float, std: float) -> np.ndarray:
    return ((X - mean) / std).astype(np.float32)


def per_class(X, y, n: int | None, seed: int):
    """``n`` images of each class drawn with ``seed`` (all of them for None)."""
    if n is None:
        return X, y
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), n, replace=False) for c in np.unique(y)])
    return X[idx], y[idx]


def build(condition: str, source, n_classes: int, seed: int, finetune_lr: float, head_lr: float):
    """The network and the optimiser of one condition; ``source`` is the pre-trained network."""
    nerve.manual_seed(seed)
    if condition in ("a", "p", "b"):
        model = LeNet5(**source.get_config())
        model.load_state_dict(source.state_dict())
    else:
        model = LeNet5(1, source.get_config()["num_classes"])
    model.replace_head(n_classes)
    children = [name for name, _ in model.named_children()]
    if condition == "p":
        freeze(model, *children[:-1])
    if condition in ("a", "d"):  # the layers before the first fully connected one
        first_fc = next(i for i, (_, m) in enumerate(model.named_children()) if isinstance(m, nn.Linear))
        freeze(model, *children[:first_fc])
    if condition == "b":  # the pre-trained layers at the small rate, the new last layer at head_lr
        head = list(model.children())[-1]
        body = [p for p in model.parameters() if all(p is not q for q in head.parameters())]
        return model, optim.Adam([{"params": body, "lr": finetune_lr},
                                  {"params": list(head.parameters()), "lr": head_lr}], lr=head_lr)
    return model, optim.Adam(trainable_parameters(model), lr=1e-3)


def run_task(title: str, source, train, test, sizes, seeds: int, steps: int, rates: tuple,
             conditions=CONDITIONS) -> dict:
    """Accuracy by (size, condition) over seeds; prints one table."""
    Xtr, ytr = train
    n_classes = len(np.unique(ytr))
    results = {}
    print(f"\n{title}: {len(Xtr)} training images, {len(test[0])} test images, {n_classes} classes")
    print(f"{'per class':>10s} " + " ".join(f"{'(' + c + ') ' + NAMES[c]:>26s}" for c in conditions))
    for n in sizes:
        row = []
        for condition in conditions:
            accs = []
            for seed in range(seeds):
                X, y = per_class(Xtr, ytr, n, seed)
                model, opt = build("a" if condition == "k" else condition, source, n_classes, seed, *rates)
                epochs = max(2, int(np.ceil(steps * 64 / len(X))))
                fit(model, (X, y), loss="cross_entropy", optimizer=opt, epochs=epochs, batch_size=64, verbose=0)
                if condition == "k":  # Keras' recipe: after (a), everything unfrozen at the small rate
                    unfreeze(model)
                    fit(model, (X, y), loss="cross_entropy", optimizer=optim.Adam(model.parameters(), lr=rates[0]),
                        epochs=epochs, batch_size=64, verbose=0)
                accs.append(evaluate(model, test, metrics=["accuracy"], batch_size=500)["accuracy"])
            results[(n, condition)] = accs
            row.append(f"{np.mean(accs):.4f} +- {np.std(accs):.4f}")
        label = "all" if n is None else str(n)
        print(f"{label:>10s} " + " ".join(f"{cell:>26s}" for cell in row), flush=True)
    return results


def verdict(results: dict, sizes) -> str:
    checks = []
    for n in sizes:
        if n is None or n > 100 or any((n, c) not in results for c in "abcd"):
            continue
        mean = {c: np.mean(results[(n, c)]) for c in "abcd"}
        checks.append(min(mean["a"], mean["b"]) > max(mean["c"], mean["d"]))
    if not checks:
        return "not measured (needs a, b, c and d at 10 or 100 images per class)"
    return "yes" if all(checks) else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("NERVE_DATA"), help="folder holding fashion-mnist/, mnist/")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pretrain-epochs", type=int, default=3, dest="pretrain_epochs")
    parser.add_argument("--steps", type=int, default=150, help="at least this many Adam steps per run")
    parser.add_argument("--finetune-lr", type=float, default=1e-4, dest="finetune_lr",
                        help="(b): the pre-trained layers' rate (default 1e-4)")
    parser.add_argument("--head-lr", type=float, dest="head_lr",
                        help="(b): the new last layer's rate (default: --finetune-lr, one small rate for all)")
    parser.add_argument("--sizes", default="10,100,all", help="images per class, comma-separated (default 10,100,all)")
    parser.add_argument("--conditions", default="apbkcd", help="which of a, p, b, k, c, d to run (default all)")
    parser.add_argument("--tiny", action="store_true", help="10 images per class, 1 seed, a few steps")
    args = parser.parse_args()
    rates = (args.finetune_lr, args.finetune_lr if args.head_lr is None else args.head_lr)
    from nerve.data.datasets import load_fashion_mnist, load_mnist

    root = (lambda name: None if args.data is None else os.path.join(args.data, name))  # noqa: E731
    X, y = load_fashion_mnist(root("fashion-mnist"), train=True)
    Xte, yte = load_fashion_mnist(root("fashion-mnist"), train=False)
    sizes = (10,) if args.tiny else tuple(None if n == "all" else int(n) for n in args.sizes.split(","))
    conditions = tuple(c for c in CONDITIONS if c in args.conditions)
    seeds, steps = (1, 5) if args.tiny else (args.seeds, args.steps)
    if args.tiny:
        X, y, Xte, yte = X[:3000], y[:3000], Xte[:500], yte[:500]
    mean, std = float(X.mean()), float(X.std())
    start = time.perf_counter()
    low, high = y < 5, y >= 5
    nerve.manual_seed(0)
    source = LeNet5(1, 5)
    history = fit(source, (_scaled(X[low], mean, std), y[low]), loss="cross_entropy",
                  optimizer=optim.Adam(source.parameters(), lr=1e-3), epochs=1 if args.tiny else args.pretrain_epochs,
                  batch_size=128, verbose=0, metrics=["accuracy"])
    low_test = (_scaled(Xte[yte < 5], mean, std), yte[yte < 5])
    pre = evaluate(source, low_test, metrics=["accuracy"], batch_size=500)["accuracy"]
    print(f"pre-trained LeNet-5 on Fashion-MNIST classes 0-4: train accuracy {history.history['accuracy'][-1]:.4f}, "
          f"test accuracy {pre:.4f} ({time.perf_counter() - start:.0f} s)")
    fashion = run_task("Fashion-MNIST classes 5-9", source, (_scaled(X[high], mean, std), y[high] - 5),
                       (_scaled(Xte[yte >= 5], mean, std), yte[yte >= 5] - 5), sizes, seeds, steps, rates, conditions)
    print(f"transfer_fashion: (a) and (b) beat (c) and (d) at 10 and 100 images per class: "
          f"{verdict(fashion, sizes)}")

    shipped = pretrained("fashion-lenet")
    info = shipped.pretrained_info
    Xm, ym = load_mnist(root("mnist"), train=False)
    split = 500 if args.tiny else 8000
    mnist_train = (_scaled(Xm[:split], info["input_mean"], info["input_std"]), ym[:split])
    mnist_test = (_scaled(Xm[-2000:], info["input_mean"], info["input_std"]), ym[-2000:])
    mnist = run_task("MNIST from the shipped Fashion-MNIST network (fashion-lenet)", shipped, mnist_train,
                     mnist_test, sizes, seeds, steps, rates, conditions)
    print(f"transfer_mnist: (a) and (b) beat (c) and (d) at 10 and 100 images per class: {verdict(mnist, sizes)}")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
