"""Surrogate spike functions: Heaviside forward, each derivative against its closed form, second order by
finite differences, user-defined surrogates and their errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import nerve
from nerve import ops
from nerve.autograd import grad
from nerve.snn import surrogate

U = np.linspace(-2.0, 2.0, 41) + 0.013  # avoids u = 0 exactly and the triangle's corners


def sig(x):
    return 1 / (1 + np.exp(-x))


CLOSED = {
    "atan": (surrogate.atan(alpha=3.0), lambda u: 1.5 / (1 + (math.pi / 2 * 3.0 * u) ** 2)),
    "fast_sigmoid": (surrogate.fast_sigmoid(slope=5.0), lambda u: 1 / (5.0 * np.abs(u) + 1) ** 2),
    "sigmoid": (surrogate.sigmoid(slope=4.0), lambda u: 4.0 * np.exp(-4.0 * u) / (np.exp(-4.0 * u) + 1) ** 2),
    "triangular": (surrogate.triangular(width=0.5), lambda u: np.maximum(0, 1 - np.abs(u) / 0.5) / 0.5),
    "straight_through": (surrogate.straight_through_estimator(), lambda u: np.ones_like(u)),
    "custom": (surrogate.custom(lambda u: ops.sigmoid(u * 3.0)), lambda u: 3 * sig(3 * u) * (1 - sig(3 * u))),
}


@pytest.mark.parametrize("name", list(CLOSED))
def test_forward_is_heaviside_and_backward_the_closed_form(name):
    fn, closed = CLOSED[name]
    u = nerve.tensor(U, requires_grad=True)
    spk = fn(u)
    np.testing.assert_array_equal(spk.numpy(), (U > 0).astype(float))
    g = np.random.default_rng(0).normal(size=U.shape)
    spk.backward(nerve.tensor(g))
    np.testing.assert_allclose(u.grad.numpy(), g * closed(U), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fn.derivative(U), closed(U), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["atan", "fast_sigmoid", "sigmoid", "custom"])
def test_second_derivative_matches_finite_differences_of_the_closed_form(name):
    fn, closed = CLOSED[name]
    u = nerve.tensor(U, requires_grad=True)
    (d1,) = grad([fn(u).sum()], [u], create_graph=True)
    np.testing.assert_allclose(d1.numpy(), closed(U), rtol=1e-10)
    (d2,) = grad([d1.sum()], [u])
    eps = 1e-6
    np.testing.assert_allclose(d2.numpy(), (closed(U + eps) - closed(U - eps)) / (2 * eps), rtol=1e-5, atol=1e-6)


def test_custom_surrogate_rejects_what_autograd_cannot_differentiate():
    with pytest.raises(TypeError, match="surrogate.custom.*not differentiable"):
        surrogate.custom(lambda u: nerve.tensor(np.tanh(u.numpy())))
    with pytest.raises(TypeError, match="surrogate.custom.*not differentiable"):
        surrogate.custom(lambda u: np.tanh(u.numpy()))
    with pytest.raises(ValueError, match="surrogate.custom.*elementwise"):
        surrogate.custom(lambda u: u.sum())
    with pytest.raises(TypeError, match="surrogate.custom: fn must be callable"):
        surrogate.custom(3)


@pytest.mark.parametrize("factory,arg", [(surrogate.atan, "alpha"), (surrogate.fast_sigmoid, "slope"),
                                         (surrogate.sigmoid, "slope"), (surrogate.triangular, "width")])
def test_bad_parameters_raise(factory, arg):
    with pytest.raises(ValueError, match=f"surrogate.{factory.__name__}: {arg} must be a positive number"):
        factory(**{arg: 0.0})
    assert repr(factory()).startswith(factory.__name__)
