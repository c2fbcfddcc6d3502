"""Boundary, initial and data conditions (DeepXDE's names): ``DirichletBC``, ``NeumannBC``, ``PeriodicBC``,
``IC`` and ``PointSetBC`` (measurements). A condition owns its points (rows of the problem's input) and turns
the network's output at them into a residual whose mean square is its loss.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

import nerve
from nerve.pinn import derivatives
from nerve.pinn.geometry import Geometry, GeometryXTime
from nerve.tensor import Tensor

__all__ = ["Condition", "DirichletBC", "NeumannBC", "PeriodicBC", "IC", "PointSetBC"]


def _values(func, x: np.ndarray, who: str) -> np.ndarray:
    v = np.asarray(func(x) if callable(func) else func, dtype=float)
    if v.ndim == 0:
        return np.full((len(x), 1), float(v))
    if v.size != len(x):
        raise ValueError(f"{who}: expected one value per point ({len(x)}), got values of shape {v.shape}")
    return v.reshape(len(x), 1)


class Condition:
    """Base: ``points`` (N, d) where the condition holds, ``name`` for the logs; ``error(x, u, rows)`` is the
    residual (N, 1) given the problem's input ``x``, the output ``u`` there and this condition's rows."""

    name = "condition"
    component = 0

    def collect(self, boundary: np.ndarray, initial: np.ndarray) -> np.ndarray:
        """This condition's points from the problem's sampled boundary / initial points."""
        raise NotImplementedError

    def error(self, x: Tensor, u: Tensor, rows: slice) -> Tensor:
        raise NotImplementedError

    def _output(self, u: Tensor, rows: slice) -> Tensor:
        if not 0 <= self.component < u.shape[1]:
            raise ValueError(f"{type(self).__name__}: component {self.component} but the network has {u.shape[1]} "
                             "output(s)")
        return u[rows, self.component:self.component + 1]

    def _target(self, x: np.ndarray, dtype) -> None:
        self.points = x
        self.target = nerve.tensor(_values(self.func, x, type(self).__name__), dtype=dtype)


class _OnBoundary(Condition):
    def __init__(self, geometry: Geometry, func, on_boundary: Callable[[np.ndarray], np.ndarray] | None,
                 component: int) -> None:
        if not isinstance(geometry, Geometry):
            raise TypeError(f"{type(self).__name__}: geometry must be a pinn Geometry, got {type(geometry).__name__}")
        self.geometry, self.func, self.on_boundary, self.component = geometry, func, on_boundary, component

    def collect(self, boundary: np.ndarray, initial: np.ndarray) -> np.ndarray:
        if len(boundary) == 0:
            raise ValueError(f"{type(self).__name__}: the problem samples no boundary points (num_boundary=0)")
        keep = np.ones(len(boundary), bool) if self.on_boundary is None else np.asarray(self.on_boundary(boundary))
        if keep.shape != (len(boundary),):
            raise ValueError(f"{type(self).__name__}: on_boundary must return one bool per point, got shape "
                             f"{keep.shape} for {len(boundary)} points")
        return boundary[keep]


class DirichletBC(_OnBoundary):
    """u_component = func(x) on the boundary points selected by ``on_boundary(x) -> bool mask`` (all if None)."""

    name = "dirichlet"

    def __init__(self, geometry: Geometry, func, on_boundary=None, component: int = 0) -> None:
        super().__init__(geometry, func, on_boundary, component)

    def error(self, x: Tensor, u: Tensor, rows: slice) -> Tensor:
        return self._output(u, rows) - self.target


class NeumannBC(_OnBoundary):
    """du_component/dn = func(x) (outward normal derivative) on the selected boundary points."""

    name = "neumann"

    def __init__(self, geometry: Geometry, func, on_boundary=None, component: int = 0) -> None:
        super().__init__(geometry, func, on_boundary, component)

    def _target(self, x: np.ndarray, dtype) -> None:
        super()._target(x, dtype)
        self.normals = nerve.tensor(self.geometry.boundary_normal(x), dtype=dtype)

    def error(self, x: Tensor, u: Tensor, rows: slice) -> Tensor:
        self._output(u, rows)
        du = derivatives.grad(u, x, component=self.component)[rows]
        return (du * self.normals).sum(1, keepdim=True) - self.target


class PeriodicBC(Condition):
    """u (or its ``derivative_order``-th derivative along ``component_x``) equal on the two faces x_c = min and
    x_c = max of a box geometry: each selected point on the min face is paired with its mirror on the max face."""

    name = "periodic"

    def __init__(self, geometry: Geometry, component_x: int, on_boundary=None, derivative_order: int = 0,
                 component: int = 0) -> None:
        space = geometry.geometry if isinstance(geometry, GeometryXTime) else geometry
        if not hasattr(space, "xmin"):
            raise TypeError(f"PeriodicBC: needs a box geometry (Interval, Rectangle), got {space!r}")
        if not 0 <= component_x < space.dim:
            raise ValueError(f"PeriodicBC: component_x={component_x} but {space!r} has {space.dim} dimension(s)")
        if derivative_order not in (0, 1):
            raise ValueError(f"PeriodicBC: derivative_order must be 0 or 1, got {derivative_order}")
        self.geometry, self.space, self.component_x = geometry, space, component_x
        self.on_boundary, self.derivative_order, self.component = on_boundary, derivative_order, component
        self.func = 0.0

    def collect(self, boundary: np.ndarray, initial: np.ndarray) -> np.ndarray:
        c = self.component_x
        left = boundary[np.isclose(boundary[:, c], self.space.xmin[c], rtol=0, atol=self.space._tol)]
        if self.on_boundary is not None:
            left = left[np.asarray(self.on_boundary(left))]
        if len(left) == 0:
            raise ValueError(f"PeriodicBC: no sampled boundary point lies on the face x_{c} = {self.space.xmin[c]}")
        right = left.copy()
        right[:, c] = self.space.xmax[c]
        return np.concatenate([left, right])

    def error(self, x: Tensor, u: Tensor, rows: slice) -> Tensor:
        if self.derivative_order == 0:
            v = self._output(u, rows)
        else:
            v = derivatives.grad(u, x, self.component_x, component=self.component)[rows]
        half = v.shape[0] // 2
        return v[:half] - v[half:]


class IC(Condition):
    """u_component(x, t0) = func(x) at the problem's initial points (those selected by ``on_initial``)."""

    name = "ic"

    def __init__(self, geometry: GeometryXTime, func, on_initial=None, component: int = 0) -> None:
        if not isinstance(geometry, GeometryXTime):
            raise TypeError(f"IC: needs a space-time GeometryXTime, got {geometry!r}")
        self.geometry, self.func, self.on_initial, self.component = geometry, func, on_initial, component

    def collect(self, boundary: np.ndarray, initial: np.ndarray) -> np.ndarray:
        if len(initial) == 0:
            raise ValueError("IC: the problem samples no initial points (num_initial=0)")
        return initial if self.on_initial is None else initial[np.asarray(self.on_initial(initial))]

    def error(self, x: Tensor, u: Tensor, rows: slice) -> Tensor:
        return self._output(u, rows) - self.target


class PointSetBC(Condition):
    """u_component(points) = values: measurements (data) at given points."""

    name = "data"

    def __init__(self, points, values, component: int = 0) -> None:
        self.points_given = np.asarray(points, dtype=float)
        values = np.asarray(values, dtype=float).reshape(len(self.points_given), -1)
        if values.shape[1] != 1:
            raise ValueError(f"PointSetBC: expected one value per point, got values of shape {values.shape}")
        self.func, self.component = values, component

    def collect(self, boundary: np.ndarray, initial: np.ndarray) -> np.ndarray:
        return self.points_given

    def error(self, x: Tensor, u: Tensor, rows: slice) -> Tensor:
        return self._output(u, rows) - self.target
