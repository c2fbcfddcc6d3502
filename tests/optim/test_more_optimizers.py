"""Adamax, Rprop, ASGD and Adafactor against NumPy versions of PyTorch's documented rules, through the trajectory
harness."""
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


def ref_adafactor(lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, maximize=False):
    """Shazeer & Stern's factored second moment with PyTorch's schedule (rho, alpha, the update clipping)."""
    row, col, full = {}, {}, {}

    def update(i, x, g, step):
        g = -g if maximize else g
        eps1 = np.finfo(x.dtype).eps if eps[0] is None else eps[0]
        w = step ** beta2_decay
        alpha = max(eps[1], np.sqrt(np.mean(x ** 2))) * min(lr, 1 / np.sqrt(step))
        x = x * (1 - lr * weight_decay)
        if x.ndim == 2:
            row[i] = (1 - w) * row.get(i, 0) + w * np.mean(g ** 2, axis=1, keepdims=True)
            col[i] = (1 - w) * col.get(i, 0) + w * np.mean(g ** 2, axis=0, keepdims=True)
            v = row[i] * col[i] / max(row[i].mean(), eps1)
        else:
            full[i] = (1 - w) * full.get(i, 0) + w * g ** 2
            v = full[i]
        u = g / np.sqrt(np.maximum(v, eps1 ** 2))
        return x - alpha / max(1.0, np.sqrt(np.mean(u ** 2)) / d) * u
    return update


REFS = {"Adamax": ref_adamax, "Rprop": ref_rprop, "ASGD": ref_asgd, "Adafactor": ref_adafactor}
CASES = [
    ("Adamax", dict(lr=0.05)),
    ("Adamax", dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1, maximize=True)),
    ("Rprop", dict(lr=0.01)),
    ("Rprop", dict(lr=0.02, etas=(0.3, 1.5), step_sizes=(1e-4, 0.05))),
    ("ASGD", dict(lr=0.05, lambd=0.01, t0=20, weight_decay=0.05)),
    ("Adafactor", dict(lr=0.05)),
    ("Adafactor", dict(lr=0.1, beta2_decay=-0.5, eps=(1e-8, 1e-2), d=1.5, weight_decay=0.05, maximize=True)),
]
GROUPS = [("Rprop", dict(lr=0.01), dict(lr=0.03, etas=(0.4, 1.1))),
          ("ASGD", dict(lr=0.05, t0=10), dict(lr=0.02, lambd=0.1))]

(test_trajectory_matches_numpy_reference, test_state_dict_round_trip_resumes_trajectory,
 test_param_groups_follow_their_own_rules) = trajectory_tests(REFS, CASES, GROUPS)


@pytest.mark.parametrize("make", [lambda ps: optim.Adamax(ps), lambda ps: optim.Rprop(ps), lambda ps: optim.ASGD(ps),
                                  lambda ps: optim.Adafactor(ps)], ids=["Adamax", "Rprop", "ASGD", "Adafactor"])
def test_float32_parameters_stay_float32_in_place(make):
    check_float32_in_place(make)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="Rprop: invalid etas"):
        optim.Rprop(make_params(), etas=(1.5, 1.2))
    with pytest.raises(ValueError, match="Adafactor: invalid beta2_decay"):
        optim.Adafactor(make_params(), beta2_decay=0.5)
    with pytest.raises(ValueError, match=r"Adamax: invalid betas\[1\]"):
        optim.Adamax(make_params(), betas=(0.9, 1.0))


def test_adafactor_factored_state_is_checked_on_load():
    ps = make_params()
    opt = optim.Adafactor(ps)
    (ps[0] ** 2).sum().backward()
    (ps[1] ** 2).sum().backward()
    opt.step()
    state = opt.state_dict()
    assert tuple(state["state"][0]["row_var"].shape) == (3, 1) and tuple(state["state"][0]["col_var"].shape) == (1, 4)
    state["state"][0]["row_var"] = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"Adafactor.load_state_dict: state 'row_var' has shape \(3, 4\), expected"):
        optim.Adafactor(make_params()).load_state_dict(state)
