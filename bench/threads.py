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

from commits import add_options, in_tree, paired_table

HERE = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def in_mode(threads: int | None, module: str, setup: str, one_call: bool, args: tuple):
    """A burst runner of this tree's workload with nerve's own threads set to ``threads`` (None: BLAS's)."""
    made = in_tree(HERE, module, setup, one_call, args)
    sys.modules["nerve"].set_intra_op_threads(threads)  # the tree's nerve, freshly imported by in_tree
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="nerve's own threads")
    add_options(parser)
    args = parser.parse_args()
    print(f"nerve's own threads ({args.threads}) vs BLAS's threads; {args.rounds} paired rounds of {args.steps} calls")
    paired_table(args, ("own", "BLAS"), lambda *workload: ((in_mode, args.threads, *workload),
                                                           (in_mode, None, *workload)))


if __name__ == "__main__":
    main()
