"""Gradient clipping and L1/L2 penalties."""
import math

import numpy as np
import pytest

import nerve
from nerve import optim

RNG = np.random.default_rng(7)
G = [RNG.standard_normal((3, 4)), RNG.standard_normal(5), RNG.standard_normal((2, 2, 2))]


def params_with_grads(scale=1.0, dtype=nerve.float64):
    ps = []
    for g in G:
        p = nerve.zeros(*g.shape, dtype=dtype, requires_grad=True)
        p.grad = nerve.tensor(g * scale, dtype=dtype)
        ps.append(p)
    return ps


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf, "inf"])
def test_clip_grad_norm_scales_all_gradients_together(norm_type):
    flat = np.concatenate([g.ravel() for g in G])
    p = float(norm_type)
    total = np.abs(flat).max() if p == math.inf else (np.abs(flat) ** p).sum() ** (1 / p)
    ps = params_with_grads()
    norm = optim.clip_grad_norm_(ps, max_norm=0.5, norm_type=norm_type)
    assert isinstance(norm, nerve.Tensor) and norm.shape == ()
    np.testing.assert_allclose(norm.item(), total, rtol=1e-12)
    for param, g in zip(ps, G):
        np.testing.assert_allclose(param.grad.data, g * 0.5 / (total + 1e-6), rtol=1e-12)


def test_clip_grad_norm_leaves_small_gradients():
    ps = params_with_grads(scale=1e-3, dtype=nerve.float32)
    ps.append(nerve.zeros(3, requires_grad=True))  # no grad: skipped
    norm = optim.clip_grad_norm_(iter(ps), max_norm=1.0)
    assert norm.dtype == np.float32
    for param, g in zip(ps, G):
        np.testing.assert_array_equal(param.grad.data, (g * 1e-3).astype(np.float32))


def test_clip_grad_norm_single_tensor_and_no_grads():
    p = nerve.zeros(4, requires_grad=True)
    assert optim.clip_grad_norm_(p, 1.0).item() == 0.0
    p.grad = nerve.tensor([3.0, 4.0, 0.0, 0.0])
    assert optim.clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.data, [0.6, 0.8, 0, 0], rtol=1e-5)


def test_clip_grad_norm_nonfinite():
    ps = params_with_grads()
    ps[1].grad.data[2] = np.nan
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total norm of order 2.0 .* is nan"):
        optim.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    norm = optim.clip_grad_norm_(ps, 1.0)
    assert math.isnan(norm.item()) and np.isnan(ps[0].grad.data).all()


def test_clip_grad_value():
    ps = params_with_grads()
    optim.clip_grad_value_(ps, 0.3)
    for param, g in zip(ps, G):
        np.testing.assert_array_equal(param.grad.data, np.clip(g, -0.3, 0.3))
    with pytest.raises(ValueError, match="clip_grad_value_: clip_value must be >= 0, got -1.0"):
        optim.clip_grad_value_(ps, -1)


def _params():
    return [nerve.tensor(RNG.standard_normal(s), dtype=nerve.float64, requires_grad=True) for s in [(3, 2), (4,)]]


def test_penalty_values():
    ps = _params()
    arrays = [p.data for p in ps]
    assert optim.l1_penalty(ps, 0.3).item() == pytest.approx(0.3 * sum(np.abs(a).sum() for a in arrays), rel=1e-12)
    assert optim.l2_penalty(ps, 0.3).item() == pytest.approx(0.3 * sum((a ** 2).sum() for a in arrays), rel=1e-12)
    assert optim.l2_penalty(ps[0]).item() == pytest.approx((arrays[0] ** 2).sum(), rel=1e-12)


@pytest.mark.parametrize("penalty", [optim.l1_penalty, optim.l2_penalty])
def test_penalty_gradients(penalty):
    ps = _params()
    assert nerve.gradcheck(lambda a, b: penalty([a, b], 0.7), ps)
    if penalty is optim.l2_penalty:
        assert nerve.gradgradcheck(lambda a, b: penalty([a, b], 0.7), ps)


def test_l2_penalty_matches_sgd_weight_decay():
    p = nerve.tensor([1.0, -2.0, 3.0], dtype=nerve.float64, requires_grad=True)
    optim.l2_penalty([p], 0.05).backward()
    q = nerve.tensor([1.0, -2.0, 3.0], dtype=nerve.float64, requires_grad=True)
    q.grad = nerve.zeros(3, dtype=nerve.float64)
    optim.SGD([p], lr=0.1).step()
    optim.SGD([q], lr=0.1, weight_decay=0.1).step()
    np.testing.assert_allclose(p.data, q.data, rtol=1e-15)


def test_penalty_errors():
    ps = _params()
    gen = (p for p in ps)
    optim.l1_penalty(gen)
    with pytest.raises(ValueError, match="l1_penalty: got no parameters"):
        optim.l1_penalty(gen)
    with pytest.raises(ValueError, match="l2_penalty: weight must be >= 0, got -1"):
        optim.l2_penalty(ps, -1)
    with pytest.raises(TypeError, match="l2_penalty: parameter 0 is a ndarray"):
        optim.l2_penalty([np.zeros(2)])
