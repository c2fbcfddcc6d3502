"""nanoGPT's shakespeare_char CPU run in plain PyTorch: the reference for examples/shakespeare_gpt.py.

Same configuration and loop as nanoGPT's train.py/model.py with the README's CPU flags: block 64, batch 12,
4 layers, 4 heads, embedding 128, dropout 0, no biases, tied head, GPT-2 initialisation; AdamW lr 1e-3,
betas (0.9, 0.99), eps 1e-8, weight decay 0.1 on every parameter of 2 or more dims (embeddings included),
gradient clipping at 1.0, 100 warm-up iterations then cosine decay to 1e-4 at iteration 2000; first 90% of
the text for training, last 10% for validation; the loss estimate at iteration N comes after N optimiser steps.
At the end it prints the validation loss of nanoGPT's estimate (mean of ``--eval-iters`` random batches)
and of a closer one (``--final-eval-iters`` batches drawn from numpy's default_rng(0), the same batches as
the nerve example's closing estimate, so the two frameworks are scored on identical text).

Options to pair a run with the nerve example of the same ``--seed``:
  --init nerve      start from nerve's initial weights (nerve.manual_seed(seed), then nerve's GPT)
  --batches numpy   draw every batch offset (training and estimates) from numpy's default_rng(seed) in the
                    order the nerve example does; the default ``torch`` draws them as nanoGPT does
Run: python bench/gpt_torch_reference.py --data ../shared/data --seed 1337 --threads 1
Quick check: python bench/gpt_torch_reference.py --iters 20 --eval-interval 10
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from shakespeare_gpt import add_config_arguments  # noqa: E402  (the example's flags and defaults)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: one q/k/v projection, fused attention, an output projection."""

    def __init__(self, n_embd: int, n_head: int, bias: bool) -> None:
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.n_head = n_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (a.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
                   for a in self.c_attn(x).split(c, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))


class MLP(nn.Module):
    """C -> 4C, exact GELU, 4C -> C."""

    def __init__(self, n_embd: int, bias: bool) -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    """Pre-norm block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, n_embd: int, n_head: int, bias: bool) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, bias)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """nanoGPT's GPT (parameter names as there and as in nerve.models.GPT): tied head, GPT-2 init."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int,
                 bias: bool = False) -> None:
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd),
            wpe=nn.Embedding(block_size, n_embd),
            h=nn.ModuleList([Block(n_embd, n_head, bias) for _ in range(n_layer)]),
            ln_f=nn.LayerNorm(n_embd, bias=bias),
        ))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy of the logits of ``idx`` (B, T) against ``targets`` (B, T)."""
        tr = self.transformer
        x = tr.wte(idx) + tr.wpe(torch.arange(idx.shape[1], dtype=torch.long))
        for block in tr.h:
            x = block(x)
        logits = self.lm_head(tr.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def get_lr(it: int, args) -> float:
    """nanoGPT's schedule: linear warm-up, cosine decay to min_lr at lr_decay_iters, then min_lr."""
    if it < args.warmup_iters:
        return args.lr * (it + 1) / (args.warmup_iters + 1)
    if it > args.lr_decay_iters:
        return args.min_lr
    ratio = (it - args.warmup_iters) / (args.lr_decay_iters - args.warmup_iters)
    return args.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (args.lr - args.min_lr)


def numpy_windows(ids: np.ndarray, block: int, batch: int, rng: np.random.Generator) -> tuple:
    """A batch whose offsets come from ``rng`` as nerve.data.text.random_windows draws them."""
    starts = rng.integers(0, len(ids) - block, size=batch)
    w = torch.from_numpy(ids[starts[:, None] + np.arange(block + 1)])
    return w[:, :-1].contiguous(), w[:, 1:].contiguous()


