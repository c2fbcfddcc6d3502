"""SGD (momentum, dampening, Nesterov, weight decay, maximize) against a NumPy version of PyTorch's documented
rule, through the trajectory harness; float32, allocation and errors."""
import pytest

from nerve import optim
from tests.optim.trajectory import check_float32_in_place, check_step_allocates_nothing, make_params, trajectory_tests


def ref_sgd(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    bufs = {}

    def update(i, x, g, step):
        if maximize:
            g = -g
        g = g + weight_decay * x
        if momentum != 0:
            bufs[i] = g.copy() if i not in bufs else momentum * bufs[i] + (1 - dampening) * g
            g = g + momentum * bufs[i] if nesterov else bufs[i]
        return x - lr * g
    return update


REFS = {"SGD": ref_sgd}
CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.1)),
    ("SGD", dict(lr=0.03, momentum=0.9, nesterov=True, weight_decay=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.5, weight_decay=0.1, maximize=True)),
]
GROUPS = [("SGD", dict(lr=0.05, momentum=0.9), dict(lr=0.01, momentum=0.5, nesterov=True, weight_decay=0.1))]

(test_trajectory_matches_numpy_reference, test_state_dict_round_trip_resumes_trajectory,
 test_param_groups_follow_their_own_rules) = trajectory_tests(REFS, CASES, GROUPS)


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
], ids=["SGD"])
def test_step_allocates_nothing(make):
    check_step_allocates_nothing(make)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9)], ids=["SGD-momentum"])
def test_float32_parameters_stay_float32_in_place(make):
    check_float32_in_place(make)


@pytest.mark.parametrize("make, message", [
    (lambda ps: optim.SGD(ps, lr=-0.1), r"SGD: invalid lr=-0.1 in parameter group 0, expected lr >= 0"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=-1), "SGD: invalid momentum=-1"),
    (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "SGD: invalid nesterov=True.*momentum > 0"),
    (lambda ps: optim.SGD(ps, lr=0.1, weight_decay=float("nan")), "SGD: invalid weight_decay=nan"),
    (lambda ps: optim.SGD(ps, lr="0.1"), "SGD: invalid lr='0.1'"),
])
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make(make_params())
