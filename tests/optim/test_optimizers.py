"""Optimisers: 100-step trajectories against plain NumPy versions of the published rules, state dicts, errors."""
import json
import tracemalloc

import numpy as np
import pytest

import nerve
from nerve import optim

STEPS = 100
_rng = np.random.default_rng(1234)
A = _rng.standard_normal((3, 4))
X0 = [_rng.standard_normal((3, 4)), 0.5 * _rng.standard_normal(4)]
# NOTE: a different linear term each step stands in for minibatch noise, so moments keep moving.
NOISE = [(0.3 * _rng.standard_normal((3, 4)), 0.3 * _rng.standard_normal(4)) for _ in range(STEPS)]


def grad_np(xs, t, sign=1.0):
    """Gradient of f_t(W, b) = sum(tanh(W b)) + |W - A|^2 / 2 + 0.1 sum(b^4) + <N_t, (W, b)>."""
    w, b = xs
    s = 1 - np.tanh(w @ b) ** 2
    gw = np.outer(s, b) + (w - A) + NOISE[t][0]
    gb = w.T @ s + 0.4 * b ** 3 + NOISE[t][1]
    return [sign * gw, sign * gb]


def loss_nerve(ps, t, sign=1.0):
    w, b = ps
    a = nerve.tensor(A, dtype=nerve.float64)
    nw, nb = (nerve.tensor(n, dtype=nerve.float64) for n in NOISE[t])
    f = (nerve.tanh(w @ b).sum() + 0.5 * ((w - a) ** 2).sum() + 0.1 * (b ** 4).sum()
         + (w * nw).sum() + (b * nb).sum())
    return f * sign


def make_params():
    return [nerve.tensor(x.copy(), dtype=nerve.float64, requires_grad=True) for x in X0]


def run_nerve(opt, ps, t0, t1, sign=1.0):
    traj = []
    for t in range(t0, t1):
        opt.zero_grad()
        loss_nerve(ps, t, sign).backward()
        opt.step()
        traj.append(np.concatenate([p.data.ravel().copy() for p in ps]))
    return traj


def run_ref(update, sign=1.0):
    """Drive a reference ``update(i, x, g, step) -> new x`` (i: parameter index) over the problem."""
    xs = [x.copy() for x in X0]
    traj = []
    for t in range(STEPS):
        gs = grad_np(xs, t, sign)
        xs = [update(i, x, g, t + 1) for i, (x, g) in enumerate(zip(xs, gs))]
        traj.append(np.concatenate([x.ravel() for x in xs]))
    return np.array(traj)


# --- plain NumPy references, written from the papers / PyTorch's documented algorithms -----------------
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


CASES = [
    ("SGD", dict(lr=0.05), ref_sgd),
    ("SGD", dict(lr=0.05, momentum=0.9), ref_sgd),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.1), ref_sgd),
    ("SGD", dict(lr=0.03, momentum=0.9, nesterov=True, weight_decay=0.05), ref_sgd),
    ("SGD", dict(lr=0.05, momentum=0.5, weight_decay=0.1, maximize=True), ref_sgd),
    ("Adagrad", dict(lr=0.1), ref_adagrad),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-6),
     ref_adagrad),
    ("Adagrad", dict(lr=0.1, maximize=True), ref_adagrad),
    ("RMSprop", dict(lr=0.01), ref_rmsprop),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.1), ref_rmsprop),
    ("RMSprop", dict(lr=0.01, momentum=0.7), ref_rmsprop),
    ("RMSprop", dict(lr=0.01, centered=True), ref_rmsprop),
    ("RMSprop", dict(lr=0.005, alpha=0.9, momentum=0.8, centered=True, weight_decay=0.1, maximize=True),
     ref_rmsprop),
    ("Adam", dict(lr=0.05), ref_adam),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), ref_adam),
    ("Adam", dict(lr=0.05, amsgrad=True), ref_adam),
    ("Adam", dict(lr=0.05, weight_decay=0.1, amsgrad=True, maximize=True), ref_adam),
    ("AdamW", dict(lr=0.05), ref_adam),
    ("AdamW", dict(lr=0.05, betas=(0.85, 0.995), weight_decay=0.3, amsgrad=True), ref_adam),
    ("AdamW", dict(lr=0.05, weight_decay=0.2, maximize=True), ref_adam),
]


