"""Hyperparameter search on Optuna (``pip install "nerve[tune]"``): spaces declared once, ``search`` from one
process to many workers on a shared storage, a pruning callback for ``fit``, and the ``nerve tune`` command."""
from nerve.tune.search import PruningCallback, SearchResult, TrialFailed, search, worker_seed
from nerve.tune.space import (
    Param, check_space, choice, grid_values, intrange, load_space, logintrange, loguniform, quniform,
    to_distributions, uniform,
)
from nerve.tune.storage import open_storage, open_study

__all__ = ["search", "SearchResult", "PruningCallback", "TrialFailed", "worker_seed", "Param", "uniform",
           "loguniform", "quniform", "intrange", "logintrange", "choice", "check_space", "to_distributions",
           "grid_values", "load_space", "open_storage", "open_study"]
