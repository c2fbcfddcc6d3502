"""The Optimizer base class: state-dict layout and loading, parameter groups, zero_grad, closures, in-place
updates and version bumps, bad parameters, a custom optimiser written on it."""
import json

import numpy as np
import pytest

import nerve
from nerve import optim
from tests.optim.trajectory import X0, flat, grad_np, loss_nerve, make_params, run_nerve


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
    want = flat([x - 0.1 * g for x, g in zip(X0, grad_np(X0, 0))])  # one plain SGD step
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


def test_modified_parameter_cannot_backpropagate_stale_graph():
    ps = make_params()
    opt = optim.NAdam(ps)
    loss_nerve(ps, 0).backward()
    loss = (ps[0] * ps[0]).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


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
    (lambda ps: optim.SGD([ps[0], ps[0]], lr=0.1), "lists the same parameter more than once"),
])
def test_bad_parameter_lists(make, message):
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
