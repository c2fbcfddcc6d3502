"""The CMA-ES sampler (Optuna's, on the cmaes package of the tune extra) finds a quadratic's minimum."""
import pytest

from nerve.tune import search, uniform


def test_cmaes_minimises_a_two_dimensional_quadratic():
    pytest.importorskip("cmaes")
    result = search(lambda p, trial: (p["x"] - 0.5) ** 2 + (p["y"] + 1.0) ** 2, {"x": uniform(-3, 3),
                    "y": uniform(-3, 3)}, n_trials=60, sampler="cmaes", seed=0, direction="minimize")
    assert result.best_value < 0.05
    assert len(result.trials) == 60
