"""A physics-informed problem and its trainer (DeepXDE's ``data.PDE``/``data.TimePDE`` and ``Model``):
collocation points, conditions, the weighted losses logged one by one, training with Adam then L-BFGS on
``fit``, inverse problems (trainable PDE coefficients) and residual-based adaptive refinement.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

import nerve
from nerve import nn, optim
from nerve.pinn.conditions import Condition, PointSetBC
from nerve.pinn.geometry import Geometry, GeometryXTime
from nerve.tensor import Tensor
from nerve.train import Callback, fit

__all__ = ["PDE", "TimePDE", "Model"]


class PDE:
    """``pde(x, u) -> residual`` (a Tensor or a list of them, zero where the equation holds) on ``geometry``,
    with ``conditions``; ``num_domain`` collocation points (plus ``anchors``, plus every condition's points),
    ``num_boundary``/``num_initial`` sampled points for the boundary / initial conditions, drawn by
    ``train_distribution`` ("LHS" by default: no SciPy import, which costs seconds, as "Sobol" needs)."""

    def __init__(self, geometry: Geometry, pde: Callable[[Tensor, Tensor], Any], conditions: Sequence[Condition],
                 num_domain: int = 0, num_boundary: int = 0, num_initial: int = 0, train_distribution: str = "LHS",
                 anchors=None, seed: int | None = None, dtype=None) -> None:
        if not isinstance(geometry, Geometry):
            raise TypeError(f"PDE: geometry must be a pinn Geometry, got {type(geometry).__name__}")
        if num_initial and not isinstance(geometry, GeometryXTime):
            raise ValueError(f"PDE: num_initial={num_initial} needs a space-time GeometryXTime, got {geometry!r}")
        for c in conditions:
            if not isinstance(c, Condition):
                raise TypeError(f"PDE: conditions must be pinn conditions, got {type(c).__name__}")
        self.geometry, self.pde, self.conditions = geometry, pde, list(conditions)
        self.dtype = dtype if dtype is not None else nerve.get_default_dtype()
        rng = np.random.default_rng(seed)
        self.domain = geometry.random_points(num_domain, train_distribution, rng)
        if anchors is not None:
            self.domain = np.concatenate([self.domain, geometry.check_inside(anchors, "PDE: anchors")])
        boundary = geometry.random_boundary_points(num_boundary, train_distribution, rng)
        initial = (geometry.random_initial_points(num_initial, train_distribution, rng) if num_initial
                   else np.zeros((0, geometry.dim)))
        for c in self.conditions:
            pts = c.collect(boundary, initial)
            who = f"PDE: {type(c).__name__} points"
            c._target(geometry.check_inside(pts, who), self.dtype)
        self.names = ["pde"] + self._condition_names()
        self._assemble()

    def _condition_names(self) -> list[str]:
        names, seen = [], {}
        for c in self.conditions:
            seen[c.name] = seen.get(c.name, 0) + 1
            names.append(c.name if sum(d.name == c.name for d in self.conditions) == 1 else f"{c.name}{seen[c.name]}")
        return names

    def _assemble(self) -> None:
        """One input array: condition points first (each a row range), then the collocation points."""
        blocks, self.rows, start = [], [], 0
        for c in self.conditions:
            blocks.append(c.points)
            self.rows.append(slice(start, start + len(c.points)))
            start += len(c.points)
        blocks.append(self.domain)
        self.train_x = np.concatenate(blocks)
        self._x = nerve.tensor(self.train_x, dtype=self.dtype, requires_grad=True)

    def add_anchors(self, points) -> None:
        """Add collocation points (e.g. where the residual is large)."""
        self.domain = np.concatenate([self.domain, self.geometry.check_inside(points, "PDE.add_anchors")])
        self._assemble()

    def residuals(self, x: Tensor, u: Tensor) -> list[Tensor]:
        r = self.pde(x, u)
        return list(r) if isinstance(r, (list, tuple)) else [r]

    def losses(self, net: nn.Module) -> dict[str, Tensor]:
        """Mean-square losses by name: 'pde' over all points (DeepXDE's habit), then each condition's."""
        x = self._x
        u = net(x)
        if u.ndim != 2 or u.shape[0] != x.shape[0]:
            raise ValueError(f"PDE: the network must map (N, {x.shape[1]}) points to (N, m) outputs, got "
                             f"{tuple(u.shape)}")
        res = self.residuals(x, u)
        out = {"pde": sum((r * r).mean() for r in res)}
        for name, c, rows in zip(self.names[1:], self.conditions, self.rows):
            e = c.error(x, u, rows)
            out[name] = (e * e).mean()
        return out


TimePDE = PDE


class _Trainable(nn.Module):
    """The network and the external trainable variables (PDE coefficients of an inverse problem) as one module,
    so that ``fit``'s checkpoints hold both."""

    def __init__(self, net: nn.Module, external: Sequence[Tensor]) -> None:
        super().__init__()
        self.net = net
        self.external = nn.ParameterList(external)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class _TimeLimit(Callback):
    def __init__(self, seconds: float | None, lbfgs: bool) -> None:
        self.seconds, self.lbfgs = seconds, lbfgs

    def on_train_begin(self, logs=None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self.seconds is not None and time.perf_counter() - self.start > self.seconds:
            self.trainer.stop(f"time limit reached ({self.seconds:.0f} s for this phase)")
        opt = self.trainer.optimizer
        if self.lbfgs and not opt.stop_reason.startswith(("max_iter", "max_eval")):
            self.trainer.stop(f"L-BFGS: {opt.stop_reason}")


class Model:
    """Trains ``net`` on ``data`` (DeepXDE's ``Model``): ``compile`` picks the optimiser, ``train`` runs it on
    ``fit``; ``losshistory`` holds one row per logged step: step, seconds, optimiser, the weighted total 'loss'
    and each loss by name (unweighted): Adam's averaged over the row's steps, L-BFGS's at the start of its step."""

    def __init__(self, data: PDE, net: nn.Module) -> None:
        self.data, self.net = data, net
        self.losshistory: list[dict] = []
        self.step = 0
        self.elapsed = 0.0
        self.stop_reason: str | None = None

    def compile(self, optimizer: str | optim.Optimizer = "adam", lr: float = 1e-3,
                loss_weights: Sequence[float] | dict | None = None,
                external_trainable_variables: Sequence[Tensor] = (), **options) -> None:
        """``optimizer``: 'adam', 'L-BFGS' (options: LBFGS's keywords, history_size=50 and strong-Wolfe line search
        by default) or an optimiser instance; ``loss_weights`` one per loss name (``data.names``)."""
        self.model = _Trainable(self.net, list(external_trainable_variables))
        params = list(self.model.parameters())
        if isinstance(optimizer, optim.Optimizer):
            self.optimizer = optimizer
        elif optimizer == "adam":
            self.optimizer = optim.Adam(params, lr=lr, **options)
        elif optimizer in ("L-BFGS", "lbfgs", "L-BFGS-B"):
            settings = dict(lr=1.0, max_iter=50, history_size=50, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=0.0)
            settings.update(options)
            self.optimizer = optim.LBFGS(params, **settings)
        else:
            raise ValueError(f"Model.compile: optimizer must be 'adam', 'L-BFGS' or an Optimizer, got {optimizer!r}")
        names = self.data.names
        if loss_weights is None:
            self.weights = dict.fromkeys(names, 1.0)
        elif isinstance(loss_weights, dict):
            unknown = set(loss_weights) - set(names)
            if unknown:
                raise ValueError(f"Model.compile: loss_weights names {sorted(unknown)} are not losses ({names})")
            self.weights = {n: float(loss_weights.get(n, 1.0)) for n in names}
        else:
            if len(loss_weights) != len(names):
                raise ValueError(f"Model.compile: {len(loss_weights)} loss_weights for {len(names)} losses {names}")
            self.weights = dict(zip(names, map(float, loss_weights)))

    def _loss(self) -> tuple[Tensor, dict]:
        parts = self.data.losses(self.net)
        total = None
        for name, value in parts.items():
            term = value * self.weights[name] if self.weights[name] != 1.0 else value
            total = term if total is None else total + term
        return total, parts

    def _train_step(self, model, batch, optimizer) -> dict:
        logs: dict = {}

        def closure():
            optimizer.zero_grad()
            total, parts = self._loss()
            total.backward()
            if not logs:
                logs.update({"loss": float(total.data)}, **{k: float(v.data) for k, v in parts.items()})
            return total
        if isinstance(optimizer, optim.LBFGS):
            optimizer.step(closure)
        else:
            closure()
            optimizer.step()
        return logs

    def train(self, iterations: int, display_every: int = 100, time_limit: float | None = None,
              callbacks: Sequence[Callback] = (), checkpoint=None, verbose: int = 0) -> Any:
        """Run ``iterations`` optimiser iterations (Adam steps, or L-BFGS iterations: ``display_every`` per
        ``step``), logging every ``display_every``; stops early at ``time_limit`` seconds or when L-BFGS stops
        by its own rules (``stop_reason``). Returns fit's History (one epoch per logged row)."""
        if not hasattr(self, "optimizer"):
            raise RuntimeError("Model.train: call compile() first")
        if not isinstance(iterations, int) or iterations < 1 or display_every < 1:
            raise ValueError(f"Model.train: iterations and display_every must be positive ints, got {iterations} "
                             f"and {display_every}")
        lbfgs = isinstance(self.optimizer, optim.LBFGS)
        per_epoch = min(display_every, iterations)
        if lbfgs:
            self.optimizer.param_groups[0]["max_iter"] = per_epoch
            self.optimizer.param_groups[0]["max_eval"] = per_epoch * 5 // 4
            data, epochs = np.zeros((1, 1)), -(-iterations // per_epoch)
        else:
            data, epochs = np.zeros((per_epoch, 1)), -(-iterations // per_epoch)
        limit = _TimeLimit(time_limit, lbfgs)
        rows = _LossRows(self, per_epoch, lbfgs)
        history = fit(self.model, data, optimizer=self.optimizer, epochs=epochs, batch_size=1, shuffle=False,
                      train_step=self._train_step, callbacks=[limit, rows, *callbacks], checkpoint=checkpoint,
                      verbose=verbose)
        self.stop_reason = limit.trainer.stop_reason
        return history

    def predict(self, x, operator: Callable | None = None, batch_size: int = 20000) -> np.ndarray:
        """The network's output at points ``x`` (N, d) as a NumPy array; with ``operator(x, u)`` (e.g. the PDE)
        its value instead (derivatives taken through the network)."""
        x = np.asarray(x, dtype=float)
        outs = []
        for s in range(0, len(x), batch_size):
            xb = nerve.tensor(x[s:s + batch_size], dtype=self.data.dtype, requires_grad=operator is not None)
            if operator is None:
                with nerve.no_grad():
                    outs.append(np.asarray(self.net(xb).data))
            else:
                r = operator(xb, self.net(xb))
                r = r[0] if isinstance(r, (list, tuple)) else r
                outs.append(np.asarray(r.data))
        return np.concatenate(outs)

    def residual_refinement(self, num_candidates: int, num_add: int, random: str = "pseudo", seed=None
                            ) -> np.ndarray:
        """Residual-based adaptive refinement (Lu et al. 2021): draw candidates, add the ``num_add`` with the
        largest |PDE residual| as collocation points; returns them."""
        cand = self.data.geometry.random_points(num_candidates, random, seed)
        res = np.abs(self.predict(cand, operator=lambda x, u: sum(r * r for r in self.data.residuals(x, u))))
        best = cand[np.argsort(res.ravel())[::-1][:num_add]]
        self.data.add_anchors(best)
        return best


class _LossRows(Callback):
    """Appends one ``losshistory`` row per epoch: the cumulative iteration count, time and losses."""

    def __init__(self, owner: Model, per_epoch: int, lbfgs: bool) -> None:
        self.owner, self.per_epoch, self.lbfgs = owner, per_epoch, lbfgs

    def on_train_begin(self, logs=None) -> None:
        self.start = time.perf_counter()
        self.first_iter = self._iters()

    def _iters(self) -> int:
        if not self.lbfgs:
            return 0
        opt = self.trainer.optimizer
        return opt.state[opt.param_groups[0]["params"][0]].get("n_iter", 0)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        o = self.owner
        if self.lbfgs:
            o.step += self._iters() - self.first_iter
            self.first_iter = self._iters()
        else:
            o.step += self.per_epoch
        now = time.perf_counter()
        o.elapsed += now - self.start
        self.start = now
        o.losshistory.append({"step": o.step, "time": o.elapsed, "optimizer": type(self.trainer.optimizer).__name__,
                              **{k: v for k, v in (logs or {}).items() if k != "lr"}})


def data_points(x, u, n: int, seed=None) -> PointSetBC:
    """``n`` of the measurements (x, u) drawn without replacement, as a ``PointSetBC``."""
    x, u = np.asarray(x, dtype=float), np.asarray(u, dtype=float).reshape(-1, 1)
    if n > len(x):
        raise ValueError(f"data_points: asked for {n} of {len(x)} points")
    idx = np.random.default_rng(seed).choice(len(x), n, replace=False)
    return PointSetBC(x[idx], u[idx])