def torch_windows(ids: torch.Tensor, block: int, batch: int) -> tuple:
    """nanoGPT's get_batch: offsets from torch's global generator."""
    ix = torch.randint(len(ids) - block, (batch,))
    x = torch.stack([ids[i:i + block] for i in ix])
    y = torch.stack([ids[i + 1:i + 1 + block] for i in ix])
    return x, y


def load_text(path: str | None) -> str:
    """Tiny shakespeare from ``path`` (the file or a folder holding it), default ../shared/data."""
    if path is None:
        path = os.environ.get("NERVE_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    for candidate in (path, os.path.join(path, "input.txt"), os.path.join(path, "tinyshakespeare", "input.txt")):
        if os.path.isfile(candidate):
            with open(candidate, encoding="utf-8") as f:
                return f.read()
    sys.exit(f"tiny shakespeare's input.txt not found under {path}")


def nerve_initial_state(args, vocab_size: int) -> dict:
    """The initial weights the nerve example starts from with this seed, as torch tensors."""
    import nerve
    from nerve.models import GPT as NerveGPT
    nerve.manual_seed(args.seed)
    model = NerveGPT(vocab_size, args.block_size, args.n_layer, args.n_head, args.n_embd, dropout=0.0, bias=False)
    return {k: torch.from_numpy(np.array(v.numpy(), dtype=np.float32)) for k, v in model.state_dict().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="input.txt or a folder holding it (default ../shared/data)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (0: leave torch's default)")
    add_config_arguments(parser)
    parser.add_argument("--init", choices=("torch", "nerve"), default="torch")
    parser.add_argument("--batches", choices=("torch", "numpy"), default="torch")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    text = load_text(args.data)
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.int64)
    n = int(len(ids) * 0.9)
    splits = {"train": ids[:n], "val": ids[n:]}
    torch_splits = {k: torch.from_numpy(v) for k, v in splits.items()}

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = GPT(len(chars), args.block_size, args.n_layer, args.n_head, args.n_embd)
    if args.init == "nerve":
        model.load_state_dict(nerve_initial_state(args, len(chars)))
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": args.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, args.beta2), eps=1e-8)

    def batch(split: str) -> tuple:
        if args.batches == "numpy":
            return numpy_windows(splits[split], args.block_size, args.batch_size, rng)
        return torch_windows(torch_splits[split], args.block_size, args.batch_size)

    @torch.no_grad()
    def estimate(eval_iters: int, draw) -> dict:
        model.eval()
        out = {s: float(np.mean([model(*draw(s)).item() for _ in range(eval_iters)])) for s in ("train", "val")}
        model.train()
        return out

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; seed {args.seed}, init {args.init}, "
          f"batches {args.batches}")
    # NOTE: nanoGPT draws the first training batch before the loop and each next one right after the forward
    # (so before an estimate); the nerve example draws each batch after that iteration's estimate.
    x, y = batch("train") if args.batches == "torch" else (None, None)
    losses = {}
    start = time.perf_counter()
    for it in range(args.iters + 1):
        lr = get_lr(it, args)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if it % args.eval_interval == 0 or it == args.iters:
            losses = estimate(args.eval_iters, batch)
            print(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}", flush=True)
        if it == args.iters:
            break
        if args.batches == "numpy":
            x, y = batch("train")
        loss = model(x, y)
        if args.batches == "torch":
            x, y = batch("train")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if it % args.log_interval == 0:
            print(f"iter {it}: loss {loss.item():.4f}, lr {lr:.2e}", flush=True)
    print(f"{args.iters} iterations in {time.perf_counter() - start:.1f} s")
    print(f"final val loss {losses['val']:.4f} (mean of {args.eval_iters} batches)")
    if args.final_eval_iters:
        final_rng = np.random.default_rng(0)
        final = estimate(args.final_eval_iters,
                         lambda s: numpy_windows(splits[s], args.block_size, args.batch_size, final_rng))
        print(f"closer estimate ({args.final_eval_iters} batches): train {final['train']:.4f}, val {final['val']:.4f}")


if __name__ == "__main__":
    main()
