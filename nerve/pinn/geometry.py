"""Geometries and point sampling (DeepXDE's names): ``Interval``, ``Rectangle``, ``Disk``, ``TimeDomain`` and
``GeometryXTime``; interior and boundary points drawn uniformly ("pseudo"), by Latin hypercube ("LHS") or from a
scrambled Sobol sequence ("Sobol"), outward normals, membership tests.

Points are NumPy arrays (float64, one row per point): they are data, turned into Tensors by the problem.
Every geometry maps points of the unit cube onto itself, so one sampler serves all shapes and products.
"""
from __future__ import annotations

import numpy as np

SAMPLERS = ("pseudo", "uniform", "LHS", "Sobol")


def sample_unit(n: int, dim: int, random: str = "pseudo", seed: int | np.random.Generator | None = None) -> np.ndarray:
    """``n`` points in [0, 1]^dim: i.i.d. uniform ("pseudo"/"uniform"), Latin hypercube ("LHS": one point in each
    of n equal slabs per axis) or a scrambled Sobol sequence ("Sobol", needs SciPy)."""
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"sample_unit: n must be a non-negative int, got {n!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if random in ("pseudo", "uniform"):
        return rng.random((n, dim))
    if random == "LHS":
        slabs = np.stack([rng.permutation(n) for _ in range(dim)], axis=1)
        return (slabs + rng.random((n, dim))) / max(n, 1)
    if random == "Sobol":
        if n == 0:
            return np.zeros((0, dim))
        try:
            from scipy.stats import qmc
        except ImportError as e:
            raise ImportError("sample_unit: random='Sobol' needs SciPy (pip install scipy)") from e
        # NOTE: Sobol points are balanced in blocks of 2^k; random_base2 would round n up, so draw and cut.
        m = int(np.ceil(np.log2(n)))
        return qmc.Sobol(dim, scramble=True, seed=rng).random_base2(m)[:n]
    raise ValueError(f"sample_unit: random must be one of {SAMPLERS}, got {random!r}")


def _as_points(x, dim: int, who: str) -> np.ndarray:
    x = np.asarray(getattr(x, "data", x), dtype=float)
    if x.ndim == 1 and dim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{who}: expected points of shape (N, {dim}), got {x.shape}")
    return x


