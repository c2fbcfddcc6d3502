"""PGD-10 on 1,000 MNIST images of the example's CNN: nerve.robust.PGD against torchattacks.PGD on PyTorch (CPU).

Run: python bench/robust.py [--data DIR] [--n 1000] [--steps 10] [--rounds 5] [--batch 1000] [--threads N]
(with torchattacks: run it with an interpreter that has torch and torchattacks; neither is a dependency of nerve.)
Both libraries attack the same weights (made by nerve, copied into PyTorch) with eps 0.3, alpha 0.03 and a random
start, each in its own process, taking turns (bench/_paired.py); the table gives seconds per full attack and the
median of the per-round ratios nerve / torchattacks (the target: <= 1.0). A cross-check without the random start
compares the adversarial images of the two libraries and the accuracy under each.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from _paired import compare  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
EPS, ALPHA = 0.3, 0.03


def load(data: str | None, n: int) -> tuple:
    """The first n MNIST test images and labels (random images when no data directory is found)."""
    if data and os.path.isdir(data):
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
        from nerve.data.datasets import load_mnist
        x, y = load_mnist(root=data, train=False, download=False)
        return x[:n], y[:n], "MNIST"
    rng = np.random.default_rng(0)
    return rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n), "random images"


def nerve_model():
    """The CNN of examples/adversarial_mnist.py, seeded."""
    import nerve
    from nerve import nn
    nerve.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 7 * 7, 100), nn.ReLU(), nn.Linear(100, 10))


def torch_model(weights: list):
    """The same CNN in PyTorch holding ``weights`` (nerve's parameters in order)."""
    import torch
    tnn = torch.nn
    model = tnn.Sequential(tnn.Conv2d(1, 16, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
                           tnn.Conv2d(16, 32, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                           tnn.Linear(32 * 7 * 7, 100), tnn.ReLU(), tnn.Linear(100, 10))
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights):
            p.copy_(torch.from_numpy(w))
    return model.eval()


def weights() -> list:
    return [p.detach().numpy().copy() for p in nerve_model().parameters()]


def setup(lib: str, data: str | None, n: int, steps: int, batch: int, random_start: bool = True):
    """A burst runner: ``run(k)`` attacks all n images k times with PGD-``steps``; returns the seconds."""
    import time
    x, y, _ = load(data, n)
    if lib == "nerve":
        from nerve.robust import PGD
        attack = PGD(nerve_model(), eps=EPS, alpha=ALPHA, steps=steps, random_start=random_start)
        chunks = [(x[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)]

        def once():
            return np.concatenate([attack(xb, yb).numpy() for xb, yb in chunks])
    else:
        import torch
        import torchattacks
        if os.environ.get("NERVE_BENCH_THREADS"):
            torch.set_num_threads(int(os.environ["NERVE_BENCH_THREADS"]))
        attack = torchattacks.PGD(torch_model(weights()), eps=EPS, alpha=ALPHA, steps=steps,
                                  random_start=random_start)
        chunks = [(torch.from_numpy(x[i:i + batch]), torch.from_numpy(y[i:i + batch])) for i in range(0, n, batch)]

        def once():
            return np.concatenate([attack(xb, yb).numpy() for xb, yb in chunks])

    def run(k: int) -> float:
        t0 = time.perf_counter()
        for _ in range(k):
            once()
        return time.perf_counter() - t0
    run.once = once
    return run


def _torch_result(conn, data, n, steps, batch) -> None:
    conn.send(setup("torch", data, n, steps, batch, random_start=False).once())


def cross_check(data, n: int, steps: int, batch: int) -> str:
    """Both libraries' PGD without the random start on the same weights: how many pixels agree, accuracy each."""
    import nerve
    ours = setup("nerve", data, n, steps, batch, random_start=False).once()
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_torch_result, args=(child, data, n, steps, batch))
    proc.start()
    theirs = parent.recv()
    proc.join()
    x, y, _ = load(data, n)
    model = nerve_model()
    with nerve.no_grad():
        acc = [float((model(nerve.tensor(a)).numpy().argmax(axis=1) == y).mean()) for a in (x, ours, theirs)]
    same = float((np.abs(ours - theirs) <= 1e-5).mean())
    return (f"cross-check without random start: {same:.4%} of pixels agree within 1e-5 (max |diff| "
            f"{np.abs(ours - theirs).max():.3g}); accuracy clean {acc[0]:.4f}, under nerve's PGD {acc[1]:.4f}, "
            f"under torchattacks' {acc[2]:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SHARED if os.path.isdir(SHARED) else None)
    parser.add_argument("--n", type=int, default=1000, help="images attacked")
    parser.add_argument("--steps", type=int, default=10, help="PGD steps")
    parser.add_argument("--rounds", type=int, default=5, help="timed attacks per library, taken in turn")
    parser.add_argument("--batch", type=int, default=1000, help="images per attack call")
    parser.add_argument("--threads", type=int, default=None, help="threads for both libraries (default: theirs)")
    args = parser.parse_args()
    if args.threads:  # read by the fresh processes at start-up
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NERVE_BENCH_THREADS"):
            os.environ[name] = str(args.threads)
    try:
        import torch
        import torchattacks
        other = (f"torch {torch.__version__} ({args.threads or torch.get_num_threads()} threads), "
                 f"torchattacks {torchattacks.__version__}")
    except ImportError:
        torch = None
        other = "torch/torchattacks not installed: nerve alone"
    _, _, what = load(args.data, args.n)
    print(f"PGD-{args.steps} (eps {EPS}, alpha {ALPHA}, random start) on {args.n} {what}, batch {args.batch}, the "
          f"CNN of examples/adversarial_mnist.py (random weights); numpy {np.__version__}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}; {other}")
    setups = {"nerve": (setup, "nerve", args.data, args.n, args.steps, args.batch)}
    if torch is not None:
        setups["torchattacks"] = (setup, "torch", args.data, args.n, args.steps, args.batch)
    result = compare(setups, 1, args.rounds)
    print(f"{'':<14}{'best s':>9}{'median s':>10}{'nerve / this':>14}")
    for name, r in result.items():
        print(f"{name:<14}{r['best'] / 1e3:>9.3f}{r['median'] / 1e3:>10.3f}{r['ratio']:>14.2f}")
    if torch is not None:
        print(cross_check(args.data, args.n, args.steps, args.batch))


if __name__ == "__main__":
    main()
