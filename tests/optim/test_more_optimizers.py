"""Adamax, Rprop and ASGD against NumPy versions of PyTorch's documented rules, through the trajectory harness."""
import numpy as np
import pytest

from nerve import optim
from tests.optim.trajectory import check_float32_in_place, make_params, trajectory_tests


def ref_adamax(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False):
    m, u = {}, {}

    def update(i, x, g, step):
        g = (-g if maximize else g) + weight_decay * x
        m[i] = betas[0] * m.get(i, 0 * x) + (1 - betas[0]) * g
        u[i] = np.maximum(betas[1] * u.get(i, 0 * x), np.abs(g) + eps)
        return x - lr / (1 - betas[0] ** step) * m[i] / u[i]
    return update


def ref_rprop(lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=False):
    prev, size = {}, {}

    def update(i, x, g, step):
        g = -g if maximize else g
        s = np.sign(g * prev.get(i, 0 * x))
        factor = np.where(s > 0, etas[1], np.where(s < 0, etas[0], 1.0))
        size[i] = np.clip(size.get(i, np.full_like(x, lr)) * factor, *step_sizes)
        g = np.where(s < 0, 0.0, g)
        prev[i] = g
        return x - np.sign(g) * size[i]
    return update


def ref_asgd(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, maximize=False):
    eta, mu, ax = {}, {}, {}

    def update(i, x, g, step):
        g = (-g if maximize else g) + weight_decay * x
        e = eta.get(i, lr)
        x = x * (1 - lambd * e) - e * g
        ax[i] = ax.get(i, 0 * x) + mu.get(i, 1.0) * (x - ax.get(i, 0 * x)) if mu.get(i, 1.0) != 1 else x.copy()
        eta[i] = lr / (1 + lambd * lr * step) ** alpha
        mu[i] = 1 / max(1, step - t0)
        return x
    return update


REFS = {"Adamax": ref_adamax, "Rprop": ref_rprop, "ASGD": ref_asgd}
CASES = [
    ("Adamax", dict(lr=0.05)),
    ("Adamax", dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1, maximize=True)),
    ("Rprop", dict(lr=0.01)),
    ("Rprop", dict(lr=0.02, etas=(0.3, 1.5), step_sizes=(1e-4, 0.05))),
    ("ASGD", dict(lr=0.05, lambd=0.01, t0=20, weight_decay=0.05)),
]
GROUPS = [("Rprop", dict(lr=0.01), dict(lr=0.03, etas=(0.4, 1.1))),
          ("ASGD", dict(lr=0.05, t0=10), dict(lr=0.02, lambd=0.1))]

(test_trajectory_matches_numpy_reference, test_state_dict_round_trip_resumes_trajectory,
 test_param_groups_follow_their_own_rules) = trajectory_tests(REFS, CASES, GROUPS)


@pytest.mark.parametrize("make", [lambda ps: optim.Adamax(ps), lambda ps: optim.Rprop(ps), lambda ps: optim.ASGD(ps)],
                         ids=["Adamax", "Rprop", "ASGD"])
def test_float32_parameters_stay_float32_in_place(make):
    check_float32_in_place(make)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="Rprop: invalid etas"):
        optim.Rprop(make_params(), etas=(1.5, 1.2))
    with pytest.raises(ValueError, match=r"Adamax: invalid betas\[1\]"):
        optim.Adamax(make_params(), betas=(0.9, 1.0))
