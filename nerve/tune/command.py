"""``nerve tune``: search ``nerve train``'s options with Optuna; writes best.toml (runnable with
``nerve train --config best.toml``), trials.csv and Optuna's plots into its run directory."""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from nerve.tune.search import PRUNERS, SAMPLERS, search
from nerve.tune.space import choice, intrange, load_space, loguniform, uniform

__all__ = ["add_parser", "run", "default_space", "write_best_toml", "write_plots"]

TUNED_MODELS = ("mlp", "cnn", "lenet")

#: ``nerve train`` options a trial takes (type, help); learning rules and adversarial training are not searched
_TRAIN_OPTIONS = (
    ("--data", str, "digits, mnist, fashion-mnist, moons, circles, spirals, xor, csv:PATH"),
    ("--target", str, "the target column of --data csv:PATH"),
    ("--model", str, "mlp (default), cnn, lenet"),
    ("--hidden", str, "hidden layer widths, e.g. 128,64 (a searched 'hidden' is one width, see 'layers')"),
    ("--activation", str, "relu, tanh, sigmoid, gelu, silu, elu, leaky_relu, softplus"),
    ("--optimizer", str, "adam, adamw, sgd, rmsprop, adagrad"),
    ("--lr", float, None), ("--epochs", int, "epochs per trial (default 5)"), ("--batch-size", int, None),
    ("--dropout", float, None), ("--weight-decay", float, None), ("--seed", int, "data split, model and sampler seed"),
)


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``tune`` sub-command to an argparse sub-parsers object."""
    p = sub.add_parser("tune", help="hyperparameter search with Optuna (TPE, random, grid; pruning; many workers)")
    for flag, kind, text in _TRAIN_OPTIONS:
        p.add_argument(flag, type=kind, dest=flag[2:].replace("-", "_"), help=text)
    p.add_argument("--config", help="a TOML file of nerve train's options (command-line options win)")
    p.add_argument("--space", help="a TOML file of the searched options, e.g. lr = {loguniform = [1e-4, 0.1]}, "
                   "hidden = {choice = [64, 128]}, layers = {intrange = [1, 3]} (default: lr, batch size, and for "
                   "an MLP width, depth and dropout)")
    p.add_argument("--trials", type=int, default=20, help="trials run by this worker (default 20)")
    p.add_argument("--sampler", default="tpe", choices=SAMPLERS)
    p.add_argument("--pruner", default="median", choices=PRUNERS, help="stop poor trials early (default median)")
    p.add_argument("--storage", help="shared study storage: sqlite:///FILE.db or journal:FILE.log (one machine), "
                   "postgresql://USER:PASS@HOST/DB (many); every worker runs the same command")
    p.add_argument("--study", help="study name (needed with --storage)")
    p.add_argument("--worker", type=int, help="worker id mixed into --seed (default: the process id with --storage)")
    p.add_argument("--grid-points", type=int, default=5, dest="grid_points",
                   help="values per continuous option for --sampler grid (default 5)")
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument("--in-process", action="store_true", dest="in_process",
                   help="run trials in this process (default: each in a fresh process)")
    p.add_argument("--out", help="run directory (default runs/tune-STUDY-TIME)")
    return p


def default_space(model: str) -> dict:
    """What ``nerve tune`` searches without ``--space``."""
    space = {"lr": loguniform(1e-4, 1e-1), "batch_size": choice([32, 64, 128])}
    if model == "mlp":
        space.update(hidden=choice([64, 128, 256]), layers=intrange(1, 3), dropout=uniform(0.0, 0.5))
    return space


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_best_toml(path: Path, cfg: dict, value: float, monitor: str, study_name: str) -> None:
    """``nerve train --config`` input: the options of the best trial (every option nerve train knows)."""
    lines = [f"# nerve tune: the best trial of study {study_name!r}, {monitor} {value:.6g}",
             f"# run it with: nerve train --config {path}", "[train]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in cfg.items() if v is not None and k != "out"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_plots(study, out: Path) -> list[str]:
    """Optuna's optimisation history, parameter importances and parallel coordinates as PNGs; the notes of
    any it could not draw."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as vis
    except ImportError:
        return ["no plots: matplotlib is not installed (pip install matplotlib)"]
    import warnings

    from optuna.exceptions import ExperimentalWarning

    notes = []
    for name, draw in (("history", vis.plot_optimization_history), ("importances", vis.plot_param_importances),
                       ("parallel_coordinates", vis.plot_parallel_coordinate)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                ax = draw(study)
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.set_size_inches(8, 5)
            fig.tight_layout()
            fig.savefig(out / f"{name}.png", dpi=100)
            plt.close(fig)
        except Exception as exc:  # NOTE: Optuna refuses some plots for too few trials; say so, draw the rest
            notes.append(f"no {name}.png: {exc}")
    return notes


def run(args: argparse.Namespace) -> int:
    """Run the search ``args`` describe; print each trial and the best configuration; write the run directory."""
    from nerve.cli.common import DEFAULTS, CLIError, load_toml, validate
    from nerve.tune.config import apply_params, check_names, default_monitor

    cfg = dict(DEFAULTS, epochs=5, verbose=0)
    if args.config:
        cfg.update(load_toml(args.config))
    cfg.update({k: v for k, v in vars(args).items() if k in DEFAULTS and k != "out" and v is not None})
    if cfg["model"] not in TUNED_MODELS:
        raise CLIError(f"nerve tune searches {', '.join(TUNED_MODELS)} models, not --model {cfg['model']}")
    validate(cfg)
    if args.storage and not args.study:
        raise CLIError("--storage needs --study NAME (the same on every worker)")
    try:
        space = load_space(args.space) if args.space else default_space(cfg["model"])
        check_names(space)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    study_name = args.study or f"{cfg['data'].split(':')[0]}-{cfg['model']}-{stamp}"
    out = Path(args.out) if args.out else Path("runs") / f"tune-{study_name}-{stamp}"
    monitor = default_monitor(cfg)
    print(f"nerve tune: {cfg['data']}, {cfg['model']}, {args.trials} trials ({args.sampler}, pruner {args.pruner}), "
          f"{cfg['epochs']} epochs each, study {study_name!r}" + (f" on {args.storage}" if args.storage else "")
          + f", space {space}, run {out}", flush=True)
    try:
        result = search(cfg, space, n_trials=args.trials, sampler=args.sampler, pruner=args.pruner,
                        storage=args.storage, study_name=study_name, seed=cfg["seed"], timeout=args.timeout,
                        fresh_process=not args.in_process, worker=args.worker, grid_points=args.grid_points,
                        monitor=monitor)
    except (ValueError, ImportError) as exc:
        raise CLIError(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    result.to_csv(out / "trials.csv")
    states = [row["state"] for row in result.trials]
    print(f"{len(states)} trials in the study: " + ", ".join(f"{states.count(s)} {s.lower()}"
                                                             for s in sorted(set(states))))
    if result.best_params is None:
        print(f"no trial finished; see {out / 'trials.csv'} for the reasons")
        return 1
    best_cfg = apply_params(cfg, result.best_params)
    best_cfg["verbose"] = DEFAULTS["verbose"]
    write_best_toml(out / "best.toml", best_cfg, result.best_value, monitor, study_name)
    for note in write_plots(result.study, out):
        print(note)
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) and math.isfinite(v) else f"{k}={v}"
                       for k, v in result.best_params.items())
    print(f"best {monitor} {result.best_value:.4f}: {params}")
    print(f"wrote {out / 'best.toml'} (nerve train --config {out / 'best.toml'}), {out / 'trials.csv'} and plots")
    return 130 if result.interrupted else 0
