"""Search spaces declared once: ``{"lr": loguniform(1e-4, 1e-1), "hidden": choice([64, 128]), ...}``.

Each helper checks its bounds when it is built (no Optuna needed for that) and maps to Optuna's distribution
(``to_optuna``) or asks a trial for a value (``suggest``). ``grid_values`` gives the finite values a grid
search walks: the options of a ``choice``, every integer of an ``intrange``, and ``points`` evenly spaced values
(log-spaced on a log scale) of a continuous range. ``load_space`` reads the same from a TOML file.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from nerve.utils.toml import read_toml

__all__ = ["Param", "uniform", "loguniform", "quniform", "intrange", "logintrange", "choice", "check_space",
           "to_distributions", "grid_values", "load_space", "suggest_all"]


class Param:
    """One searched hyperparameter: ``kind`` ('float', 'int', 'categorical') and its bounds or options."""

    def __init__(self, kind: str, low: float | None = None, high: float | None = None, log: bool = False,
                 step: float | None = None, options: Sequence | None = None) -> None:
        self.kind, self.low, self.high, self.log, self.step = kind, low, high, log, step
        self.options = None if options is None else list(options)

    def __repr__(self) -> str:
        if self.kind == "categorical":
            return f"choice({self.options!r})"
        extra = (", log=True" if self.log else "") + (f", step={self.step}" if self.step is not None else "")
        return f"{self.kind}({self.low}, {self.high}{extra})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Param) and vars(self) == vars(other)

    def to_optuna(self):
        """The matching ``optuna.distributions`` object."""
        distributions = _optuna().distributions
        if self.kind == "categorical":
            return distributions.CategoricalDistribution(self.options)
        if self.kind == "int":
            return distributions.IntDistribution(int(self.low), int(self.high), log=self.log,
                                                 step=int(self.step or 1))
        return distributions.FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def suggest(self, trial, name: str):
        """Ask an Optuna trial (or anything with its ``suggest_*`` methods) for this parameter's value."""
        if self.kind == "categorical":
            return trial.suggest_categorical(name, self.options)
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def grid(self, points: int = 5) -> list:
        """The values a grid search tries for this parameter."""
        if self.kind == "categorical":
            return list(self.options)
        if self.kind == "int" and not self.log:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.kind == "float" and self.step is not None:
            n = int(round((self.high - self.low) / self.step)) + 1
            return [self.low + i * self.step for i in range(n)]
        if points < 1:
            raise ValueError(f"grid: points must be at least 1, got {points}")
        if points == 1:
            values = [math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2]
        elif self.log:
            a, b = math.log(self.low), math.log(self.high)
            values = [math.exp(a + (b - a) * i / (points - 1)) for i in range(points)]
            values[0], values[-1] = self.low, self.high  # NOTE: exp(log(x)) may round outside the range
        else:
            values = [self.low + (self.high - self.low) * i / (points - 1) for i in range(points)]
        if self.kind == "int":
            return sorted({int(round(v)) for v in values})
        return values


