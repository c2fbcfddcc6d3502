"""Training-step time of feedback alignment, sign symmetry and DFA relative to backprop, same model and optimiser.

Run: python bench/rules.py [--steps 20] [--rounds 9] [--quick]
Prints a table per model (MLP 784-256-256-10 tanh at batch 64; SmallCNN at batch 64): ms per step (forward,
backward, SGD with momentum) and the ratio to backprop's step, the median of paired rounds (bench/_paired.py:
each rule in its own process, taking turns). Target: every rule within 1.2x of backprop.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from _paired import compare, cycling  # noqa: E402

BATCH = 64
RULES = ("backprop", "fa", "sign", "dfa")


def setup(model_name: str, rule_name: str):
    """A burst runner of one training step of ``model_name`` with ``rule_name``."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    import nerve
    import nerve.functional as F
    from nerve import nn, rules
    from nerve.models import SmallCNN

    nerve.manual_seed(0)
    if model_name == "mlp":
        model = nn.Sequential(nn.Linear(784, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 10))
        shape = (BATCH, 784)
    else:
        model, shape = SmallCNN(), (BATCH, 1, 28, 28)
    rule = {"backprop": lambda: rules.Backprop(model), "fa": lambda: rules.FeedbackAlignment(model, seed=0),
            "sign": lambda: rules.FeedbackAlignment(model, feedback="sign"),
            "dfa": lambda: rules.DirectFeedbackAlignment(model, seed=0)}[rule_name]()
    opt = nerve.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    batches = [(nerve.tensor(rng.random(shape, dtype=np.float32)), nerve.tensor(rng.integers(0, 10, BATCH)))
               for _ in range(4)]

    def step(x, y):
        opt.zero_grad()
        with rule:
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return cycling(step, batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per burst")
    parser.add_argument("--rounds", type=int, default=9, help="paired rounds (the median ratio is reported)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 steps, 2 rounds, MLP only")
    args = parser.parse_args()
    steps, rounds = (2, 2) if args.quick else (args.steps, args.rounds)
    for model_name in ("mlp",) if args.quick else ("mlp", "cnn"):
        result = compare({r: (setup, model_name, r) for r in RULES}, steps, rounds)
        print(f"\n{model_name}: training step at batch {BATCH}, {rounds} paired rounds of {steps} steps")
        print(f"{'rule':10}{'median ms':>11}{'best ms':>9}{'rule/BP':>9}")
        for name, row in result.items():
            print(f"{name:10}{row['median']:11.2f}{row['best']:9.2f}{1 / row['ratio']:9.2f}")


if __name__ == "__main__":
    main()
