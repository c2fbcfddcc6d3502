"""scatter_reduce, argsort, nonzero, masked_select, diag and diagonal (nerve/ops/selection.py): forward against
NumPy loops, gradcheck and gradgradcheck in float64, and scatter with ``value=``."""
import numpy as np
import pytest

import nerve
from tests.ops.table import Case, table_tests

IDX = np.array([[1, 1, 0], [3, 0, 3]])  # (2, 3) into dim 0 of a (4, 3) input: repeats and untouched rows
MASK = np.array([[True, False, True], [False, False, True]])


def _np_scatter_reduce(a, dim, idx, src, reduce, include_self=True):
    """PyTorch's scatter_reduce by a loop: gather each position's contributions, then reduce them."""
    groups = {pos: ([a[pos]] if include_self else []) for pos in np.ndindex(*a.shape)}
    for pos in np.ndindex(*idx.shape):
        dst = list(pos)
        dst[dim] = idx[pos]
        groups[tuple(dst)].append(src[pos])
    out = a.copy()
    fns = {"sum": np.sum, "prod": np.prod, "mean": np.mean, "amax": np.max, "amin": np.min}
    for pos, values in groups.items():
        if values:
            out[pos] = fns[reduce](values)
    return out


def _scatter_reduce_case(reduce, include_self, make=None, second=True):
    def fn(a, s):
        return nerve.scatter_reduce(a, 0, nerve.tensor(IDX), s, reduce, include_self=include_self)

    def ref(a, s):
        return _np_scatter_reduce(a, 0, IDX, s, reduce, include_self)
    return Case(f"scatter_reduce_{reduce}_{include_self}", fn, ref, [(4, 3), (2, 4)], second=second, make=make,
                low=0.5, high=2.0)


def _distinct(rng):
    """Values far apart: no ties in amax/amin inside a difference step."""
    values = rng.permutation(20)[:20] * 0.3 + 0.1
    return [values[:12].reshape(4, 3), values[12:].reshape(2, 4)]


def _ties(rng):
    """Exact ties between self and src values at the maximum (the gradient is shared evenly)."""
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [0.5, 0.5, 0.5], [2.0, 0.1, 1.0]])
    s = np.array([[4.0, 1.0, 3.0, 9.0], [2.0, 2.0, 1.0, 0.0]])
    return [a, s]


def _with_zeros(rng):
    """Zeros where prod's gradient has its special cases: src[j] goes to (IDX[i, j], j) for j < 3."""
    a = rng.uniform(0.5, 2.0, (4, 3))
    s = rng.uniform(0.5, 2.0, (2, 4))
    s[0, 1] = 0.0  # position (1, 1): one zero, from src
    a[1, 0], s[0, 0] = 0.0, 0.0  # position (1, 0): two zeros (one when include_self is False)
    s[1, 2] = 0.0  # position (3, 2): one zero, from src
    a[2, 2] = 0.0  # position (2, 2): nothing scattered there, a zero of input alone
    return [a, s]


