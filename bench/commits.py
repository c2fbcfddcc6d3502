"""nerve against itself at another commit: every benchmark's nerve workload, paired in one run.

Run: git worktree add /tmp/before <commit>; python bench/commits.py /tmp/before
Each contender imports nerve and the benchmark module from its own tree in its own process, and the two take
turns at bursts (bench/_paired.py), so each round compares the same machine conditions. The ratio is
this tree / the other tree, median over rounds (below 1: faster now).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from _paired import compare, per_call

HERE = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

#: name -> (benchmark module, its nerve setup, whether the setup returns one call rather than a burst runner, args)
WORKLOADS = {
    "add chain (8 elems)": ("overhead", "nerve_chain", True, ("add",)),
    "mul chain (8 elems)": ("overhead", "nerve_chain", True, ("mul",)),
    "tanh chain (8 elems)": ("overhead", "nerve_chain", True, ("tanh",)),
    "exp chain (8 elems)": ("overhead", "nerve_chain", True, ("exp",)),
    "relu chain (8 elems)": ("overhead", "nerve_chain", True, ("relu",)),
    "matmul chain 64x64": ("overhead", "nerve_matmul", True, ()),
    "MLP step, batch 128": ("mlp", "steps", False, ("nerve", 128, None)),
    "MLP step, batch 32": ("mlp", "steps", False, ("nerve", 32, None)),
    "SmallCNN step": ("cnn", "setup_step", False, ("nerve",)),
    "LSTM step": ("rnn", "nerve_steps", False, ("lstm",)),
    "GRU step": ("rnn", "nerve_steps", False, ("gru",)),
    "GPT step": ("gpt", "setup", False, ("nerve", "step")),
}


def in_tree(root: str, module: str, setup: str, one_call: bool, args: tuple):
    """A burst runner built from ``root``'s nerve and ``root/bench/<module>.py`` (runs in a fresh process)."""
    sys.path[:0] = [root, os.path.join(root, "bench")]
    for name in [m for m in sys.modules if m == "nerve" or m.startswith("nerve.") or m == "_paired"]:
        del sys.modules[name]
    bench = importlib.import_module(module)
    made = getattr(bench, setup)(*args)
    loaded = sys.modules["nerve"].__file__
    if not loaded.startswith(os.path.abspath(root)):
        raise RuntimeError(f"expected nerve from {root}, got {loaded}")
    return per_call(made) if one_call else made


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options both paired tables take: burst length, rounds, which workloads."""
    parser.add_argument("--steps", type=int, default=10, help="calls per burst")
    parser.add_argument("--rounds", type=int, default=9, help="bursts per contender, taken in turn")
    parser.add_argument("--only", default="", help="comma-separated substrings of workload names to run")


def paired_table(args, labels: tuple, contenders) -> None:
    """One row per wanted workload: each of the two ``labels``' median ms, the first / the second (median of
    per-round ratios) and best / best; ``contenders(module, setup, one_call, setup_args)`` gives compare's two
    setups, in the order of ``labels``."""
    wanted = [w for w in WORKLOADS if not args.only or any(s in w for s in args.only.split(","))]
    first, second = labels
    header = f"{'workload':<24}{first + ' ms':>10}{second + ' ms':>11}{first + '/' + second:>12}{'best/best':>11}"
    print(header)
    print("-" * len(header))
    for name in wanted:
        a, b = contenders(*WORKLOADS[name])
        r = compare({first: a, second: b}, args.steps, args.rounds)
        print(f"{name:<24}{r[first]['median']:>10.3f}{r[second]['median']:>11.3f}"
              f"{r[second]['ratio']:>12.3f}{r[second]['best_ratio']:>11.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", help="the other tree (a git worktree of the commit to compare with)")
    add_options(parser)
    args = parser.parse_args()
    other = os.path.abspath(args.other)
    print(f"this tree {HERE} vs {other}; {args.rounds} paired rounds of {args.steps} calls")
    paired_table(args, ("now", "before"), lambda *workload: ((in_tree, HERE, *workload), (in_tree, other, *workload)))


if __name__ == "__main__":
    main()
