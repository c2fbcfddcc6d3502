"""Physics-informed networks with exact solutions: Poisson -Δu = 2π² sin(πx) sin(πy) on the unit square with
u = 0 on its boundary (exact u = sin(πx) sin(πy)), and (--problem heat) u_t = 0.4 u_xx on [0, 1] x [0, 1] with
u(0, t) = u(1, t) = 0, u(x, 0) = sin(πx) (exact u = exp(-0.4 π² t) sin(πx)). Adam, then L-BFGS; the relative L2
error over a 101 x 101 grid (target 1e-3).

Run: python examples/pinn_poisson.py [--problem poisson|heat] [--adam 2000] [--lbfgs 2000] [--time-limit 300]
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
import nerve  # noqa: E402
from nerve.pinn import benchmarks  # noqa: E402
from nerve.pinn.plot import plot_field, plot_losses  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", default="poisson", choices=["poisson", "heat"])
    parser.add_argument("--adam", type=int, default=2000)
    parser.add_argument("--lbfgs", type=int, default=2000)
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--display-every", type=int, default=100)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/pinn_poisson", help="directory for the PNGs ('' for none)")
    args = parser.parse_args()
    run = benchmarks.poisson if args.problem == "poisson" else benchmarks.heat
    r = run(adam_iterations=args.adam, lbfgs_iterations=args.lbfgs, time_limit=args.time_limit, seed=args.seed,
            dtype=getattr(nerve, args.dtype), display_every=args.display_every)
    print(f"{args.problem}: relative L2 error {r['error']:.3e} after {r['iterations']} iterations, "
          f"{r['seconds']:.0f} s ({r['stop_reason'] or 'iterations done'})")
    if args.out:
        plot_losses(r["model"].losshistory, os.path.join(args.out, f"{args.problem}_losses.png"),
                    extra={"rel. L2 error": [(it, e) for it, _, e in r["errors"]]})
        if args.problem == "heat":
            plot_field(r["x"], r["t"], r["pred"], r["ref"], os.path.join(args.out, "heat_field.png"),
                       title=f"heat equation: nerve PINN, relative L2 {r['error']:.2e}")
        print(f"pictures in {args.out}/")


if __name__ == "__main__":
    main()
