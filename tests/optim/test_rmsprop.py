"""RMSprop (plain, momentum, centred) against a NumPy version of PyTorch's documented rule, through the trajectory
harness; float32, allocation and errors."""
import numpy as np
import pytest

from nerve import optim
from tests.optim.trajectory import check_float32_in_place, check_step_allocates_nothing, make_params, trajectory_tests


def ref_rmsprop(lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, maximize=False):
    sq, avg, buf = {}, {}, {}

    def update(i, x, g, step):
        if maximize:
            g = -g
        g = g + weight_decay * x
        sq[i] = alpha * sq.get(i, 0.0) + (1 - alpha) * g ** 2
        if centered:
            avg[i] = alpha * avg.get(i, 0.0) + (1 - alpha) * g
            denom = np.sqrt(sq[i] - avg[i] ** 2) + eps
        else:
            denom = np.sqrt(sq[i]) + eps
        if momentum > 0:
            buf[i] = momentum * buf.get(i, 0.0) + g / denom
            return x - lr * buf[i]
        return x - lr * g / denom
    return update


REFS = {"RMSprop": ref_rmsprop}
CASES = [
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.7)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.005, alpha=0.9, momentum=0.8, centered=True, weight_decay=0.1, maximize=True)),
]
GROUPS = [("RMSprop", dict(lr=0.01), dict(lr=0.005, alpha=0.9, momentum=0.7, centered=True))]

(test_trajectory_matches_numpy_reference, test_state_dict_round_trip_resumes_trajectory,
 test_param_groups_follow_their_own_rules) = trajectory_tests(REFS, CASES, GROUPS)


@pytest.mark.parametrize("make", [
    lambda ps: optim.RMSprop(ps, lr=0.1, momentum=0.9, centered=True, weight_decay=0.1),
], ids=["RMSprop"])
def test_step_allocates_nothing(make):
    check_step_allocates_nothing(make)


@pytest.mark.parametrize("make", [lambda ps: optim.RMSprop(ps, centered=True)], ids=["RMSprop-centered"])
def test_float32_parameters_stay_float32_in_place(make):
    check_float32_in_place(make)


@pytest.mark.parametrize("make, message", [
    (lambda ps: optim.RMSprop(ps, alpha=1.5), "RMSprop: invalid alpha=1.5"),
    (lambda ps: optim.RMSprop([{"params": ps[:1]}, {"params": ps[1:], "lr": -1}]),
     "RMSprop: invalid lr=-1 in parameter group 1"),
])
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make(make_params())