def _case_id(case):
    name, kw, _ = case
    return name + "(" + ",".join(f"{k}={v}" for k, v in kw.items()) + ")"


def _reference(name, kw, ref):
    if name == "AdamW":
        return ref(**dict(dict(weight_decay=1e-2), **kw), decoupled=True)
    return ref(**kw)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_trajectory_matches_numpy_reference(case):
    name, kw, ref = case
    # maximize=True runs on -f, so both directions walk the same (bounded) problem
    sign = -1.0 if kw.get("maximize") else 1.0
    ps = make_params()
    opt = getattr(optim, name)(ps, **kw)
    got = np.array(run_nerve(opt, ps, 0, STEPS, sign))
    want = run_ref(_reference(name, kw, ref), sign)
    assert np.all(np.isfinite(want))
    assert np.abs(want[-1] - np.concatenate([x.ravel() for x in X0])).max() > 0.1  # it moved
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def check_state_dict_resumes(name: str, kw: dict) -> None:
    """Save at step 40 (through what a checkpoint file gives back), load into a fresh optimiser built with a
    wrong lr, continue: the trajectory equals an uninterrupted run and the saved hyperparameters win."""
    sign = -1.0 if kw.get("maximize") else 1.0
    cls = getattr(optim, name)
    ps = make_params()
    opt = cls(ps, **kw)
    full = run_nerve(opt, ps, 0, STEPS, sign)

    ps = make_params()
    opt = cls(ps, **kw)
    run_nerve(opt, ps, 0, 40, sign)
    saved = opt.state_dict()
    run_nerve(opt, ps, 40, 45, sign)  # later steps must not change the saved copy
    # what a checkpoint file gives back: JSON hyperparameters (string keys, lists), arrays
    saved = {"state": {str(k): {n: (v.numpy() if isinstance(v, nerve.Tensor) else v) for n, v in s.items()}
                       for k, s in saved["state"].items()},
             "param_groups": json.loads(json.dumps(saved["param_groups"]))}
    resumed = [nerve.tensor(row, dtype=nerve.float64, requires_grad=True)
               for row in (full[39][:12].reshape(3, 4), full[39][12:])]
    opt2 = cls(resumed, **dict(kw, lr=123.0))
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == kw.get("lr", opt.defaults["lr"])
    rest = run_nerve(opt2, resumed, 40, STEPS, sign)
    np.testing.assert_array_equal(np.array(rest), np.array(full[40:]))


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_state_dict_round_trip_resumes_trajectory(case):
    check_state_dict_resumes(*case[:2])


def test_state_dict_layout_is_pytorch_like():
    ps = make_params()
    opt = optim.Adam([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.5}], lr=0.1)
    sd = opt.state_dict()
    assert sd["state"] == {}
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert [g["lr"] for g in sd["param_groups"]] == [0.1, 0.5]
    json.dumps(sd)
    run_nerve(opt, ps, 0, 2)
    sd = opt.state_dict()
    assert set(sd["state"]) == {0, 1}
    assert sd["state"][1]["step"] == 2
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert sd["state"][0]["exp_avg"].shape == (3, 4)


def test_param_groups_use_their_own_hyperparameters():
    ps = make_params()
    grouped = optim.SGD([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.01, "momentum": 0.5}], lr=0.05,
                        momentum=0.9)
    qs = make_params()
    separate = [optim.SGD([qs[0]], lr=0.05, momentum=0.9), optim.SGD([qs[1]], lr=0.01, momentum=0.5)]
    for t in range(20):
        for opt, params in ((grouped, ps),):
            opt.zero_grad()
            loss_nerve(params, t).backward()
            opt.step()
        for opt in separate:
            opt.zero_grad()
        loss_nerve(qs, t).backward()
        for opt in separate:
            opt.step()
    for p, q in zip(ps, qs):
        np.testing.assert_array_equal(p.data, q.data)


