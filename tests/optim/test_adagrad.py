"""Adagrad against a NumPy version of PyTorch's documented rule, through the trajectory harness; float32,
allocation and errors."""
import numpy as np
import pytest

from nerve import optim
from tests.optim.trajectory import check_float32_in_place, check_step_allocates_nothing, make_params, trajectory_tests


def ref_adagrad(lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    sums = {}

    def update(i, x, g, step):
        if maximize:
            g = -g
        g = g + weight_decay * x
        sums[i] = sums.get(i, np.full_like(x, initial_accumulator_value)) + g * g
        step_lr = lr / (1 + (step - 1) * lr_decay)
        return x - step_lr * g / (np.sqrt(sums[i]) + eps)
    return update


REFS = {"Adagrad": ref_adagrad}
CASES = [
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-6)),
    ("Adagrad", dict(lr=0.1, maximize=True)),
]
GROUPS = [("Adagrad", dict(lr=0.1), dict(lr=0.05, lr_decay=0.02, initial_accumulator_value=0.3, weight_decay=0.1))]

(test_trajectory_matches_numpy_reference, test_state_dict_round_trip_resumes_trajectory,
 test_param_groups_follow_their_own_rules) = trajectory_tests(REFS, CASES, GROUPS)


@pytest.mark.parametrize("make", [lambda ps: optim.Adagrad(ps, lr=0.1, weight_decay=0.1)], ids=["Adagrad"])
def test_step_allocates_nothing(make):
    check_step_allocates_nothing(make)


@pytest.mark.parametrize("make", [lambda ps: optim.Adagrad(ps)], ids=["Adagrad"])
def test_float32_parameters_stay_float32_in_place(make):
    check_float32_in_place(make)


@pytest.mark.parametrize("make, message", [
    (lambda ps: optim.Adagrad(ps, lr_decay=-1), "Adagrad: invalid lr_decay=-1"),
    (lambda ps: optim.Adagrad(ps, initial_accumulator_value=-1), "Adagrad: invalid initial_accumulator_value"),
])
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make(make_params())