class Geometry:
    """Base: ``dim`` coordinates, ``bbox`` (lower, upper corners); subclasses map unit-cube samples."""

    dim: int
    unit_dim: int  # unit-cube coordinates needed for one interior point
    boundary_unit_dim: int  # ... and for one boundary point

    def inside(self, x) -> np.ndarray:
        """True for points in the closed geometry (boundary included, up to 1e-9 relative)."""
        raise NotImplementedError

    def on_boundary(self, x) -> np.ndarray:
        """True for points on the boundary (up to 1e-9 relative)."""
        raise NotImplementedError

    def boundary_normal(self, x) -> np.ndarray:
        """Outward unit normals at boundary points (an error for points off the boundary)."""
        raise NotImplementedError

    def _from_unit(self, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _boundary_from_unit(self, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def random_points(self, n: int, random: str = "pseudo", seed=None) -> np.ndarray:
        """``n`` interior points (N, dim) drawn by ``random`` ("pseudo", "LHS", "Sobol")."""
        return self._from_unit(sample_unit(n, self.unit_dim, random, seed))

    def random_boundary_points(self, n: int, random: str = "pseudo", seed=None) -> np.ndarray:
        """``n`` boundary points (N, dim), uniform in boundary measure."""
        return self._boundary_from_unit(sample_unit(n, self.boundary_unit_dim, random, seed))

    def check_inside(self, x, who: str) -> np.ndarray:
        """``x`` as (N, dim) points, or an error naming the first point outside the geometry."""
        x = _as_points(x, self.dim, who)
        outside = ~self.inside(x)
        if outside.any():
            i = int(np.argmax(outside))
            raise ValueError(f"{who}: {int(outside.sum())} of {len(x)} points lie outside {self!r}, e.g. point {i} "
                             f"= {x[i].tolist()}")
        return x

    def _check_on_boundary(self, x, who: str) -> np.ndarray:
        x = _as_points(x, self.dim, who)
        off = ~self.on_boundary(x)
        if off.any():
            i = int(np.argmax(off))
            raise ValueError(f"{who}: point {i} = {x[i].tolist()} is not on the boundary of {self!r}")
        return x


class Rectangle(Geometry):
    """The box [xmin, xmax] in any dimension (``Interval`` is its 1-D case, ``Cuboid`` its 3-D one)."""

    def __init__(self, xmin, xmax) -> None:
        self.xmin = np.atleast_1d(np.asarray(xmin, dtype=float))
        self.xmax = np.atleast_1d(np.asarray(xmax, dtype=float))
        if self.xmin.shape != self.xmax.shape or self.xmin.ndim != 1 or np.any(self.xmin >= self.xmax):
            raise ValueError(f"{type(self).__name__}: need xmin < xmax coordinate-wise, got {self.xmin.tolist()} and "
                             f"{self.xmax.tolist()}")
        self.dim = self.unit_dim = len(self.xmin)
        self.boundary_unit_dim = self.dim
        self.bbox = (self.xmin, self.xmax)
        self._tol = 1e-9 * np.max(self.xmax - self.xmin)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.xmin.tolist()}, {self.xmax.tolist()})"

    def inside(self, x) -> np.ndarray:
        x = _as_points(x, self.dim, f"{type(self).__name__}.inside")
        return np.all((x >= self.xmin - self._tol) & (x <= self.xmax + self._tol), axis=1)

    def on_boundary(self, x) -> np.ndarray:
        x = _as_points(x, self.dim, f"{type(self).__name__}.on_boundary")
        near = np.isclose(x, self.xmin, atol=self._tol, rtol=0) | np.isclose(x, self.xmax, atol=self._tol, rtol=0)
        return self.inside(x) & near.any(axis=1)

    def boundary_normal(self, x) -> np.ndarray:
        x = self._check_on_boundary(x, f"{type(self).__name__}.boundary_normal")
        n = (-np.isclose(x, self.xmin, atol=self._tol, rtol=0).astype(float)
             + np.isclose(x, self.xmax, atol=self._tol, rtol=0))
        # NOTE: at a corner the normal is the normalised sum of the faces' normals (as DeepXDE does)
        return n / np.linalg.norm(n, axis=1, keepdims=True)

    def _from_unit(self, u: np.ndarray) -> np.ndarray:
        return self.xmin + u * (self.xmax - self.xmin)

    def _boundary_from_unit(self, u: np.ndarray) -> np.ndarray:
        """Pick a face with probability proportional to its measure (u[:, 0]), place the point on it (the rest)."""
        size = self.xmax - self.xmin
        if self.dim == 1:
            return np.where(u[:, :1] < 0.5, self.xmin, self.xmax)
        face_measure = np.array([np.prod(np.delete(size, k)) for k in range(self.dim)])
        cum = np.cumsum(np.concatenate([face_measure, face_measure])) / (2 * face_measure.sum())
        face = np.minimum(np.searchsorted(cum, u[:, 0], side="right"), 2 * self.dim - 1)
        axis, upper = face % self.dim, face >= self.dim
        x = np.empty((len(u), self.dim))
        for a in range(self.dim):  # the face's other coordinates come from u[:, 1:]
            rows = axis == a
            x[rows] = self._from_unit(np.insert(u[rows, 1:], a, 0.0, axis=1))
            x[rows, a] = np.where(upper[rows], self.xmax[a], self.xmin[a])
        return x


class Interval(Rectangle):
    """The segment [l, r]; its boundary is the two end points."""

    def __init__(self, l: float, r: float) -> None:  # noqa: E741 (DeepXDE's names)
        super().__init__([l], [r])


