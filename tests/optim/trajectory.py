"""The optimiser trajectory harness: one noisy 100-step problem, walked by a nerve optimiser and by a plain NumPy
version of its published rule, plus the checks every optimiser family runs (state-dict resumption, parameter
groups, allocation-free steps, float32 in place, a small regression)."""
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
    """f_t of ``grad_np`` on nerve Tensors, times ``sign``."""
    w, b = ps
    a = nerve.tensor(A, dtype=nerve.float64)
    nw, nb = (nerve.tensor(n, dtype=nerve.float64) for n in NOISE[t])
    f = (nerve.tanh(w @ b).sum() + 0.5 * ((w - a) ** 2).sum() + 0.1 * (b ** 4).sum()
         + (w * nw).sum() + (b * nb).sum())
    return f * sign


def make_params():
    """Fresh float64 leaves at the starting point X0."""
    return [nerve.tensor(x.copy(), dtype=nerve.float64, requires_grad=True) for x in X0]


def flat(xs):
    return np.concatenate([x.ravel() for x in xs])


def run_nerve(opt, ps, t0, t1, sign=1.0):
    """Steps t0..t1-1 of ``opt`` on the problem; the flattened parameters after each step."""
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
        traj.append(flat(xs))
    return np.array(traj)


def _sign(kw):
    # maximize=True runs on -f, so both directions walk the same (bounded) problem
    return -1.0 if kw.get("maximize") else 1.0


def case_id(case):
    name, kw = case[:2]
    return name + "(" + ",".join(f"{k}={v}" for k, v in kw.items()) + ")"


def check_trajectory(name: str, kw: dict, ref) -> None:
    """100 steps of ``optim.<name>(**kw)`` equal the NumPy rule ``ref(**kw)`` to rounding, and they move."""
    sign = _sign(kw)
    ps = make_params()
    got = np.array(run_nerve(getattr(optim, name)(ps, **kw), ps, 0, STEPS, sign))
    want = run_ref(ref(**kw), sign)
    assert np.all(np.isfinite(want))
    assert np.abs(want[-1] - flat(X0)).max() > 0.1  # it moved
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def check_state_dict_resumes(name: str, kw: dict) -> None:
    """Save at step 40 (through what a checkpoint file gives back), load into a fresh optimiser built with a
    wrong lr, continue: the trajectory equals an uninterrupted run and the saved hyperparameters win."""
    sign = _sign(kw)
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


def check_param_groups(name: str, ref, kw0: dict, kw1: dict) -> None:
    """Two parameter groups with their own hyperparameters each follow their own reference rule."""
    ps = make_params()
    opt = getattr(optim, name)([{"params": [ps[0]], **kw0}, {"params": [ps[1]], **kw1}])
    got = np.array(run_nerve(opt, ps, 0, STEPS))
    refs = [ref(**kw0), ref(**kw1)]
    want = run_ref(lambda i, x, g, t: refs[i](i, x, g, t))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def trajectory_tests(refs: dict, cases: list, groups: list = ()) -> tuple:
    """The harness's tests for one optimiser family: each case (name, kwargs) against ``refs[name]``, its state
    dict resuming mid-run, and each (name, kwargs0, kwargs1) pair of parameter groups; a test module binds them
    to module-level names."""

    @pytest.mark.parametrize("case", cases, ids=case_id)
    def test_trajectory_matches_numpy_reference(case):
        name, kw = case
        check_trajectory(name, kw, refs[name])

    @pytest.mark.parametrize("case", cases, ids=case_id)
    def test_state_dict_round_trip_resumes_trajectory(case):
        check_state_dict_resumes(*case)

    @pytest.mark.parametrize("name, kw0, kw1", groups)
    def test_param_groups_follow_their_own_rules(name, kw0, kw1):
        check_param_groups(name, refs[name], kw0, kw1)

    return (test_trajectory_matches_numpy_reference, test_state_dict_round_trip_resumes_trajectory,
            test_param_groups_follow_their_own_rules)


def check_add_param_group_takes_the_defaults(name: str) -> None:
    """A group added later keeps what it sets and takes every other hyperparameter from the defaults."""
    ps = make_params()
    opt = getattr(optim, name)([ps[0]], weight_decay=0.1)
    opt.add_param_group({"params": ps[1], "lr": 0.25})
    group = opt.param_groups[1]
    assert group["lr"] == 0.25 and group["weight_decay"] == 0.1
    assert {k: v for k, v in group.items() if k not in ("params", "lr", "weight_decay")} == \
        {k: v for k, v in opt.defaults.items() if k not in ("lr", "weight_decay")}


def check_step_allocates_nothing(make) -> None:
    """After the first step (which creates the state) no step allocates more than a tenth of the parameter."""
    n = 50_000
    p = nerve.tensor(np.linspace(-1, 1, n), dtype=nerve.float64, requires_grad=True)
    p.grad = nerve.tensor(np.cos(np.arange(n)), dtype=nerve.float64)
    opt = make([p])
    opt.step()
    tracemalloc.start()
    try:
        for _ in range(7):  # covers RAdam's switch to the rectified branch at step 6 with the default betas
            opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * n / 10, f"a step allocated {peak} bytes for a {8 * n}-byte parameter"


def check_float32_in_place(make) -> None:
    """Float32 parameters and their state stay float32, finite, and are updated in the same arrays."""
    p = nerve.randn(10, 5, requires_grad=True)
    array = p.data
    opt = make([p])
    for _ in range(8):
        p.grad = nerve.ones(10, 5)
        opt.step()
    assert p.data is array and p.dtype == np.float32 and np.all(np.isfinite(p.data))
    assert all(v.dtype == np.float32 for v in opt.state[p].values() if hasattr(v, "dtype"))


def check_solves_a_small_regression(name: str, kw: dict, steps: int) -> None:
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
