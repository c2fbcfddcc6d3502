"""cumprod, cummax/cummin, logcumsumexp (nerve/ops/cumulative.py) through the op table; std_mean/var_mean; the
``axis=`` alias, ``keepdim`` and ``dtype=`` of the reductions."""
import numpy as np
import pytest
from scipy import special

import nerve
from tests.ops.table import Case, table_tests

DIMS = [((5,), 0), ((3, 4), 1), ((3, 4), -2), ((2, 3, 4), -1), ((), 0), ((0, 3), 1)]


def _axis(a, dim):
    return 0 if a.ndim == 0 else dim


def _np_cummax(a, dim, largest=True):
    """Running extreme and its index by a loop; ties take the later index, as PyTorch."""
    if a.ndim == 0:
        return a.copy(), np.zeros((), dtype=np.int64)
    moved = np.moveaxis(a, dim, -1)
    values, idx = np.empty_like(moved), np.zeros(moved.shape, dtype=np.int64)
    for pos in np.ndindex(*moved.shape[:-1]):
        best, at = None, 0
        for j, v in enumerate(moved[pos]):
            if best is None or (v >= best if largest else v <= best):
                best, at = v, j
            values[pos + (j,)], idx[pos + (j,)] = best, at
    return np.moveaxis(values, -1, dim), np.moveaxis(idx, -1, dim)


def _np_logcumsumexp(a, dim):
    if a.ndim == 0:
        return a.copy()
    moved = np.moveaxis(a, dim, -1)
    out = np.empty_like(moved)
    for j in range(moved.shape[-1]):
        out[..., j] = special.logsumexp(moved[..., :j + 1], axis=-1)
    return np.moveaxis(out, -1, dim)


def _with_zeros(shape, positions):
    def make(rng):
        a = rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        for p in positions:
            a[p] = 0.0
        return [a]
    return make


def _distinct(shape):
    def make(rng):
        n = int(np.prod(shape))
        return [(rng.permutation(n) * 0.25 - 1.0).reshape(shape)]
    return make


def _cases():
    for shape, dim in DIMS:
        yield Case("cumprod", lambda a, d=dim: nerve.cumprod(a, d),
                   lambda a, d=dim: np.cumprod(a, axis=_axis(a, d)).reshape(a.shape), [shape], 0.5, 1.5, second=True)
        yield Case("logcumsumexp", lambda a, d=dim: a.logcumsumexp(d),
                   lambda a, d=dim: _np_logcumsumexp(a, d), [shape], second=True)
        for name in ("cummax", "cummin"):
            yield Case(name, lambda a, d=dim, n=name: tuple(getattr(nerve, n)(a, d)),
                       lambda a, d=dim, n=name: _np_cummax(a, d, n == "cummax"), [shape], make=_distinct(shape),
                       second=True)
    yield Case("cumprod_one_zero", lambda a: a.cumprod(1), lambda a: np.cumprod(a, 1), [(2, 5)],
               make=_with_zeros((2, 5), [(0, 2)]))
    yield Case("cumprod_two_zeros", lambda a: a.cumprod(-1), lambda a: np.cumprod(a, -1), [(2, 5)],
               make=_with_zeros((2, 5), [(0, 1), (0, 3), (1, 4)]))
    yield Case("cumprod_zero_first", lambda a: a.cumprod(0), lambda a: np.cumprod(a, 0), [(4, 2)],
               make=_with_zeros((4, 2), [(0, 0), (2, 1)]))
    # NOTE: first order only: the second-order difference quotient of this case is below the rule's rounding
    yield Case("logcumsumexp_wide", lambda a: nerve.logcumsumexp(a * 300.0, 1),
               lambda a: _np_logcumsumexp(a * 300.0, 1), [(2, 4)])
    yield Case("cummax_ties", lambda a: tuple(a.cummax(0)), lambda a: _np_cummax(a, 0), [(6,)],
               make=lambda rng: [np.array([1.0, 3.0, 2.0, 3.0, 0.0, 3.0])], check_grad=False)
    yield Case("std_mean", lambda a: nerve.std_mean(a, 1), lambda a: (np.std(a, 1, ddof=1), np.mean(a, 1)),
               [(3, 4)], second=True)
    yield Case("var_mean", lambda a: a.var_mean(dim=(0, 2), keepdim=True, correction=0),
               lambda a: (np.var(a, (0, 2), keepdims=True), np.mean(a, (0, 2), keepdims=True)), [(2, 3, 4)],
               second=True)
    yield Case("nanmean", lambda a: nerve.nanmean(nerve.where(a > 1.5, float("nan"), a), 1),
               lambda a: np.nanmean(np.where(a > 1.5, np.nan, a), 1), [(3, 4)], second=True)