CASES = [_scatter_reduce_case(r, inc) for r in ("sum", "mean", "prod") for inc in (True, False)]
CASES += [_scatter_reduce_case(r, inc, make=_distinct) for r in ("amax", "amin") for inc in (True, False)]
CASES += [
    _scatter_reduce_case("prod", True, make=_with_zeros, second=False),
    _scatter_reduce_case("prod", False, make=_with_zeros, second=False),
    Case("scatter_reduce_amax_ties", lambda a, s: a.scatter_reduce(0, nerve.tensor(IDX), s, "amax"),
         lambda a, s: _np_scatter_reduce(a, 0, IDX, s, "amax"), [(4, 3), (2, 4)], make=_ties, check_grad=False),
    Case("scatter_reduce_dim1", lambda a, s: nerve.scatter_reduce(a, 1, nerve.tensor(IDX.T[:, :2] % 3), s, "mean"),
         lambda a, s: _np_scatter_reduce(a, 1, IDX.T[:, :2] % 3, s, "mean"), [(3, 3), (3, 2)], second=True),
    Case("scatter_value", lambda a: a.scatter(0, nerve.tensor(IDX[:, :2] % 2), value=0.5),
         lambda a: _np_scatter_value(a, IDX[:, :2] % 2, 0.5), [(2, 3)], second=True),
    Case("masked_select", lambda a: a.masked_select(nerve.tensor(MASK)), lambda a: a[MASK], [(2, 3)], second=True),
    Case("masked_select_bcast", lambda a: nerve.masked_select(a, nerve.tensor(MASK)),
         lambda a: np.broadcast_to(a, (2, 3))[MASK], [(3,)], second=True),
    Case("diagonal", lambda a: a.diagonal(), lambda a: np.diagonal(a).copy(), [(3, 4)], second=True),
    Case("diagonal_offset", lambda a: nerve.diagonal(a, 1, -1, 0), lambda a: np.diagonal(a, 1, 2, 0).copy(),
         [(3, 2, 4)], second=True),
    Case("diagonal_neg", lambda a: a.diagonal(-2), lambda a: np.diagonal(a, -2).copy(), [(4, 3)], second=True),
    Case("diag_matrix", lambda a: a.diag(), lambda a: np.diag(a).copy(), [(3, 4)], second=True),
    Case("diag_vector", lambda a: nerve.diag(a), np.diag, [(3,)], second=True),
    Case("diag_vector_offset", lambda a: nerve.diag(a, -1), lambda a: np.diag(a, -1), [(3,)], second=True),
]


def _np_scatter_value(a, idx, value):
    out = a.copy()
    for pos in np.ndindex(*idx.shape):
        out[(idx[pos],) + pos[1:]] = value
    return out


(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


def test_amax_ties_share_the_gradient_like_pytorch():
    a, s = (nerve.tensor(x, requires_grad=True) for x in _ties(None))
    nerve.scatter_reduce(a, 0, nerve.tensor(IDX), s, "amax").sum().backward()
    # src[i, j] goes to (IDX[i, j], j): (0, 1) gets s[1, 1] = 2.0 against a[0, 1] = 2.0, a tie: 1/2 each
    assert a.grad.numpy()[0, 1] == 0.5 and s.grad.numpy()[1, 1] == 0.5
    # position (1, 0): a = 4.0 and s[0, 0] = 4.0 tie; position (3, 0) gets s[1, 0] = 2.0 against a = 2.0
    assert a.grad.numpy()[1, 0] == 0.5 and s.grad.numpy()[0, 0] == 0.5
    assert a.grad.numpy()[3, 0] == 0.5 and s.grad.numpy()[1, 0] == 0.5
    assert s.grad.numpy()[0, 3] == 0.0  # src entries outside the index get nothing


def test_integer_scatter_reduce_and_mean_floor():
    a = nerve.tensor([[1, 2], [3, 4]])
    out = nerve.scatter_reduce(a, 0, nerve.tensor([[1, 1]]), nerve.tensor([[4, 5]]), "mean")
    np.testing.assert_array_equal(out.numpy(), [[1, 2], [3, 4]])  # (3 + 4) // 2 = 3, (4 + 5) // 2 = 4
    out = nerve.scatter_reduce(a, 0, nerve.tensor([[0, 0]]), nerve.tensor([[7, -1]]), "amax", include_self=False)
    np.testing.assert_array_equal(out.numpy(), [[7, -1], [3, 4]])


def test_scatter_takes_src_or_value_not_both():
    x = nerve.zeros(2, 2)
    with pytest.raises(TypeError, match="scatter: give exactly one of src and value"):
        x.scatter(0, nerve.tensor([[0, 1]]))
    with pytest.raises(TypeError, match="scatter: give exactly one"):
        x.scatter(0, nerve.tensor([[0, 1]]), nerve.ones(1, 2), value=1.0)
    with pytest.raises(ValueError, match="scatter_reduce: reduce must be one of"):
        x.scatter_reduce(0, nerve.tensor([[0, 1]]), nerve.ones(1, 2), "max")


def test_argsort_matches_sort_indices():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, (3, 5)).astype(float)
    x = nerve.tensor(a)
    np.testing.assert_array_equal(x.argsort().numpy(), np.argsort(a, axis=-1, kind="stable"))
    np.testing.assert_array_equal(nerve.argsort(x, dim=0, descending=True).numpy(),
                                  x.sort(dim=0, descending=True).indices.numpy())
    assert x.argsort().dtype == np.int64


