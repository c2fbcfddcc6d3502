"""Physics-informed networks with exact solutions: Poisson -Δu = 2π² sin(πx) sin(πy) on the unit square with
u = 0 on its boundary (exact u = sin(πx) sin(πy)), and (--problem heat) u_t = 0.4 u_xx on [0, 1] x [0, 1] with
u(0, t) = u(1, t) = 0, u(x, 0) = sin(πx) (exact u = exp(-0.4 π² t) sin(πx)). Adam, then L-BFGS; the relative L2
error over a 101 x 101 grid (target 1e-3).

Run: python examples/pinn_poisson.py [--problem poisson|heat] [--adam 500] [--lbfgs 5000] [--time-limit 600]
         [--out runs/pinn_poisson]
Writes <out>/<problem>_losses.png (and <out>/heat_field.png). BLAS runs on one thread unless
OPENBLAS_NUM_THREADS says otherwise (small products; two threads fight under load).
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from nerve.pinn.command import add_arguments, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", default="poisson", choices=["poisson", "heat"])
    args = add_arguments(parser).parse_args()
    if args.out is None:
        args.out = "runs/pinn_poisson"
    run(args)


if __name__ == "__main__":
    main()
