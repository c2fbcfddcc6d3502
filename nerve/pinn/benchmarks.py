"""The built-in benchmark problems, shared by the examples and ``nerve pinn``: Burgers (forward, Raissi et al.
2019's set-up, and the inverse problem for λ1, λ2), Poisson on the unit square and the heat equation, each
against its reference or exact solution (relative L2 error)."""
from __future__ import annotations

import math
import os
import time
from typing import Callable

import numpy as np

import nerve
from nerve import nn
from nerve.pinn.conditions import IC, DirichletBC, PointSetBC
from nerve.pinn.derivatives import grad, laplacian
from nerve.pinn.geometry import GeometryXTime, Interval, Rectangle, TimeDomain
from nerve.pinn.nets import FNN, scale_to_unit
from nerve.pinn.problem import PDE, Model
from nerve.train import Callback

__all__ = ["load_burgers", "burgers", "burgers_inverse", "poisson", "heat", "relative_l2"]


def relative_l2(pred: np.ndarray, ref: np.ndarray) -> float:
    """||pred - ref||_2 / ||ref||_2."""
    pred, ref = np.asarray(pred, dtype=float).ravel(), np.asarray(ref, dtype=float).ravel()
    return float(np.linalg.norm(pred - ref) / np.linalg.norm(ref))


def load_burgers(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x (256,), t (100,), u (256, 100)) from Raissi's ``burgers_shock.mat`` (a file or its directory)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "burgers_shock.mat")
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_burgers: {path} not found (Raissi's burgers_shock.mat from the PINNs "
                                "repository, github.com/maziarraissi/PINNs, appendix/Data)")
    from scipy.io import loadmat
    d = loadmat(path)
    return d["x"].ravel().astype(float), d["t"].ravel().astype(float), np.real(d["usol"]).astype(float)


class ErrorLog(Callback):
    """Every ``every`` epochs (and at the end of training) records (iteration, seconds, relative L2 error)."""

    def __init__(self, model: Model, x: np.ndarray, ref: np.ndarray, every: int = 1, log: Callable | None = None,
                 extra: Callable[[], str] | None = None) -> None:
        self.owner, self.x, self.ref, self.every, self.log, self.extra = model, x, ref, every, log, extra
        self.rows: list[tuple[int, float, float]] = []

    def record(self) -> float:
        err = relative_l2(self.owner.predict(self.x), self.ref)
        o = self.owner
        self.rows.append((o.step, o.elapsed, err))
        if self.log is not None:
            loss = o.losshistory[-1]["loss"] if o.losshistory else float("nan")
            more = f"  {self.extra()}" if self.extra is not None else ""
            self.log(f"  iter {o.step:6d}  {o.elapsed:7.1f} s  loss {loss:.3e}  rel. L2 {err:.3e}{more}")
        return err

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if (epoch + 1) % self.every == 0:
            self.record()


def _two_phases(model: Model, adam_iterations: int, lbfgs_iterations: int, time_limit: float | None, lr: float,
                errors: ErrorLog, display_every: int, external=()) -> None:
    """Adam for ``adam_iterations``, then L-BFGS for the rest of ``time_limit`` (or ``lbfgs_iterations``)."""
    start = time.perf_counter()
    if adam_iterations:
        model.compile("adam", lr=lr, external_trainable_variables=external)
        model.train(adam_iterations, display_every=display_every, callbacks=[errors], time_limit=time_limit)
    left = None if time_limit is None else max(time_limit - (time.perf_counter() - start), 0.0)
    if lbfgs_iterations and (left is None or left > 0):
        model.compile("L-BFGS", external_trainable_variables=external)
        model.train(lbfgs_iterations, display_every=display_every, callbacks=[errors], time_limit=left)
    if not errors.rows or errors.rows[-1][0] != model.step:
        errors.record()


