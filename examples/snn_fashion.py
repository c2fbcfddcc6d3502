"""snnTorch tutorial 5 in nerve: a 784-1000-10 spiking network (Leaky, β 0.95, 25 steps) trained by BPTT.

Recipe "tutorial": the image as a constant input current, cross-entropy on the output membrane summed over the
steps, Adam 5e-4 (betas 0.9, 0.999), batch 128, 1 epoch, prediction by spike count. Recipe "better": the same
network with cross-entropy on the spike counts plus the membrane loss, Adam 2e-3 with a cosine schedule, and
``--epochs`` epochs (default 4). Datasets: Fashion-MNIST (60k train / 10k test) or the MNIST split (the first
8,000 images of the official test set to train, the last 2,000 to test).

Run: python examples/snn_fashion.py [--dataset fashion-mnist|mnist] [--recipe tutorial|better] [--seeds 0,1,2]
     [--data DIR] [--limit N] [--raster runs/snn_raster.png]
Prints one line per seed (test accuracy, seconds per iteration, firing rates) and the mean over seeds.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve import snn  # noqa: E402
from nerve.data.datasets import load_fashion_mnist, load_mnist  # noqa: E402
from nerve.models.snn import SpikingMLP  # noqa: E402
from nerve.snn import functional as SF  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def load(dataset: str, root: str | None):
    """(X_train, y_train, X_test, y_test), pixels in [0, 1] as snnTorch's ToTensor gives them."""
    if dataset == "fashion-mnist":
        root = root or (os.path.join(SHARED, "fashion-mnist") if os.path.isdir(SHARED) else None)
        Xtr, ytr = load_fashion_mnist(root=root, train=True, flatten=True)
        Xte, yte = load_fashion_mnist(root=root, train=False, flatten=True)
        return Xtr, ytr, Xte, yte
    root = root or (os.path.join(SHARED, "mnist") if os.path.isdir(SHARED) else None)
    X, y = load_mnist(root=root, train=False, flatten=True, download=False)
    return X[:8000], y[:8000], X[8000:], y[8000:]


class _Loss:
    """The 'better' recipe's loss: cross-entropy on spike counts plus the tutorial's membrane loss / num_steps."""

    def __init__(self) -> None:
        self.count, self.mem = SF.ce_count_loss(), SF.ce_membrane_loss()

    def __call__(self, output, target):
        return self.count(output, target) + self.mem(output, target) * (1.0 / output[1].shape[0])


def run(args, seed: int, data) -> tuple[float, float, dict, SpikingMLP]:
    Xtr, ytr, Xte, yte = data
    nerve.manual_seed(seed)
    model = SpikingMLP(784, 1000, 10, beta=0.95, num_steps=args.steps)
    if args.recipe == "tutorial":
        optimizer = nerve.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.999))
        loss, scheduler, epochs = SF.ce_membrane_loss(), None, args.epochs or 1
    else:
        epochs = args.epochs or 4
        optimizer = nerve.optim.Adam(model.parameters(), lr=2e-3)
        steps = epochs * -(-len(Xtr) // 128)
        scheduler = nerve.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        loss = _Loss()
    callbacks = []
    if scheduler is not None:
        callbacks.append(nerve.train.LearningRateScheduler(scheduler, interval="batch"))
    start, cpu = time.perf_counter(), time.process_time()
    nerve.train.fit(model, (Xtr, ytr), loss=loss, optimizer=optimizer, epochs=epochs, batch_size=128,
                    callbacks=callbacks, verbose=0)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    iters = epochs * -(-len(Xtr) // 128)
    result = nerve.train.evaluate(model, (Xte, yte), metrics=[SF.SpikeAccuracy()], batch_size=1000)
    with snn.Recorder(model) as rec, nerve.no_grad():
        model(nerve.tensor(Xte[:1000]))
    return result["accuracy"], elapsed / iters, rec.stats(), model, (elapsed, cpu)


def raster(model: SpikingMLP, X, path: str) -> None:
    spikes = []
    handle = model.lif1.register_forward_hook(lambda m, a, out: spikes.append(out[0].numpy()[0]))
    with nerve.no_grad():
        _, mem = model(nerve.tensor(X[:1]))
    handle.remove()
    snn.spikeplot.raster(np.stack(spikes), path, title="hidden layer, first test image", max_neurons=200)
    print(f"raster: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("fashion-mnist", "mnist"), default="fashion-mnist")
    parser.add_argument("--recipe", choices=("tutorial", "better"), default="tutorial")
    parser.add_argument("--data", default=None, help="directory of the IDX files")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=0, help="0: the recipe's (tutorial 1, better 4)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--limit", type=int, default=0, help="train on the first N images only (smoke runs)")
    parser.add_argument("--raster", default="runs/snn_raster.png", help="PNG path; empty to skip")
    args = parser.parse_args()
    Xtr, ytr, Xte, yte = load(args.dataset, args.data)
    if args.limit:
        Xtr, ytr, Xte, yte = Xtr[:args.limit], ytr[:args.limit], Xte[:args.limit], yte[:args.limit]
    accs = []
    model = None
    for seed in [int(s) for s in args.seeds.split(",")]:
        acc, per_iter, stats, model, (wall, cpu) = run(args, seed, (Xtr, ytr, Xte, yte))
        accs.append(acc)
        print(f"seed {seed}: test accuracy {acc:.4f}  {per_iter * 1000:.1f} ms/iteration  firing rate hidden "
              f"{stats['lif1.rate']:.3f} output {stats['lif2.rate']:.3f}  silent hidden {stats['lif1.silent']:.3f}  "
              f"synops/sample {stats['synops']:.3g}  training {wall:.0f} s wall, {cpu:.0f} s CPU", flush=True)
    print(f"{args.dataset} {args.recipe}: mean test accuracy {np.mean(accs):.4f} over seeds {args.seeds} "
          f"({', '.join(f'{a:.4f}' for a in accs)})")
    if args.raster:
        raster(model, Xte, args.raster)


if __name__ == "__main__":
    main()
