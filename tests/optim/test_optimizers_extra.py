"""Adadelta, NAdam, RAdam: 100-step trajectories against plain NumPy versions of the published rules, parameter
groups, state dicts, a small regression each must solve, errors."""
import tracemalloc

import numpy as np
import pytest

import nerve
from nerve import optim
from tests.optim.test_optimizers import (STEPS, X0, check_state_dict_resumes, loss_nerve, make_params,
                                         run_nerve, run_ref)


# --- plain NumPy references, written from the papers / PyTorch's documented algorithms -----------------
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


REFS = {"Adadelta": ref_adadelta, "NAdam": ref_nadam, "RAdam": ref_radam}
CASES = [
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=3.0, rho=0.8, eps=1e-4, weight_decay=0.1)),
    ("Adadelta", dict(lr=2.0, weight_decay=0.05, maximize=True)),
    ("NAdam", dict(lr=0.05)),
    ("NAdam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, momentum_decay=0.02)),
    ("NAdam", dict(lr=0.05, weight_decay=0.2, decoupled_weight_decay=True)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, maximize=True)),
    ("RAdam", dict(lr=0.05)),
    ("RAdam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("RAdam", dict(lr=0.05, weight_decay=0.2, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1, maximize=True)),
]


def _case_id(case):
    name, kw = case
    return name + "(" + ",".join(f"{k}={v}" for k, v in kw.items()) + ")"


def _flat(xs):
    return np.concatenate([x.ravel() for x in xs])


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_trajectory_matches_numpy_reference(case):
    name, kw = case
    # maximize=True runs on -f, so both directions walk the same (bounded) problem
    sign = -1.0 if kw.get("maximize") else 1.0
    ps = make_params()
    got = np.array(run_nerve(getattr(optim, name)(ps, **kw), ps, 0, STEPS, sign))
    want = run_ref(REFS[name](**kw), sign)
    assert np.all(np.isfinite(want))
    assert np.abs(want[-1] - _flat(X0)).max() > 0.05  # it moved
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.8, 0.99)])
def test_radam_takes_both_branches(betas):
    """The first steps are plain momentum (rho_t <= 5), later ones rectified: the cases above cover both."""
    branches = []
    run_ref(ref_radam(lr=0.05, betas=betas, branches=branches))
    assert not branches[0] and branches[-1]


@pytest.mark.parametrize("name, kw0, kw1", [
    ("Adadelta", dict(lr=2.0, rho=0.9), dict(lr=0.5, rho=0.7, eps=1e-3, weight_decay=0.1)),
    ("NAdam", dict(lr=0.05), dict(lr=0.01, betas=(0.7, 0.9), momentum_decay=0.01, weight_decay=0.1)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1), dict(lr=0.02, betas=(0.8, 0.99), eps=1e-4,
                                                    weight_decay=0.3, decoupled_weight_decay=True)),
])
def test_param_groups_follow_their_own_rules(name, kw0, kw1):
    ps = make_params()
    opt = getattr(optim, name)([{"params": [ps[0]], **kw0}, {"params": [ps[1]], **kw1}])
    got = np.array(run_nerve(opt, ps, 0, STEPS))
    refs = [REFS[name](**kw0), REFS[name](**kw1)]
    want = run_ref(lambda i, x, g, t: refs[i](i, x, g, t))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["Adadelta", "NAdam", "RAdam"])
def test_add_param_group_takes_the_defaults(name):
    ps = make_params()
    opt = getattr(optim, name)([ps[0]], weight_decay=0.1)
    opt.add_param_group({"params": ps[1], "lr": 0.25})
    group = opt.param_groups[1]
    assert group["lr"] == 0.25 and group["weight_decay"] == 0.1
    assert {k: v for k, v in group.items() if k not in ("params", "lr", "weight_decay")} == \
        {k: v for k, v in opt.defaults.items() if k not in ("lr", "weight_decay")}


def test_defaults_are_pytorchs():
    p = make_params()
    assert optim.Adadelta(p).defaults == dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False)
    assert optim.NAdam(p).defaults == dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                                           momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False)
    assert optim.RAdam(p).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                                           decoupled_weight_decay=False, maximize=False)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_state_dict_round_trip_resumes_trajectory(case):
    check_state_dict_resumes(*case)


def test_nadam_loads_scalar_state_saved_as_0d_array():
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


@pytest.mark.parametrize("name, keys", [
    ("Adadelta", {"step", "square_avg", "acc_delta"}),
    ("NAdam", {"step", "mu_product", "exp_avg", "exp_avg_sq"}),
    ("RAdam", {"step", "exp_avg", "exp_avg_sq"}),
])
def test_state_names_are_pytorchs(name, keys):
    ps = make_params()
    opt = getattr(optim, name)(ps)
    run_nerve(opt, ps, 0, 3)
    sd = opt.state_dict()
    assert set(sd["state"][0]) == keys and sd["state"][1]["step"] == 3
    if name == "NAdam":
        mus = [0.9 * (1 - 0.5 * 0.96 ** (t * 4e-3)) for t in (1, 2, 3)]
        assert sd["state"][0]["mu_product"] == pytest.approx(np.prod(mus), rel=1e-14)


