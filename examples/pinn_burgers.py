"""Raissi et al. (2019)'s Burgers problems with a physics-informed network: the forward problem
u_t + u u_x - (0.01/π) u_xx = 0 on [-1, 1] x [0, 0.99] (100 initial/boundary values, 10,000 Latin-hypercube
collocation points, 8 x 20 tanh, Adam then L-BFGS) against the reference solution burgers_shock.mat, and
(--inverse) the identification of λ1 = 1 and λ2 = 0.01/π from 2,000 noise-free reference values.

Run: python examples/pinn_burgers.py --data ../shared/data/burgers [--time-limit 1200] [--adam 1000]
         [--lbfgs 50000] [--inverse] [--dtype float32] [--out runs/pinn_burgers]
Prints the relative L2 error over the 256 x 100 reference grid as training goes, and writes
<out>/burgers_field.png (prediction, reference, error, slices at t = 0.25, 0.5, 0.75) and
<out>/burgers_losses.png (<out>/burgers_inverse_losses.png with --inverse).
Paper: relative L2 6.7e-4 (L-BFGS-B to convergence); inverse: λ1 error 0.078%, λ2 error 0.6%.
BLAS runs on one thread unless OPENBLAS_NUM_THREADS says otherwise (10,000 x 20 products are too small to
split; under load two threads fight: 20 ms vs 0.5 ms a product measured on a busy 2-core machine).
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from nerve.pinn.command import add_arguments, run  # noqa: E402


def main() -> None:
    parser = add_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    args = parser.parse_args()
    args.problem = "burgers"
    if args.out is None:
        args.out = "runs/pinn_burgers"
    run(args)


if __name__ == "__main__":
    main()