def _number(who: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{who}: {name} must be a finite number, got {value!r}")
    return value


def _range(who: str, low, high, log: bool) -> None:
    _number(who, "low", low)
    _number(who, "high", high)
    if low > high:
        raise ValueError(f"{who}: low must not exceed high, got low={low} > high={high}")
    if log and low <= 0:
        raise ValueError(f"{who}: a log scale needs low > 0, got low={low}")


def uniform(low: float, high: float, step: float | None = None) -> Param:
    """A float drawn uniformly in [low, high] (on multiples of ``step`` above ``low`` if given)."""
    _range("uniform", low, high, False)
    if step is not None and _number("uniform", "step", step) <= 0:
        raise ValueError(f"uniform: step must be > 0, got {step}")
    return Param("float", float(low), float(high), step=None if step is None else float(step))


def quniform(low: float, high: float, step: float) -> Param:
    """A float in [low, high] on a grid of ``step`` (Hyperopt's name)."""
    return uniform(low, high, step)


def loguniform(low: float, high: float) -> Param:
    """A float whose logarithm is uniform in [log low, log high] (learning rates, weight decay)."""
    _range("loguniform", low, high, True)
    return Param("float", float(low), float(high), log=True)


def intrange(low: int, high: int, step: int = 1, log: bool = False) -> Param:
    """An integer in [low, high] (both included), on multiples of ``step`` above ``low``."""
    for name, value in (("low", low), ("high", high), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"intrange: {name} must be an int, got {value!r}")
    _range("intrange", low, high, log)
    if step < 1:
        raise ValueError(f"intrange: step must be at least 1, got {step}")
    if log and step != 1:
        raise ValueError(f"intrange: a log scale needs step 1, got step={step}")
    return Param("int", low, high, log=log, step=step)


def logintrange(low: int, high: int) -> Param:
    """An integer in [low, high] drawn on a log scale (widths)."""
    return intrange(low, high, log=True)


def choice(options: Sequence) -> Param:
    """One of ``options`` (None, bool, int, float or str values, as Optuna stores them)."""
    if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
        raise ValueError(f"choice: options must be a list, got {options!r}")
    if not options:
        raise ValueError("choice: options is empty; give at least one value")
    for value in options:
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise ValueError(f"choice: options must be None, bool, int, float or str, got {value!r} "
                             f"({type(value).__name__}); encode it, e.g. '128,64' for a layer list")
    if len(set(map(repr, options))) != len(options):
        raise ValueError(f"choice: options repeat a value: {list(options)}")
    return Param("categorical", options=options)


def check_space(space: Mapping[str, Param], who: str = "search") -> dict:
    """The space as a dict, checked: a non-empty mapping of names to ``Param`` objects."""
    if not isinstance(space, Mapping):
        raise ValueError(f"{who}: the space must be a dict of names to nerve.tune helpers, got "
                         f"{type(space).__name__}")
    if not space:
        raise ValueError(f"{who}: the space is empty; give at least one parameter, e.g. "
                         "{'lr': loguniform(1e-4, 1e-1)}")
    for name, param in space.items():
        if not isinstance(param, Param):
            raise ValueError(f"{who}: space[{name!r}] is {param!r}; build it with loguniform, uniform, intrange "
                             "or choice")
    return dict(space)


def to_distributions(space: Mapping[str, Param]) -> dict:
    """Optuna distributions by name."""
    return {name: param.to_optuna() for name, param in check_space(space).items()}


def grid_values(space: Mapping[str, Param], points: int = 5) -> dict:
    """The grid by name, for ``optuna.samplers.GridSampler``."""
    return {name: param.grid(points) for name, param in check_space(space).items()}


def suggest_all(trial, space: Mapping[str, Param]) -> dict:
    """Every parameter of ``space`` asked of ``trial``, by name."""
    return {name: param.suggest(trial, name) for name, param in space.items()}


_TOML_KINDS = {"uniform": uniform, "loguniform": loguniform, "quniform": quniform, "intrange": intrange,
               "logintrange": logintrange, "choice": choice}


def load_space(path: str) -> dict:
    """A space from a TOML file: one line per parameter, ``lr = {loguniform = [1e-4, 0.1]}``,
    ``hidden = {choice = [64, 128, 256]}``, ``layers = {intrange = [1, 4]}`` (optionally under ``[space]``)."""
    data = read_toml(path, "load_space", "space")
    space = {}
    for name, spec in data.items():
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in _TOML_KINDS:
            raise ValueError(f"load_space: {path}: {name} = {spec!r}; write e.g. {name} = {{loguniform = [1e-4, "
                             f"0.1]}} with one of {sorted(_TOML_KINDS)}")
        kind, args = next(iter(spec.items()))
        try:
            space[name] = _TOML_KINDS[kind](args) if kind == "choice" else _TOML_KINDS[kind](*args)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"load_space: {path}: {name}: {exc}") from None
    return check_space(space, f"load_space: {path}")


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ImportError("nerve.tune needs Optuna: pip install 'nerve[tune]'") from None
    return optuna
