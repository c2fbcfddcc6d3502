"""Conditions against hand-computed residuals, loss bookkeeping, transforms (scaling, Fourier features, a hard
constraint that holds exactly), a 1-D Poisson problem learned by Adam then L-BFGS, an inverse problem that finds
its coefficient, residual-based refinement, and the errors."""
import math

import numpy as np
import pytest

import nerve
from nerve import nn, pinn

F64 = nerve.float64


class Affine(nn.Module):
    """u(x) = x A + c with fixed A, c: residuals of conditions can be worked out by hand."""

    def __init__(self, a, c):
        super().__init__()
        self.a = nn.Parameter(nerve.tensor(np.asarray(a, dtype=float), dtype=F64))
        self.c = nn.Parameter(nerve.tensor(np.asarray(c, dtype=float), dtype=F64))

    def forward(self, x):
        return x @ self.a + self.c


def test_condition_residuals_by_hand():
    geom = pinn.Rectangle([0.0, 0.0], [1.0, 2.0])
    left = lambda x: np.isclose(x[:, 0], 0.0)  # noqa: E731
    bcs = [pinn.DirichletBC(geom, lambda x: x[:, 1], left),
           pinn.NeumannBC(geom, 1.0, lambda x: np.isclose(x[:, 1], 2.0)),
           pinn.PeriodicBC(geom, 0),
           pinn.PointSetBC([[0.5, 0.5]], [[4.0]])]
    data = pinn.PDE(geom, lambda x, u: pinn.laplacian(u, x), bcs, num_domain=20, num_boundary=400, seed=0,
                    dtype=F64)
    assert data.names == ["pde", "dirichlet", "neumann", "periodic", "data"]
    net = Affine([[2.0], [3.0]], [1.0])  # u = 2x + 3y + 1
    losses = {k: float(v.data) for k, v in data.losses(net).items()}
    d_pts = bcs[0].points  # x = 0: u - y = 2y + 1
    assert len(d_pts) > 10 and np.allclose(d_pts[:, 0], 0.0)
    assert losses["dirichlet"] == pytest.approx(np.mean((2 * d_pts[:, 1] + 1) ** 2))
    assert losses["neumann"] == pytest.approx((3.0 - 1.0) ** 2)  # du/dn on y = 2 is u_y = 3
    assert losses["periodic"] == pytest.approx(2.0 ** 2)  # u(1, y) - u(0, y) = 2
    assert losses["data"] == pytest.approx((2 * 0.5 + 3 * 0.5 + 1 - 4.0) ** 2)
    assert losses["pde"] == 0.0


def test_initial_condition_and_dimension_checks():
    geom = pinn.GeometryXTime(pinn.Interval(0.0, 1.0), pinn.TimeDomain(0.0, 1.0))
    ic = pinn.IC(geom, lambda x: np.sin(math.pi * x[:, 0]))
    data = pinn.PDE(geom, lambda x, u: pinn.grad(u, x, 1), [ic], num_domain=10, num_initial=30, seed=0, dtype=F64)
    net = Affine([[1.0], [0.0]], [0.0])  # u = x
    expected = np.mean((ic.points[:, 0] - np.sin(math.pi * ic.points[:, 0])) ** 2)
    assert float(data.losses(net)["ic"].data) == pytest.approx(expected)
    with pytest.raises(ValueError, match="component 1 but the network has 1 output"):
        pinn.PDE(geom, lambda x, u: u, [pinn.IC(geom, 0.0, component=1)], num_domain=5, num_initial=5,
                 dtype=F64).losses(net)
    with pytest.raises(ValueError, match="component_x=1 but Interval"):
        pinn.PeriodicBC(geom, 1)
    with pytest.raises(ValueError, match="num_initial=5 needs a space-time"):
        pinn.PDE(pinn.Interval(0, 1), lambda x, u: u, [], num_domain=5, num_initial=5)
    with pytest.raises(ValueError, match="no boundary points"):
        pinn.PDE(geom, lambda x, u: u, [pinn.DirichletBC(geom, 0.0)], num_domain=5)
    with pytest.raises(ValueError, match="lie outside"):
        pinn.PDE(geom, lambda x, u: u, [pinn.PointSetBC([[0.5, 2.0]], [1.0])], num_domain=5)
    with pytest.raises(ValueError, match=r"expected points of shape \(N, 2\)"):
        pinn.PDE(geom, lambda x, u: u, [pinn.PointSetBC([[0.5, 0.5, 0.5]], [1.0])], num_domain=5)
    with pytest.raises(ValueError, match="lie outside"):
        pinn.PDE(geom, lambda x, u: u, [], num_domain=5, anchors=[[2.0, 0.5]])


