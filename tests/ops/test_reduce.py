"""Reductions and the softmax family: forward against NumPy, gradcheck and gradgradcheck in float64."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special

import nerve
from tests.ops.table import Case, table_tests

# (shape, dim, keepdim): full, int, negative int, tuples, 0-d, size-0 (reducing a non-empty and an empty dim)
DIMS = [((5,), None, False), ((3, 4), 1, False), ((3, 4), -1, True), ((2, 3, 4), (0, 2), False),
        ((2, 3, 4), (-1, -3), True), ((), None, False), ((), 0, True), ((0, 3), 1, False), ((0, 3), 0, True)]
ONE_DIM = [((5,), 0, False), ((3, 4), 1, False), ((3, 4), -2, True), ((2, 3, 4), -1, False), ((), 0, False),
           ((0, 3), 1, True)]


def _axis(x, dim):
    """NumPy's axis for a PyTorch dim (a 0-d tensor accepts dim 0 and reduces over nothing)."""
    return None if dim is None or x.ndim == 0 else dim


def _var_ref(x, dim, keepdim, ddof):
    return np.var(x, axis=_axis(x, dim), keepdims=keepdim, ddof=ddof)


def _count(shape, dim):
    return int(np.prod(shape if dim is None else [shape[d] for d in np.atleast_1d(dim)]))


def _softmax_ref(x, dim):
    if x.ndim == 0:
        return np.ones(())
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def _norm_ref(x, p, dim, keepdim):
    ax = _axis(x, dim)
    if p == np.inf:
        return np.abs(x).max(axis=ax, keepdims=keepdim)
    if p == -np.inf:
        return np.abs(x).min(axis=ax, keepdims=keepdim)
    return (np.abs(x) ** p).sum(axis=ax, keepdims=keepdim) ** (1.0 / p)


def _distinct(shape, low=-2.0, high=2.0):
    """Inputs with well separated values, so max/min/abs have no ties or kinks within a difference step."""
    def make(rng):
        n = int(np.prod(shape))
        values = np.linspace(low, high, n) + rng.uniform(-0.1, 0.1) / max(n, 1)
        values[np.abs(values) < 0.05] += 0.1
        return [rng.permutation(values).reshape(shape)]
    return make


def _with_zeros(shape, k):
    """A product input with ``k`` zeros in the first row along the last dim."""
    def make(rng):
        x = rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        x[(0,) * (len(shape) - 1)][:k] = 0.0
        return [x]
    return make


