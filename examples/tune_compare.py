"""Grid, random and TPE search at equal budgets (Bergstra & Bengio 2012): a small MLP on a Fashion-MNIST subset,
the same three-parameter space (learning rate, width, dropout), 25 trials per search, several seeds.

    python examples/tune_compare.py --data /work/shared/data            # 5 seeds x 3 samplers x 25 trials
    python examples/tune_compare.py --tiny                              # seconds: a smoke test

Each trial trains MLP 784-width-10 with Adam for --epochs epochs on --train images of the training set and is
scored by accuracy on the next --val training images; the test accuracy (first --test images of the test set,
never used for choosing) of each search's best trial is reported. The grid is 3 x 3 x 3 points (27 configurations,
25 of them tried in a seeded random order); TPE starts with 10 random trials. Writes the best-so-far curves (median
over seeds, min-max band) to --plot.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import nerve
from nerve import optim
from nerve.models import MLP
from nerve.train import evaluate, fit
from nerve.tune import intrange, loguniform, search, uniform

SAMPLERS = ("grid", "random", "tpe")
SPACE = {"lr": loguniform(1e-4, 3e-1), "width": intrange(16, 256, log=True), "dropout": uniform(0.0, 0.6)}


def load(data: str | None, n_train: int, n_val: int, n_test: int):
    from nerve.data.datasets import load_fashion_mnist

    root = None if data is None else os.path.join(data, "fashion-mnist")
    X, y = load_fashion_mnist(root, train=True, flatten=True)
    Xte, yte = load_fashion_mnist(root, train=False, flatten=True)
    mean, std = X[:n_train].mean(), X[:n_train].std()
    scale = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
    return ((scale(X[:n_train]), y[:n_train]), (scale(X[n_train:n_train + n_val]), y[n_train:n_train + n_val]),
            (scale(Xte[:n_test]), yte[:n_test]))


def make_objective(sets, epochs: int, seed: int):
    train, val, test = sets

    def objective(params: dict, trial) -> float:
        nerve.manual_seed(seed)
        model = MLP(784, [params["width"]], 10, dropout=params["dropout"])
        fit(model, train, loss="cross_entropy", optimizer=optim.Adam(model.parameters(), lr=params["lr"]),
            epochs=epochs, batch_size=64, verbose=0)
        trial.set_user_attr("test_accuracy", evaluate(model, test, metrics=["accuracy"], batch_size=500)["accuracy"])
        return evaluate(model, val, metrics=["accuracy"], batch_size=500)["accuracy"]
    return objective


def best_so_far(values: list) -> np.ndarray:
    return np.maximum.accumulate(np.nan_to_num(np.array(values, dtype=float), nan=0.0))


def plot(curves: dict, path: str, n_trials: int) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no plot: matplotlib is not installed")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = np.arange(1, n_trials + 1)
    # NOTE: TPE's first 10 trials are random sampling with the same seed, so the two curves coincide there;
    # random is drawn wide and dashed under TPE so that both stay visible.
    styles = {"grid": ("tab:gray", "-", 1.8), "random": ("tab:blue", "--", 3.5), "tpe": ("tab:red", "-", 1.6)}
    for name, runs in curves.items():
        runs = np.array(runs)
        color, line, width = styles[name]
        ax.plot(x, np.median(runs, axis=0), color=color, linestyle=line, linewidth=width,
                label=f"{name} (median of {len(runs)} seeds)")
        ax.fill_between(x, runs.min(axis=0), runs.max(axis=0), color=color, alpha=0.12)
    ax.set_xlabel("trial")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title("Grid vs random vs TPE, equal budgets (band: min-max over seeds)\n"
                 "TPE's first 10 trials are random's (same seed)", fontsize=10)
    low = min(np.percentile(np.array(r)[:, min(4, n_trials - 1)], 0) for r in curves.values())
    ax.set_ylim(max(low - 0.01, 0), None)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("NERVE_DATA"), help="folder holding fashion-mnist/")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train", type=int, default=5000)
    parser.add_argument("--val", type=int, default=2000)
    parser.add_argument("--test", type=int, default=5000)
    parser.add_argument("--plot", default="runs/tune_compare.png")
    parser.add_argument("--tiny", action="store_true", help="1 seed, 3 trials, 300 images, 1 epoch")
    args = parser.parse_args()
    if args.tiny:
        args.seeds, args.trials, args.epochs, args.train, args.val, args.test = 1, 3, 1, 300, 200, 200
    sets = load(args.data, args.train, args.val, args.test)
    curves: dict = {name: [] for name in SAMPLERS}
    tests: dict = {name: [] for name in SAMPLERS}
    start = time.perf_counter()
    for seed in range(args.seeds):
        for name in SAMPLERS:
            result = search(make_objective(sets, args.epochs, seed), SPACE, n_trials=args.trials, sampler=name,
                            seed=seed, direction="maximize", grid_points=3, verbose=0)
            curves[name].append(best_so_far([r["value"] for r in result.trials]))
            best = result.study.best_trial
            tests[name].append(best.user_attrs["test_accuracy"])
            print(f"seed {seed} {name:6s}: best val {result.best_value:.4f} (trial {best.number}), test "
                  f"{tests[name][-1]:.4f}, lr {best.params['lr']:.2g}, width {best.params['width']}, dropout "
                  f"{best.params['dropout']:.2f}", flush=True)
    seconds = time.perf_counter() - start
    n_runs = args.seeds * len(SAMPLERS) * args.trials
    print(f"\n{n_runs} trials in {seconds:.0f} s ({seconds / n_runs:.2f} s per trial)")
    print(f"{'sampler':8s} {'val@10 (median)':>16s} {'val@25 (median)':>16s} {'test of best (mean +- sd)':>26s}")
    at = min(10, args.trials) - 1
    for name in SAMPLERS:
        runs = np.array(curves[name])
        print(f"{name:8s} {np.median(runs[:, at]):16.4f} {np.median(runs[:, -1]):16.4f} "
              f"{np.mean(tests[name]):19.4f} +- {np.std(tests[name]):.4f}")
    med = {name: float(np.median(np.array(curves[name])[:, -1])) for name in SAMPLERS}
    print(f"tune_compare: final median best val grid {med['grid']:.4f} random {med['random']:.4f} tpe "
          f"{med['tpe']:.4f}; random >= grid: {med['random'] >= med['grid']}, tpe >= random: "
          f"{med['tpe'] >= med['random']}")
    plot(curves, args.plot, args.trials)


if __name__ == "__main__":
    main()
