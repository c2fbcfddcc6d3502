"""nerve's own threads against BLAS's threads: every benchmark's nerve workload in both modes, paired in one run.

Run: python bench/threads.py [--threads 2] [--only MLP,CNN] [--steps 10] [--rounds 9]
Own threads (``nerve.set_intra_op_threads(k)``): BLAS single-threaded, nerve cutting each large kernel in k
parts on its worker threads (nerve.ops.streams, nerve.ops.workers). BLAS threads: ``set_intra_op_threads(None)``,
BLAS's own thread pool and per-site streams. The two modes run in their own processes and take turns at bursts
(bench/_paired.py); the ratio is own / BLAS, median over rounds (below 1: own threads faster).
"""
from __future__ import annotations

import argparse
import os
import sys

from _paired import compare
from commits import WORKLOADS, in_tree

HERE = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def in_mode(threads: int | None, module: str, setup: str, one_call: bool, args: tuple):
    """A burst runner of this tree's workload with nerve's own threads set to ``threads`` (None: BLAS's)."""
    made = in_tree(HERE, module, setup, one_call, args)
    sys.modules["nerve"].set_intra_op_threads(threads)  # the tree's nerve, freshly imported by in_tree
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="nerve's own threads")
    parser.add_argument("--steps", type=int, default=10, help="calls per burst")
    parser.add_argument("--rounds", type=int, default=9, help="bursts per mode, taken in turn")
    parser.add_argument("--only", default="", help="comma-separated substrings of workload names to run")
    args = parser.parse_args()
    wanted = [w for w in WORKLOADS if not args.only or any(s in w for s in args.only.split(","))]
    print(f"nerve's own threads ({args.threads}) vs BLAS's threads; {args.rounds} paired rounds of {args.steps} calls")
    header = f"{'workload':<24}{'own ms':>10}{'BLAS ms':>10}{'own/BLAS':>10}{'best/best':>11}"
    print(header)
    print("-" * len(header))
    for name in wanted:
        module, setup, one_call, setup_args = WORKLOADS[name]
        r = compare({"own": (in_mode, args.threads, module, setup, one_call, setup_args),
                     "blas": (in_mode, None, module, setup, one_call, setup_args)}, args.steps, args.rounds)
        print(f"{name:<24}{r['own']['median']:>10.3f}{r['blas']['median']:>10.3f}"
              f"{r['blas']['ratio']:>10.3f}{r['blas']['best_ratio']:>11.3f}", flush=True)


if __name__ == "__main__":
    main()
