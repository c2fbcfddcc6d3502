"""Attention rollout and token attributions of a transformer text classifier.

The task (as examples/text_classification.py): sequences of 24 tokens from a vocabulary of 10, labelled 1 when
the first token equals the last. A 2-layer TransformerEncoder learns it; only positions 0 and 23 matter. This
script trains it, then asks where it looks: attention rollout (Abnar & Zuidema 2020: the layers' head-averaged
attention, mixed with the identity for the residual path, multiplied through the layers; averaged over the output
positions, since the classifier mean-pools them) and LayerIntegratedGradients through the token embedding. It prints
the share of each map on the two positions that decide (uniform: 2/24 = 0.083) and writes one PNG: the rollout
map of one sequence and token heat maps of both methods for three sequences.

Run:  python examples/explain_attention.py [--train 4000] [--epochs 15] [--out runs/attention_rollout.png]
Quick check:  python examples/explain_attention.py --train 256 --epochs 1 --test 64
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve import explain, nn  # noqa: E402


def make_data(n: int, length: int, vocab: int, rng: np.random.Generator) -> tuple:
    """(tokens (n, length), labels (n,)): label 1 when the first token equals the last."""
    x = rng.integers(0, vocab, (n, length))
    positive = rng.random(n) < 0.5
    x[positive, -1] = x[positive, 0]
    shift = rng.integers(1, vocab, n)
    x[~positive, -1] = (x[~positive, 0] + shift[~positive]) % vocab
    return x, positive.astype(np.int64)


class Classifier(nn.Module):
    """Token embeddings + sinusoidal positions -> TransformerEncoder (pre-norm) -> mean over positions -> logits."""

    def __init__(self, vocab: int, length: int, d_model: int = 32, nhead: int = 4, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.SinusoidalPositionalEncoding(d_model, max_len=length, batch_first=True)
        layer = nn.TransformerEncoderLayer(d_model, nhead, 2 * d_model, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model))
        self.head = nn.Linear(d_model, 2)

    def forward(self, x):
        return self.head(self.encoder(self.pos(self.embed(x))).mean(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--length", type=int, default=24)
    parser.add_argument("--vocab", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", default=os.path.join("runs", "attention_rollout.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    data, test = make_data(args.train, args.length, args.vocab, rng), make_data(args.test, args.length, args.vocab, rng)
    nerve.manual_seed(args.seed)
    model = Classifier(args.vocab, args.length)
    t0 = time.perf_counter()
    nerve.train.fit(model, data, loss="cross_entropy", optimizer=nerve.optim.Adam(model.parameters(), lr=2e-3),
                    epochs=args.epochs, batch_size=64, verbose=0)
    pred = nerve.train.predict(model, test[0], batch_size=256).numpy().argmax(1)
    acc = float((pred == test[1]).mean())
    print(f"transformer classifier: {args.train} sequences, {args.epochs} epochs ({time.perf_counter() - t0:.0f} s), "
          f"test accuracy {acc:.3f}")

    tokens = nerve.tensor(test[0])
    rolled = explain.attention_rollout(model, tokens)  # (N, L, L)
    by_input = rolled.mean(axis=1)  # mean-pooled classifier: average over the output positions
    lig = explain.LayerIntegratedGradients(model, model.embed).attribute(
        test[0], baselines=0, target=pred.tolist(), n_steps=32)
    token_attr = np.abs(lig.numpy().sum(axis=2))
    token_attr /= token_attr.sum(axis=1, keepdims=True)
    ends = [0, args.length - 1]
    uniform = 2 / args.length
    share_roll = float(by_input[:, ends].sum(axis=1).mean())
    share_lig = float(token_attr[:, ends].sum(axis=1).mean())
    print(f"share on the first and last positions (uniform {uniform:.3f}): attention rollout {share_roll:.3f}, "
          f"|LayerIntegratedGradients| {share_lig:.3f}")
    _plot(rolled, by_input, token_attr, test[0], pred, args.out)
    print(f"result: test accuracy {acc:.3f}; rollout share on the deciding positions {share_roll:.3f}, "
          f"integrated-gradients share {share_lig:.3f} (uniform {uniform:.3f})")


def _plot(rolled, by_input, token_attr, tokens, pred, path: str) -> None:
    from nerve.explain.plots import pyplot
    plt = pyplot("explain_attention")
    fig = plt.figure(figsize=(12, 7))
    grid = fig.add_gridspec(6, 2, width_ratios=[1, 1.6])
    explain.plot_rollout(rolled[0], tokens=[str(t) for t in tokens[0]], ax=fig.add_subplot(grid[:, 0]),
                         title=f"rollout of sequence 0 (prediction {pred[0]})")
    for i in range(3):
        words = [str(t) for t in tokens[i]]
        explain.plot_text_attr(words, by_input[i], ax=fig.add_subplot(grid[2 * i, 1]), signed=False, cmap="Reds",
                               wrap=len(words), title=f"sequence {i} (prediction {pred[i]}): attention rollout")
        explain.plot_text_attr(words, token_attr[i], ax=fig.add_subplot(grid[2 * i + 1, 1]), signed=False,
                               cmap="Blues", wrap=len(words), title="|LayerIntegratedGradients| of the embedding")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