def burgers(path: str | os.PathLike, adam_iterations: int = 1000, lbfgs_iterations: int = 50000,
            time_limit: float | None = 1200.0, n_u: int = 100, n_f: int = 10000, seed: int = 1234, dtype=None,
            display_every: int = 100, log: Callable | None = print) -> dict:
    """Raissi's forward Burgers problem u_t + u u_x - (0.01/π) u_xx = 0, x in [-1, 1], t in [0, 0.99]:
    ``n_u`` initial/boundary values drawn from the reference, ``n_f`` Latin-hypercube collocation points,
    an 8 x 20 tanh network on inputs scaled to [-1, 1]; Adam, then L-BFGS. Returns the errors over time."""
    x, t, usol = load_burgers(path)
    nerve.manual_seed(seed)
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(x, t, indexing="ij"), axis=-1).reshape(-1, 2)  # rows (x, t), x-major
    ref = usol.reshape(-1, 1)
    edges = np.concatenate([np.stack([x, np.full_like(x, t[0])], 1), np.stack([np.full_like(t, x[0]), t], 1),
                            np.stack([np.full_like(t, x[-1]), t], 1)])
    edge_u = np.concatenate([usol[:, 0], usol[0, :], usol[-1, :]])
    idx = rng.choice(len(edges), n_u, replace=False)
    geom = GeometryXTime(Interval(-1.0, 1.0), TimeDomain(float(t[0]), float(t[-1])))
    nu = 0.01 / math.pi

    def pde(xt, u):
        g = grad(u, xt)
        u_x, u_t = g[:, 0:1], g[:, 1:2]
        u_xx = grad(u_x, xt, 0)
        return u_t + u * u_x - nu * u_xx

    data = PDE(geom, pde, [PointSetBC(edges[idx], edge_u[idx])], num_domain=n_f, train_distribution="LHS",
               anchors=edges[idx], seed=seed, dtype=dtype)
    net = FNN([2] + [20] * 8 + [1], dtype=dtype)
    net.apply_feature_transform(scale_to_unit(geom.bbox[0], geom.bbox[1]))
    model = Model(data, net)
    errors = ErrorLog(model, grid, ref, log=log)
    _two_phases(model, adam_iterations, lbfgs_iterations, time_limit, 1e-3, errors, display_every)
    return {"model": model, "errors": errors.rows, "x": x, "t": t, "ref": usol,
            "pred": model.predict(grid).reshape(len(x), len(t)), "error": errors.rows[-1][2],
            "seconds": model.elapsed, "iterations": model.step, "stop_reason": model.stop_reason}


def burgers_inverse(path: str | os.PathLike, adam_iterations: int = 1000, lbfgs_iterations: int = 50000,
                    time_limit: float | None = 900.0, n_u: int = 2000, seed: int = 1234, dtype=None,
                    display_every: int = 100, log: Callable | None = print) -> dict:
    """Raissi's inverse Burgers problem: λ1 (true 1) and λ2 (true 0.01/π) in u_t + λ1 u u_x - λ2 u_xx = 0 from
    ``n_u`` noise-free reference values (also the collocation points); λ1 starts at 0, log λ2 at -6."""
    x, t, usol = load_burgers(path)
    nerve.manual_seed(seed)
    grid = np.stack(np.meshgrid(x, t, indexing="ij"), axis=-1).reshape(-1, 2)
    ref = usol.reshape(-1, 1)
    idx = np.random.default_rng(seed).choice(len(grid), n_u, replace=False)
    geom = GeometryXTime(Interval(-1.0, 1.0), TimeDomain(float(t[0]), float(t[-1])))
    lambda_1 = nn.Parameter(nerve.tensor([0.0], dtype=dtype))
    log_lambda_2 = nn.Parameter(nerve.tensor([-6.0], dtype=dtype))

    def pde(xt, u):
        g = grad(u, xt)
        u_x, u_t = g[:, 0:1], g[:, 1:2]
        return u_t + lambda_1 * u * u_x - nerve.exp(log_lambda_2) * grad(u_x, xt, 0)

    data = PDE(geom, pde, [PointSetBC(grid[idx], ref[idx])], num_domain=0, seed=seed, dtype=dtype)
    net = FNN([2] + [20] * 8 + [1], dtype=dtype)
    net.apply_feature_transform(scale_to_unit(geom.bbox[0], geom.bbox[1]))
    model = Model(data, net)

    def lambdas() -> tuple[float, float]:
        return float(lambda_1.data[0]), float(np.exp(log_lambda_2.data[0]))

    errors = ErrorLog(model, grid, ref, log=log, extra=lambda: "λ1 {:.5f}  λ2 {:.6f}".format(*lambdas()))
    _two_phases(model, adam_iterations, lbfgs_iterations, time_limit, 1e-3, errors, display_every,
                external=[lambda_1, log_lambda_2])
    l1, l2 = lambdas()
    return {"model": model, "errors": errors.rows, "lambda_1": l1, "lambda_2": l2,
            "lambda_1_error": abs(l1 - 1.0), "lambda_2_error": abs(l2 - 0.01 / math.pi) / (0.01 / math.pi),
            "error": errors.rows[-1][2], "seconds": model.elapsed, "iterations": model.step,
            "stop_reason": model.stop_reason}


