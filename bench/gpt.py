"""GPT training-step time: nanoGPT's shakespeare_char CPU configuration in nerve and in PyTorch.

Configuration: block 64, batch 12, 4 layers, 4 heads, embedding 128, dropout 0, no biases, tied head,
AdamW (betas 0.9/0.99, weight decay 0.1 on matrices) with gradient clipping at 1.0; 65-character vocabulary.
Run: python bench/gpt.py [--steps 10] [--rounds 15] [--run-iters 0] [--no-torch]
Prints ms per iteration for each framework and their ratio. The frameworks run in their own processes and
take turns at bursts of ``--steps`` iterations (bench/_paired.py): the ratio is the median of the per-round
ratios, so both sides see the same machine conditions; "best" is each side's fastest burst. Then the
projected time of nanoGPT's 2000 iterations (with its evaluations: 9 of 20 batches each of train and val);
``--run-iters N`` also times N iterations end to end, one framework after the other (``--run-iters 2000`` is
the whole run, a few minutes per framework).
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
from _paired import compare, cycling  # noqa: E402

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


def setup(framework: str, part: str):
    """A burst runner of training iterations (``part="step"``) or evaluation forwards (``"eval"``)."""
    step, evaluate = (_nerve_setup if framework == "nerve" else _torch_setup)()
    return cycling(step if part == "step" else evaluate, _batches(10))


def _run(framework: str, iters: int) -> float:
    """Seconds for ``iters`` training iterations end to end, in this (fresh) process."""
    step, _ = (_nerve_setup if framework == "nerve" else _torch_setup)()
    run = _batches(iters, seed=1)
    t0 = time.perf_counter()
    for x, y in run:
        step(x, y)
    return time.perf_counter() - t0


def isolated(*args) -> float:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_run, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="iterations per timing")
    parser.add_argument("--rounds", type=int, default=15, help="bursts per framework, taken in turn")
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
    names = ["nerve", "torch"] if torch_version else ["nerve"]
    step = compare({n: (setup, n, "step") for n in names}, args.steps, args.rounds)
    evals = compare({n: (setup, n, "eval") for n in names}, args.steps, max(3, args.rounds // 2))
    results = {n: {"step_ms": step[n]["best"], "step_median_ms": step[n]["median"], "eval_ms": evals[n]["best"],
                   "ratio": step[n]["ratio"]} for n in names}
    if args.run_iters:
        for n in names:
            results[n]["run_s"] = isolated(n, args.run_iters)
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
        print(f"nerve / torch per training iteration: {results['torch']['ratio']:.2f}x, the median of "
              f"{args.rounds} paired rounds (target <= 1.2x)")


if __name__ == "__main__":
    main()
