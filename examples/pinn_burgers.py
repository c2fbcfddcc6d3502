"""Raissi et al. (2019)'s Burgers problems with a physics-informed network: the forward problem
u_t + u u_x - (0.01/π) u_xx = 0 on [-1, 1] x [0, 0.99] (100 initial/boundary values, 10,000 Latin-hypercube
collocation points, 8 x 20 tanh, Adam then L-BFGS) against the reference solution burgers_shock.mat, and
(--inverse) the identification of λ1 = 1 and λ2 = 0.01/π from 2,000 noise-free reference values.

Run: python examples/pinn_burgers.py --data ../shared/data/burgers [--time-limit 1200] [--adam 1000]
         [--lbfgs 50000] [--inverse] [--dtype float32] [--out runs/pinn_burgers]
Prints the relative L2 error over the 256 x 100 reference grid as training goes, and writes
<out>/field.png (prediction, reference, error, slices at t = 0.25, 0.5, 0.75) and <out>/losses.png.
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
import nerve  # noqa: E402
from nerve.pinn import benchmarks  # noqa: E402
from nerve.pinn.plot import plot_field, plot_losses  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("NERVE_DATA", "data/burgers"),
                        help="burgers_shock.mat or its directory")
    parser.add_argument("--adam", type=int, default=1000, help="Adam iterations (lr 1e-3) before L-BFGS")
    parser.add_argument("--lbfgs", type=int, default=50000, help="at most this many L-BFGS iterations")
    parser.add_argument("--time-limit", type=float, default=1200.0, help="seconds for both phases")
    parser.add_argument("--n-f", type=int, default=10000, help="collocation points (forward problem)")
    parser.add_argument("--display-every", type=int, default=100)
    parser.add_argument("--inverse", action="store_true", help="identify λ1, λ2 from 2,000 points instead")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", default="runs/pinn_burgers", help="directory for the PNGs ('' for none)")
    args = parser.parse_args()
    dtype = getattr(nerve, args.dtype)
    common = dict(adam_iterations=args.adam, lbfgs_iterations=args.lbfgs, time_limit=args.time_limit,
                  seed=args.seed, dtype=dtype, display_every=args.display_every)
    if args.inverse:
        r = benchmarks.burgers_inverse(args.data, **common)
        print(f"burgers inverse: lambda_1 {r['lambda_1']:.5f} (error {100 * r['lambda_1_error']:.3f}%), "
              f"lambda_2 {r['lambda_2']:.6f} (error {100 * r['lambda_2_error']:.3f}%), relative L2 {r['error']:.3e} "
              f"after {r['iterations']} iterations, {r['seconds']:.0f} s ({r['stop_reason'] or 'iterations done'})")
    else:
        r = benchmarks.burgers(args.data, n_f=args.n_f, **common)
        print(f"burgers: relative L2 error {r['error']:.3e} after {r['iterations']} iterations, {r['seconds']:.0f} s "
              f"({r['stop_reason'] or 'iterations done'})")
        for target in (1e-2, 5e-3, 2e-3, 1e-3):
            hit = next(((it, s) for it, s, e in r["errors"] if e <= target), None)
            when = f"iteration {hit[0]}, {hit[1]:.0f} s" if hit else "not reached"
            print(f"  first logged error <= {target:g}: {when}")
    if args.out:
        if not args.inverse:
            plot_field(r["x"], r["t"], r["pred"], r["ref"], os.path.join(args.out, "field.png"),
                       title=f"Burgers: nerve PINN, relative L2 {r['error']:.2e}")
        plot_losses(r["model"].losshistory, os.path.join(args.out, "losses.png"),
                    extra={"rel. L2 error": [(it, e) for it, _, e in r["errors"]]})
        print(f"pictures in {args.out}/")


if __name__ == "__main__":
    main()