def _cases():
    for shape, dim, keep in DIMS:
        yield Case("sum", lambda a, d=dim, k=keep: nerve.sum(a, d, k),
                   lambda a, d=dim, k=keep: np.sum(a, axis=_axis(a, d), keepdims=k), [shape], second=True)
        yield Case("nansum", lambda a, d=dim, k=keep: nerve.nansum(a, d, k),
                   lambda a, d=dim, k=keep: np.nansum(a, axis=_axis(a, d), keepdims=k), [shape], second=True)
        yield Case("logsumexp", lambda a, d=dim, k=keep: nerve.logsumexp(a, d, k),
                   lambda a, d=dim, k=keep: a if a.ndim == 0 else special.logsumexp(a, axis=d, keepdims=k),
                   [shape],
                   second=True)
        if 0 in shape:
            continue
        yield Case("mean", lambda a, d=dim, k=keep: a.mean(d, k),
                   lambda a, d=dim, k=keep: np.mean(a, axis=_axis(a, d), keepdims=k), [shape], second=True)
        yield Case("prod", lambda a, d=dim, k=keep: nerve.prod(a, d, k),
                   lambda a, d=dim, k=keep: np.prod(a, axis=_axis(a, d), keepdims=k), [shape], 0.5, 1.5,
                   second=True)
        for p in (2, 1, 3, 1.5, np.inf, -np.inf):
            yield Case(f"norm_p{p}", lambda a, d=dim, k=keep, p=p: nerve.norm(a, p, d, k),
                       lambda a, d=dim, k=keep, p=p: _norm_ref(a, p, d, k), [shape],
                       make=_distinct(shape), second=True)
        yield Case("amax", lambda a, d=dim, k=keep: nerve.amax(a, d, k),
                   lambda a, d=dim, k=keep: np.amax(a, axis=_axis(a, d), keepdims=k), [shape],
                   make=_distinct(shape), second=True)
        yield Case("amin", lambda a, d=dim, k=keep: a.amin(d, k),
                   lambda a, d=dim, k=keep: np.amin(a, axis=_axis(a, d), keepdims=k), [shape],
                   make=_distinct(shape), second=True)
        for unbiased, corr in ((True, None), (False, None), (True, 0), (False, 2)):
            ddof = corr if corr is not None else int(unbiased)
            if shape and _count(shape, dim) > ddof:
                yield Case(f"var_c{ddof}",
                           lambda a, d=dim, k=keep, u=unbiased, c=corr: nerve.var(a, d, u, k, c),
                           lambda a, d=dim, k=keep, c=ddof: _var_ref(a, d, k, c), [shape], second=True)
                yield Case(f"std_c{ddof}", lambda a, d=dim, k=keep, u=unbiased, c=corr: a.std(d, u, k, c),
                           lambda a, d=dim, k=keep, c=ddof: np.sqrt(_var_ref(a, d, k, c)), [shape],
                           second=True)
    for shape, dim, keep in ONE_DIM:
        yield Case("softmax", lambda a, d=dim: nerve.softmax(a, d), lambda a, d=dim: _softmax_ref(a, d),
                   [shape], second=True)
        yield Case("log_softmax", lambda a, d=dim: a.log_softmax(d),
                   lambda a, d=dim: np.log(_softmax_ref(a, d)), [shape], second=True)
        yield Case("cumsum", lambda a, d=dim: nerve.cumsum(a, d),
                   lambda a, d=dim: np.cumsum(a, axis=_axis(a, d)).reshape(a.shape), [shape], second=True)
        if 0 in shape:
            continue
        for name in ("max", "min"):
            np_val, np_arg = (np.max, np.argmax) if name == "max" else (np.min, np.argmin)
            yield Case(f"{name}_dim", lambda a, d=dim, k=keep, n=name: getattr(a, n)(d, keepdim=k),
                       lambda a, d=dim, k=keep, v=np_val, i=np_arg: (
                           v(a, axis=_axis(a, d), keepdims=k), i(a, axis=_axis(a, d), keepdims=k)),
                       [shape], make=_distinct(shape), second=True)
            yield Case(f"arg{name}", lambda a, d=dim, k=keep, n=name: getattr(nerve, "arg" + n)(a, d, k),
                       lambda a, d=dim, k=keep, i=np_arg: i(a, axis=_axis(a, d), keepdims=k), [shape],
                       check_grad=False)
    for name in ("max", "min"):
        yield Case(f"{name}_all", lambda a, n=name: getattr(nerve, n)(a), getattr(np, name), [(3, 4)],
                   make=_distinct((3, 4)), second=True)
        yield Case(f"arg{name}_all", lambda a, n=name: getattr(a, "arg" + n)(), getattr(np, "arg" + name),
                   [(3, 4)], check_grad=False)
    yield Case("norm_fro", lambda a: nerve.norm(a, "fro", (0, 1)), lambda a: np.linalg.norm(a, "fro"),
               [(3, 4)], second=True)
    for k in (1, 2, 3):
        yield Case(f"prod_{k}zeros", lambda a: nerve.prod(a, -1), lambda a: np.prod(a, -1), [(2, 4)],
                   make=_with_zeros((2, 4), k), second=True)
        yield Case(f"prod_all_{k}zeros", lambda a: a.prod(), np.prod, [(4,)], make=_with_zeros((4,), k),
                   second=True)


CASES = list(_cases())

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


# --- semantics ------------------------------------------------------------------------------------
def test_full_max_min_split_the_gradient_among_ties():
    x = nerve.tensor([[1.0, 3.0], [3.0, 2.0]], requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.0, 0.5], [0.5, 0.0]])
    y = nerve.tensor([0.0, 0.0, 0.0, 1.0], requires_grad=True)
    nerve.amin(y).backward()
    np.testing.assert_allclose(y.grad.numpy(), [1 / 3, 1 / 3, 1 / 3, 0.0])


def test_max_with_dim_sends_gradient_to_the_returned_index():
    x = nerve.tensor([[1.0, 3.0, 3.0], [5.0, 5.0, 2.0]], requires_grad=True)
    out = x.max(dim=1)
    values, indices = out
    assert values is out.values and indices is out.indices
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    assert indices.dtype == np.int64 and not indices.requires_grad
    values.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def test_max_min_amax_amin_with_or_without_indices_are_one_primitive():
    x = nerve.tensor([[1.0, 3.0], [4.0, 2.0]], requires_grad=True)
    nodes = {type(y.grad_fn) for y in (x.max(), x.min(), x.amax(0), x.amin((0, 1)), x.max(1).values,
                                         x.min(0, keepdim=True).values, x.norm(float("inf")))}
    assert len(nodes) == 1


