"""``nerve.autograd.functional`` against closed forms and finite differences: jacobian, hessian, vjp, jvp, vhp,
hvp; tuple inputs and outputs; strict; create_graph."""
import numpy as np
import pytest

import nerve
from nerve.autograd import functional as AF
from tests.helpers import T

rng = np.random.default_rng(0)
A = rng.normal(size=(3, 4))
X = rng.normal(size=4)


def f(x):
    """A x + sin(x)[:3]: Jacobian A + [diag(cos x) | 0]."""
    return T(A) @ x + x.sin()[:3]


def jac_f(x):
    return A + np.hstack([np.diag(np.cos(x[:3])), np.zeros((3, 1))])


def g(x):
    """sum(x^3) + x0 x1: Hessian diag(6x) + the x0-x1 cross terms."""
    return (x ** 3).sum() + x[0] * x[1]


def hess_g(x):
    h = np.diag(6 * x)
    h[0, 1] = h[1, 0] = 1.0
    return h


def finite_jacobian(fn, x, eps=1e-6):
    cols = []
    for i in range(x.size):
        d = np.zeros_like(x)
        d[i] = eps
        cols.append((fn(T(x + d)).numpy() - fn(T(x - d)).numpy()) / (2 * eps))
    return np.stack(cols, axis=-1)


def test_jacobian_matches_the_closed_form_and_finite_differences():
    J = AF.jacobian(f, T(X))
    assert J.shape == (3, 4) and J.grad_fn is None
    np.testing.assert_allclose(J.numpy(), jac_f(X), rtol=1e-12)
    np.testing.assert_allclose(J.numpy(), finite_jacobian(f, X), rtol=1e-6, atol=1e-8)
    # a matrix input and output: output.shape + input.shape
    M = rng.normal(size=(2, 3))
    Jm = AF.jacobian(lambda m: m * m, T(M))
    assert Jm.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(Jm.numpy().reshape(6, 6), np.diag(2 * M.ravel()), rtol=1e-12)


def test_tuple_inputs_and_outputs_nest_as_in_pytorch():
    a, b = T(rng.normal(size=3)), T(rng.normal(size=2))
    J = AF.jacobian(lambda x, y: (x * 2, x.sum() * y), (a, b))
    assert isinstance(J, tuple) and len(J) == 2 and all(isinstance(r, tuple) and len(r) == 2 for r in J)
    np.testing.assert_allclose(J[0][0].numpy(), 2 * np.eye(3))
    np.testing.assert_allclose(J[0][1].numpy(), np.zeros((3, 2)))
    np.testing.assert_allclose(J[1][0].numpy(), np.outer(b.numpy(), np.ones(3)))
    np.testing.assert_allclose(J[1][1].numpy(), a.numpy().sum() * np.eye(2))


def test_hessian_vhp_hvp_match_the_closed_form():
    H = AF.hessian(g, T(X))
    np.testing.assert_allclose(H.numpy(), hess_g(X), rtol=1e-12)
    v = rng.normal(size=4)
    value, hv = AF.hvp(g, T(X), T(v))
    np.testing.assert_allclose(value.item(), (X ** 3).sum() + X[0] * X[1])
    np.testing.assert_allclose(hv.numpy(), hess_g(X) @ v, rtol=1e-12)
    np.testing.assert_allclose(AF.vhp(g, T(X), T(v))[1].numpy(), v @ hess_g(X), rtol=1e-12)
    # two inputs: a tuple of tuples
    H2 = AF.hessian(lambda x, y: (x * y).sum() + (x ** 2).sum(), (T(X[:2]), T(X[2:])))
    np.testing.assert_allclose(H2[0][0].numpy(), 2 * np.eye(2))
    np.testing.assert_allclose(H2[0][1].numpy(), np.eye(2))


def test_vjp_and_jvp_are_products_with_the_jacobian():
    u, w = rng.normal(size=3), rng.normal(size=4)
    out, vj = AF.vjp(f, T(X), T(u))
    np.testing.assert_allclose(out.numpy(), A @ X + np.sin(X)[:3])
    np.testing.assert_allclose(vj.numpy(), u @ jac_f(X), rtol=1e-12)
    out, jv = AF.jvp(f, T(X), T(w))
    np.testing.assert_allclose(jv.numpy(), jac_f(X) @ w, rtol=1e-12)
    # a one-element output needs no v
    np.testing.assert_allclose(AF.vjp(g, T(X))[1].numpy(), 3 * X ** 2 + np.array([X[1], X[0], 0, 0]))


def test_strict_create_graph_and_errors():
    with pytest.raises(RuntimeError, match="independent of input 1"):
        AF.jacobian(lambda x, y: x * 2, (T(X), T(X)), strict=True)
    J = AF.jacobian(lambda x, y: x * 2, (T(X), T(X)))
    assert not J[1].numpy().any()
    # create_graph: the Jacobian is itself differentiable: d/dx sum(J_f(x)) = -sin(x) on the first three
    x = T(X, requires_grad=True)
    AF.jacobian(f, x, create_graph=True).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.r_[-np.sin(X[:3]), 0.0], rtol=1e-12)
    with pytest.raises(RuntimeError, match="single tensor with one element"):
        AF.hessian(f, T(X))
    with pytest.raises(ValueError, match="v has shapes"):
        AF.vjp(f, T(X), T(np.ones(4)))
    with pytest.raises(TypeError, match="inputs must be a tensor or a tuple of tensors"):
        AF.jacobian(f, [1.0, 2.0])
    assert nerve.autograd.functional is AF