def test_add_param_group_and_defaults():
    ps = make_params()
    opt = optim.Adam([ps[0]], lr=0.1)
    opt.add_param_group({"params": ps[1], "betas": (0.5, 0.9)})
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["betas"] == (0.5, 0.9)
    with pytest.raises(ValueError, match="another parameter group"):
        opt.add_param_group({"params": [ps[0]]})


def test_params_without_grad_are_skipped():
    ps = make_params()
    opt = optim.Adam(ps, lr=0.1)
    ps[0].grad = nerve.tensor(np.ones((3, 4)), dtype=nerve.float64)
    before = ps[1].data.copy()
    opt.step()
    np.testing.assert_array_equal(ps[1].data, before)
    assert ps[1] not in opt.state or not opt.state[ps[1]]


def test_zero_grad():
    ps = make_params()
    opt = optim.SGD(ps, lr=0.1)
    loss_nerve(ps, 0).backward()
    arrays = [p.grad.data for p in ps]
    opt.zero_grad(set_to_none=False)
    for p, a in zip(ps, arrays):
        assert p.grad.data is a and not a.any()
    opt.zero_grad()
    assert all(p.grad is None for p in ps)


def test_step_with_closure_returns_loss():
    ps = make_params()
    opt = optim.SGD(ps, lr=0.1)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = loss_nerve(ps, 0)
        loss.backward()
        return loss

    with nerve.no_grad():
        loss = opt.step(closure)
    assert calls == [1] and isinstance(loss, nerve.Tensor)
    want = run_ref(ref_sgd(0.1))[0]
    np.testing.assert_allclose(np.concatenate([p.data.ravel() for p in ps]), want, rtol=1e-12)


def test_updates_in_place_and_bump_version():
    ps = make_params()
    opt = optim.Adam(ps, lr=0.1)
    arrays = [p.data for p in ps]
    run_nerve(opt, ps, 0, 3)
    assert all(p.data is a for p, a in zip(ps, arrays))
    state_arrays = [opt.state[p]["exp_avg"] for p in ps]
    run_nerve(opt, ps, 3, 5)
    assert all(opt.state[p]["exp_avg"] is a for p, a in zip(ps, state_arrays))
    # a graph that saved a parameter before the step cannot backpropagate with stale values
    loss = (ps[0] * ps[0]).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    lambda ps: optim.Adagrad(ps, lr=0.1, weight_decay=0.1),
    lambda ps: optim.RMSprop(ps, lr=0.1, momentum=0.9, centered=True, weight_decay=0.1),
    lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True, weight_decay=0.1, maximize=True),
    lambda ps: optim.AdamW(ps, lr=0.1),
], ids=["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_step_allocates_nothing(make):
    n = 50_000
    p = nerve.tensor(np.linspace(-1, 1, n), dtype=nerve.float64, requires_grad=True)
    p.grad = nerve.tensor(np.cos(np.arange(n)), dtype=nerve.float64)
    opt = make([p])
    opt.step()
    tracemalloc.start()
    try:
        opt.step()
        opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * n / 10, f"a step allocated {peak} bytes for a {8 * n}-byte parameter"


def test_float32_parameters_stay_float32():
    p = nerve.randn(10, 5, requires_grad=True)
    p.grad = nerve.ones(10, 5)
    for opt in (optim.SGD([p], lr=0.1, momentum=0.9), optim.Adam([p]), optim.RMSprop([p], centered=True),
                optim.Adagrad([p])):
        opt.step()
        assert p.dtype == np.float32
        assert all(v.dtype == np.float32 for v in opt.state[p].values() if hasattr(v, "dtype"))


def test_load_state_dict_casts_and_checks():
    p = nerve.randn(4, requires_grad=True)
    opt = optim.Adam([p])
    p.grad = nerve.ones(4)
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["exp_avg"] = np.zeros(4, dtype=np.float64)
    opt.load_state_dict(sd)
    assert opt.state[p]["exp_avg"].dtype == np.float32
    sd["state"][0]["exp_avg"] = np.zeros(5)
    with pytest.raises(ValueError, match=r"'exp_avg' has shape \(5,\).*\(4,\)"):
        opt.load_state_dict(sd)
    q = nerve.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="parameter group 0 has 2 parameters, the saved one has 1"):
        optim.Adam([p, q]).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="saved state has 1 parameter groups, this optimizer has 2"):
        optim.Adam([{"params": [p]}, {"params": [q]}]).load_state_dict(opt.state_dict())


