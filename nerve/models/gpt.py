"""A GPT: a decoder-only transformer language model (GPT-2's layout, nanoGPT's parameter names).

Token and position embeddings, ``n_layer`` pre-norm blocks of causal self-attention and a 4x GELU MLP, a
final LayerNorm and a linear head (optionally sharing the token embedding's matrix). Also the training
helpers such models use: parameter groups with weight decay on matrices only, and a cosine learning rate
with linear warm-up.
"""
from __future__ import annotations

import math

from nerve import backend, nn
from nerve import functional as F
from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.ops import attention_weights, linear_gelu, packed_self_attention
from nerve.optim import AdamW
from nerve.optim.lr_scheduler import LambdaLR
from nerve.tensor import Tensor


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where each position sees itself and the positions before it.

    ``c_attn`` projects to q, k, v in one GEMM, the fused packed attention splits the heads by strided views,
    ``c_proj`` mixes the concatenated heads. Set ``save_attention`` to keep the last weights (B, H, T, T).
    NOTE: the projections run on (B*T, C) rows: NumPy's matmul of a 3-D array by a matrix loops over the
    first axis with one small GEMM each, several times slower than one GEMM over all rows.
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"CausalSelfAttention: n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)
        self.n_head, self.n_embd, self.dropout = n_head, n_embd, dropout
        self.save_attention = False
        self.saved_attention = None

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, T, C)."""
        b, t, c = x.shape
        qkv = self.c_attn(x.reshape(b * t, c)).reshape(b, t, 3 * c)
        if self.save_attention:
            self.saved_attention = self._weights(qkv.detach())
        y = packed_self_attention(qkv, self.n_head, dropout_p=self.dropout if self.training else 0.0,
                                  is_causal=True)
        return self.resid_dropout(self.c_proj(y.reshape(b * t, c))).reshape(b, t, c)

    def _weights(self, qkv: Tensor) -> Tensor:
        b, t, _ = qkv.shape
        q, k, _ = qkv.reshape(b, t, 3, self.n_head, -1).permute(2, 0, 3, 1, 4).unbind(0)
        with no_grad():
            return attention_weights(q, k, is_causal=True)


class MLP(nn.Module):
    """Position-wise feed-forward: c_fc (C -> 4C), exact GELU (fused with c_fc), c_proj (4C -> C), dropout."""

    def __init__(self, n_embd: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """(..., C) -> (..., C)."""
        rows = x.reshape(-1, x.shape[-1])
        return self.dropout(self.c_proj(linear_gelu(rows, self.c_fc.weight, self.c_fc.bias))).reshape(x.shape)


class Block(nn.Module):
    """x + attn(ln_1(x)), then x + mlp(ln_2(x)): a pre-norm transformer block."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, dropout, bias)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, T, C)."""
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """A GPT language model over a vocabulary of ``vocab_size`` tokens and contexts of up to ``block_size``.

    ``forward(idx)`` maps token ids (B, T) to next-token logits (B, T, vocab_size); ``loss(logits, targets)``
    is their mean cross-entropy; ``generate`` samples continuations. Initialised as GPT-2: N(0, 0.02)
    weights, zero biases, and the residual projections scaled by 1/sqrt(2 n_layer). With ``tie_weights``
    the head reuses the token embedding's matrix.
    """

    def __init__(self, vocab_size: int, block_size: int = 64, n_layer: int = 4, n_head: int = 4, n_embd: int = 128,
                 dropout: float = 0.0, bias: bool = True, tie_weights: bool = True) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("block_size", block_size), ("n_layer", n_layer),
                            ("n_head", n_head), ("n_embd", n_embd)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GPT: {name} must be a positive int, got {value!r}")
        self.config = {"vocab_size": vocab_size, "block_size": block_size, "n_layer": n_layer, "n_head": n_head,
                       "n_embd": n_embd, "dropout": dropout, "bias": bias, "tie_weights": tie_weights}
        self.block_size = block_size
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(vocab_size, n_embd),
            "wpe": nn.Embedding(block_size, n_embd),
            "drop": nn.Dropout(dropout),
            "h": nn.ModuleList([Block(n_embd, n_head, dropout, bias) for _ in range(n_layer)]),
            "ln_f": nn.LayerNorm(n_embd, bias=bias),
        })
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        if tie_weights:
            self.lm_head.weight = self.transformer.wte.weight
        self._init_weights(n_layer)

    def _init_weights(self, n_layer: int) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * n_layer))

    def forward(self, idx) -> Tensor:
        """Logits (B, T, vocab_size) of the token after each position of ``idx`` (B, T) (or (T,))."""
        tr = self.transformer
        ids = idx.data if isinstance(idx, Tensor) else xp.asarray(idx)
        if ids.ndim == 1:
            return self.forward(ids[None])[0]
        if ids.ndim != 2:
            raise ValueError(f"GPT: expected token ids (B, T), got shape {tuple(ids.shape)}")
        t = ids.shape[1]
        if t > self.block_size:
            raise ValueError(f"GPT: sequence of length {t} is longer than block_size={self.block_size}")
        x = tr.drop(tr.wte(ids) + tr.wpe.weight[:t])
        for block in tr.h:
            x = block(x)
        b, _, c = x.shape
        return self.lm_head(tr.ln_f(x).reshape(b * t, c)).reshape(b, t, -1)

    @staticmethod
    def loss(logits: Tensor, targets) -> Tensor:
        """Mean next-token cross-entropy of logits (..., V) against ids (...); targets of -1 are ignored."""
        t = targets if isinstance(targets, Tensor) else Tensor(xp.asarray(targets))
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), t.reshape(-1), ignore_index=-1)

    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, generator=None) -> Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``idx`` (B, T) (or (T,)), feeding each back in.

        Logits are divided by ``temperature`` (0 picks the most likely token), cut to the ``top_k`` most
        likely and/or to the smallest set whose probability reaches ``top_p``; samples come from
        ``generator`` (a NumPy Generator, default nerve's seeded one), so a seed repeats the text.
        Runs without gradients and in eval mode (restoring the previous mode).
        """
        ids = xp.asarray(idx.data if isinstance(idx, Tensor) else idx, dtype=xp.int64)
        single = ids.ndim == 1
        ids = ids[None] if single else ids
        if temperature < 0 or (top_k is not None and top_k < 1) or (top_p is not None and not 0 < top_p <= 1):
            raise ValueError(f"GPT.generate: need temperature >= 0, top_k >= 1, 0 < top_p <= 1; got "
                             f"temperature={temperature}, top_k={top_k}, top_p={top_p}")
        gen = backend.default_generator() if generator is None else generator
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                for _ in range(max_new_tokens):
                    logits = self.forward(ids[:, -self.block_size:]).data[:, -1, :].astype(xp.float64)
                    ids = xp.concatenate([ids, _sample(logits, temperature, top_k, top_p, gen)[:, None]], axis=1)
        finally:
            self.train(was_training)
        return Tensor(ids[0] if single else ids)

    def configure_optimizers(self, weight_decay: float, learning_rate: float, betas=(0.9, 0.999), eps: float = 1e-8,
                             decay_embeddings: bool = False) -> AdamW:
        """AdamW over ``decay_groups(self, weight_decay, decay_embeddings)``."""
        return AdamW(decay_groups(self, weight_decay, decay_embeddings), lr=learning_rate, betas=betas, eps=eps)

    def get_config(self) -> dict:
        """Constructor arguments, saved with the weights."""
        return dict(self.config)


def _sample(logits, temperature: float, top_k: int | None, top_p: float | None, gen):
    """One token id per row of ``logits`` (B, V)."""
    if temperature == 0:
        return logits.argmax(axis=1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[1]:
        kth = xp.partition(logits, -top_k, axis=1)[:, -top_k, None]
        logits = xp.where(logits < kth, -xp.inf, logits)
    probs = xp.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    if top_p is not None and top_p < 1:
        order = xp.argsort(-probs, axis=1, kind="stable")
        sorted_p = xp.take_along_axis(probs, order, axis=1)
        # keep the most likely tokens up to and including the one whose cumulative probability reaches top_p
        drop_sorted = xp.cumsum(sorted_p, axis=1) - sorted_p >= top_p
        drop = xp.zeros_like(drop_sorted)
        xp.put_along_axis(drop, order, drop_sorted, axis=1)
        probs = xp.where(drop, 0.0, probs)
        probs /= probs.sum(axis=1, keepdims=True)
    u = gen.random((probs.shape[0], 1))
    picked = (xp.cumsum(probs, axis=1) < u).sum(axis=1)
    return xp.minimum(picked, probs.shape[1] - 1)


def decay_groups(model: nn.Module, weight_decay: float, decay_embeddings: bool = False) -> list:
    """Two optimiser parameter groups: matrices (2-D or more) with ``weight_decay``, the rest (biases, norms) and
    embedding tables (unless ``decay_embeddings``; nanoGPT decays them) with none."""
    embeddings = set()
    if not decay_embeddings:
        embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and id(p) not in embeddings else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def warmup_cosine(step: int, learning_rate: float, warmup_iters: int, lr_decay_iters: int, min_lr: float) -> float:
    """The learning rate of ``step``: linear warm-up to ``learning_rate`` over ``warmup_iters`` steps, cosine decay
    to ``min_lr`` at ``lr_decay_iters``, then ``min_lr`` (nanoGPT's schedule)."""
    if step < warmup_iters:
        return learning_rate * (step + 1) / (warmup_iters + 1)
    if step > lr_decay_iters:
        return min_lr
    ratio = (step - warmup_iters) / max(lr_decay_iters - warmup_iters, 1)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)


def warmup_cosine_scheduler(optimizer, warmup_iters: int, lr_decay_iters: int, min_lr: float) -> LambdaLR:
    """``warmup_cosine`` as a per-step scheduler (call ``step()`` after each optimiser step); the peak learning
    rate is each group's initial one, ``min_lr`` an absolute floor."""
    def factor(step: int, group_lr: float) -> float:
        return warmup_cosine(step, group_lr, warmup_iters, lr_decay_iters, min_lr) / group_lr
    lambdas = [lambda step, lr=g["lr"]: factor(step, lr) for g in optimizer.param_groups]
    return LambdaLR(optimizer, lambdas)
