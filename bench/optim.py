"""Optimiser step cost for an MLP 784-512-256-10 (535,818 float32 parameters).

Run: python bench/optim.py [--steps 100] [--repeats 5]   (PyTorch rows appear when torch is installed)
Rows: nerve's per-parameter in-place updates; a flat-buffer variant (parameters and state in one array,
the gradients copied into a flat buffer each step, one vectorised update) written here in NumPy to decide
whether nerve should keep that layout; PyTorch's single-tensor and foreach (multi-tensor) loops.
Figures are microseconds per step, best of several runs.

Measured on the 2-core machines (NumPy 2.4, torch 2.13): nerve Adam ~670 us, flat-buffer Adam ~730 us (the
gradient gather costs what the saved per-parameter calls gain, so nerve keeps per-parameter arrays), torch
Adam ~470 us (two threads, fused lerp/addcmul/addcdiv kernels). The float32 sqrt pass alone is ~190 us.
Splitting updates over two Python threads gained under 10%; BLAS axpy/scal through SciPy gained ~18% with
one OpenBLAS thread but ran 4-7x slower and erratically with OpenBLAS's threads on a loaded machine.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve import optim  # noqa: E402

try:
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
except ImportError:
    torch = None

SHAPES = [(512, 784), (512,), (256, 512), (256,), (10, 256), (10,)]
STEPS = 100


def per_step(step, repeats: int = 5, steps: int = STEPS) -> float:
    for _ in range(5):
        step()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - t0) / steps)
    return best * 1e6


def nerve_step(make):
    rng = np.random.default_rng(0)
    ps = [nerve.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in SHAPES]
    for p in ps:
        p.grad = nerve.tensor(rng.standard_normal(p.shape).astype(np.float32))
    return make(ps).step


class FlatAdam:
    """Adam over one flat float32 buffer: parameters are views into it, gradients are gathered into another."""

    def __init__(self, arrays, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        n = sum(a.size for a in arrays)
        self.flat = np.empty(n, np.float32)
        self.grad = np.empty(n, np.float32)
        self.m, self.v, self.work = np.zeros(n, np.float32), np.zeros(n, np.float32), np.empty(n, np.float32)
        self.views, self.grad_views, offset = [], [], 0
        for a in arrays:
            self.flat[offset:offset + a.size] = a.ravel()
            self.views.append(self.flat[offset:offset + a.size].reshape(a.shape))
            self.grad_views.append(self.grad[offset:offset + a.size].reshape(a.shape))
            offset += a.size
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0

    def step(self, grads):
        for view, g in zip(self.grad_views, grads):
            np.copyto(view, g)
        b1, b2 = self.betas
        self.t += 1
        g, m, v, w = self.grad, self.m, self.v, self.work
        m *= b1
        np.multiply(g, 1 - b1, out=w)
        m += w
        v *= b2
        np.multiply(g, g, out=w)
        w *= 1 - b2
        v += w
        c2 = math.sqrt(1 - b2 ** self.t)
        np.sqrt(v, out=w)
        w += self.eps * c2
        np.divide(m, w, out=w)
        w *= -self.lr * c2 / (1 - b1 ** self.t)
        self.flat += w


def flat_step():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    opt = FlatAdam(arrays)
    return lambda: opt.step(grads)


def torch_step(make, **kw):
    gen = torch.Generator().manual_seed(0)
    ps = [torch.randn(s, generator=gen, requires_grad=True) for s in SHAPES]
    for p in ps:
        p.grad = torch.randn(p.shape, generator=gen)
    return make(ps, **kw).step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS, help="optimizer steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per row (the best is kept)")
    args = parser.parse_args()
    n = sum(math.prod(s) for s in SHAPES)
    print(f"optimizer step, MLP 784-512-256-10 ({n:,} float32 parameters), "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    rows = [
        ("nerve SGD momentum 0.9", nerve_step(lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9))),
        ("nerve Adam", nerve_step(lambda ps: optim.Adam(ps))),
        ("nerve AdamW", nerve_step(lambda ps: optim.AdamW(ps))),
        ("nerve RMSprop", nerve_step(lambda ps: optim.RMSprop(ps))),
        ("flat-buffer Adam (NumPy)", flat_step()),
    ]
    if torch is not None:
        rows += [
            ("torch SGD momentum 0.9 (single-tensor)",
             torch_step(lambda ps, **kw: torch.optim.SGD(ps, lr=0.01, momentum=0.9, **kw), foreach=False)),
            ("torch Adam (single-tensor, CPU default)", torch_step(torch.optim.Adam, foreach=False)),
            ("torch Adam (foreach)", torch_step(torch.optim.Adam, foreach=True)),
        ]
    print(f"{'':42s} {'us/step':>9s}")
    for name, step in rows:
        print(f"{name:42s} {per_step(step, args.repeats, args.steps):9.1f}")


if __name__ == "__main__":
    main()
