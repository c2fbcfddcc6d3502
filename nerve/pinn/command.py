"""``nerve pinn burgers|poisson|heat``: run a built-in benchmark problem, print its figures, write its pictures
(shared by the command line and the examples)."""
from __future__ import annotations

import argparse
import os

import nerve
from nerve.pinn import benchmarks
from nerve.pinn.plot import plot_field, plot_losses

__all__ = ["add_parser", "add_arguments", "run"]

PROBLEMS = ("burgers", "poisson", "heat")


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``pinn`` sub-command to an argparse sub-parsers object."""
    p = sub.add_parser("pinn", help="physics-informed networks: Burgers (Raissi 2019), Poisson, heat")
    p.add_argument("problem", choices=PROBLEMS)
    return add_arguments(p)


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``nerve pinn`` (all but the problem's name)."""
    p.add_argument("--data", default=os.environ.get("NERVE_DATA", "data/burgers"),
                   help="burgers_shock.mat or its directory (burgers)")
    p.add_argument("--inverse", action="store_true", help="burgers: identify λ1, λ2 from 2,000 points")
    p.add_argument("--adam", type=int, help="Adam iterations before L-BFGS (burgers 1000, others 500)")
    p.add_argument("--lbfgs", type=int, help="at most this many L-BFGS iterations (burgers 50000, others 5000)")
    p.add_argument("--time-limit", type=float, dest="time_limit",
                   help="seconds for both phases (burgers 1200, inverse 900, others 600)")
    p.add_argument("--display-every", type=int, default=100, dest="display_every")
    p.add_argument("--n-f", type=int, default=10000, dest="n_f", help="burgers: collocation points")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="directory for the PNGs ('' for none; default runs/pinn-PROBLEM)")
    return p


def run(args: argparse.Namespace) -> dict:
    """Train the problem ``args`` names, print the result line and where the errors were reached, save pictures."""
    burgers = args.problem == "burgers"
    inverse = burgers and args.inverse
    default_time = 900.0 if inverse else 1200.0 if burgers else 600.0
    common = dict(adam_iterations=args.adam if args.adam is not None else 1000 if burgers else 500,
                  lbfgs_iterations=args.lbfgs if args.lbfgs is not None else 50000 if burgers else 5000,
                  time_limit=args.time_limit if args.time_limit is not None else default_time,
                  dtype=getattr(nerve, args.dtype), display_every=args.display_every)
    if args.seed is not None:
        common["seed"] = args.seed
    name = "burgers inverse" if inverse else args.problem
    if inverse:
        r = benchmarks.burgers_inverse(args.data, **common)
        print(f"{name}: lambda_1 {r['lambda_1']:.5f} (error {100 * r['lambda_1_error']:.3f}%), lambda_2 "
              f"{r['lambda_2']:.6f} (error {100 * r['lambda_2_error']:.3f}%), relative L2 {r['error']:.3e} after "
              f"{r['iterations']} iterations, {r['seconds']:.0f} s ({r['stop_reason'] or 'iterations done'})")
    else:
        r = (benchmarks.burgers(args.data, n_f=args.n_f, **common) if burgers
             else getattr(benchmarks, args.problem)(**common))
        print(f"{name}: relative L2 error {r['error']:.3e} after {r['iterations']} iterations, {r['seconds']:.0f} s "
              f"({r['stop_reason'] or 'iterations done'})")
        for target in (1e-2, 5e-3, 2e-3, 1e-3):
            hit = next(((it, s) for it, s, e in r["errors"] if e <= target), None)
            when = f"iteration {hit[0]}, {hit[1]:.0f} s" if hit else "not reached"
            print(f"  first logged error <= {target:g}: {when}")
    out = args.out if args.out is not None else os.path.join("runs", "pinn-" + name.replace(" ", "-"))
    if out:
        stem = name.replace(" ", "_")
        plot_losses(r["model"].losshistory, os.path.join(out, f"{stem}_losses.png"),
                    extra={"rel. L2 error": [(it, e) for it, _, e in r["errors"]]})
        if "pred" in r:
            plot_field(r["x"], r["t"], r["pred"], r["ref"], os.path.join(out, f"{stem}_field.png"),
                       title=f"{name}: nerve PINN, relative L2 {r['error']:.2e}")
        print(f"pictures in {out}/")
    return r
