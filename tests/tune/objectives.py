"""Module-level objectives for trials run in fresh processes (spawned processes import them by name), and a
worker entry point: ``python -m tests.tune.objectives STORAGE STUDY N_TRIALS SEED [OBJECTIVE]`` joins a study and
runs its share of trials (``slow`` runs each trial in a fresh process)."""
from __future__ import annotations

import math
import os
import sys


def quadratic(trial) -> float:
    """(x - 0.3)^2 + (n - 2)^2 / 10 over x in [0, 1], n in 0..5."""
    x = trial.suggest_float("x", 0.0, 1.0)
    n = trial.suggest_int("n", 0, 5)
    return (x - 0.3) ** 2 + (n - 2) ** 2 / 10


def returns(trial, value: float) -> float:
    trial.suggest_float("x", 0.0, 1.0)
    return value


def raises(trial) -> float:
    trial.suggest_float("x", 0.0, 1.0)
    raise ValueError("bad configuration x")


def dies(trial) -> float:
    trial.suggest_float("x", 0.0, 1.0)
    sys.stdout.flush()
    os._exit(3)


def reports(trial) -> float:
    """Reports 1.0, 0.5 and asks to be pruned after each report."""
    import optuna

    trial.suggest_float("x", 0.0, 1.0)
    for step, value in enumerate((1.0, 0.5)):
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")
    return 0.5


def slow(trial) -> float:
    """Draws x and sleeps 0.2 s: long enough to be interrupted mid-trial."""
    import time

    x = trial.suggest_float("x", 0.0, 1.0)
    time.sleep(0.2)
    return x


_LEAK: list = []


def leaky(trial) -> float:
    """Keeps a reference to a 1 MiB block in a module global (a leak) and returns how many it holds."""
    trial.suggest_float("x", 0.0, 1.0)
    _LEAK.append(bytearray(2 ** 20))
    return float(len(_LEAK))


if __name__ == "__main__":
    from nerve.tune import search

    storage, study, n_trials, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    objective = globals()[sys.argv[5]] if len(sys.argv) > 5 else quadratic
    result = search(objective, n_trials=n_trials, sampler="random", storage=storage, study_name=study, seed=seed,
                    verbose=0, fresh_process=objective is slow)
    if result.interrupted:
        print(f"worker interrupted: {len(result.trials)} trials seen")
        sys.exit(130)
    print(f"worker done: {len(result.trials)} trials seen, best {result.best_value:.4f}")
    sys.exit(0 if math.isfinite(result.best_value) else 1)
