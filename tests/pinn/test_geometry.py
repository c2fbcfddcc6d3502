"""Sampling stays inside each geometry for every sampler, boundary points lie on the boundary with the right
normals, Latin hypercube and Sobol points are stratified, and points outside the geometry are refused."""
import numpy as np
import pytest

from nerve import pinn

GEOMETRIES = {
    "interval": pinn.Interval(-1.0, 2.0),
    "rectangle": pinn.Rectangle([0.0, -1.0], [2.0, 1.0]),
    "cuboid": pinn.Rectangle([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]),
    "disk": pinn.Disk([0.5, -0.5], 2.0),
    "interval x time": pinn.GeometryXTime(pinn.Interval(-1.0, 1.0), pinn.TimeDomain(0.0, 0.99)),
    "disk x time": pinn.GeometryXTime(pinn.Disk([0.0, 0.0], 1.0), pinn.TimeDomain(0.0, 2.0)),
}


@pytest.mark.parametrize("random", ["pseudo", "LHS", "Sobol"])
@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_points_inside_and_on_boundary(name, random):
    geom = GEOMETRIES[name]
    x = geom.random_points(500, random, seed=1)
    assert x.shape == (500, geom.dim) and geom.inside(x).all()
    lo, hi = geom.bbox
    assert np.all(x >= lo - 1e-12) and np.all(x <= hi + 1e-12)
    b = geom.random_boundary_points(200, random, seed=2)
    assert b.shape == (200, geom.dim) and geom.on_boundary(b).all()
    # interior samples are (almost surely) off the boundary, and they fill the box's extent
    assert not geom.on_boundary(x).any()
    assert np.all(x.max(0) - x.min(0) > 0.5 * (hi - lo))


def test_disk_is_uniform_in_area():
    d = pinn.Disk([0.0, 0.0], 1.0)
    r = np.linalg.norm(d.random_points(20000, seed=0), axis=1)
    assert abs(np.mean(r < np.sqrt(0.5)) - 0.5) < 0.02  # half the area lies within radius 1/sqrt(2)


def test_rectangle_boundary_is_uniform_over_the_perimeter():
    r = pinn.Rectangle([0.0, 0.0], [3.0, 1.0])
    b = r.random_boundary_points(40000, seed=0)
    assert abs(np.mean(np.isclose(b[:, 1], 0.0)) - 3 / 8) < 0.01
    assert abs(np.mean(np.isclose(b[:, 0], 3.0)) - 1 / 8) < 0.01
    on_bottom = b[np.isclose(b[:, 1], 0.0)]
    assert abs(on_bottom[:, 0].mean() - 1.5) < 0.05


def test_normals():
    r = pinn.Rectangle([0.0, 0.0], [2.0, 1.0])
    pts = np.array([[0.0, 0.5], [2.0, 0.3], [1.0, 0.0], [1.5, 1.0], [2.0, 1.0]])
    expected = np.array([[-1, 0], [1, 0], [0, -1], [0, 1], [np.sqrt(0.5), np.sqrt(0.5)]])
    np.testing.assert_allclose(r.boundary_normal(pts), expected, atol=1e-12)
    d = pinn.Disk([1.0, 1.0], 2.0)
    b = d.random_boundary_points(10, seed=0)
    np.testing.assert_allclose(d.boundary_normal(b), (b - 1.0) / 2.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(d.boundary_normal(b), axis=1), 1.0)
    gt = GEOMETRIES["interval x time"]
    np.testing.assert_allclose(gt.boundary_normal(np.array([[1.0, 0.3], [-1.0, 0.7]])), [[1, 0], [-1, 0]])
    with pytest.raises(ValueError, match="not on the boundary"):
        r.boundary_normal(np.array([[1.0, 0.5]]))


def test_lhs_is_stratified_and_sobol_balanced():
    n = 64
    u = pinn.sample_unit(n, 3, "LHS", seed=5)
    for k in range(3):
        assert sorted(np.floor(u[:, k] * n).astype(int)) == list(range(n))
    s = pinn.sample_unit(n, 2, "Sobol", seed=5)
    for k in range(2):
        assert np.all(np.bincount(np.floor(s[:, k] * 8).astype(int), minlength=8) == 8)
    # pseudo-random points are not stratified (the test above can fail)
    p = pinn.sample_unit(n, 1, "pseudo", seed=5)
    assert len(set(np.floor(p[:, 0] * n).astype(int))) < n


def test_initial_points_and_membership():
    g = GEOMETRIES["interval x time"]
    x0 = g.random_initial_points(50, seed=0)
    assert np.all(x0[:, 1] == 0.0) and g.on_initial(x0).all() and g.inside(x0).all()
    assert not g.inside(np.array([[0.0, 1.5]])).any()
    assert not g.on_boundary(np.array([[0.5, 0.5]])).any()


def test_errors():
    r = pinn.Rectangle([0.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="outside Rectangle"):
        r.check_inside(np.array([[0.5, 0.5], [1.5, 0.2]]), "test")
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        r.inside(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="random must be one of"):
        r.random_points(10, "Halton")
    with pytest.raises(ValueError, match="xmin < xmax"):
        pinn.Rectangle([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="radius > 0"):
        pinn.Disk([0.0, 0.0], -1.0)