def test_nonzero_and_as_tuple():
    a = np.array([[0, 1, 0], [2, 0, 3]])
    x = nerve.tensor(a)
    np.testing.assert_array_equal(x.nonzero().numpy(), np.argwhere(a))
    rows, cols = nerve.nonzero(x, as_tuple=True)
    np.testing.assert_array_equal(rows.numpy(), [0, 1, 1])
    np.testing.assert_array_equal(cols.numpy(), [1, 0, 2])
    assert nerve.nonzero(nerve.tensor(5.0)).shape == (1, 0)
    assert nerve.nonzero(nerve.zeros(3)).shape == (0, 1)


def test_selection_errors():
    with pytest.raises(TypeError, match="masked_select: mask must be boolean"):
        nerve.ones(2).masked_select(nerve.tensor([1, 0]))
    with pytest.raises(RuntimeError, match=r"masked_select: mask of shape \(3,\) and input of shape \(2,\)"):
        nerve.ones(2).masked_select(nerve.tensor([True, False, True]))
    with pytest.raises(RuntimeError, match=r"diag: expected a 1-D or 2-D tensor, got shape \(2, 2, 2\)"):
        nerve.diag(nerve.ones(2, 2, 2))
    with pytest.raises(RuntimeError, match="diagonal: dim1 0 and dim2 0 must be two different dims"):
        nerve.ones(2, 2).diagonal(0, 0, 0)


STATS = [
    Case("kthvalue", lambda a: tuple(a.kthvalue(2, 1)), lambda a: (np.sort(a, 1)[:, 1], np.argsort(a, 1)[:, 1]),
         [(3, 4)], second=True),
    Case("kthvalue_keepdim", lambda a: nerve.kthvalue(a, 3, 0, keepdim=True).values,
         lambda a: np.sort(a, 0)[2:3], [(4, 2)], second=True),
    Case("median_all", lambda a: a.median(), lambda a: np.sort(a.reshape(-1))[(a.size - 1) // 2], [(3, 4)],
         second=True),
    Case("median_dim", lambda a: nerve.median(a, -1).values, lambda a: np.sort(a, -1)[..., 1], [(2, 4)],
         second=True),
    Case("quantile", lambda a: nerve.quantile(a, 0.3, dim=1), lambda a: np.quantile(a, 0.3, axis=1), [(3, 5)],
         second=True),
    Case("quantile_many", lambda a: a.quantile(nerve.tensor([0.1, 0.5, 1.0]), keepdim=True),
         lambda a: np.quantile(a, [0.1, 0.5, 1.0], keepdims=True), [(3, 5)], second=True),
    *[Case(f"quantile_{mode}", lambda a, mode=mode: nerve.quantile(a, nerve.tensor([0.2, 0.625]), 0,
                                                                   interpolation=mode),
           lambda a, mode=mode: np.quantile(a, [0.2, 0.625], axis=0, method=mode), [(5, 2)], second=True)
      for mode in ("lower", "higher", "midpoint", "nearest")],
    Case("msort", nerve.msort, lambda a: np.sort(a, 0), [(4, 3)], second=True),
    Case("nanmedian", lambda a: tuple(nerve.nanmedian(_with_nan(a), 1)), lambda a: _np_nanmedian(_with_nan(a), 1),
         [(3, 4)], second=True),
    Case("nanmedian_all", lambda a: _with_nan(a).nanmedian(), lambda a: _np_nanmedian(_with_nan(a).reshape(-1), 0)[0],
         [(3, 4)], second=True),
]


def _np_mode(a, dim):
    """Most frequent value per row (smallest on ties) and its last index, by a loop."""
    moved = np.moveaxis(a, dim, -1)
    values, idx = np.empty(moved.shape[:-1]), np.zeros(moved.shape[:-1], dtype=np.int64)
    for pos in np.ndindex(*moved.shape[:-1]):
        row = list(moved[pos])
        best = min(set(row), key=lambda v: (-row.count(v), v))
        values[pos], idx[pos] = best, len(row) - 1 - row[::-1].index(best)
    return values, idx


# NOTE: a mode needs repeated values, where it is not differentiable: no gradcheck; the gradient is tested below
MODE = [Case("mode", lambda a: tuple(nerve.mode(a, 0)), lambda a: _np_mode(a, 0), [(7, 3)], check_grad=False,
             make=lambda rng: [rng.integers(0, 3, (7, 3)) * 0.5]),
        Case("mode_keepdim", lambda a: a.mode(-1, keepdim=True).values, lambda a: _np_mode(a, 1)[0][:, None],
             [(2, 5)], check_grad=False,
             make=lambda rng: [np.array([[1.0, 2.0, 2.0, 1.0, 3.0], [4.0, 4.0, 0.0, 4.0, 0.0]])])]
test_mode_forward = table_tests(MODE)[0]


def test_mode_gradient_goes_to_the_returned_entry():
    x = nerve.tensor([[1.0, 2.0, 2.0, 1.0, 3.0]], dtype=nerve.float64, requires_grad=True)
    values, idx = x.mode(1)
    assert values.item() == 1.0 and idx.item() == 3  # 1 and 2 tie: the smaller value, its last index
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0, 0, 1, 0]])


