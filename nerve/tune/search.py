"""``search``: one call from an objective (or a training config) and a space to Optuna's study and its result.

Workers: every process that calls ``search`` with the same ``storage`` and ``study_name`` joins one study;
``n_trials`` counts per worker, as Optuna's ``optimize`` does. Seeds: the sampler of worker 0 is seeded with
``seed`` itself (a study in memory is worker 0, so a seeded study is reproducible); any other worker mixes its
id into the seed (NumPy's ``SeedSequence([seed, worker])``), so workers given the same seed still draw different
configurations. With a storage the worker id defaults to the process id; pass ``worker=`` to reproduce one.
"""
from __future__ import annotations

import csv
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from nerve.tune.pruning import PruningCallback, TrialFailed
from nerve.tune.process import TrialProcessError, run_in_process
from nerve.tune.space import Param, _optuna, check_space, grid_values, suggest_all
from nerve.tune.storage import open_storage, open_study

__all__ = ["search", "SearchResult", "PruningCallback", "make_sampler", "make_pruner", "worker_seed",
           "trial_rows", "TrialFailed"]

SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "hyperband", "none")


def worker_seed(seed: int | None, worker: int) -> int | None:
    """The sampler seed of ``worker``: ``seed`` for worker 0, else a number drawn from ``[seed, worker]``."""
    if seed is None:
        return None
    if worker == 0:
        return seed
    import numpy as np
    return int(np.random.SeedSequence([seed, worker]).generate_state(1)[0])


def make_sampler(sampler: Any, space: Mapping[str, Param] | None, seed: int | None, grid_points: int = 5,
                 n_startup_trials: int = 10):
    """An Optuna sampler from a name ('tpe', 'random', 'grid', 'cmaes') or a sampler object."""
    optuna = _optuna()
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"search: unknown sampler {sampler!r}; choose from {list(SAMPLERS)} or pass an Optuna "
                         "sampler")
    if sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler == "grid":
        if space is None:
            raise ValueError("search: sampler='grid' needs space= (the grid is built from it)")
        return optuna.samplers.GridSampler(grid_values(space, grid_points), seed=seed)
    try:
        import cmaes  # noqa: F401  (Optuna's CmaEsSampler needs it)
    except ImportError:
        raise ImportError("search: sampler='cmaes' needs the cmaes package: pip install cmaes") from None
    return optuna.samplers.CmaEsSampler(seed=seed)


def make_pruner(pruner: Any):
    """An Optuna pruner from a name ('median', 'hyperband', 'none'/None) or a pruner object."""
    optuna = _optuna()
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner is None or pruner == "none":
        return optuna.pruners.NopPruner()
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    raise ValueError(f"search: unknown pruner {pruner!r}; choose from {list(PRUNERS)}, None or an Optuna pruner")


@dataclass
class SearchResult:
    """What ``search`` returns: the best trial's parameters and value, one row per trial, the Optuna study."""

    study: Any
    best_params: dict | None
    best_value: float | None
    trials: list = field(default_factory=list)
    interrupted: bool = False

    def to_csv(self, path: str | os.PathLike) -> None:
        """Write the trials table (number, state, value, duration_s, params_*, fail_reason) as CSV."""
        keys: list[str] = []
        for row in self.trials:
            keys += [k for k in row if k not in keys]
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.trials)


def trial_rows(study) -> list[dict]:
    """One dict per trial of ``study``: number, state, value, duration in seconds, params_*, fail_reason."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = t.duration.total_seconds() if t.duration is not None else None
        row = {"number": t.number, "state": t.state.name, "value": t.value, "duration_s": duration}
        row.update({f"params_{k}": v for k, v in t.params.items()})
        row["fail_reason"] = t.user_attrs.get("fail_reason", "")
        row["worker"] = t.user_attrs.get("worker", "")
        rows.append(row)
    return rows


class _Objective:
    """Runs a trial (here or in a fresh process), records its worker and, for a failure, its reason."""

    def __init__(self, objective: Callable, space: dict | None, fresh_process: bool, worker: int) -> None:
        self.objective, self.space, self.fresh_process, self.worker = objective, space, fresh_process, worker

    def __call__(self, trial) -> float:
        optuna = _optuna()
        trial.set_user_attr("worker", self.worker)
        try:
            if self.fresh_process:
                value = run_in_process(trial, _call_objective, (self.objective, self.space))
            else:
                value = _call_objective(trial, self.objective, self.space)
            value = float(value)
            if not math.isfinite(value):
                raise TrialFailed(f"the objective returned {value}")
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
            raise
        except Exception as exc:
            # NOTE: our own errors already say what failed; others get their type in front
            reason = str(exc) if isinstance(exc, (TrialProcessError, TrialFailed)) else f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("fail_reason", reason[:2000])
            raise
        return value


def _call_objective(trial, objective: Callable, space: dict | None) -> float:
    """``objective(trial)``, or ``objective(params, trial)`` with the space's values drawn first."""
    if space is None:
        return objective(trial)
    return objective(suggest_all(trial, space), trial)


