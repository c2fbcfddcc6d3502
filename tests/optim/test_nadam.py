"""NAdam against a NumPy version of Dozat's rule, through the trajectory harness; PyTorch's defaults, state names
and saved scalars, a small regression, float32, allocation and errors."""
import numpy as np
import pytest

import nerve
from nerve import optim
from tests.optim.trajectory import (check_add_param_group_takes_the_defaults, check_float32_in_place,
                                    check_solves_a_small_regression, check_step_allocates_nothing, make_params,
                                    run_nerve, trajectory_tests)


def ref_nadam(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
              decoupled_weight_decay=False, maximize=False):
    """Dozat (2016) with the momentum schedule mu_t = beta1 (1 - 0.96^(t psi) / 2), products taken afresh."""
    b1, b2 = betas
    m, v = {}, {}

    def mu(t):
        return b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))

    def update(i, x, g, t):
        if maximize:
            g = -g
        if decoupled_weight_decay:
            x = x * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * x
        m[i] = b1 * m.get(i, 0.0) + (1 - b1) * g
        v[i] = b2 * v.get(i, 0.0) + (1 - b2) * g * g
        prod_t = np.prod([mu(k) for k in range(1, t + 1)])
        prod_next = np.prod([mu(k) for k in range(1, t + 2)])
        m_hat = mu(t + 1) * m[i] / (1 - prod_next) + (1 - mu(t)) * g / (1 - prod_t)
        v_hat = v[i] / (1 - b2 ** t)
        return x - lr * m_hat / (np.sqrt(v_hat) + eps)
    return update


REFS = {"NAdam": ref_nadam}
CASES = [
    ("NAdam", dict(lr=0.05)),
    ("NAdam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, momentum_decay=0.02)),
    ("NAdam", dict(lr=0.05, weight_decay=0.2, decoupled_weight_decay=True)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, maximize=True)),
]
GROUPS = [("NAdam", dict(lr=0.05), dict(lr=0.01, betas=(0.7, 0.9), momentum_decay=0.01, weight_decay=0.1))]

(test_trajectory_matches_numpy_reference, test_state_dict_round_trip_resumes_trajectory,
 test_param_groups_follow_their_own_rules) = trajectory_tests(REFS, CASES, GROUPS)


def test_add_param_group_takes_the_defaults():
    check_add_param_group_takes_the_defaults("NAdam")


def test_defaults_are_pytorchs():
    assert optim.NAdam(make_params()).defaults == dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                                                       momentum_decay=4e-3, decoupled_weight_decay=False,
                                                       maximize=False)


def test_state_names_are_pytorchs():
    ps = make_params()
    opt = optim.NAdam(ps)
    run_nerve(opt, ps, 0, 3)
    sd = opt.state_dict()
    assert set(sd["state"][0]) == {"step", "mu_product", "exp_avg", "exp_avg_sq"} and sd["state"][1]["step"] == 3
    mus = [0.9 * (1 - 0.5 * 0.96 ** (t * 4e-3)) for t in (1, 2, 3)]
    assert sd["state"][0]["mu_product"] == pytest.approx(np.prod(mus), rel=1e-14)


def test_loads_scalar_state_saved_as_0d_array():
    """PyTorch saves NAdam's mu_product as a 0-d tensor: it loads as the float nerve keeps, same trajectory."""
    ps = make_params()
    full = run_nerve(optim.NAdam(ps), ps, 0, 30)
    ps = make_params()
    opt = optim.NAdam(ps)
    run_nerve(opt, ps, 0, 20)
    saved = opt.state_dict()
    saved["state"] = {k: dict(st, mu_product=np.array(st["mu_product"]), step=np.array(float(st["step"])))
                      for k, st in saved["state"].items()}
    resumed = [nerve.tensor(row, dtype=nerve.float64, requires_grad=True)
               for row in (full[19][:12].reshape(3, 4), full[19][12:])]
    opt2 = optim.NAdam(resumed)
    opt2.load_state_dict(saved)
    assert all(isinstance(st["mu_product"], float) for st in opt2.state.values())
    np.testing.assert_array_equal(np.array(run_nerve(opt2, resumed, 20, 30)), np.array(full[20:]))


@pytest.mark.parametrize("kw", [dict(lr=0.05), dict(lr=0.05, weight_decay=1e-4)], ids=["plain", "weight_decay"])
def test_solves_a_small_regression(kw):
    check_solves_a_small_regression("NAdam", kw, 200)


@pytest.mark.parametrize("make", [
    lambda ps: optim.NAdam(ps, weight_decay=0.1, maximize=True),
    lambda ps: optim.NAdam(ps, weight_decay=0.1, decoupled_weight_decay=True),
], ids=["NAdam", "NAdam-decoupled"])
def test_step_allocates_nothing(make):
    check_step_allocates_nothing(make)


def test_float32_parameters_stay_float32_in_place():
    check_float32_in_place(lambda ps: optim.NAdam(ps, weight_decay=0.1))


@pytest.mark.parametrize("make, message", [
    (lambda ps: optim.NAdam(ps, betas=(1.0, 0.999)), r"NAdam: invalid betas\[0\]=1.0.*0 <= betas\[0\] < 1"),
    (lambda ps: optim.NAdam(ps, betas=(0.9,)), r"NAdam: invalid betas=\(0.9,\).*a pair"),
    (lambda ps: optim.NAdam(ps, momentum_decay=-0.1), "NAdam: invalid momentum_decay=-0.1"),
])
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make(make_params())