@pytest.mark.parametrize("name, kw, steps", [
    ("Adadelta", dict(), 800),
    ("Adadelta", dict(weight_decay=1e-4), 800),
    ("NAdam", dict(lr=0.05), 200),
    ("NAdam", dict(lr=0.05, weight_decay=1e-4), 200),
    ("RAdam", dict(lr=0.05), 400),
    ("RAdam", dict(lr=0.05, weight_decay=1e-4, decoupled_weight_decay=True), 400),
])
def test_solves_a_small_regression(name, kw, steps):
    """Full-batch least squares from zero (loss about 13) down to near its noise floor (about 1e-4)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((64, 5))
    y = x @ np.array([1.5, -2.0, 0.5, 3.0, -1.0]) + 0.7 + 0.01 * rng.standard_normal(64)
    xt, yt = nerve.tensor(x, dtype=nerve.float64), nerve.tensor(y, dtype=nerve.float64)
    w = nerve.tensor(np.zeros(5), dtype=nerve.float64, requires_grad=True)
    b = nerve.tensor(np.zeros(1), dtype=nerve.float64, requires_grad=True)
    opt = getattr(optim, name)([w, b], **kw)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((xt @ w + b - yt) ** 2).mean()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3


@pytest.mark.parametrize("make", [
    lambda ps: optim.Adadelta(ps, weight_decay=0.1),
    lambda ps: optim.Adadelta(ps),
    lambda ps: optim.NAdam(ps, weight_decay=0.1, maximize=True),
    lambda ps: optim.NAdam(ps, weight_decay=0.1, decoupled_weight_decay=True),
    lambda ps: optim.RAdam(ps, weight_decay=0.1),
], ids=["Adadelta-wd", "Adadelta", "NAdam", "NAdam-decoupled", "RAdam"])
def test_step_allocates_nothing(make):
    n = 50_000
    p = nerve.tensor(np.linspace(-1, 1, n), dtype=nerve.float64, requires_grad=True)
    p.grad = nerve.tensor(np.cos(np.arange(n)), dtype=nerve.float64)
    opt = make([p])
    for _ in range(6):  # RAdam's rectified branch starts at step 6 with the default betas
        opt.step()
    tracemalloc.start()
    try:
        opt.step()
        opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * n / 10, f"a step allocated {peak} bytes for a {8 * n}-byte parameter"


def test_updates_in_place_and_keep_float32():
    for cls in (optim.Adadelta, optim.NAdam, optim.RAdam):
        p = nerve.randn(10, 5, requires_grad=True)
        array = p.data
        opt = cls([p], weight_decay=0.1)
        for _ in range(8):
            p.grad = nerve.ones(10, 5)
            opt.step()
        assert p.data is array and p.dtype == np.float32 and np.all(np.isfinite(p.data))
        assert all(v.dtype == np.float32 for v in opt.state[p].values() if hasattr(v, "dtype"))


def test_modified_parameter_cannot_backpropagate_stale_graph():
    ps = make_params()
    opt = optim.NAdam(ps)
    loss_nerve(ps, 0).backward()
    loss = (ps[0] * ps[0]).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


@pytest.mark.parametrize("make, message", [
    (lambda ps: optim.Adadelta(ps, lr=-1.0), r"Adadelta: invalid lr=-1.0 in parameter group 0, expected lr >= 0"),
    (lambda ps: optim.Adadelta(ps, rho=1.5), r"Adadelta: invalid rho=1.5.*0 <= rho <= 1"),
    (lambda ps: optim.Adadelta(ps, eps=-1e-6), "Adadelta: invalid eps=-1e-06"),
    (lambda ps: optim.Adadelta(ps, weight_decay=float("nan")), "Adadelta: invalid weight_decay=nan"),
    (lambda ps: optim.NAdam(ps, betas=(1.0, 0.999)), r"NAdam: invalid betas\[0\]=1.0.*0 <= betas\[0\] < 1"),
    (lambda ps: optim.NAdam(ps, betas=(0.9,)), r"NAdam: invalid betas=\(0.9,\).*a pair"),
    (lambda ps: optim.NAdam(ps, momentum_decay=-0.1), "NAdam: invalid momentum_decay=-0.1"),
    (lambda ps: optim.RAdam(ps, betas=(0.9, 1.0)), r"RAdam: invalid betas\[1\]=1.0"),
    (lambda ps: optim.RAdam([{"params": ps[:1]}, {"params": ps[1:], "lr": -1}]),
     "RAdam: invalid lr=-1 in parameter group 1"),
])
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make(make_params())