def _with_nan(a):
    """NaN at fixed places: row 0 has one, row 2 is all NaN (its median is NaN, as PyTorch)."""
    mask = np.zeros(a.shape, dtype=bool)
    mask[0, 1] = True
    mask[2:] = True
    if isinstance(a, nerve.Tensor):
        return nerve.where(nerve.tensor(mask), float("nan"), a)
    return np.where(mask, np.nan, a)


def _np_nanmedian(a, dim):
    """The lower median of the non-NaN values of each row (index into the original row), by a loop."""
    moved = np.moveaxis(a, dim, -1)
    values, idx = np.full(moved.shape[:-1], np.nan), np.zeros(moved.shape[:-1], dtype=np.int64)
    for pos in np.ndindex(*moved.shape[:-1]):
        row = moved[pos]
        order = [j for j in np.argsort(row, kind="stable") if not np.isnan(row[j])]
        if order:
            idx[pos] = order[(len(order) + 1) // 2 - 1]
            values[pos] = row[idx[pos]]
    return values, idx
(test_stats_forward, test_stats_gradcheck, test_stats_gradgradcheck, test_stats_paths_agree,
 test_stats_rules_read_only_their_namespace) = table_tests(STATS)


def test_counting_and_searching_against_numpy():
    a = np.array([[0, 3, 0], [2, 2, 0]])
    assert nerve.count_nonzero(nerve.tensor(a)).item() == 3
    np.testing.assert_array_equal(nerve.tensor(a).count_nonzero(dim=0).numpy(), [1, 2, 0])
    v = nerve.tensor([1, 1, 4, 0])
    np.testing.assert_array_equal(nerve.bincount(v).numpy(), [1, 2, 0, 0, 1])
    np.testing.assert_array_equal(v.bincount(minlength=7).numpy(), np.bincount([1, 1, 4, 0], minlength=7))
    np.testing.assert_allclose(nerve.bincount(v, nerve.tensor([0.5, 1.0, 2.0, 3.0])).numpy(), [3.0, 1.5, 0, 0, 2.0])
    seq = nerve.tensor([[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]])
    vals = nerve.tensor([[3.0, 6.0], [1.0, 4.0]])
    np.testing.assert_array_equal(nerve.searchsorted(seq, vals).numpy(), [[1, 3], [0, 1]])
    np.testing.assert_array_equal(nerve.searchsorted(seq, vals, right=True).numpy(), [[2, 3], [0, 2]])
    bounds = nerve.tensor([1.0, 3.0, 5.0])
    np.testing.assert_array_equal(nerve.bucketize(nerve.tensor([0.0, 1.0, 4.0, 9.0]), bounds).numpy(), [0, 0, 2, 3])
    np.testing.assert_array_equal(nerve.bucketize(nerve.tensor([1.0, 3.0]), bounds, right=True).numpy(), [1, 2])
    values, inverse, counts = nerve.unique(nerve.tensor([[3, 1], [3, 2]]), return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(values.numpy(), [1, 2, 3])
    np.testing.assert_array_equal(inverse.numpy(), [[2, 0], [2, 1]])
    np.testing.assert_array_equal(counts.numpy(), [1, 1, 2])
    rows, inverse = nerve.tensor([[2, 1], [0, 5], [2, 1]]).unique(dim=0, return_inverse=True)
    np.testing.assert_array_equal(rows.numpy(), [[0, 5], [2, 1]])
    np.testing.assert_array_equal(inverse.numpy(), [1, 0, 1])
    h = nerve.histc(nerve.tensor([0.0, 0.5, 1.0, 2.0, 5.0]), bins=4, min=0, max=2)
    np.testing.assert_array_equal(h.numpy(), [1, 1, 1, 1])  # 5.0 is outside; 2.0 falls in the last bin
    np.testing.assert_array_equal(nerve.tensor([1.0, 2.0, 2.0]).histc(2).numpy(), [1, 2])
    assert h.dtype == np.float32
    with pytest.raises(RuntimeError, match="bincount: expected a 1-D tensor of non-negative integers"):
        nerve.bincount(nerve.tensor([-1, 2]))
    with pytest.raises(IndexError, match=r"kthvalue: k \(5\) is out of range for dim 1 of size 4"):
        nerve.ones(2, 4).kthvalue(5)
    with pytest.raises(ValueError, match="quantile: q must be"):
        nerve.quantile(nerve.ones(3), 1.5)


def _np_index_fill(a, dim, idx, value):
    out = a.copy()
    for i in idx:
        out[(slice(None),) * dim + (i,)] = value
    return out


def _np_index_copy(a, dim, idx, src):
    out = a.copy()
    for k, i in enumerate(idx):
        out[(slice(None),) * dim + (i,)] = src[(slice(None),) * dim + (k,)]
    return out


def _np_masked_scatter(a, mask, src):
    out, flat, k = a.copy(), src.reshape(-1), 0
    for pos in np.ndindex(*a.shape):
        if np.broadcast_to(mask, a.shape)[pos]:
            out[pos], k = flat[k], k + 1
    return out


WRITES = [
    Case("index_fill", lambda a: a.index_fill(1, nerve.tensor([0, 2]), -1.5),
         lambda a: _np_index_fill(a, 1, [0, 2], -1.5), [(2, 4)], second=True),
    Case("index_fill_tensor_value", lambda a, v: nerve.index_fill(a, 0, nerve.tensor([1]), v.reshape(())),
         lambda a, v: _np_index_fill(a, 0, [1], v[0]), [(3, 2), (1,)], second=True),
    Case("index_copy", lambda a, s: a.index_copy(1, nerve.tensor([3, 0]), s),
         lambda a, s: _np_index_copy(a, 1, [3, 0], s), [(2, 4), (2, 2)], second=True),
    Case("masked_scatter", lambda a, s: a.masked_scatter(nerve.tensor(MASK[0]), s),
         lambda a, s: _np_masked_scatter(a, MASK[0], s), [(2, 3), (2, 3)], second=True),
]
(test_writes_forward, test_writes_gradcheck, test_writes_gradgradcheck, test_writes_paths_agree,
 test_writes_rules_read_only_their_namespace) = table_tests(WRITES)


def test_write_errors_and_inplace_forms():
    x = nerve.zeros(2, 3)
    x.index_fill_(1, nerve.tensor([1]), 2.0).index_copy_(0, nerve.tensor([0]), nerve.ones(1, 3))
    np.testing.assert_array_equal(x.numpy(), [[1, 1, 1], [0, 2, 0]])
    x.masked_scatter_(nerve.tensor([False, True, False]), nerve.tensor([7.0, 8.0]))
    np.testing.assert_array_equal(x.numpy(), [[1, 7, 1], [0, 8, 0]])
    with pytest.raises(RuntimeError, match=r"index_copy: source of shape \(2, 3\) does not match"):
        x.index_copy(0, nerve.tensor([0]), nerve.ones(2, 3))
    with pytest.raises(RuntimeError, match="masked_scatter: the mask selects 6 entries but source has only 2"):
        x.masked_scatter(nerve.ones(2, 3) > 0, nerve.ones(2))
    with pytest.raises(IndexError, match="index_fill: index 5 is out of bounds"):
        x.index_fill(1, nerve.tensor([5]), 0.0)
