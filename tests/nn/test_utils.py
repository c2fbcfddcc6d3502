"""nn.utils: gradient clipping by norm and by value, parameters <-> vector, and the names other packages
re-export from here."""
import math

import numpy as np
import pytest

import nerve
import nerve.nn as nn

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
    norm = nn.utils.clip_grad_norm_(ps, max_norm=0.5, norm_type=norm_type)
    assert isinstance(norm, nerve.Tensor) and norm.shape == ()
    np.testing.assert_allclose(norm.item(), total, rtol=1e-12)
    for param, g in zip(ps, G):
        np.testing.assert_allclose(param.grad.data, g * 0.5 / (total + 1e-6), rtol=1e-12)


def test_clip_grad_norm_leaves_small_gradients():
    ps = params_with_grads(scale=1e-3, dtype=nerve.float32)
    ps.append(nerve.zeros(3, requires_grad=True))  # no grad: skipped
    norm = nn.utils.clip_grad_norm_(iter(ps), max_norm=1.0)
    assert norm.dtype == np.float32
    for param, g in zip(ps, G):
        np.testing.assert_array_equal(param.grad.data, (g * 1e-3).astype(np.float32))


def test_clip_grad_norm_single_tensor_and_no_grads():
    p = nerve.zeros(4, requires_grad=True)
    assert nn.utils.clip_grad_norm_(p, 1.0).item() == 0.0
    p.grad = nerve.tensor([3.0, 4.0, 0.0, 0.0])
    assert nn.utils.clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.data, [0.6, 0.8, 0, 0], rtol=1e-5)


def test_clip_grad_norm_nonfinite():
    ps = params_with_grads()
    ps[1].grad.data[2] = np.nan
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total norm of order 2.0 .* is nan"):
        nn.utils.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    norm = nn.utils.clip_grad_norm_(ps, 1.0)
    assert math.isnan(norm.item()) and np.isnan(ps[0].grad.data).all()


def test_clip_grad_value():
    ps = params_with_grads()
    nn.utils.clip_grad_value_(ps, 0.3)
    for param, g in zip(ps, G):
        np.testing.assert_array_equal(param.grad.data, np.clip(g, -0.3, 0.3))
    with pytest.raises(ValueError, match="clip_grad_value_: clip_value must be >= 0, got -1.0"):
        nn.utils.clip_grad_value_(ps, -1)


def test_parameters_to_vector_round_trip():
    model = nn.Linear(3, 2)
    vec = nn.utils.parameters_to_vector(model.parameters())
    assert vec.shape == (8,)
    nn.utils.vector_to_parameters(vec * 0 + 1, model.parameters())
    assert np.all(model.weight.numpy() == 1) and np.all(model.bias.numpy() == 1)
    with pytest.raises(ValueError, match="expected a 1-D vector of 8 values"):
        nn.utils.vector_to_parameters(nerve.ones(3), model.parameters())


def test_functional_aliases_and_utils_reexports():
    import nerve.functional
    import nerve.nn.functional as F
    assert F is nerve.functional and nn.functional is nerve.functional
    assert nerve.optim.clip_grad_norm_ is nn.utils.clip_grad_norm_
    assert nerve.optim.clip_grad_value_ is nn.utils.clip_grad_value_
