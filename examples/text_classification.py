"""Text classification where word order matters: a TransformerEncoder against a bag-of-words model.

The task (generated here): sequences of 24 tokens from a vocabulary of 10; the label says whether the FIRST
token equals the LAST one. Every sequence draws its tokens uniformly, and the last token of a positive is a
copy of the first, so the counts of the tokens barely differ between the classes: a bag-of-words model
(mean of the token embeddings, then an MLP) stays near chance. A transformer encoder with positional
encodings can look at both ends at once and learns the rule.

Run:  python examples/text_classification.py            (about a minute here)
Quick check:  python examples/text_classification.py --epochs 1 --train 512
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve import nn  # noqa: E402


def make_data(n: int, length: int, vocab: int, rng: np.random.Generator) -> tuple:
    """(tokens (n, length) int64, labels (n,) int64): label 1 when the first token equals the last."""
    x = rng.integers(0, vocab, (n, length))
    positive = rng.random(n) < 0.5
    x[positive, -1] = x[positive, 0]
    # negatives: a last token different from the first (drawn uniformly among the others)
    shift = rng.integers(1, vocab, n)
    x[~positive, -1] = (x[~positive, 0] + shift[~positive]) % vocab
    return x, positive.astype(np.int64)


class TransformerClassifier(nn.Module):
    """Token embeddings + sinusoidal positions -> TransformerEncoder (pre-norm) -> mean over positions -> logits."""

    def __init__(self, vocab: int, length: int, d_model: int = 32, nhead: int = 4, layers: int = 2,
                 n_classes: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.SinusoidalPositionalEncoding(d_model, max_len=length, batch_first=True)
        layer = nn.TransformerEncoderLayer(d_model, nhead, 2 * d_model, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model))
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, x):
        return self.head(self.encoder(self.pos(self.embed(x))).mean(1))


class BagOfWords(nn.Module):
    """Mean of the token embeddings (order is lost) -> MLP -> logits."""

    def __init__(self, vocab: int, d_model: int = 32, n_classes: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 64), nn.ReLU(), nn.Linear(64, n_classes))

    def forward(self, x):
        return self.mlp(self.embed(x).mean(1))


def train(model: nn.Module, data: tuple, test: tuple, args) -> float:
    """Fit with Adam; return the test accuracy."""
    optimizer = nerve.optim.Adam(model.parameters(), lr=args.lr)
    nerve.train.fit(model, data, loss="cross_entropy", optimizer=optimizer, epochs=args.epochs, batch_size=64,
                    validation_data=test, metrics=["accuracy"], verbose=2 if args.verbose else 0)
    logits = nerve.train.predict(model, test[0], batch_size=256)
    return float((logits.numpy().argmax(1) == test[1]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=4000, help="training sequences")
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--length", type=int, default=24)
    parser.add_argument("--vocab", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="print each epoch")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    data = make_data(args.train, args.length, args.vocab, rng)
    test = make_data(args.test, args.length, args.vocab, rng)
    print(f"task: is the first of {args.length} tokens (vocabulary {args.vocab}) equal to the last? "
          f"{args.train} training and {args.test} test sequences, {data[1].mean():.0%} positive")
    results = {}
    for name, build in (("bag of words", lambda: BagOfWords(args.vocab)),
                        ("transformer encoder", lambda: TransformerClassifier(args.vocab, args.length))):
        nerve.manual_seed(args.seed)
        t0 = time.perf_counter()
        results[name] = train(build(), data, test, args)
        print(f"{name:<20} test accuracy {results[name]:.3f}  ({time.perf_counter() - t0:.1f} s)")
    verdict = "beats" if results["transformer encoder"] > results["bag of words"] + 0.2 else "does not beat"
    print(f"the transformer {verdict} the bag of words, which cannot see where a token sits")


if __name__ == "__main__":
    main()
