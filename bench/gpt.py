"""GPT training-step time: nanoGPT's shakespeare_char CPU configuration in nerve and in PyTorch.

Configuration: block 64, batch 12, 4 layers, 4 heads, embedding 128, dropout 0, no biases, tied head,
AdamW (betas 0.9/0.99, weight decay 0.1 on matrices) with gradient clipping at 1.0; 65-character vocabulary.
Run: python bench/gpt.py [--steps 10] [--repeats 10] [--run-iters 0]
Prints ms per iteration for each framework and their ratio: the best (and the median) over ``--repeats``
timings of ``--steps`` iterations each, after a warm-up; the best is the figure to compare on a shared
machine, where other processes inflate the others. Then the projected time of nanoGPT's 2000 iterations
(with its evaluations: 9 of 20 batches each of train and val); ``--run-iters N`` also times N iterations
end to end (``--run-iters 2000`` is the whole run, a few minutes per framework).
NOTE: each framework runs in a fresh process: PyTorch's OpenMP threads keep spinning after its work and
would slow NumPy down in the same process.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

CONFIG = dict(vocab=65, block=64, batch=12, n_layer=4, n_head=4, n_embd=128)
EVAL_FORWARDS = 9 * 2 * 20  # evaluations at 0, 250, ..., 2000, train and val, eval_iters=20


def _batches(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, CONFIG["vocab"], 100_000)
    starts = rng.integers(0, len(data) - CONFIG["block"] - 1, (n, CONFIG["batch"]))
    idx = starts[:, :, None] + np.arange(CONFIG["block"] + 1)
    windows = data[idx]
    return [(np.ascontiguousarray(w[:, :-1]), np.ascontiguousarray(w[:, 1:])) for w in windows]


def _nerve_setup():
    import nerve
    from nerve.models import GPT
    nerve.manual_seed(0)
    c = CONFIG
    model = GPT(c["vocab"], c["block"], c["n_layer"], c["n_head"], c["n_embd"], dropout=0.0, bias=False)
    opt = model.configure_optimizers(0.1, 1e-3, betas=(0.9, 0.99), decay_embeddings=True)

    def step(x, y):
        loss = model.loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        nerve.optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def evaluate(x, y):
        with nerve.no_grad():
            model.loss(model(x), y)
    return step, evaluate


def _torch_setup():
    import torch
    import torch.nn as tnn
    import torch.nn.functional as TF
    torch.manual_seed(0)
    c = CONFIG
    C, H = c["n_embd"], c["n_head"]

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = tnn.LayerNorm(C, bias=False)
            self.c_attn = tnn.Linear(C, 3 * C, bias=False)
            self.attn_proj = tnn.Linear(C, C, bias=False)
            self.ln_2 = tnn.LayerNorm(C, bias=False)
            self.c_fc = tnn.Linear(C, 4 * C, bias=False)
            self.mlp_proj = tnn.Linear(4 * C, C, bias=False)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (a.view(b, t, H, C // H).transpose(1, 2) for a in (q, k, v))
            y = TF.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(b, t, C))
            return x + self.mlp_proj(TF.gelu(self.c_fc(self.ln_2(x))))

    class GPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.wte = tnn.Embedding(c["vocab"], C)
            self.wpe = tnn.Embedding(c["block"], C)
            self.h = tnn.ModuleList([Block() for _ in range(c["n_layer"])])
            self.ln_f = tnn.LayerNorm(C, bias=False)
            self.lm_head = tnn.Linear(C, c["vocab"], bias=False)
            self.lm_head.weight = self.wte.weight

        def forward(self, idx, targets):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
            for block in self.h:
                x = block(x)
            logits = self.lm_head(self.ln_f(x))
            return TF.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    model = GPT()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))

    def step(x, y):
        loss = model(torch.from_numpy(x), torch.from_numpy(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def evaluate(x, y):
        with torch.no_grad():
            model(torch.from_numpy(x), torch.from_numpy(y))
    return step, evaluate


def _measure(framework: str, steps: int, repeats: int, run_iters: int) -> dict:
    """Timings in this (fresh) process: ms per training step and per evaluation forward (best and median of
    the repeats), and optionally an end-to-end run of ``run_iters`` steps (s)."""
    step, evaluate = (_nerve_setup if framework == "nerve" else _torch_setup)()
    batches = _batches(max(steps, 10))
    for x, y in batches[:5]:
        step(x, y)
    runs, evals = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for x, y in batches[:steps]:
            step(x, y)
        runs.append((time.perf_counter() - t0) / steps * 1e3)
        t0 = time.perf_counter()
        for x, y in batches[:steps]:
            evaluate(x, y)
        evals.append((time.perf_counter() - t0) / steps * 1e3)
    result = {"step_ms": min(runs), "step_median_ms": float(np.median(runs)), "eval_ms": min(evals)}
    if run_iters:
        run = _batches(run_iters, seed=1)
        t0 = time.perf_counter()
        for x, y in run:
            step(x, y)
        result["run_s"] = time.perf_counter() - t0
    return result


def isolated(*args) -> dict:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_measure, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="iterations per timing")
    parser.add_argument("--repeats", type=int, default=10, help="timings per framework")
    parser.add_argument("--run-iters", type=int, default=0, help="also time this many iterations end to end")
    parser.add_argument("--no-torch", action="store_true", help="time nerve only")
    args = parser.parse_args()
    try:
        import torch
        torch_version = None if args.no_torch else torch.__version__
    except ImportError:
        torch_version = None
    print(f"GPT {CONFIG}; numpy {np.__version__}, OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, {os.cpu_count()} CPUs"
          + (f", torch {torch_version}" if torch_version else ", torch not timed"))
    results = {"nerve": isolated("nerve", args.steps, args.repeats, args.run_iters)}
    if torch_version:
        results["torch"] = isolated("torch", args.steps, args.repeats, args.run_iters)
    header = f"{'':<34}" + "".join(f"{name:>10}" for name in results) + (f"{'ratio':>10}" if len(results) > 1 else "")
    print(header)
    print("-" * len(header))

    def row(label: str, values: list) -> None:
        ratio = f"{values[0] / values[1]:>10.2f}" if len(values) > 1 else ""
        print(f"{label:<34}" + "".join(f"{v:>10.1f}" for v in values) + ratio)

    row("train iteration, best (ms)", [r["step_ms"] for r in results.values()])
    row("train iteration, median (ms)", [r["step_median_ms"] for r in results.values()])
    row("eval forward, no grad, best (ms)", [r["eval_ms"] for r in results.values()])
    row("2000 iterations + evals (s, proj.)",
        [(2000 * r["step_ms"] + EVAL_FORWARDS * r["eval_ms"]) / 1e3 for r in results.values()])
    if args.run_iters:
        row(f"{args.run_iters} iterations measured (s)", [r["run_s"] for r in results.values()])
        row("  -> 2000 iterations (s)", [r["run_s"] * 2000 / args.run_iters for r in results.values()])
    if len(results) > 1:
        ratio = results["nerve"]["step_ms"] / results["torch"]["step_ms"]
        print(f"nerve / torch per training iteration (best): {ratio:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
