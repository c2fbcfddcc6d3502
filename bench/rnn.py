"""Character-level LSTM training step: embedding 65->128, 1-layer LSTM with hidden 256, sequence 64, batch 32,
linear head 256->65, cross-entropy, Adam. Prints ms per step for nerve and, when installed, PyTorch on the CPU.

Run: python bench/rnn.py [--steps 10] [--rounds 9] [--threads N] [--blas-timeout N]   (about a minute)
The libraries run in their own processes and take turns at bursts of steps (bench/_paired.py); the ratio
is the median of the per-round ratios, so both see the same conditions of this shared machine.
``--threads N`` runs both with N threads (OPENBLAS_NUM_THREADS for NumPy, set_num_threads for PyTorch); on a
busy machine one thread each gives the steadier comparison.
Also times the GRU of the same size and nerve's LSTM layer alone (forward, and forward + backward) with the
fused node against its reference (the same layer composed from primitives), the measurement behind fusing it,
and (numba installed) the fused node with its loops cut by hidden units instead of by batch (nerve.ops.persistent_rnn,
opt-in, under nerve's own threads) and with NumPy's step passes instead of the compiled kernels (nerve.ops.fused_rnn).
The rows "products per position" and "whole step GEMMs" turn off, in turn, the layer's use of its embedding input
(nerve.ops.recurrent.LOOKUP) and its per-step products in blocks (nerve.ops.step_gemm).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from _paired import best_of, compare, cycling, streams_note  # noqa: E402

VOCAB, EMBED, HIDDEN, SEQ, BATCH = 65, 128, 256, 64, 32


def batches(steps: int) -> list:
    rng = np.random.default_rng(0)
    return [(rng.integers(0, VOCAB, (BATCH, SEQ)), rng.integers(0, VOCAB, (BATCH, SEQ))) for _ in range(steps)]


def nerve_steps(cell: str, lookup: bool = True, blocks: bool = True):
    """A burst runner of nerve training steps (built in its own process); ``lookup=False`` turns off the
    recurrent layer's use of its embedding input (nerve.ops.recurrent.LOOKUP: the input products per position),
    ``blocks=False`` its per-step products in blocks (nerve.ops.step_gemm: one matmul a step)."""
    import nerve
    from nerve import nn
    from nerve.ops import recurrent, step_gemm
    recurrent.LOOKUP = lookup
    step_gemm.ENABLED = blocks
    nerve.manual_seed(0)
    rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(EMBED, HIDDEN, batch_first=True)
    model = nn.ModuleList([nn.Embedding(VOCAB, EMBED), rnn, nn.Linear(HIDDEN, VOCAB)])
    opt = nerve.optim.Adam(model.parameters(), lr=2e-3)
    emb, _, head = model

    def step(xb, yb):
        opt.zero_grad()
        out, _ = rnn(emb(xb))
        loss = nerve.functional.cross_entropy(head(out).reshape(-1, VOCAB), yb.reshape(-1))
        loss.backward()
        opt.step()
    return cycling(step, [(nerve.tensor(x), nerve.tensor(y)) for x, y in batches(8)])


def torch_steps(cell: str):
    """A burst runner of PyTorch training steps (built in its own process)."""
    import torch
    if os.environ.get("OPENBLAS_NUM_THREADS"):
        torch.set_num_threads(int(os.environ["OPENBLAS_NUM_THREADS"]))
    torch.manual_seed(0)
    emb = torch.nn.Embedding(VOCAB, EMBED)
    rnn = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(EMBED, HIDDEN, batch_first=True)
    head = torch.nn.Linear(HIDDEN, VOCAB)
    params = [*emb.parameters(), *rnn.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=2e-3)

    def step(xb, yb):
        opt.zero_grad()
        out, _ = rnn(emb(xb))
        loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, VOCAB), yb.reshape(-1))
        loss.backward()
        opt.step()
    return cycling(step, [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches(8)])


def layer_times(fused: bool, repeats: int, kernels: bool = True, persistent: bool = False, blocks: bool = True) \
        -> tuple:
    """(forward ms, forward + backward ms) of the LSTM layer alone, the fused node or its reference;
    ``kernels=False``: the fused node with NumPy's passes instead of the compiled step kernels;
    ``persistent=True``: the loops cut by hidden units rather than by batch (nerve.ops.persistent_rnn);
    ``blocks=False``: each step's product with W_hh as one matmul (nerve.ops.step_gemm)."""
    import nerve
    from nerve.ops import fused_rnn, persistent_rnn, step_gemm
    from nerve.ops.recurrent import RecurrentLayer
    fused_rnn.ENABLED = kernels
    persistent_rnn.ENABLED = persistent
    step_gemm.ENABLED = blocks
    rng = np.random.default_rng(0)
    x = nerve.tensor(rng.standard_normal((BATCH, SEQ, EMBED), dtype=np.float32), requires_grad=True)
    w = [nerve.tensor(rng.uniform(-0.06, 0.06, shape).astype(np.float32), requires_grad=True)
         for shape in ((4 * HIDDEN, EMBED), (4 * HIDDEN, HIDDEN), (4 * HIDDEN,), (4 * HIDDEN,))]
    zeros = np.zeros((BATCH, HIDDEN), dtype=np.float32)
    args = (x, *w, zeros, zeros, None, "lstm", False, True)

    def run():  # the fused node, or its reference (the layer composed step by step from primitives)
        return RecurrentLayer.apply(*args) if fused else RecurrentLayer().reference(*args)
    grad = nerve.tensor(np.ones(run().shape, dtype=np.float32))

    def both():
        run().backward(grad)
    return tuple(best_of(fn, repeats, warmup=3) * 1e3 for fn in (run, both))


