"""MLP 784-512-256-10 (ReLU, cross-entropy, Adam): training-step time and one epoch of 60,000 samples.

Run: python bench/mlp.py [--data DIR] [--steps 30] [--rounds 9] [--epoch-samples 60000]
(DIR holds Fashion-MNIST's IDX files; random data of the same shape otherwise). Compares nerve with
scikit-learn's MLPClassifier (same layers, Adam, batch 128) and, when installed, PyTorch on the CPU; ratios
are taken within this one run. Step times: the libraries run in their own processes and take turns at bursts
(bench/_paired.py), the ratio being the median of the per-round ratios and the times medians; each epoch runs
once in a fresh process, one library after the other (``--epoch-samples N``: over the first N samples only).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from _paired import compare, cycling  # noqa: E402
from nerve import nn  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

SIZES = (784, 512, 256, 10)


def data(path: str | None):
    if path and os.path.isdir(path):
        from nerve.data.datasets import load_fashion_mnist
        X, y = load_fashion_mnist(root=path, train=True, flatten=True)
        return X.astype(np.float32), y.astype(np.int64), "Fashion-MNIST"
    rng = np.random.default_rng(0)
    return rng.random((60000, 784), dtype=np.float32), rng.integers(0, 10, 60000), "random"


def nerve_model():
    nerve.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    return model, nerve.optim.Adam(model.parameters(), lr=1e-3), nn.CrossEntropyLoss()


def nerve_step(model, opt, loss_fn, xb, yb):
    opt.zero_grad()
    loss = loss_fn(model(xb), yb)
    loss.backward()
    opt.step()


def torch_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10))
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), torch.nn.CrossEntropyLoss()


def torch_step(model, opt, loss_fn, xb, yb):
    opt.zero_grad()
    loss = loss_fn(model(xb), yb)
    loss.backward()
    opt.step()


def epoch_nerve(X, y, batch: int) -> float:
    model, opt, loss_fn = nerve_model()
    t0 = time.perf_counter()
    nerve.train.fit(model, (X, y), loss=loss_fn, optimizer=opt, epochs=1, batch_size=batch, verbose=0)
    return time.perf_counter() - t0


def epoch_torch(X, y, batch: int) -> float:
    model, opt, loss_fn = torch_model()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    t0 = time.perf_counter()
    perm = torch.randperm(len(X))
    for i in range(0, len(X), batch):
        idx = perm[i:i + batch]
        torch_step(model, opt, loss_fn, Xt[idx], yt[idx])
    return time.perf_counter() - t0


def epoch_sklearn(X, y, batch: int) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=SIZES[1:-1], activation="relu", solver="adam", batch_size=batch,
                        learning_rate_init=1e-3, max_iter=1, shuffle=True, random_state=0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return time.perf_counter() - t0


def steps(lib: str, batch: int, data_path: str | None):
    """A burst runner of training steps in ``lib`` over 16 batches of the data (built in its own process)."""
    X, y, _ = data(data_path)
    pairs = [(X[i:i + batch], y[i:i + batch]) for i in range(0, batch * 16, batch)]
    if lib == "nerve":
        model, opt, loss_fn = nerve_model()
        return cycling(lambda a, b: nerve_step(model, opt, loss_fn, a, b),
                       [(nerve.tensor(a), nerve.tensor(b)) for a, b in pairs])
    tm, topt, tloss = torch_model()
    return cycling(lambda a, b: torch_step(tm, topt, tloss, a, b),
                   [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in pairs])


def _epoch(kind: str, data_path: str | None, samples: int) -> float:
    """Seconds of one epoch over the first ``samples`` samples at batch 128, computed in this (fresh) process."""
    X, y, _ = data(data_path)
    run = {"nerve": epoch_nerve, "torch": epoch_torch, "sklearn": epoch_sklearn}[kind]
    return run(X[:samples], y[:samples], 128)


def isolated(*args) -> float:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_epoch, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                                       "fashion-mnist"))
    parser.add_argument("--steps", type=int, default=30, help="training steps per burst")
    parser.add_argument("--rounds", type=int, default=9, help="bursts per library, taken in turn")
    parser.add_argument("--epoch-samples", type=int, default=60000, help="samples in the timed epoch")
    args = parser.parse_args()
    X, y, name = data(args.data)
    print(f"MLP {'-'.join(map(str, SIZES))} ReLU, cross-entropy, Adam; data: {name} {X.shape}; "
          f"numpy {np.__version__}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}"
          + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ", torch not installed"))
    header = f"{'work':<28}{'nerve':>10}{'torch':>10}{'sklearn':>10}{'nerve/torch':>13}{'sklearn/nerve':>15}"
    print(header)
    print("-" * len(header))
    nan = float("nan")
    for batch in (128, 32):
        setups = {"nerve": (steps, "nerve", batch, args.data)}
        if torch:
            setups["torch"] = (steps, "torch", batch, args.data)
        r = compare(setups, args.steps, args.rounds)
        t_th, ratio = (r["torch"]["median"], r["torch"]["ratio"]) if torch else (nan, nan)
        print(f"{'step, batch ' + str(batch) + ' (ms)':<28}{r['nerve']['median']:>10.3f}{t_th:>10.3f}{'':>10}"
              f"{ratio:>13.2f}")
    e_nv = isolated("nerve", args.data, args.epoch_samples)
    e_th = isolated("torch", args.data, args.epoch_samples) if torch else nan
    e_sk = isolated("sklearn", args.data, args.epoch_samples)
    label = f"epoch {args.epoch_samples / 1000:g}k, batch 128 (s)"
    print(f"{label:<28}{e_nv:>10.2f}{e_th:>10.2f}{e_sk:>10.2f}{e_nv / e_th:>13.2f}{e_sk / e_nv:>15.2f}")


if __name__ == "__main__":
    main()
