"""Adadelta against a NumPy version of Zeiler's rule, through the trajectory harness; PyTorch's defaults and state
names, a small regression, float32, allocation and errors."""
import numpy as np
import pytest

from nerve import optim
from tests.optim.trajectory import (check_add_param_group_takes_the_defaults, check_float32_in_place,
                                    check_solves_a_small_regression, check_step_allocates_nothing, make_params,
                                    run_nerve, trajectory_tests)


def ref_adadelta(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    """Zeiler (2012), Algorithm 1, with PyTorch's learning rate and weight decay."""
    sq_grad, sq_delta = {}, {}

    def update(i, x, g, t):
        if maximize:
            g = -g
        g = g + weight_decay * x
        sq_grad[i] = rho * sq_grad.get(i, 0.0) + (1 - rho) * g ** 2
        delta = np.sqrt(sq_delta.get(i, 0.0) + eps) / np.sqrt(sq_grad[i] + eps) * g
        sq_delta[i] = rho * sq_delta.get(i, 0.0) + (1 - rho) * delta ** 2
        return x - lr * delta
    return update


REFS = {"Adadelta": ref_adadelta}
CASES = [
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=3.0, rho=0.8, eps=1e-4, weight_decay=0.1)),
    ("Adadelta", dict(lr=2.0, weight_decay=0.05, maximize=True)),
]
GROUPS = [("Adadelta", dict(lr=2.0, rho=0.9), dict(lr=0.5, rho=0.7, eps=1e-3, weight_decay=0.1))]

(test_trajectory_matches_numpy_reference, test_state_dict_round_trip_resumes_trajectory,
 test_param_groups_follow_their_own_rules) = trajectory_tests(REFS, CASES, GROUPS)


def test_add_param_group_takes_the_defaults():
    check_add_param_group_takes_the_defaults("Adadelta")


def test_defaults_are_pytorchs():
    assert optim.Adadelta(make_params()).defaults == dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False)


def test_state_names_are_pytorchs():
    ps = make_params()
    opt = optim.Adadelta(ps)
    run_nerve(opt, ps, 0, 3)
    sd = opt.state_dict()
    assert set(sd["state"][0]) == {"step", "square_avg", "acc_delta"} and sd["state"][1]["step"] == 3


@pytest.mark.parametrize("kw", [dict(), dict(weight_decay=1e-4)], ids=["plain", "weight_decay"])
def test_solves_a_small_regression(kw):
    check_solves_a_small_regression("Adadelta", kw, 800)


@pytest.mark.parametrize("make", [lambda ps: optim.Adadelta(ps, weight_decay=0.1), lambda ps: optim.Adadelta(ps)],
                         ids=["Adadelta-wd", "Adadelta"])
def test_step_allocates_nothing(make):
    check_step_allocates_nothing(make)


def test_float32_parameters_stay_float32_in_place():
    check_float32_in_place(lambda ps: optim.Adadelta(ps, weight_decay=0.1))


@pytest.mark.parametrize("make, message", [
    (lambda ps: optim.Adadelta(ps, lr=-1.0), r"Adadelta: invalid lr=-1.0 in parameter group 0, expected lr >= 0"),
    (lambda ps: optim.Adadelta(ps, rho=1.5), r"Adadelta: invalid rho=1.5.*0 <= rho <= 1"),
    (lambda ps: optim.Adadelta(ps, eps=-1e-6), "Adadelta: invalid eps=-1e-06"),
    (lambda ps: optim.Adadelta(ps, weight_decay=float("nan")), "Adadelta: invalid weight_decay=nan"),
])
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make(make_params())
