"""RAdam against a NumPy version of Liu et al.'s rule (both branches), through the trajectory harness; PyTorch's
defaults and state names, a small regression, float32, allocation and errors."""
import numpy as np
import pytest

from nerve import optim
from tests.optim.trajectory import (check_add_param_group_takes_the_defaults, check_float32_in_place,
                                    check_solves_a_small_regression, check_step_allocates_nothing, make_params,
                                    run_nerve, run_ref, trajectory_tests)


def ref_radam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False,
              maximize=False, branches=None):
    """Liu et al. (2019), Algorithm 2; ``branches`` (a list) records whether each step was rectified."""
    b1, b2 = betas
    rho_inf = 2 / (1 - b2) - 1
    m, v = {}, {}

    def update(i, x, g, t):
        if maximize:
            g = -g
        if decoupled_weight_decay:
            x = x * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * x
        m[i] = b1 * m.get(i, 0.0) + (1 - b1) * g
        v[i] = b2 * v.get(i, 0.0) + (1 - b2) * g * g
        m_hat = m[i] / (1 - b1 ** t)
        rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if branches is not None:
            branches.append(rho_t > 5)
        if rho_t > 5:
            adaptive = np.sqrt(1 - b2 ** t) / (np.sqrt(v[i]) + eps)
            rect = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            return x - lr * m_hat * rect * adaptive
        return x - lr * m_hat
    return update


REFS = {"RAdam": ref_radam}
CASES = [
    ("RAdam", dict(lr=0.05)),
    ("RAdam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("RAdam", dict(lr=0.05, weight_decay=0.2, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1, maximize=True)),
]
GROUPS = [("RAdam", dict(lr=0.05, weight_decay=0.1), dict(lr=0.02, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.3,
                                                          decoupled_weight_decay=True))]

(test_trajectory_matches_numpy_reference, test_state_dict_round_trip_resumes_trajectory,
 test_param_groups_follow_their_own_rules) = trajectory_tests(REFS, CASES, GROUPS)


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.8, 0.99)])
def test_takes_both_branches(betas):
    """The first steps are plain momentum (rho_t <= 5), later ones rectified: the cases above cover both."""
    branches = []
    run_ref(ref_radam(lr=0.05, betas=betas, branches=branches))
    assert not branches[0] and branches[-1]


def test_add_param_group_takes_the_defaults():
    check_add_param_group_takes_the_defaults("RAdam")


def test_defaults_are_pytorchs():
    assert optim.RAdam(make_params()).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                                                       decoupled_weight_decay=False, maximize=False)


def test_state_names_are_pytorchs():
    ps = make_params()
    opt = optim.RAdam(ps)
    run_nerve(opt, ps, 0, 3)
    sd = opt.state_dict()
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"} and sd["state"][1]["step"] == 3


@pytest.mark.parametrize("kw", [dict(lr=0.05), dict(lr=0.05, weight_decay=1e-4, decoupled_weight_decay=True)],
                         ids=["plain", "decoupled_weight_decay"])
def test_solves_a_small_regression(kw):
    check_solves_a_small_regression("RAdam", kw, 400)


@pytest.mark.parametrize("make", [lambda ps: optim.RAdam(ps, weight_decay=0.1)], ids=["RAdam"])
def test_step_allocates_nothing(make):
    check_step_allocates_nothing(make)


def test_float32_parameters_stay_float32_in_place():
    check_float32_in_place(lambda ps: optim.RAdam(ps, weight_decay=0.1))


@pytest.mark.parametrize("make, message", [
    (lambda ps: optim.RAdam(ps, betas=(0.9, 1.0)), r"RAdam: invalid betas\[1\]=1.0"),
    (lambda ps: optim.RAdam([{"params": ps[:1]}, {"params": ps[1:], "lr": -1}]),
     "RAdam: invalid lr=-1 in parameter group 1"),
])
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make(make_params())