def test_max_of_two_tensors_is_maximum():
    a, b = nerve.tensor([1.0, 4.0]), nerve.tensor([2.0, 3.0])
    np.testing.assert_array_equal(nerve.max(a, b).numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(a.min(b).numpy(), [1.0, 3.0])


def test_argmax_keepdim_without_dim_keeps_every_dim():
    x = nerve.tensor(np.arange(6.0).reshape(2, 3))
    assert x.argmax(keepdim=True).shape == (1, 1)
    assert x.argmax().item() == 5 and x.argmin().item() == 0


def test_var_correction_overrides_unbiased():
    x = nerve.tensor([1.0, 2.0, 4.0, 7.0], dtype=nerve.float64)
    data = x.numpy()
    assert np.isclose(x.var().item(), np.var(data, ddof=1))
    assert np.isclose(x.var(unbiased=False).item(), np.var(data))
    assert np.isclose(x.var(False).item(), np.var(data))
    assert np.isclose(x.var(unbiased=False, correction=1).item(), np.var(data, ddof=1))
    assert np.isclose(x.std(correction=2).item(), np.std(data, ddof=2))
    with pytest.raises(ValueError, match="var: correction"):
        x.var(correction=-1)


def test_var_of_one_element_is_nan_like_pytorch():
    x = nerve.tensor([3.0], requires_grad=True)
    v = x.var()
    assert np.isnan(v.item())
    v.backward()
    assert np.isnan(x.grad.numpy()).all()


def test_prod_gradient_with_zeros():
    x = nerve.tensor([2.0, 0.0, 3.0], requires_grad=True)
    x.prod().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 6.0, 0.0])
    y = nerve.tensor([[2.0, 0.0, 0.0], [1.0, 2.0, 3.0]], requires_grad=True)
    y.prod(1).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [[0.0, 0.0, 0.0], [6.0, 3.0, 2.0]])


def test_norm_gradient_at_zero_is_zero():
    x = nerve.zeros(3, dtype=nerve.float64, requires_grad=True)
    x.norm().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])


def test_nansum_ignores_nan_and_gives_it_no_gradient():
    x = nerve.tensor([1.0, np.nan, 2.0], requires_grad=True)
    out = x.nansum()
    assert out.item() == 3.0
    out.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 1.0])


def test_reductions_keep_float32():
    x = nerve.randn(3, 4)
    for y in (x.sum(), x.var(1), x.std(), x.max(), x.max(0).values, x.logsumexp(1), x.softmax(-1),
              x.log_softmax(0), x.prod(), x.cumsum(1), x.norm(), x.norm(3), x.amin(0)):
        assert y.dtype == np.float32


def test_empty_and_infinite_edge_cases():
    empty = nerve.zeros(0, 3, dtype=nerve.float64)
    np.testing.assert_array_equal(nerve.logsumexp(empty, 0).numpy(), [-np.inf] * 3)
    assert nerve.softmax(empty, 0).shape == (0, 3)
    x = nerve.tensor([-np.inf, 0.0, -np.inf], dtype=nerve.float64)
    np.testing.assert_array_equal(nerve.softmax(x).numpy(), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(nerve.log_softmax(x).numpy(), [-np.inf, 0.0, -np.inf])
    assert nerve.logsumexp(nerve.tensor([-np.inf, -np.inf]), 0).item() == -np.inf
    assert nerve.logsumexp(nerve.tensor([np.inf, 1.0]), 0).item() == np.inf


def test_errors_name_the_op():
    x = nerve.ones(2, 3)
    with pytest.raises(IndexError, match="sum: dim 2 is out of range"):
        x.sum(2)
    with pytest.raises(IndexError, match="softmax: dim -3"):
        x.softmax(-3)
    with pytest.raises(TypeError, match="cumsum: dim must be an int"):
        x.cumsum((0, 1))
    with pytest.raises(ValueError, match=r"max: cannot reduce over dim 0 of size 0 .*\(0, 3\)"):
        nerve.zeros(0, 3).max()
    with pytest.raises(ValueError, match="argmin: cannot reduce over dim 1"):
        nerve.zeros(2, 0).argmin(1)
    with pytest.raises(ValueError, match="norm: p must be"):
        x.norm(0)
    with pytest.raises(ValueError, match="norm: p must be"):
        x.norm("nuc")


# --- numerically extreme inputs -------------------------------------------------------------------
def _big_rows():
    shift = st.sampled_from([1e4, -1e4, 0.0])
    offsets = hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)),
                         elements=st.floats(-50, 50, allow_nan=False))
    return st.tuples(shift, offsets, st.floats(-1.0, 1.0))