def test_transforms():
    x = nerve.tensor(np.array([[-1.0, 0.0], [1.0, 0.99], [0.0, 0.495]]), dtype=F64)
    np.testing.assert_allclose(pinn.scale_to_unit([-1.0, 0.0], [1.0, 0.99])(x).data,
                               [[-1, -1], [1, 1], [0, 0]], atol=1e-12)
    ff = pinn.FourierFeatures(2, 3, sigma=2.0, dtype=F64)
    z = 2 * np.pi * x.data @ ff.B.data
    np.testing.assert_allclose(ff(x).data, np.concatenate([np.cos(z), np.sin(z)], 1), atol=1e-12)
    assert ff.B.data.std() > 0.5  # sigma scales the frequencies


def test_hard_constraint_holds_exactly_on_the_boundary():
    geom = pinn.Rectangle([0.0, 0.0], [1.0, 1.0])
    nerve.manual_seed(0)
    net = pinn.FNN([2, 8, 1], dtype=F64)
    dist = lambda x: x[:, 0:1] * (1 - x[:, 0:1]) * x[:, 1:2] * (1 - x[:, 1:2])  # noqa: E731
    g = lambda x: x[:, 0:1] * x[:, 1:2]  # noqa: E731
    net.apply_output_transform(pinn.hard_dirichlet(dist, g))
    b = geom.random_boundary_points(100, seed=1)
    with nerve.no_grad():
        u = net(nerve.tensor(b, dtype=F64)).data[:, 0]
        inner = net(nerve.tensor(geom.random_points(50, seed=2), dtype=F64)).data[:, 0]
    np.testing.assert_allclose(u, b[:, 0] * b[:, 1], atol=1e-15)
    assert np.abs(inner).max() > 0  # not trivially constant


def _poisson_1d(seed=0):
    """-u'' = π² sin(πx) on [-1, 1], u(±1) = 0: u = sin(πx)."""
    geom = pinn.Interval(-1.0, 1.0)
    pde = lambda x, u: pinn.laplacian(u, x) + math.pi ** 2 * nerve.sin(math.pi * x)  # noqa: E731
    return geom, pinn.PDE(geom, pde, [pinn.DirichletBC(geom, 0.0)], num_domain=32, num_boundary=2, seed=seed,
                          dtype=F64)


def test_poisson_1d_learned_with_adam_then_lbfgs():
    geom, data = _poisson_1d()
    nerve.manual_seed(0)
    net = pinn.FNN([1, 20, 20, 1], dtype=F64)
    model = pinn.Model(data, net)
    model.compile("adam", lr=1e-2)
    model.train(300, display_every=100)
    xs = np.linspace(-1, 1, 201)[:, None]
    err_adam = np.linalg.norm(model.predict(xs)[:, 0] - np.sin(np.pi * xs[:, 0])) / np.linalg.norm(np.sin(np.pi * xs))
    model.compile("L-BFGS")
    model.train(300, display_every=100)
    err = np.linalg.norm(model.predict(xs)[:, 0] - np.sin(np.pi * xs[:, 0])) / np.linalg.norm(np.sin(np.pi * xs))
    assert err < 5e-3 and err < err_adam / 3, (err_adam, err)
    steps = [row["step"] for row in model.losshistory]
    assert steps[:3] == [100, 200, 300] and steps[-1] > 300
    assert {"loss", "pde", "dirichlet"} <= set(model.losshistory[-1])
    assert model.losshistory[-1]["loss"] < 1e-3 * model.losshistory[0]["loss"]


