"""Unsupervised STDP on MNIST, Diehl & Cook (2015) style: Poisson input, an excitatory layer with lateral
inhibition and adaptive thresholds, pair-based STDP (BindsNET's PostPre: A+ 1e-2, A- 1e-4, nearest traces,
τ 20 steps, weights in [0, 1], each neuron's incoming weights normalised to sum 78.4), then each neuron is
labelled with the class it fires most for, and a test image is classified by the class whose neurons fire most
(an image with fewer than 5 spikes is shown again at a higher rate, as in the paper; in training it is not).

The MNIST split: train on the first 8,000 images of the official test set, test on the last 2,000. Compared
with the same network with frozen random weights (normalised the same way) and the same label assignment.

Run: python examples/stdp_mnist.py [--neurons 100] [--epochs 1] [--data DIR] [--limit N] [--fields PATH]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve.data.datasets import load_mnist  # noqa: E402
from nerve.models.snn import DiehlCook, assign_labels, predict_by_assignment  # noqa: E402
from nerve.rules.stdp import STDP  # noqa: E402
from nerve.snn import spikeplot  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")


def counts(model: DiehlCook, X: np.ndarray, batch: int = 250, min_spikes: int = 5, tries: int = 5) -> np.ndarray:
    """Spike counts per image and neuron, without learning (eval mode: thresholds frozen). As Diehl & Cook do,
    an image that gives fewer than ``min_spikes`` spikes is shown again with a higher input rate (+ half the
    base rate each time, their +32 Hz on 64 Hz), up to ``tries`` times."""
    model.eval()
    base, out = model.rate, []
    with nerve.no_grad():
        for i in range(0, len(X), batch):
            xb = X[i:i + batch]
            c = model(nerve.tensor(xb)).numpy().sum(0)
            for k in range(1, tries + 1):
                weak = np.nonzero(c.sum(1) < min_spikes)[0]
                if not len(weak):
                    break
                model.rate = base * (1 + 0.5 * k)
                c[weak] = model(nerve.tensor(xb[weak])).numpy().sum(0)
            model.rate = base
            out.append(c)
    model.train()
    return np.concatenate(out)


def readout(model, Xtr, ytr, Xte, yte) -> tuple[float, float]:
    assignments = assign_labels(counts(model, Xtr), ytr)
    test_counts = counts(model, Xte)
    pred = predict_by_assignment(test_counts, assignments)
    return float((pred == yte).mean()), float(test_counts.sum(1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SHARED if os.path.isdir(SHARED) else None)
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100, help="time steps per image")
    parser.add_argument("--inhibition", type=float, default=30.0, help="lateral inhibition per spike")
    parser.add_argument("--theta-plus", type=float, default=0.5, help="threshold increase per spike")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="use the first N training and test images only")
    parser.add_argument("--fields", default="runs/stdp_fields.png", help="receptive-field PNG; empty to skip")
    args = parser.parse_args()
    X, y = load_mnist(root=args.data, train=False, flatten=True, download=False)
    Xtr, ytr, Xte, yte = X[:8000], y[:8000], X[8000:], y[8000:]
    if args.limit:
        Xtr, ytr, Xte, yte = Xtr[:args.limit], ytr[:args.limit], Xte[:args.limit], yte[:args.limit]

    nerve.manual_seed(args.seed)
    net = {"n_neurons": args.neurons, "num_steps": args.steps, "w_inh": args.inhibition,
           "theta_plus": args.theta_plus}
    frozen = DiehlCook(**net)
    nerve.manual_seed(args.seed)
    model = DiehlCook(**net)
    rule = STDP(model, a_plus=1e-2, a_minus=1e-4, trace="nearest", tau_pre=20.0, tau_post=20.0, w_max=1.0,
                norm=78.4)
    STDP(frozen, norm=78.4).constrain()
    rule.constrain()
    # NOTE: STDP.step averages ΔW over the batch; lr = batch size applies the per-image sum, as online STDP would.
    optimizer = nerve.optim.SGD(model.fc.parameters(), lr=float(args.batch))
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    spikes = []
    for _ in range(args.epochs):
        order = rng.permutation(len(Xtr))
        for i in range(0, len(order), args.batch):
            optimizer.zero_grad()
            logs = rule.step(nerve.tensor(Xtr[order[i:i + args.batch]]))
            optimizer.step()
            rule.constrain()
            spikes.append(logs["post_spikes"])
    train_time = time.perf_counter() - start
    acc, rate = readout(model, Xtr, ytr, Xte, yte)
    acc0, rate0 = readout(frozen, Xtr, ytr, Xte, yte)
    total = time.perf_counter() - start
    print(f"STDP {args.neurons} neurons: test accuracy {acc:.4f} ({rate:.1f} spikes/image); frozen random weights "
          f"{acc0:.4f} ({rate0:.1f} spikes/image); training {train_time:.0f} s, total {total:.0f} s, "
          f"{len(Xtr)} training images x {args.epochs} epochs; spikes/image in training first "
          f"{np.mean(spikes[:5]):.1f} last {np.mean(spikes[-5:]):.1f}")
    if args.fields:
        spikeplot.receptive_fields(model.fc.weight.numpy(), args.fields,
                                   title=f"STDP receptive fields ({args.neurons} neurons, accuracy {acc:.3f})")
        print(f"receptive fields: {args.fields}")


if __name__ == "__main__":
    main()