CASES = list(_cases())

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


def test_cummax_gradient_goes_to_the_returned_index():
    x = nerve.tensor([1.0, 3.0, 2.0, 3.0], dtype=nerve.float64, requires_grad=True)
    values, idx = nerve.cummax(x, 0)
    np.testing.assert_array_equal(idx.numpy(), [0, 1, 1, 3])
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0, 0.0, 1.0])


def test_logcumsumexp_stays_finite_far_from_zero():
    x = nerve.tensor([-1000.0, 0.0, 1000.0], dtype=nerve.float64, requires_grad=True)
    out = x.logcumsumexp(0)
    np.testing.assert_allclose(out.numpy(), [-1000.0, 0.0, 1000.0])
    out.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


REDUCTIONS = [("sum", {}), ("mean", {}), ("nansum", {}), ("prod", {}), ("std", {}), ("var", {}), ("amax", {}),
              ("amin", {}), ("argmax", {}), ("argmin", {}), ("logsumexp", {}), ("norm", {}), ("all", {}),
              ("any", {}), ("nanmean", {})]


@pytest.mark.parametrize("name, kwargs", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_axis_is_an_alias_of_dim_and_keepdim_keeps_it(name, kwargs):
    x = nerve.tensor(np.random.default_rng(0).uniform(0.5, 2.0, (2, 3, 4)))
    fn = getattr(nerve, name)
    for keepdim in (False, True):
        want = fn(x, dim=1, keepdim=keepdim, **kwargs)
        got = fn(x, axis=1, keepdim=keepdim, **kwargs)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
        assert got.shape == ((2, 1, 4) if keepdim else (2, 4))
    with pytest.raises(TypeError, match=f"{name}: give dim or axis, not both"):
        fn(x, dim=1, axis=1)


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_take_axis(name):
    x = nerve.tensor(np.random.default_rng(1).standard_normal((3, 4)))
    values, idx = getattr(x, name)(axis=1, keepdim=True)
    want = getattr(x, name)(1, True)
    np.testing.assert_array_equal(values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(idx.numpy(), want.indices.numpy())


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "logcumsumexp", "softmax", "log_softmax"])
def test_running_ops_take_axis(name):
    x = nerve.tensor(np.random.default_rng(2).uniform(0.5, 1.5, (3, 4)))
    fn = getattr(nerve, name)
    np.testing.assert_array_equal(fn(x, axis=0).numpy(), fn(x, 0).numpy())
    values, idx = nerve.cummax(x, axis=1)
    np.testing.assert_array_equal(values.numpy(), np.maximum.accumulate(x.numpy(), 1))


def test_reduction_dtype_argument_casts_first():
    x = nerve.tensor([1, 2, 3], dtype=nerve.int32)
    assert nerve.sum(x, dtype=nerve.float64).dtype == np.float64
    assert x.sum().dtype == np.int64  # integer sums widen to int64, as PyTorch
    assert nerve.mean(x, dtype=nerve.float32).dtype == np.float32
    assert nerve.cumsum(x, 0, dtype=nerve.float32).dtype == np.float32
    assert nerve.prod(x, dtype=nerve.float64).item() == 6.0
    h = nerve.tensor([60000.0, 60000.0], dtype=nerve.float16)
    assert np.isinf(h.sum().item()) and h.sum(dtype=nerve.float32).item() == 120000.0
    assert nerve.softmax(nerve.ones(3), 0, dtype=nerve.float64).dtype == np.float64


def test_running_ops_need_a_dim():
    with pytest.raises(TypeError, match="cumsum: missing the dim argument"):
        nerve.cumsum(nerve.ones(3))
    with pytest.raises(TypeError, match="cumprod: missing the dim argument"):
        nerve.ones(3).cumprod()
