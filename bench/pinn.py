"""One Burgers PINN training iteration (Raissi's 8 x 20 tanh network, 10,000 collocation points): forward,
u_x and u_t, u_xx, the residual u_t + u u_x - (0.01/π) u_xx, its mean square, backward to the weights, an Adam
step. nerve against PyTorch (CPU) where installed, each in its own process taking turns (bench/_paired.py);
then where nerve's time goes (forward, first derivatives, second derivative, backward, optimiser).

Run: python bench/pinn.py [--points 10000] [--steps 5] [--rounds 5] [--threads 1] [--dtype float32]
(with PyTorch: run it with an interpreter that has torch; it is not a dependency of nerve.) Target: nerve / PyTorch
<= 1.5. Threads default to 1 for both: 10,000 x 20 products are too small to split, and on a loaded 2-core
machine two BLAS threads fight (20 ms vs 0.5 ms a product measured).
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys

# NOTE: BLAS reads its thread count when NumPy loads, so --threads is applied before the import (the workers,
# spawned, inherit the environment).
_n = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv[:-1] else "1"
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = _n
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from _paired import best_of, compare, per_call  # noqa: E402

LAYERS = [2] + [20] * 8 + [1]
NU = 0.01 / math.pi


def problem(points: int, seed: int = 0) -> tuple[list, np.ndarray]:
    """Glorot-normal weights (out, in) and zero biases, and ``points`` collocation points in [-1, 1] x [0, 1]."""
    rng = np.random.default_rng(seed)
    weights = []
    for a, b in zip(LAYERS[:-1], LAYERS[1:]):
        weights += [rng.normal(0, math.sqrt(2 / (a + b)), (b, a)), np.zeros(b)]
    x = np.stack([rng.uniform(-1, 1, points), rng.uniform(0, 1, points)], 1)
    return weights, x


def nerve_setup(points: int, threads: int, dtype: str):
    """A burst runner of nerve training iterations."""
    return per_call(nerve_step(points, dtype)[0])


def nerve_step(points: int, dtype: str):
    """nerve's training iteration and its stages (each a callable running the stages up to it)."""
    import nerve
    from nerve import optim, pinn

    dt = getattr(nerve, dtype)
    weights, x_np = problem(points)
    net = pinn.FNN(LAYERS, dtype=dt)
    for p, w in zip(net.parameters(), weights):
        p.data[...] = w
    opt = optim.Adam(net.parameters(), lr=1e-3)
    x = nerve.tensor(x_np, dtype=dt, requires_grad=True)

    def forward():
        return net(x)

    def first():
        u = forward()
        return u, pinn.grad(u, x)

    def second():
        u, g = first()
        u_x, u_t = g[:, 0:1], g[:, 1:2]
        f = u_t + u * u_x - NU * pinn.grad(u_x, x, 0)
        return (f * f).mean()

    def backward():
        opt.zero_grad()
        second().backward()

    def step():
        backward()
        opt.step()
    return step, {"forward": forward, "+ u_x, u_t": first, "+ u_xx, loss": second, "+ backward": backward,
                  "+ Adam step": step}


def torch_setup(points: int, threads: int, dtype: str):
    """A burst runner of PyTorch training iterations on the same weights and points."""
    import torch

    torch.set_num_threads(threads)
    dt = getattr(torch, dtype)
    weights, x_np = problem(points)
    linears = [torch.nn.Linear(a, b).to(dt) for a, b in zip(LAYERS[:-1], LAYERS[1:])]
    params = [p for lin in linears for p in (lin.weight, lin.bias)]
    with torch.no_grad():
        for p, w in zip(params, weights):
            p.copy_(torch.from_numpy(w))
    opt = torch.optim.Adam(params, lr=1e-3)
    x = torch.tensor(x_np, dtype=dt, requires_grad=True)
    scale = torch.tensor([1.0, 1.0], dtype=dt)

    def net(z):
        h = z * scale
        for lin in linears[:-1]:
            h = torch.tanh(lin(h))
        return linears[-1](h)

    def step():
        opt.zero_grad()
        u = net(x)
        (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        u_x, u_t = g[:, 0:1], g[:, 1:2]
        (gxx,) = torch.autograd.grad(u_x.sum(), x, create_graph=True)
        f = u_t + u * u_x - NU * gxx[:, 0:1]
        (f * f).mean().backward()
        opt.step()
    return per_call(step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=5, help="iterations per burst")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    setups = {"nerve": (nerve_setup, args.points, args.threads, args.dtype)}
    if have_torch:
        setups["PyTorch"] = (torch_setup, args.points, args.threads, args.dtype)
    res = compare(setups, args.steps, args.rounds)
    print(f"Burgers PINN iteration, {args.points} points, {args.dtype}, {args.threads} thread(s), "
          f"{args.rounds} rounds of {args.steps}")
    print(f"{'library':10s} {'best ms':>9s} {'median ms':>10s} {'nerve / it':>11s}")
    for name, r in res.items():
        ratio = "" if name == "nerve" else f"{1 / r['ratio']:.2f}"
        print(f"{name:10s} {r['best']:9.1f} {r['median']:10.1f} {ratio:>11s}")
    if not have_torch:
        print("PyTorch not installed: no ratio (target nerve / PyTorch <= 1.5)")
    stages = nerve_step(args.points, args.dtype)[1]
    print("where nerve's time goes (best of 3, each stage includes the ones above it):")
    previous = 0.0
    for name, fn in stages.items():
        t = best_of(fn, 3) * 1e3
        print(f"  {name:14s} {t:8.1f} ms  (+{t - previous:.1f})")
        previous = t
    print(f"nerve iteration: {res['nerve']['best']:.1f} ms")


if __name__ == "__main__":
    multiprocessing.freeze_support()
    main()
