"""``PruningCallback``: the ``fit`` callback that reports a validation metric to an Optuna trial each epoch and
stops the trial when the pruner says so; ``TrialFailed`` for values that are not finite."""
from __future__ import annotations

import math

from nerve.train.callbacks import Callback
from nerve.tune.space import _optuna

__all__ = ["PruningCallback", "TrialFailed"]


class TrialFailed(RuntimeError):
    """An objective that returned NaN or infinity; the trial is recorded as failed with this reason."""


class PruningCallback(Callback):
    """A ``fit`` callback: reports ``monitor`` to the trial after each epoch and stops the trial (raising
    ``optuna.TrialPruned``) when the pruner says so; a NaN or infinite value fails the trial."""

    def __init__(self, trial, monitor: str = "val_accuracy") -> None:
        self.trial, self.monitor = trial, monitor

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(f"PruningCallback: the logs have no {self.monitor!r}; they have {sorted(logs)}")
        value = float(logs[self.monitor])
        if not math.isfinite(value):
            raise TrialFailed(f"{self.monitor} became {value} at epoch {epoch + 1}")
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            raise _optuna().TrialPruned(f"pruned at epoch {epoch + 1} with {self.monitor} {value:.4g}")
