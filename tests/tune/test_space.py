"""Search spaces: each helper maps to Optuna's distribution with its bounds, grids list exactly their values,
TOML files read the same, and bad bounds are refused with the values named."""
import math

import optuna
import pytest

from nerve.tune import (
    check_space, choice, grid_values, intrange, load_space, logintrange, loguniform, quniform, to_distributions,
    uniform,
)
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution


def test_helpers_map_to_optuna_distributions():
    space = {"lr": loguniform(1e-4, 1e-1), "drop": uniform(0.0, 0.5), "q": quniform(0.0, 1.0, 0.25),
             "layers": intrange(1, 4), "even": intrange(2, 8, step=2), "width": logintrange(16, 512),
             "act": choice(["relu", "tanh"])}
    d = to_distributions(space)
    assert d["lr"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert d["drop"] == FloatDistribution(0.0, 0.5)
    assert d["q"] == FloatDistribution(0.0, 1.0, step=0.25)
    assert d["layers"] == IntDistribution(1, 4)
    assert d["even"] == IntDistribution(2, 8, step=2)
    assert d["width"] == IntDistribution(16, 512, log=True)
    assert d["act"] == CategoricalDistribution(["relu", "tanh"])


def test_suggest_draws_inside_the_bounds():
    space = {"lr": loguniform(1e-4, 1e-1), "layers": intrange(1, 4), "act": choice(["relu", "tanh"])}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        values = {k: p.suggest(trial, k) for k, p in space.items()}
        assert 1e-4 <= values["lr"] <= 1e-1 and values["layers"] in (1, 2, 3, 4) and values["act"] in ("relu", "tanh")
        study.tell(trial, 0.0)
    assert study.trials[0].distributions == to_distributions(space)


def test_grid_values():
    grid = grid_values({"lr": loguniform(1e-4, 1e-2), "x": uniform(0, 1), "n": intrange(1, 3),
                        "s": uniform(0, 1, step=0.5), "c": choice([1, "a"])}, points=3)
    assert grid["lr"] == pytest.approx([1e-4, 1e-3, 1e-2])
    assert grid["x"] == pytest.approx([0.0, 0.5, 1.0])
    assert grid["n"] == [1, 2, 3] and grid["s"] == [0.0, 0.5, 1.0] and grid["c"] == [1, "a"]
    assert logintrange(1, 100).grid(3) == [1, 10, 100]


@pytest.mark.parametrize("build, message", [
    (lambda: uniform(1.0, 0.5), "low=1.0 > high=0.5"),
    (lambda: loguniform(0.0, 1.0), "log scale needs low > 0, got low=0.0"),
    (lambda: loguniform(-1e-3, 1.0), "low=-0.001"),
    (lambda: intrange(5, 1), "low=5 > high=1"),
    (lambda: intrange(1, 4, step=0), "step must be at least 1"),
    (lambda: intrange(1.5, 4), "low must be an int, got 1.5"),
    (lambda: logintrange(0, 4), "log scale needs low > 0"),
    (lambda: uniform(0, math.inf), "high must be a finite number"),
    (lambda: uniform(0, 1, step=-0.1), "step must be > 0"),
    (lambda: choice([]), "options is empty"),
    (lambda: choice("abc"), "must be a list"),
    (lambda: choice([1, 1]), "repeat a value"),
    (lambda: choice([[64, 32]]), "encode it"),
    (lambda: check_space({}), "the space is empty"),
    (lambda: check_space({"lr": 0.1}), "space['lr'] is 0.1"),
])
def test_bad_spaces_are_refused(build, message):
    with pytest.raises(ValueError, match="(?s).*" + __import__("re").escape(message)):
        build()


def test_load_space_from_toml(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('[space]\nlr = {loguniform = [1e-4, 0.1]}\nhidden = {choice = [64, 128]}\n'
                    'layers = {intrange = [1, 3]}\ndropout = {uniform = [0.0, 0.5]}\n')
    assert load_space(str(path)) == {"lr": loguniform(1e-4, 0.1), "hidden": choice([64, 128]),
                                     "layers": intrange(1, 3), "dropout": uniform(0.0, 0.5)}
    path.write_text('lr = {loguniform = [0.1, 1e-4]}\n')
    with pytest.raises(ValueError, match="space.toml: lr: loguniform: low must not exceed high"):
        load_space(str(path))
    path.write_text('lr = {normal = [0, 1]}\n')
    with pytest.raises(ValueError, match="lr = .*one of"):
        load_space(str(path))
    path.write_text('lr = [1, 2\n')
    with pytest.raises(ValueError, match="not valid TOML"):
        load_space(str(path))
    with pytest.raises(ValueError, match="no file"):
        load_space(str(tmp_path / "missing.toml"))