@pytest.mark.parametrize("make, message", [
    (lambda ps: optim.SGD([], lr=0.1), "SGD: got an empty parameter list"),
    (lambda ps: optim.SGD(p for p in []), "SGD: got an empty parameter list"),
    (lambda ps: optim.SGD(ps, lr=-0.1), r"SGD: invalid lr=-0.1 in parameter group 0, expected lr >= 0"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=-1), "SGD: invalid momentum=-1"),
    (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "SGD: invalid nesterov=True.*momentum > 0"),
    (lambda ps: optim.SGD(ps, lr=0.1, weight_decay=float("nan")), "SGD: invalid weight_decay=nan"),
    (lambda ps: optim.SGD(ps, lr="0.1"), "SGD: invalid lr='0.1'"),
    (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), r"Adam: invalid betas\[0\]=1.0.*0 <= betas\[0\] < 1"),
    (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), r"Adam: invalid betas\[1\]=-0.1"),
    (lambda ps: optim.AdamW(ps, eps=-1e-8), "AdamW: invalid eps=-1e-08"),
    (lambda ps: optim.Adagrad(ps, lr_decay=-1), "Adagrad: invalid lr_decay=-1"),
    (lambda ps: optim.Adagrad(ps, initial_accumulator_value=-1), "Adagrad: invalid initial_accumulator_value"),
    (lambda ps: optim.RMSprop(ps, alpha=1.5), "RMSprop: invalid alpha=1.5"),
    (lambda ps: optim.RMSprop([{"params": ps[:1]}, {"params": ps[1:], "lr": -1}]),
     "RMSprop: invalid lr=-1 in parameter group 1"),
    (lambda ps: optim.SGD([ps[0], ps[0]], lr=0.1), "lists the same parameter more than once"),
])
def test_bad_hyperparameters_and_params(make, message):
    with pytest.raises(ValueError, match=message):
        make(make_params())


def test_bad_parameter_kinds():
    ps = make_params()
    with pytest.raises(ValueError, match=r"Adam: parameter 0 of group 0 \(shape \(2,\)\) does not require grad"):
        optim.Adam([nerve.zeros(2)])
    with pytest.raises(ValueError, match="not a leaf"):
        optim.Adam([ps[0] * 2])
    with pytest.raises(TypeError, match="single Tensor"):
        optim.Adam(ps[0])
    with pytest.raises(TypeError, match="ordered collection"):
        optim.Adam([{"params": set(ps)}])
    with pytest.raises(TypeError, match="can only optimize Tensors.*ndarray"):
        optim.Adam([np.zeros(3)])


def test_custom_optimizer_on_the_base_class():
    from nerve.optim.optimizer import Optimizer, required

    class SignSGD(Optimizer):
        """p <- p - lr * sign(grad)."""

        def __init__(self, params, lr=required):
            super().__init__(params, dict(lr=lr))

        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.data -= group["lr"] * np.sign(p.grad.data)

    ps = make_params()
    with pytest.raises(ValueError, match="SignSGD: parameter group 0 does not give the required hyperparameter 'lr'"):
        SignSGD(ps)
    opt = SignSGD([{"params": ps, "lr": 0.5}])
    ps[0].grad = nerve.tensor(-np.ones((3, 4)), dtype=nerve.float64)
    opt.step()
    np.testing.assert_allclose(ps[0].data, X0[0] + 0.5)