class Disk(Geometry):
    """The closed disk of ``radius`` around ``center`` (2-D)."""

    def __init__(self, center, radius: float) -> None:
        self.center = np.asarray(center, dtype=float)
        if self.center.shape != (2,) or not radius > 0:
            raise ValueError(f"Disk: need a 2-D center and radius > 0, got {self.center.tolist()} and {radius}")
        self.radius = float(radius)
        self.dim, self.unit_dim, self.boundary_unit_dim = 2, 2, 1
        self.bbox = (self.center - radius, self.center + radius)
        self._tol = 1e-9 * radius

    def __repr__(self) -> str:
        return f"Disk({self.center.tolist()}, {self.radius})"

    def inside(self, x) -> np.ndarray:
        x = _as_points(x, 2, "Disk.inside")
        return np.linalg.norm(x - self.center, axis=1) <= self.radius + self._tol

    def on_boundary(self, x) -> np.ndarray:
        x = _as_points(x, 2, "Disk.on_boundary")
        return np.abs(np.linalg.norm(x - self.center, axis=1) - self.radius) <= self._tol

    def boundary_normal(self, x) -> np.ndarray:
        x = self._check_on_boundary(x, "Disk.boundary_normal")
        return (x - self.center) / self.radius

    def _from_unit(self, u: np.ndarray) -> np.ndarray:
        r, theta = self.radius * np.sqrt(u[:, 0]), 2 * np.pi * u[:, 1]  # sqrt: uniform in area
        return self.center + np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)

    def _boundary_from_unit(self, u: np.ndarray) -> np.ndarray:
        theta = 2 * np.pi * u[:, 0]
        return self.center + self.radius * np.stack([np.cos(theta), np.sin(theta)], axis=1)


class TimeDomain(Interval):
    """The time interval [t0, t1]."""

    def __init__(self, t0: float, t1: float) -> None:
        super().__init__(t0, t1)
        self.t0, self.t1 = float(t0), float(t1)


class GeometryXTime(Geometry):
    """Space-time ``geometry`` x ``timedomain``: points are rows (x_1..x_d, t), time last (DeepXDE's order)."""

    def __init__(self, geometry: Geometry, timedomain: TimeDomain) -> None:
        self.geometry, self.timedomain = geometry, timedomain
        self.dim = geometry.dim + 1
        self.unit_dim = geometry.unit_dim + 1
        self.boundary_unit_dim = geometry.boundary_unit_dim + 1
        self.bbox = (np.append(geometry.bbox[0], timedomain.t0), np.append(geometry.bbox[1], timedomain.t1))

    def __repr__(self) -> str:
        return f"GeometryXTime({self.geometry!r}, {self.timedomain!r})"

    def inside(self, x) -> np.ndarray:
        x = _as_points(x, self.dim, "GeometryXTime.inside")
        return self.geometry.inside(x[:, :-1]) & self.timedomain.inside(x[:, -1:])

    def on_boundary(self, x) -> np.ndarray:
        """True on the spatial boundary (at any time in the domain): where boundary conditions hold."""
        x = _as_points(x, self.dim, "GeometryXTime.on_boundary")
        return self.geometry.on_boundary(x[:, :-1]) & self.timedomain.inside(x[:, -1:])

    def on_initial(self, x) -> np.ndarray:
        """True at the initial time t0 (inside the spatial geometry)."""
        x = _as_points(x, self.dim, "GeometryXTime.on_initial")
        return self.geometry.inside(x[:, :-1]) & np.isclose(x[:, -1], self.timedomain.t0, rtol=0,
                                                            atol=self.timedomain._tol)

    def boundary_normal(self, x) -> np.ndarray:
        x = _as_points(x, self.dim, "GeometryXTime.boundary_normal")
        return np.concatenate([self.geometry.boundary_normal(x[:, :-1]), np.zeros((len(x), 1))], axis=1)

    def _from_unit(self, u: np.ndarray) -> np.ndarray:
        return np.concatenate([self.geometry._from_unit(u[:, :-1]), self.timedomain._from_unit(u[:, -1:])], axis=1)

    def _boundary_from_unit(self, u: np.ndarray) -> np.ndarray:
        return np.concatenate([self.geometry._boundary_from_unit(u[:, :-1]),
                               self.timedomain._from_unit(u[:, -1:])], axis=1)

    def random_initial_points(self, n: int, random: str = "pseudo", seed=None) -> np.ndarray:
        """``n`` points of the spatial geometry at t = t0."""
        x = self.geometry.random_points(n, random, seed)
        return np.concatenate([x, np.full((n, 1), self.timedomain.t0)], axis=1)