def poisson(adam_iterations: int = 500, lbfgs_iterations: int = 5000, time_limit: float | None = 600.0,
            num_domain: int = 1000, num_boundary: int = 200, seed: int = 0, dtype=None, display_every: int = 100,
            log: Callable | None = print) -> dict:
    """-Δu = 2π² sin(πx) sin(πy) on the unit square, u = 0 on its boundary; exact u = sin(πx) sin(πy)."""
    nerve.manual_seed(seed)
    geom = Rectangle([0.0, 0.0], [1.0, 1.0])
    pi = math.pi

    def pde(xy, u):
        source = 2 * pi * pi * nerve.sin(pi * xy[:, 0:1]) * nerve.sin(pi * xy[:, 1:2])
        return laplacian(u, xy) + source

    data = PDE(geom, pde, [DirichletBC(geom, 0.0)], num_domain=num_domain, num_boundary=num_boundary, seed=seed,
               dtype=dtype)
    net = FNN([2, 32, 32, 32, 1], dtype=dtype)
    net.apply_feature_transform(scale_to_unit(*geom.bbox))
    model = Model(data, net)
    g = np.linspace(0, 1, 101)
    test = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    exact = (np.sin(pi * test[:, 0]) * np.sin(pi * test[:, 1]))[:, None]
    errors = ErrorLog(model, test, exact, every=5, log=log)
    _two_phases(model, adam_iterations, lbfgs_iterations, time_limit, 1e-3, errors, display_every)
    return {"model": model, "errors": errors.rows, "error": errors.rows[-1][2], "seconds": model.elapsed,
            "iterations": model.step, "stop_reason": model.stop_reason}


def heat(alpha: float = 0.4, adam_iterations: int = 500, lbfgs_iterations: int = 5000,
         time_limit: float | None = 600.0, num_domain: int = 2000, num_boundary: int = 100, num_initial: int = 100,
         seed: int = 0, dtype=None, display_every: int = 100, log: Callable | None = print) -> dict:
    """u_t = α u_xx on x in [0, 1], t in [0, 1], u(0, t) = u(1, t) = 0, u(x, 0) = sin(πx);
    exact u = exp(-α π² t) sin(πx)."""
    nerve.manual_seed(seed)
    geom = GeometryXTime(Interval(0.0, 1.0), TimeDomain(0.0, 1.0))
    pi = math.pi

    def pde(xt, u):
        g = grad(u, xt)
        return g[:, 1:2] - alpha * grad(g[:, 0:1], xt, 0)

    conditions = [DirichletBC(geom, 0.0), IC(geom, lambda p: np.sin(pi * p[:, 0]))]
    data = PDE(geom, pde, conditions, num_domain=num_domain, num_boundary=num_boundary, num_initial=num_initial,
               seed=seed, dtype=dtype)
    net = FNN([2, 32, 32, 32, 1], dtype=dtype)
    net.apply_feature_transform(scale_to_unit(*geom.bbox))
    model = Model(data, net)
    gx, gt = np.linspace(0, 1, 101), np.linspace(0, 1, 101)
    test = np.stack(np.meshgrid(gx, gt, indexing="ij"), axis=-1).reshape(-1, 2)
    exact = (np.exp(-alpha * pi * pi * test[:, 1]) * np.sin(pi * test[:, 0]))[:, None]
    errors = ErrorLog(model, test, exact, every=5, log=log)
    _two_phases(model, adam_iterations, lbfgs_iterations, time_limit, 1e-3, errors, display_every)
    return {"model": model, "errors": errors.rows, "error": errors.rows[-1][2], "seconds": model.elapsed,
            "iterations": model.step, "stop_reason": model.stop_reason, "x": gx, "t": gt,
            "pred": model.predict(test).reshape(101, 101), "ref": exact.reshape(101, 101)}