def isolated(*args):
    """``layer_times(*args)`` in a fresh spawned process."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(layer_times, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="training steps per burst")
    parser.add_argument("--rounds", type=int, default=9, help="bursts per library, taken in turn")
    parser.add_argument("--repeats", type=int, default=5, help="timings of the layer alone (the best is kept)")
    parser.add_argument("--blas-timeout", type=int, default=None,
                        help="OPENBLAS_THREAD_TIMEOUT for both libraries' processes (4-30: BLAS's idle threads spin "
                             "2^N cycles before sleeping; OpenBLAS's default is 28)")
    parser.add_argument("--threads", type=int, default=None, help="threads for both (default: as configured)")
    args = parser.parse_args()
    if args.blas_timeout is not None:  # read by OpenBLAS when the fresh processes load NumPy
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(args.blas_timeout)
    if args.threads:
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)  # inherited by the measuring processes
    try:
        import torch
        torch_info = f"torch {torch.__version__} ({args.threads or torch.get_num_threads()} threads)"
    except ImportError:
        torch = None
        torch_info = "torch not installed"
    print(f"char-RNN step: embedding {VOCAB}->{EMBED}, 1 layer hidden {HIDDEN}, seq {SEQ}, batch {BATCH}, "
          f"linear head, cross-entropy, Adam; numpy {np.__version__}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}, {torch_info}; {streams_note()}; "
          f"nerve recurrent steps: {kernels_note()}")
    header = (f"{'training step (median ms)':<30}{'nerve':>10}{'torch':>10}{'nerve/torch':>13}"
              f"{'best nerve':>12}{'best torch':>12}{'best/best':>11}")
    print(header)
    print("-" * len(header))
    for cell in ("lstm", "gru"):
        setups = {"nerve": (nerve_steps, cell), "per position": (nerve_steps, cell, False),
                  "whole": (nerve_steps, cell, True, False)}
        if torch:
            setups["torch"] = (torch_steps, cell)
        r = compare(setups, args.steps, args.rounds)
        t_th, b_th = (r["torch"]["median"], r["torch"]["best"]) if torch else (float("nan"),) * 2
        for name, label in (("nerve", cell.upper()), ("per position", f"{cell.upper()}, products per position"),
                            ("whole", f"{cell.upper()}, whole step GEMMs")):
            ratio = statistics.median(a / b for a, b in zip(r[name]["times"], r["torch"]["times"])) if torch \
                else float("nan")
            print(f"{label:<30}{r[name]['median']:>10.2f}{t_th:>10.2f}{ratio:>13.2f}"
                  f"{r[name]['best']:>12.2f}{b_th:>12.2f}{r[name]['best'] / b_th:>11.2f}")
    print("(ratio: median over the rounds of nerve / torch, the libraries taking turns at bursts of "
          f"{args.steps} steps in their own processes; best: the fastest burst's ms per step)")
    print()
    print(f"{'LSTM layer alone (ms)':<36}{'forward':>10}{'fwd+bwd':>10}")
    compiled = kernels_note().startswith("compiled")
    variants = [("fused node, whole step GEMMs", True, True, False, False),
                ("fused node, persistent loops (opt-in)", True, True, True, True),
                ("fused node, NumPy's step passes", True, False, False, True)]
    rows = [("fused node", True, True, False, True), *variants * compiled, ("composed ops", False, True, False, True)]
    for name, fused, kernels, persistent, blocks in rows:
        fwd, both = isolated(fused, args.repeats, kernels, persistent, blocks)
        print(f"{name:<36}{fwd:>10.2f}{both:>10.2f}")


def kernels_note() -> str:
    """Whether nerve's recurrent steps run the compiled kernels (nerve.ops.fused_rnn needs numba)."""
    try:
        import numba
    except ImportError:
        return "NumPy's step passes (numba not installed)"
    return f"compiled step kernels (numba {numba.__version__})"


if __name__ == "__main__":
    main()
