"""Trials built from a ``nerve train`` configuration: the space names its options (lr, hidden, dropout, ...,
plus ``layers``: that many hidden layers, each ``hidden`` wide), each trial trains with ``nerve train``'s data,
model and optimiser helpers and scores the last epoch's validation metric (the last 10% of the training set,
as ``nerve train`` holds out; the test set is never seen)."""
from __future__ import annotations

import functools
from typing import Mapping

from nerve.tune.space import Param

__all__ = ["apply_params", "complete_config", "config_objective", "default_monitor", "train_config", "check_names"]


def check_names(space: Mapping[str, Param]) -> None:
    """Every name in ``space`` must be a ``nerve train`` option or 'layers'."""
    from nerve.cli.common import DEFAULTS

    unknown = sorted(set(space) - set(DEFAULTS) - {"layers"})
    if unknown:
        raise ValueError(f"search: the space names {unknown}, which are not options of nerve train; use "
                         f"{sorted(set(DEFAULTS) - {'out', 'verbose', 'seed'}) + ['layers']}")


def apply_params(cfg: Mapping, params: Mapping) -> dict:
    """A copy of ``cfg`` with the trial's values; ``layers`` repeats the ``hidden`` width that many times."""
    out = dict(cfg)
    for name, value in params.items():
        if name != "layers":
            out[name] = value
    if "layers" in params:
        width = str(out["hidden"]).split(",")[0]
        out["hidden"] = ",".join([width] * int(params["layers"]))
    out["hidden"] = str(out["hidden"])
    return out


def default_monitor(cfg: Mapping) -> str:
    """'val_loss' for a CSV target (it may be a regression), else 'val_accuracy'."""
    return "val_loss" if str(cfg.get("data", "")).startswith("csv:") else "val_accuracy"


def train_config(cfg: Mapping, callbacks=(), verbose: int = 0):
    """Train as ``nerve train`` would (without writing a run directory); returns (history, prepared data)."""
    from nerve.train import fit

    prep, build_optimizer = _prepare(dict(cfg))
    optimizer = build_optimizer(cfg, prep.model)
    history = fit(prep.model, (prep.Xtr, prep.ytr), loss=prep.loss, optimizer=optimizer, epochs=cfg["epochs"],
                  batch_size=cfg["batch_size"], validation_split=0.1, metrics=prep.metrics,
                  callbacks=list(callbacks), verbose=verbose)
    return history, prep


def _prepare(cfg: dict):
    """``nerve train``'s data and model for ``cfg`` and its optimiser builder."""
    from nerve.cli.data import Prepared, build_optimizer

    return Prepared.from_data(cfg), build_optimizer


def _train_trial(params: Mapping, trial, cfg: Mapping, monitor: str) -> float:
    from nerve.tune.pruning import PruningCallback

    history, _ = train_config(apply_params(cfg, params), [PruningCallback(trial, monitor)])
    return float(history.history[monitor][-1])


def complete_config(cfg: Mapping) -> dict:
    """``cfg`` over ``nerve train``'s defaults; unknown option names are refused."""
    from nerve.cli.common import DEFAULTS

    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"search: the training config has unknown options {unknown}; nerve train knows "
                         f"{sorted(DEFAULTS)}")
    return {**DEFAULTS, "verbose": 0, **cfg}


def config_objective(cfg: Mapping, space: Mapping[str, Param], monitor: str):
    """The objective ``f(params, trial)`` of a config search (module-level, so it runs in a fresh process)."""
    check_names(space)
    return functools.partial(_train_trial, cfg=complete_config(cfg), monitor=monitor)