def _progress(study, trial) -> None:
    value = "-" if trial.value is None else f"{trial.value:.5g}"
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    reason = trial.user_attrs.get("fail_reason", "")
    try:
        best = f"{study.best_value:.5g} (trial {study.best_trial.number})"
    except ValueError:
        best = "-"
    seconds = trial.duration.total_seconds() if trial.duration is not None else 0.0
    print(f"trial {trial.number}: {trial.state.name.lower()} value {value} ({seconds:.1f} s) {params}"
          + (f" [{reason.splitlines()[0]}]" if reason else "") + f"; best {best}", flush=True)


def search(objective_or_config: Callable | Mapping, space: Mapping[str, Param] | None = None, n_trials: int = 20,
           sampler: Any = "tpe", pruner: Any = None, storage: str | None = None, study_name: str | None = None,
           seed: int | None = None, direction: str | None = None, timeout: float | None = None,
           fresh_process: bool = False, worker: int | None = None, grid_points: int = 5,
           n_startup_trials: int = 10, monitor: str | None = None, verbose: int = 1) -> SearchResult:
    """Run ``n_trials`` trials (this worker's share) of a study and return its ``SearchResult``.

    ``objective_or_config``: a function ``f(trial) -> float`` (Optuna's habit), or with ``space`` a function
    ``f(params, trial) -> float`` given the drawn values; or a dict of ``nerve train`` options (a training
    config) whose searched options ``space`` names, scored by the validation ``monitor`` ('val_accuracy' for
    classifiers, else 'val_loss') and pruned through ``PruningCallback``. ``direction``: 'minimize' or
    'maximize' (default: minimize, or what ``monitor`` asks). ``fresh_process`` runs each trial in a spawned
    process (the objective must be a module-level function). Failed trials (an exception, NaN) are recorded
    with their reason and the study goes on; Ctrl-C fails the running trial and returns what finished, with
    ``interrupted=True``.
    """
    optuna = _optuna()
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise ValueError(f"search: n_trials must be a positive int, got {n_trials!r}")
    space = None if space is None else check_space(space)
    if isinstance(objective_or_config, Mapping):
        from nerve.tune.config import config_objective, default_monitor

        if space is None:
            raise ValueError("search: a training config needs space= (which options to search)")
        monitor = monitor or default_monitor(objective_or_config)
        objective, direction = config_objective(objective_or_config, space, monitor), (
            direction or ("minimize" if monitor.endswith("loss") else "maximize"))
    elif callable(objective_or_config):
        objective, direction = objective_or_config, direction or "minimize"
    else:
        raise TypeError(f"search: expected an objective function or a training config dict, got "
                        f"{type(objective_or_config).__name__}")
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"search: direction must be 'minimize' or 'maximize', got {direction!r}")
    if verbose < 2:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
    store = open_storage(storage)
    if worker is None:
        worker = 0 if store is None else os.getpid()
    study = open_study(store, study_name, direction, make_sampler(sampler, space, worker_seed(seed, worker),
                                                                   grid_points, n_startup_trials),
                       make_pruner(pruner))
    interrupted = False
    try:
        study.optimize(_Objective(objective, space, fresh_process, worker), n_trials=n_trials, timeout=timeout,
                       catch=(Exception,), callbacks=[_progress] if verbose else None)
    except KeyboardInterrupt:
        interrupted = True
        print("search: interrupted; the running trial is marked failed, finished trials are kept", file=sys.stderr)
    completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    best = study.best_trial if completed else None
    return SearchResult(study, None if best is None else dict(best.params), None if best is None else best.value,
                        trial_rows(study), interrupted)
