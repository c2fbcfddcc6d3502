"""Per-op cost of recording a graph and backpropagating through it: nerve vs plain NumPy vs PyTorch.

Run: python bench/overhead.py   (PyTorch columns appear when torch is installed)
Each row chains N ops on small tensors and backpropagates; the figure is microseconds per op
(forward + backward). The matmul row chains 64x64 matmuls. Ratios are nerve / PyTorch in the same run.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from _paired import best_of  # noqa: E402

try:
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
except ImportError:
    torch = None

N_CHAIN = 200
REPEATS = 30




# --- small-tensor chains -------------------------------------------------------------------------
def nerve_chain(op: str, size: int = 8):
    x = nerve.randn(size, requires_grad=True)
    c = nerve.randn(size) * 0.1 + 1.0

    def run():
        y = x
        for _ in range(N_CHAIN):
            y = OPS_NERVE[op](y, c)
        y.sum().backward()
        x.grad = None
    return run


def torch_chain(op: str, size: int = 8):
    x = torch.randn(size, requires_grad=True)
    c = torch.randn(size) * 0.1 + 1.0

    def run():
        y = x
        for _ in range(N_CHAIN):
            y = OPS_TORCH[op](y, c)
        y.sum().backward()
        x.grad = None
    return run


def numpy_chain(op: str, size: int = 8):
    """The same forward, then the hand-written backward, on raw arrays."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(size).astype(np.float32)
    c = (rng.standard_normal(size) * 0.1 + 1.0).astype(np.float32)
    fwd, bwd = OPS_NUMPY[op]

    def run():
        ys = [x]
        for _ in range(N_CHAIN):
            ys.append(fwd(ys[-1], c))
        g = np.ones_like(x)
        for i in range(N_CHAIN, 0, -1):
            g = bwd(g, ys[i - 1], ys[i], c)
        return g
    return run


OPS_NERVE = {
    "add": lambda y, c: y + c,
    "mul": lambda y, c: y * c,
    "tanh": lambda y, c: y.tanh(),
    "exp": lambda y, c: (y * 0.01).exp(),
    "relu": lambda y, c: y.relu(),
}
OPS_TORCH = {
    "add": lambda y, c: y + c,
    "mul": lambda y, c: y * c,
    "tanh": lambda y, c: y.tanh(),
    "exp": lambda y, c: (y * 0.01).exp(),
    "relu": lambda y, c: y.relu(),
}
OPS_NUMPY = {
    "add": (lambda y, c: y + c, lambda g, x, y, c: g),
    "mul": (lambda y, c: y * c, lambda g, x, y, c: g * c),
    "tanh": (lambda y, c: np.tanh(y), lambda g, x, y, c: g * (1 - y * y)),
    "exp": (lambda y, c: np.exp(y * 0.01), lambda g, x, y, c: g * y * 0.01),
    "relu": (lambda y, c: np.maximum(y, 0), lambda g, x, y, c: g * (y > 0)),
}
OPS_PER_STEP = {"add": 1, "mul": 1, "tanh": 1, "exp": 2, "relu": 1}


# --- 64x64 matmul chain ------------------------------------------------------------------------------
DEPTH = 20


def nerve_matmul():
    rng = np.random.default_rng(0)
    ws = [nerve.tensor(rng.standard_normal((64, 64)).astype(np.float32) * 0.1, requires_grad=True)
          for _ in range(DEPTH)]
    x = nerve.tensor(rng.standard_normal((64, 64)).astype(np.float32))

    def run():
        y = x
        for w in ws:
            y = y @ w
        y.sum().backward()
        for w in ws:
            w.grad = None
    return run


def torch_matmul():
    ws = [(torch.randn(64, 64) * 0.1).requires_grad_() for _ in range(DEPTH)]
    x = torch.randn(64, 64)

    def run():
        y = x
        for w in ws:
            y = y @ w
        y.sum().backward()
        for w in ws:
            w.grad = None
    return run


def numpy_matmul():
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((64, 64)).astype(np.float32) * 0.1 for _ in range(DEPTH)]
    x = rng.standard_normal((64, 64)).astype(np.float32)

    def run():
        ys = [x]
        for w in ws:
            ys.append(ys[-1] @ w)
        g = np.ones_like(x)
        grads = []
        for i in range(DEPTH - 1, -1, -1):
            grads.append(ys[i].T @ g)
            g = g @ ws[i].T
        return grads
    return run


def main() -> None:
    print(f"nerve {nerve.__version__}, numpy {np.__version__}"
          + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ", torch not installed")
          + f", OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    header = f"{'work':<26}{'numpy us':>10}{'nerve us':>10}{'torch us':>10}{'nerve/torch':>13}{'nerve/numpy':>13}"
    print(header)
    print("-" * len(header))
    rows = []
    for op in OPS_NERVE:
        per = N_CHAIN * OPS_PER_STEP[op]
        t_np = best_of(numpy_chain(op), REPEATS) / per * 1e6
        t_nv = best_of(nerve_chain(op), REPEATS) / per * 1e6
        t_th = best_of(torch_chain(op), REPEATS) / per * 1e6 if torch else float("nan")
        rows.append((f"{op} (8 elems) per op", t_np, t_nv, t_th))
    t_np = best_of(numpy_matmul(), REPEATS) / DEPTH * 1e6
    t_nv = best_of(nerve_matmul(), REPEATS) / DEPTH * 1e6
    t_th = best_of(torch_matmul(), REPEATS) / DEPTH * 1e6 if torch else float("nan")
    rows.append(("matmul 64x64 per op", t_np, t_nv, t_th))
    for name, a, b, c in rows:
        print(f"{name:<26}{a:>10.2f}{b:>10.2f}{c:>10.2f}{b / c:>13.2f}{b / a:>13.2f}")


if __name__ == "__main__":
    main()
