"""CyclicLR, CosineAnnealingWarmRestarts, PolynomialLR, ConstantLR, MultiplicativeLR and ChainedScheduler
against the closed forms of their schedules."""
import math

import numpy as np
import pytest

import nerve
from nerve.optim import lr_scheduler as L


def optimizer(kind="sgd", lr=0.1):
    p = nerve.nn.Parameter(nerve.zeros(1))
    return nerve.optim.SGD([p], lr=lr, momentum=0.9) if kind == "sgd" else nerve.optim.Adam([p], lr=lr)


def trace(opt, sched, n, key="lr", arg=None):
    out = []
    for i in range(n):
        out.append(opt.param_groups[0][key])
        opt.step()
        sched.step() if arg is None else sched.step(arg(i))
    return out


def test_constant_polynomial_multiplicative():
    opt = optimizer()
    got = trace(opt, L.ConstantLR(opt, factor=0.5, total_iters=4), 8)
    np.testing.assert_allclose(got, [0.1 * (0.5 if e < 4 else 1.0) for e in range(8)])
    opt = optimizer()
    got = trace(opt, L.PolynomialLR(opt, total_iters=10, power=2.0), 14)
    np.testing.assert_allclose(got, [0.1 * (1 - min(e, 10) / 10) ** 2 for e in range(14)], atol=1e-15)
    opt = optimizer()
    got = trace(opt, L.MultiplicativeLR(opt, lambda e: 0.9 if e % 2 else 0.5), 6)
    np.testing.assert_allclose(got, [0.1 * np.prod([0.9 if k % 2 else 0.5 for k in range(1, e + 1)])
                                     for e in range(6)])
    with pytest.raises(ValueError, match="ConstantLR: factor must be in"):
        L.ConstantLR(optimizer(), factor=2.0)
    with pytest.raises(ValueError, match="PolynomialLR: total_iters"):
        L.PolynomialLR(optimizer(), total_iters=0)


def sgdr(e, t0, mult, lo, base=0.1):
    t_i, t_cur = t0, e
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= mult
    return lo + (base - lo) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


@pytest.mark.parametrize("t0,mult", [(3, 2), (4, 1)])
def test_warm_restarts_closed_form(t0, mult):
    opt = optimizer()
    got = trace(opt, L.CosineAnnealingWarmRestarts(opt, T_0=t0, T_mult=mult, eta_min=0.01), 25)
    np.testing.assert_allclose(got, [sgdr(e, t0, mult, 0.01) for e in range(25)])
    opt = optimizer()
    got = trace(opt, L.CosineAnnealingWarmRestarts(opt, T_0=t0, T_mult=mult), 12, arg=lambda i: (i + 1) * 0.7)
    np.testing.assert_allclose(got[1:], [sgdr((i + 1) * 0.7, t0, mult, 0.0) for i in range(11)])
    with pytest.raises(ValueError, match="T_mult must be an int >= 1"):
        L.CosineAnnealingWarmRestarts(optimizer(), T_0=3, T_mult=0)


def triangle(e, up, down):
    """Position in the cycle as a fraction of the way up to max_lr (the triangular wave)."""
    pos = e % (up + down)
    return pos / up if pos <= up else 1 - (pos - up) / down


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_closed_form_and_momentum(mode):
    opt = optimizer()
    sched = L.CyclicLR(opt, 0.01, 0.1, step_size_up=3, step_size_down=2, mode=mode, gamma=0.9)
    lrs, moms = [], []
    for e in range(30):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    for e in range(30):
        scale = {"triangular": 1.0, "triangular2": 0.5 ** (e // 5), "exp_range": 0.9 ** e}[mode]
        h = triangle(e, 3, 2) * scale
        assert math.isclose(lrs[e], 0.01 + 0.09 * h, abs_tol=1e-12)
        assert math.isclose(moms[e], 0.9 - 0.1 * h, abs_tol=1e-12)
    adam = optimizer("adam")
    L.CyclicLR(adam, 0.01, 0.1, step_size_up=4)
    assert adam.param_groups[0]["betas"][0] == 0.9
    with pytest.raises(ValueError, match="CyclicLR: Adagrad has neither momentum nor betas"):
        L.CyclicLR(nerve.optim.Adagrad([nerve.nn.Parameter(nerve.zeros(1))]), 0.01, 0.1)
    with pytest.raises(ValueError, match="CyclicLR: mode must be"):
        L.CyclicLR(optimizer(), 0.01, 0.1, mode="saw")


def test_chained_and_state_dict():
    opt = optimizer()
    chain = L.ChainedScheduler([L.ConstantLR(opt, factor=0.1, total_iters=2), L.ExponentialLR(opt, gamma=0.9)])
    got = trace(opt, chain, 6)
    np.testing.assert_allclose(got, [0.1 * (0.1 if e < 2 else 1.0) * 0.9 ** e for e in range(6)])
    assert chain.get_last_lr() == [opt.param_groups[0]["lr"]]
    opt2 = optimizer()
    s1 = L.CosineAnnealingWarmRestarts(opt2, T_0=3, T_mult=2)
    for _ in range(5):
        s1.step()
    opt3 = optimizer()
    s2 = L.CosineAnnealingWarmRestarts(opt3, T_0=3, T_mult=2)
    s2.load_state_dict(s1.state_dict())
    s1.step()
    s2.step()
    assert s1.get_last_lr() == s2.get_last_lr()
    with pytest.raises(ValueError, match="ChainedScheduler: scheduler 1"):
        L.ChainedScheduler([L.ConstantLR(opt), L.ConstantLR(optimizer())])