def test_inverse_problem_finds_the_coefficient():
    """-u'' = c π² sin(πx) with measurements of u = sin(πx): c = 1 is found (starting from 0.2)."""
    geom = pinn.Interval(-1.0, 1.0)
    c = nn.Parameter(nerve.tensor([0.2], dtype=F64))
    pde = lambda x, u: pinn.laplacian(u, x) + c * math.pi ** 2 * nerve.sin(math.pi * x)  # noqa: E731
    xs = np.linspace(-1, 1, 15)[:, None]
    data = pinn.PDE(geom, pde, [pinn.PointSetBC(xs, np.sin(np.pi * xs))], num_domain=32, seed=0, dtype=F64)
    nerve.manual_seed(0)
    model = pinn.Model(data, pinn.FNN([1, 20, 20, 1], dtype=F64))
    model.compile("adam", lr=1e-2, external_trainable_variables=[c])
    model.train(300, display_every=100)
    model.compile("L-BFGS", external_trainable_variables=[c])
    model.train(300, display_every=100)
    assert abs(float(c.data[0]) - 1.0) < 1e-2, float(c.data[0])


def test_residual_based_refinement_adds_the_worst_points():
    geom, data = _poisson_1d()
    nerve.manual_seed(0)
    model = pinn.Model(data, pinn.FNN([1, 8, 1], dtype=F64))
    n0 = len(data.domain)
    added = model.residual_refinement(200, 5, seed=3)
    assert len(data.domain) == n0 + 5 and data.train_x.shape[0] == n0 + 5 + 2
    cand = geom.random_points(200, seed=3)
    res = np.abs(model.predict(cand, operator=lambda x, u: data.residuals(x, u)[0] ** 2))[:, 0]
    np.testing.assert_allclose(np.sort(added[:, 0]), np.sort(cand[np.argsort(res)[-5:], 0]))


def test_model_errors():
    _, data = _poisson_1d()
    model = pinn.Model(data, pinn.FNN([1, 4, 1], dtype=F64))
    with pytest.raises(RuntimeError, match="compile"):
        model.train(10)
    with pytest.raises(ValueError, match="optimizer must be"):
        model.compile("sgd-ish")
    with pytest.raises(ValueError, match="1 loss_weights for 2 losses"):
        model.compile("adam", loss_weights=[1.0])
    with pytest.raises(ValueError, match="not losses"):
        model.compile("adam", loss_weights={"bc": 2.0})

    class Flat(nn.Module):
        def forward(self, x):
            return x.sum(1)
    with pytest.raises(ValueError, match=r"map \(N, 1\) points to \(N, m\) outputs, got \(34,\)"):
        data.losses(Flat())


def test_lbfgs_training_checkpoint_restores_the_optimizer(tmp_path):
    """fit's checkpoint of an L-BFGS phase holds the curvature pairs; loaded into a fresh LBFGS, the next step
    continues exactly as the original's."""
    from nerve.train import load_checkpoint

    def build():
        _, data = _poisson_1d()
        nerve.manual_seed(0)
        model = pinn.Model(data, pinn.FNN([1, 8, 1], dtype=F64))
        model.compile("L-BFGS", history_size=5)
        return model
    model = build()
    model.train(20, display_every=10, checkpoint=tmp_path / "ck.nerve")
    state = load_checkpoint(tmp_path / "ck.nerve")
    assert len(state["optimizer"]["state"][0]["old_dirs"]) == 5
    twin = build()
    twin.model.load_state_dict(state["model"])
    twin.optimizer.load_state_dict(state["optimizer"])
    model.train(10, display_every=10)
    twin.train(10, display_every=10)
    for a, b in zip(model.net.parameters(), twin.net.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
