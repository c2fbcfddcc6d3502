"""F.normalize and F.cosine_similarity: NumPy formulas, gradcheck and gradgradcheck in float64, the eps clamp."""
import numpy as np
import pytest

import nerve
import nerve.functional as F


def _np_normalize(x, p, dim, eps):
    n = (np.abs(x) ** p).sum(axis=dim, keepdims=True) ** (1.0 / p)
    return x / np.maximum(n, eps)


def _np_cosine(x1, x2, dim, eps):
    x1, x2 = np.broadcast_arrays(x1, x2)
    n1 = np.maximum(np.linalg.norm(x1, axis=dim, keepdims=True), eps)
    n2 = np.maximum(np.linalg.norm(x2, axis=dim, keepdims=True), eps)
    return ((x1 / n1) * (x2 / n2)).sum(axis=dim)


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).uniform(-2, 2, shape)


@pytest.mark.parametrize("shape, p, dim", [((3, 4), 2.0, 1), ((3, 4), 1.0, 0), ((2, 3, 4), 3.0, -1),
                                           ((5,), 2.0, 0), ((2, 3, 4), 2.0, 1)])
def test_normalize_matches_numpy_and_gradchecks(shape, p, dim):
    x = _rand(*shape)
    np.testing.assert_allclose(F.normalize(nerve.tensor(x), p, dim).numpy(), _np_normalize(x, p, dim, 1e-12),
                               rtol=1e-12)
    t = nerve.tensor(x, requires_grad=True)
    assert nerve.gradcheck(lambda a: F.normalize(a, p=p, dim=dim), [t])
    assert nerve.gradgradcheck(lambda a: F.normalize(a, p=p, dim=dim), [t])


def test_normalize_defaults_give_unit_rows_and_keep_float32():
    out = F.normalize(nerve.randn(4, 3))
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out.numpy(), axis=1), 1.0, rtol=1e-6)


def test_normalize_zero_vector_stays_zero_with_finite_gradient():
    x = nerve.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 4.0]], dtype=nerve.float64, requires_grad=True)
    out = F.normalize(x)
    np.testing.assert_array_equal(out.numpy(), [[0.0, 0.0, 0.0], [0.6, 0.0, 0.8]])
    out.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_normalize_below_eps_divides_by_eps():
    # a norm below eps is clamped: out = x / eps, whose derivative is I / eps (checked numerically too)
    x = nerve.tensor([[0.01, -0.02, 0.03]], dtype=nerve.float64, requires_grad=True)
    out = F.normalize(x, eps=0.1)
    np.testing.assert_allclose(out.numpy(), x.numpy() / 0.1)
    assert nerve.gradcheck(lambda a: F.normalize(a, eps=0.1), [x])
    assert nerve.gradgradcheck(lambda a: F.normalize(a, eps=0.1) ** 2, [x])


@pytest.mark.parametrize("s1, s2, dim", [((3, 4), (3, 4), 1), ((3, 4), (3, 4), 0), ((2, 3, 4), (4,), -1),
                                         ((2, 1, 4), (3, 4), 2), ((5,), (5,), 0)])
def test_cosine_similarity_matches_numpy_and_gradchecks(s1, s2, dim):
    a, b = _rand(*s1, seed=1), _rand(*s2, seed=2)
    got = F.cosine_similarity(nerve.tensor(a), nerve.tensor(b), dim)
    np.testing.assert_allclose(got.numpy(), _np_cosine(a, b, dim, 1e-8), rtol=1e-12)
    ta, tb = nerve.tensor(a, requires_grad=True), nerve.tensor(b, requires_grad=True)
    assert nerve.gradcheck(lambda x, y: F.cosine_similarity(x, y, dim=dim), [ta, tb])
    assert nerve.gradgradcheck(lambda x, y: F.cosine_similarity(x, y, dim=dim), [ta, tb])


def test_cosine_similarity_known_values_and_zero_vectors():
    x1 = nerve.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], requires_grad=True)
    x2 = nerve.tensor([[0.0, 2.0], [-3.0, -3.0], [1.0, 0.0]])
    out = F.cosine_similarity(x1, x2)
    np.testing.assert_allclose(out.numpy(), [0.0, -1.0, 0.0], atol=1e-6)
    out.sum().backward()
    assert np.isfinite(x1.grad.numpy()).all()


def test_cosine_similarity_stays_within_one_for_large_and_tiny_values():
    x = nerve.tensor(_rand(4, 3) * 1e150)
    np.testing.assert_allclose(F.cosine_similarity(x, x).numpy(), 1.0, rtol=1e-12)
    tiny = nerve.tensor(_rand(4, 3) * 1e-5)
    assert (np.abs(F.cosine_similarity(tiny, tiny * 2.0).numpy()) <= 1.0 + 1e-12).all()


def test_errors_name_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"cosine_similarity: x1 \(2, 3\) and x2 \(4, 3\) do not broadcast"):
        F.cosine_similarity(nerve.ones(2, 3), nerve.ones(4, 3))
    with pytest.raises(IndexError, match="cosine_similarity: dim 2 is out of range"):
        F.cosine_similarity(nerve.ones(2, 3), nerve.ones(2, 3), dim=2)
    with pytest.raises(IndexError, match="normalize: dim 1 is out of range"):
        F.normalize(nerve.ones(3))
    with pytest.raises(ValueError, match="norm: p must be"):
        F.normalize(nerve.ones(2, 3), p=0)
