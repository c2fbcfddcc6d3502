"""Adam and AdamW (AMSGrad, weight decay coupled and decoupled, maximize) against a NumPy version of the
published rule, through the trajectory harness; float32, allocation and errors."""
import numpy as np
import pytest

from nerve import optim
from tests.optim.trajectory import check_float32_in_place, check_step_allocates_nothing, make_params, trajectory_tests


def ref_adam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False, decoupled=False):
    b1, b2 = betas
    m, v, vmax = {}, {}, {}

    def update(i, x, g, t):
        if maximize:
            g = -g
        if decoupled:
            x = x * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * x
        m[i] = b1 * m.get(i, 0.0) + (1 - b1) * g
        v[i] = b2 * v.get(i, 0.0) + (1 - b2) * g * g
        m_hat = m[i] / (1 - b1 ** t)
        if amsgrad:
            vmax[i] = np.maximum(vmax.get(i, 0.0), v[i])
            v_hat = vmax[i] / (1 - b2 ** t)
        else:
            v_hat = v[i] / (1 - b2 ** t)
        return x - lr * m_hat / (np.sqrt(v_hat) + eps)
    return update


def ref_adamw(lr, weight_decay=1e-2, **kw):
    """Loshchilov & Hutter: Adam with decoupled weight decay (PyTorch's default 1e-2)."""
    return ref_adam(lr, weight_decay=weight_decay, decoupled=True, **kw)


REFS = {"Adam": ref_adam, "AdamW": ref_adamw}
CASES = [
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, betas=(0.85, 0.995), weight_decay=0.3, amsgrad=True)),
    ("AdamW", dict(lr=0.05, weight_decay=0.2, maximize=True)),
]
GROUPS = [
    ("Adam", dict(lr=0.05), dict(lr=0.02, betas=(0.8, 0.99), amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.05), dict(lr=0.02, betas=(0.85, 0.995), weight_decay=0.3)),
]

(test_trajectory_matches_numpy_reference, test_state_dict_round_trip_resumes_trajectory,
 test_param_groups_follow_their_own_rules) = trajectory_tests(REFS, CASES, GROUPS)


@pytest.mark.parametrize("make", [
    lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True, weight_decay=0.1, maximize=True),
    lambda ps: optim.AdamW(ps, lr=0.1),
], ids=["Adam", "AdamW"])
def test_step_allocates_nothing(make):
    check_step_allocates_nothing(make)


@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps), lambda ps: optim.AdamW(ps, amsgrad=True)],
                         ids=["Adam", "AdamW-amsgrad"])
def test_float32_parameters_stay_float32_in_place(make):
    check_float32_in_place(make)


@pytest.mark.parametrize("make, message", [
    (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), r"Adam: invalid betas\[0\]=1.0.*0 <= betas\[0\] < 1"),
    (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), r"Adam: invalid betas\[1\]=-0.1"),
    (lambda ps: optim.AdamW(ps, eps=-1e-8), "AdamW: invalid eps=-1e-08"),
])
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make(make_params())
