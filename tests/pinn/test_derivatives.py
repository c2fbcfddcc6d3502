"""pinn.grad/jacobian/hessian/laplacian against closed forms (polynomials, sin/exp products), third derivatives
through a network against finite differences, parameter gradients of a second-derivative loss against finite
differences, and the errors for outputs that do not depend on the input."""
import numpy as np
import pytest

import nerve
from nerve import pinn

RNG = np.random.default_rng(0)
P = RNG.uniform(-1, 1, (7, 2))


def points():
    return nerve.tensor(P.copy(), dtype=nerve.float64, requires_grad=True)


def test_polynomial_gradient_hessian_laplacian():
    x = points()
    a, b = P[:, 0], P[:, 1]
    u = x[:, 0:1] ** 3 * x[:, 1:2] ** 2 + 2.0 * x[:, 0:1] * x[:, 1:2]  # a^3 b^2 + 2ab
    g = pinn.grad(u, x).data
    np.testing.assert_allclose(g[:, 0], 3 * a ** 2 * b ** 2 + 2 * b, atol=1e-12)
    np.testing.assert_allclose(pinn.grad(u, x, 1).data[:, 0], 2 * a ** 3 * b + 2 * a, atol=1e-12)
    h = pinn.hessian(u, x).data
    expected = np.stack([np.stack([6 * a * b ** 2, 6 * a ** 2 * b + 2], 1),
                         np.stack([6 * a ** 2 * b + 2, 2 * a ** 3], 1)], 1)
    np.testing.assert_allclose(h, expected, atol=1e-12)
    np.testing.assert_allclose(pinn.hessian(u, x, i=0, j=1).data[:, 0], 6 * a ** 2 * b + 2, atol=1e-12)
    np.testing.assert_allclose(pinn.laplacian(u, x).data[:, 0], 6 * a * b ** 2 + 2 * a ** 3, atol=1e-12)
    np.testing.assert_allclose(pinn.laplacian(u, x, dims=1).data[:, 0], 6 * a * b ** 2, atol=1e-12)


def test_sin_exp_product_and_jacobian():
    x = points()
    a, b = P[:, 0], P[:, 1]
    u1 = nerve.sin(2.0 * x[:, 0:1]) * nerve.exp(-x[:, 1:2])
    u2 = nerve.exp(x[:, 0:1] * x[:, 1:2])
    u = nerve.cat([u1, u2], dim=1)
    lap1 = -4 * np.sin(2 * a) * np.exp(-b) + np.sin(2 * a) * np.exp(-b)
    np.testing.assert_allclose(pinn.laplacian(u, x, component=0).data[:, 0], lap1, atol=1e-12)
    np.testing.assert_allclose(pinn.laplacian(u, x, component=1).data[:, 0], (a ** 2 + b ** 2) * np.exp(a * b),
                               atol=1e-12)
    jac = pinn.jacobian(u, x).data
    expected = np.stack([np.stack([2 * np.cos(2 * a) * np.exp(-b), -np.sin(2 * a) * np.exp(-b)], 1),
                         np.stack([b * np.exp(a * b), a * np.exp(a * b)], 1)], 1)
    np.testing.assert_allclose(jac, expected, atol=1e-12)
    np.testing.assert_allclose(pinn.jacobian(u, x, i=1, j=0).data[:, 0], b * np.exp(a * b), atol=1e-12)


def test_second_derivative_of_affine_output_is_zero():
    x = points()
    u = 3.0 * x[:, 0:1] - x[:, 1:2]
    np.testing.assert_array_equal(pinn.laplacian(u, x).data, 0.0)
    np.testing.assert_array_equal(pinn.hessian(u, x).data, 0.0)


def _net():
    nerve.manual_seed(3)
    return pinn.FNN([2, 16, 16, 1], dtype=nerve.float64)


def test_third_derivatives_through_network_against_finite_differences():
    net = _net()
    x = points()
    u = net(x)
    u_x = pinn.grad(u, x, 0)
    u_xx = pinn.grad(u_x, x, 0)
    u_xxx = pinn.grad(u_xx, x, 0).data[:, 0]
    u_xxt = pinn.grad(u_xx, x, 1).data[:, 0]

    def f(p):
        with nerve.no_grad():
            return net(nerve.tensor(p, dtype=nerve.float64)).data[:, 0]
    h = 1e-2
    e0, e1 = np.array([h, 0.0]), np.array([0.0, h])
    fd_xxx = (f(P + 2 * e0) - 2 * f(P + e0) + 2 * f(P - e0) - f(P - 2 * e0)) / (2 * h ** 3)
    # u_xxt: the second x-difference of the centred t-difference
    dt = lambda p: (f(p + e1) - f(p - e1)) / (2 * h)  # noqa: E731
    fd_xxt = (dt(P + e0) - 2 * dt(P) + dt(P - e0)) / h ** 2
    scale = np.abs(fd_xxx).max()
    assert scale > 1e-2  # the network is not nearly linear
    np.testing.assert_allclose(u_xxx, fd_xxx, atol=1e-3 * scale)
    np.testing.assert_allclose(u_xxt, fd_xxt, atol=1e-3 * np.abs(fd_xxt).max())


def test_parameter_gradient_of_a_second_derivative_loss():
    """d/dθ mean((u_t + u u_x - ν u_xx)^2): the third-order graph training relies on, against central differences."""
    net = _net()

    def loss():
        x = points()
        u = net(x)
        g = pinn.grad(u, x)
        r = g[:, 1:2] + u * g[:, 0:1] - 0.1 * pinn.grad(g[:, 0:1], x, 0)
        return (r * r).mean()
    w = net.linears[1].weight
    net.zero_grad()
    loss().backward()
    analytic = w.grad.data.copy()
    eps = 1e-6
    for idx in [(0, 0), (3, 5), (15, 15)]:
        old = w.data[idx]
        w.data[idx] = old + eps
        up = float(loss().data)
        w.data[idx] = old - eps
        down = float(loss().data)
        w.data[idx] = old
        np.testing.assert_allclose(analytic[idx], (up - down) / (2 * eps), rtol=1e-5, atol=1e-10)


def test_errors():
    x = points()
    const = nerve.tensor(np.ones((7, 1)), requires_grad=True)
    with pytest.raises(ValueError, match="does not depend on x"):
        pinn.grad(const * 2.0, x)
    with pytest.raises(ValueError, match="does not depend on x"):
        pinn.grad(nerve.tensor(np.ones((7, 1))), x)
    with pytest.raises(ValueError, match="requires_grad=True"):
        pinn.grad(x * 2, nerve.tensor(P))
    with pytest.raises(ValueError, match="out of range"):
        pinn.grad(x[:, :1] ** 2, x, 2)
    with pytest.raises(ValueError, match="component 3"):
        pinn.laplacian(x ** 2, x, component=3)
    with pytest.raises(ValueError, match="N rows"):
        pinn.grad(x[:3, :1] * 2, x)