def _shifted_lse(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(_big_rows())
def test_softmax_family_is_stable_at_1e4(args):
    shift, offsets, scale = args
    x = shift + offsets * (1 + scale * 100)  # spreads as wide as +-1e4 around the shift
    t = nerve.tensor(x, requires_grad=True)
    lse = nerve.logsumexp(t, 1)
    sm = nerve.softmax(t, 1)
    lsm = nerve.log_softmax(t, 1)
    for out in (lse, sm, lsm):
        assert np.isfinite(out.numpy()).all()
    np.testing.assert_allclose(lse.numpy(), _shifted_lse(x, 1), rtol=1e-12, atol=1e-9)
    ref_lsm = x - _shifted_lse(x, 1)[:, None]
    np.testing.assert_allclose(lsm.numpy(), ref_lsm, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(sm.numpy(), np.exp(ref_lsm), rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(sm.numpy().sum(1), 1.0, rtol=1e-12)
    (lse.sum() + (sm * sm).sum() + lsm.sum()).backward()
    assert np.isfinite(t.grad.numpy()).all()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 8)),
                  elements=st.floats(-1e4, 1e4, width=32)), st.integers(0, 1))
def test_softmax_rows_sum_to_one(x, dim):
    out = nerve.softmax(nerve.tensor(x), dim).numpy()
    assert out.dtype == np.float32 and np.isfinite(out).all() and (out >= 0).all()
    np.testing.assert_allclose(out.sum(dim), 1.0, rtol=1e-5)


# --- all, any, isclose, allclose: boolean results without gradients ---------------------------------------
def _with_some_zeros(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, shape) * (rng.uniform(0, 1, shape) > 0.3)


@pytest.mark.parametrize("shape, dim, keepdim", DIMS + [((2, 3, 4), 1, True), ((2, 3, 4), -1, False)])
@pytest.mark.parametrize("name", ["all", "any"])
def test_all_any_match_numpy(name, shape, dim, keepdim):
    x = _with_some_zeros(shape)
    got = getattr(nerve, name)(nerve.tensor(x, requires_grad=True), dim, keepdim)
    method = getattr(nerve.tensor(x), name)(dim=dim, keepdim=keepdim)
    want = getattr(np, name)(x, axis=_axis(x, dim), keepdims=keepdim)
    for out in (got, method):
        assert out.dtype == np.bool_ and not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), want)


def test_all_any_on_rows_of_zeros_and_integers():
    x = nerve.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, -1.0]])
    np.testing.assert_array_equal(x.all(1).numpy(), [False, False, True])
    np.testing.assert_array_equal(x.any(dim=1).numpy(), [False, True, True])
    assert nerve.tensor([1, 2, 3]).all().item() is True
    assert (nerve.tensor([1, 2]) > 5).any().item() is False
    with pytest.raises(IndexError, match="all: dim 2 is out of range"):
        x.all(2)
    with pytest.raises(IndexError, match="any: dim -3 is out of range"):
        x.any(-3)


def test_isclose_matches_numpy_and_broadcasts():
    a = np.array([[1.0, 2.0, np.nan, np.inf], [1e-9, 0.0, -np.inf, 5.0]])
    b = np.array([1.0 + 1e-6, 2.0 + 1e-4, np.nan, np.inf])
    for kw in ({}, {"rtol": 1e-3}, {"atol": 1e-3, "equal_nan": True}, {"rtol": 0.0, "atol": 0.0}):
        got = nerve.isclose(nerve.tensor(a, requires_grad=True), nerve.tensor(b), **kw)
        assert got.dtype == np.bool_ and not got.requires_grad and got.shape == (2, 4)
        np.testing.assert_array_equal(got.numpy(), np.isclose(a, b, **kw))
        np.testing.assert_array_equal(nerve.tensor(a).isclose(nerve.tensor(b), **kw).numpy(), np.isclose(a, b, **kw))


def test_allclose_returns_a_python_bool():
    a = nerve.tensor([1.0, 2.0, np.nan])
    assert nerve.allclose(a, a) is False  # NaN is not close to NaN unless equal_nan
    assert nerve.allclose(a, a, equal_nan=True) is True
    assert a[:2].allclose(nerve.tensor([1.0 + 1e-7, 2.0])) is True
    assert nerve.allclose(nerve.tensor([1.0]), nerve.tensor([1.1]), rtol=0.0, atol=0.05) is False
    assert nerve.allclose(nerve.tensor([1.0]), nerve.tensor([1.1]), rtol=0.1) is True


def test_isclose_errors_name_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"isclose: shapes \(2, 3\) and \(4,\) do not broadcast"):
        nerve.isclose(nerve.ones(2, 3), nerve.ones(4))
    with pytest.raises(ValueError, match=r"isclose: shapes \(2,\) and \(3,\) do not broadcast"):
        nerve.allclose(nerve.ones(2), nerve.ones(3))
    with pytest.raises(ValueError, match="isclose: rtol and atol must be non-negative"):
        nerve.isclose(nerve.ones(2), nerve.ones(2), rtol=-1.0)
