"""Indexing ops: forward against NumPy, gradcheck and gradgradcheck in float64, scatter-add
with repeated indices on every kernel path, errors."""
import numpy as np
import pytest

import nerve
from nerve.ops.index import IndexBackward
from tests.ops.table import Case, table_tests

MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, False]])
REPEATED = np.array([0, 2, 0, 0, -1])
IDX2 = np.array([[1, 1, 0], [3, 0, 3]])


def _np_gather(a, dim, idx):
    """PyTorch's gather by loops over every index entry."""
    out = np.empty(idx.shape)
    for pos in np.ndindex(*idx.shape):
        src = list(pos)
        src[dim] = idx[pos]
        out[pos] = a[tuple(src)]
    return out


def _np_scatter_add(a, dim, idx, src):
    out = a.copy()
    for pos in np.ndindex(*idx.shape):
        dst = list(pos)
        dst[dim] = idx[pos]
        out[tuple(dst)] += src[pos]
    return out


def _np_scatter(a, dim, idx, src):
    out = a.copy()
    for pos in np.ndindex(*idx.shape):
        dst = list(pos)
        dst[dim] = idx[pos]
        out[tuple(dst)] = src[pos] if np.ndim(src) else src
    return out


def _np_index_add(a, dim, idx, src, alpha=1.0):
    """PyTorch's index_add by a loop over the index: out[..., idx[i], ...] += alpha * src[..., i, ...]."""
    out = a.copy()
    for i, j in enumerate(idx):
        out[(slice(None),) * dim + (j,)] += alpha * src[(slice(None),) * dim + (i,)]
    return out


GATHER_IDX = np.array([[0, 3, 3], [2, 2, 0]])
SCATTER_IDX = np.array([[0, 2, 1, 0], [2, 0, 0, 1]])  # repeats along dim 0 within columns 0..3
UNIQUE_IDX = np.array([[0, 2, 1, 2], [1, 0, 2, 0]])   # no repeated target per column


def _index_cases():
    yield from [
        Case("int", lambda a: a[1], lambda a: a[1], [(3, 4)]),
        Case("neg_int", lambda a: a[-1, -2], lambda a: a[-1, -2], [(3, 4)]),
        Case("slices", lambda a: a[::2, 1:], lambda a: a[::2, 1:], [(3, 4)]),
        Case("neg_step", lambda a: a[::-1, -3:-1], lambda a: a[::-1, -3:-1], [(3, 4)]),
        Case("ellipsis", lambda a: a[..., 0], lambda a: a[..., 0], [(2, 3, 4)]),
        Case("none", lambda a: a[None, :, None], lambda a: a[None, :, None], [(3, 4)]),
        Case("0d_ellipsis", lambda a: a[...], lambda a: a[...], [()]),
        Case("0d_none", lambda a: a[None], lambda a: a[None], [()]),
        Case("mask", lambda a: a[MASK], lambda a: a[MASK], [(3, 4)]),
        Case("mask_tensor", lambda a: a[nerve.tensor(MASK[0])], lambda a: a[MASK[0]], [(4, 2)]),
        Case("mask_rows", lambda a: a[MASK[:, 0], 1:], lambda a: a[MASK[:, 0], 1:], [(3, 4)]),
        Case("mask_from_data", lambda a: a[a.detach() > 0.5], lambda a: a[a > 0.5], [(3, 4)],
             make=lambda rng: [rng.uniform(-2, 2, (3, 4)) + 0.3 * (rng.uniform(-2, 2, (3, 4)) > 0.5)]),
        Case("list", lambda a: a[[0, 2, 0]], lambda a: a[[0, 2, 0]], [(3, 4)]),
        Case("array_repeated", lambda a: a[REPEATED], lambda a: a[REPEATED], [(3, 2)]),
        Case("tensor_repeated_axis1", lambda a: a[:, nerve.tensor(REPEATED)], lambda a: a[:, REPEATED], [(2, 3, 2)]),
        Case("array_last_axis", lambda a: a[..., REPEATED], lambda a: a[..., REPEATED], [(2, 3)]),
        Case("array_2d", lambda a: a[IDX2], lambda a: a[IDX2], [(4, 3)]),
        Case("array_2d_axis1", lambda a: a[:, IDX2, :], lambda a: a[:, IDX2, :], [(2, 4, 2)]),
        Case("two_arrays", lambda a: a[[0, 1, 0], [2, 2, 2]], lambda a: a[[0, 1, 0], [2, 2, 2]], [(3, 4)]),
        Case("int_and_array", lambda a: a[1, [3, 3, 0]], lambda a: a[1, [3, 3, 0]], [(3, 4)]),
        Case("slice_and_array", lambda a: a[1:, [0, 0]], lambda a: a[1:, [0, 0]], [(3, 4)]),
        Case("empty_list", lambda a: a[[]], lambda a: a[np.array([], dtype=int)], [(3, 4)]),
        Case("size0_input", lambda a: a[[0, 0], 1:], lambda a: a[[0, 0], 1:], [(2, 0)]),
        # wide rows take the sort-and-reduceat path (and gradcheck its random-direction mode)
        Case("array_wide_rows", lambda a: a[[2, 0, 2, 2]], lambda a: a[[2, 0, 2, 2]], [(3, 130)]),
    ]


def _other_cases():
    yield from [
        Case("gather_dim1", lambda a: a.gather(1, nerve.tensor(GATHER_IDX)),
             lambda a: _np_gather(a, 1, GATHER_IDX), [(3, 4)]),
        Case("gather_dim0", lambda a: nerve.gather(a, 0, GATHER_IDX[:, :2]),
             lambda a: _np_gather(a, 0, GATHER_IDX[:, :2]), [(4, 3)]),
        Case("gather_neg_dim", lambda a: a.gather(-1, GATHER_IDX[:1]), lambda a: _np_gather(a, 1, GATHER_IDX[:1]),
             [(3, 4)]),
        Case("gather_3d", lambda a: a.gather(1, np.array([[[1], [0], [1]]])),
             lambda a: _np_gather(a, 1, np.array([[[1], [0], [1]]])), [(2, 2, 3)]),
        Case("gather_0d", lambda a: a.gather(0, np.array(0)), lambda a: a, [()]),
        Case("gather_empty", lambda a: a.gather(1, np.zeros((3, 0), dtype=int)), lambda a: np.zeros((3, 0)),
             [(3, 4)]),
        Case("scatter_add", lambda a, s: a.scatter_add(0, nerve.tensor(SCATTER_IDX), s),
             lambda a, s: _np_scatter_add(a, 0, SCATTER_IDX, s), [(3, 5), (2, 4)]),
        Case("scatter_add_src_larger", lambda a, s: nerve.scatter_add(a, 1, SCATTER_IDX, s),
             lambda a, s: _np_scatter_add(a, 1, SCATTER_IDX, s), [(2, 3), (3, 5)]),
        Case("scatter", lambda a, s: a.scatter(0, UNIQUE_IDX, s), lambda a, s: _np_scatter(a, 0, UNIQUE_IDX, s),
             [(3, 4), (2, 5)]),
        Case("scatter_value", lambda a: a.scatter(1, UNIQUE_IDX[:, :2], 2.5),
             lambda a: _np_scatter(a, 1, UNIQUE_IDX[:, :2], 2.5), [(2, 3)]),
        Case("index_select", lambda a: a.index_select(0, nerve.tensor([2, 0, 2])), lambda a: a[[2, 0, 2]],
             [(3, 2)]),
        Case("index_select_neg_dim", lambda a: nerve.index_select(a, -1, [1, 1]), lambda a: a[..., [1, 1]],
             [(2, 3, 2)]),
        Case("index_select_empty", lambda a: a.index_select(1, np.zeros(0, dtype=int)), lambda a: a[:, :0],
             [(2, 3)]),
        Case("index_add", lambda a, s: a.index_add(0, nerve.tensor([2, 0, 2]), s),
             lambda a, s: _np_index_add(a, 0, [2, 0, 2], s), [(3, 4), (3, 4)]),
        Case("index_add_alpha_dim1", lambda a, s: nerve.index_add(a, -2, [1, 1], s, alpha=-0.5),
             lambda a, s: _np_index_add(a, 1, [1, 1], s, -0.5), [(2, 3, 4), (2, 2, 4)]),
        Case("index_add_wide_rows", lambda a, s: a.index_add(0, [4, 4, 0, 4, 2], s, alpha=2),
             lambda a, s: _np_index_add(a, 0, [4, 4, 0, 4, 2], s, 2), [(5, 130), (5, 130)]),
        Case("index_add_only_input", lambda a, s: a.index_add(1, [0, 2], s),
             lambda a, s: _np_index_add(a, 1, [0, 2], s), [(2, 3), (2, 2)], grad=[0]),
        Case("index_add_empty", lambda a, s: a.index_add(1, np.zeros(0, dtype=int), s), lambda a, s: a,
             [(2, 3), (2, 0)]),
        Case("masked_fill", lambda a: a.masked_fill(nerve.tensor(MASK), -1.5), lambda a: np.where(MASK, -1.5, a),
             [(3, 4)]),
        Case("masked_fill_broadcast", lambda a: nerve.masked_fill(a, MASK[:1], 0.0),
             lambda a: np.where(MASK[:1], 0.0, a), [(2, 4)]),
        Case("masked_fill_tensor_value", lambda a, v: a.masked_fill(MASK, v), lambda a, v: np.where(MASK, v, a),
             [(3, 4), ()]),
        Case("masked_fill_0d", lambda a: a.masked_fill(np.array(True), 3.0), lambda a: np.full((), 3.0), [()]),
        Case("tril", lambda a: a.tril(), np.tril, [(4, 4)]),
        Case("tril_batched", lambda a: nerve.tril(a, -1), lambda a: np.tril(a, -1), [(2, 3, 4)]),
        Case("triu", lambda a: a.triu(1), lambda a: np.triu(a, 1), [(3, 4)]),
        Case("triu_batched_empty", lambda a: nerve.triu(a, 2), lambda a: np.triu(a, 2), [(0, 3, 3)]),
        Case("sort", lambda a: a.sort(), lambda a: (np.sort(a, -1), np.argsort(a, -1, kind="stable")), [(3, 4)]),
        Case("sort_values", lambda a: a.sort(0, descending=True).values, lambda a: -np.sort(-a, 0), [(4, 3)]),
        Case("sort_0d", lambda a: nerve.sort(a), lambda a: (a, np.zeros((), int)), [()]),
        Case("sort_empty", lambda a: nerve.sort(a, 0), lambda a: (a, np.zeros((0, 3), int)), [(0, 3)]),
        Case("topk", lambda a: a.topk(2), lambda a: (-np.sort(-a, -1)[:, :2], np.argsort(-a, -1)[:, :2]), [(3, 5)]),
        Case("topk_smallest_dim0", lambda a: nerve.topk(a, 3, dim=0, largest=False),
             lambda a: (np.sort(a, 0)[:3], np.argsort(a, 0)[:3]), [(5, 2)]),
        Case("topk_all", lambda a: a.topk(4), lambda a: (-np.sort(-a)[..., :4], np.argsort(-a)[..., :4]), [(2, 4)]),
        Case("topk_zero", lambda a: a.topk(0).values, lambda a: a[:, :0], [(2, 4)]),
        Case("topk_unsorted_values", lambda a: a.topk(2, sorted=False).values.sort().values,
             lambda a: np.sort(-np.sort(-a)[:, :2]), [(3, 5)]),
    ]


CASES = list(_index_cases()) + list(_other_cases())
for _case in CASES:  # every indexing op supports second order: every case also runs gradgradcheck
    _case.second = True

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, key", [
    ((7, 3), np.array([0, 6, 0, 0, 3, 6])),                              # bincount path
    ((40, 1), np.array([1, 1, 1])),                                      # few indices: add.at path
    ((5, 130), np.array([4, 4, 0, 4, 2])),                               # wide rows: sort-and-reduceat
    ((300, 40), np.array([7, 7, 299, 7])),                               # many rows, few indices: sort path
    ((2, 9, 4), (slice(None), np.array([[8, 8], [0, 8]]))),              # array on a middle axis
    ((4, 3, 130), (Ellipsis, np.array([2, 2]), slice(None))),            # Ellipsis before, wide rows after
    ((4, 5), (np.array([3, 3, 3]), np.array([1, 1, 2]))),                # two arrays: generic add.at
    ((4, 5), (np.array([-1, 3, -4]),)),                                  # negative indices
])
def test_repeated_index_backward_matches_add_at(shape, key, dtype):
    rng = np.random.default_rng(1)
    g = rng.standard_normal(np.zeros(shape)[key].shape).astype(dtype)
    want = np.zeros(shape, dtype)
    np.add.at(want, key, g)
    got = IndexBackward.apply(nerve.tensor(g), shape, key)
    assert got.dtype == dtype
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("key", [
    np.array([0, 0, 1, 2]),                      # one array: the fast scatter-add path
    (slice(None), np.array([3, 3])),
    (np.array([1, 1]), np.array([0, 0])),        # two arrays: add.at
])
def test_index_backward_of_a_transposed_gradient(key):
    """The incoming gradient may be a non-contiguous view; the scatter must not write into a copy."""
    x = nerve.tensor(np.ones((4, 4)), requires_grad=True)
    y = x[key]
    w = np.arange(float(y.numel())).reshape(y.shape[::-1])
    (y.T * nerve.tensor(w)).sum().backward()
    want = np.zeros((4, 4))
    np.add.at(want, key, w.T)
    np.testing.assert_array_equal(x.grad.numpy(), want)


def test_gather_backward_of_a_transposed_gradient():
    x = nerve.tensor(np.ones((3, 3)), requires_grad=True)
    idx = np.array([[0, 0, 2], [1, 1, 1], [2, 0, 0]])
    w = np.arange(9.0).reshape(3, 3)
    (x.gather(1, idx).T * nerve.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), _np_scatter_add(np.zeros((3, 3)), 1, idx, w.T))


def test_repeated_scatter_add_sums_every_copy():
    x = nerve.zeros(3, requires_grad=True)
    src = nerve.ones(6, dtype=nerve.float32, requires_grad=True)
    out = nerve.scatter_add(x, 0, nerve.tensor([0, 0, 0, 2, 2, 0]), src)
    np.testing.assert_array_equal(out.numpy(), [4, 0, 2])
    (out * nerve.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(src.grad.numpy(), [1, 1, 1, 3, 3, 1])
    np.testing.assert_array_equal(x.grad.numpy(), [1, 2, 3])


def test_index_add_sums_repeats_and_leaves_input_unchanged():
    x = nerve.zeros(3, 2)
    out = x.index_add(0, nerve.tensor([1, 1, 1]), nerve.ones(3, 2), alpha=2)
    np.testing.assert_array_equal(out.numpy(), [[0, 0], [6, 6], [0, 0]])
    np.testing.assert_array_equal(x.numpy(), np.zeros((3, 2)))
    assert out.dtype == np.float32
    ints = nerve.tensor([1, 2, 3]).index_add(0, nerve.tensor([0, 0]), nerve.tensor([5, 5]))
    np.testing.assert_array_equal(ints.numpy(), [11, 2, 3])


def test_index_add_source_gradient_is_index_select_of_grad():
    s = nerve.ones(3, 2, requires_grad=True)
    g = nerve.randn(4, 2)
    nerve.zeros(4, 2).index_add(0, nerve.tensor([3, 0, 3]), s, alpha=0.5).backward(g)
    np.testing.assert_allclose(s.grad.numpy(), 0.5 * g.index_select(0, nerve.tensor([3, 0, 3])).numpy())


def test_embedding_style_lookup_accumulates_repeats():
    table = nerve.randn(5, 3, requires_grad=True)
    table[nerve.tensor([[1, 1], [4, 1]])].sum().backward()
    np.testing.assert_array_equal(table.grad.numpy()[:, 0], [0, 3, 0, 0, 1])


def test_boolean_mask_indexing_and_gradient():
    x = nerve.tensor([[1.0, -2.0], [3.0, -4.0]], requires_grad=True)
    y = x[x > 0]
    np.testing.assert_array_equal(y.numpy(), [1.0, 3.0])
    (y * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2, 0], [2, 0]])


def test_sort_and_topk_return_values_with_grad_and_int64_indices():
    x = nerve.tensor([[3.0, 1.0, 2.0]], requires_grad=True)
    values, indices = x.sort(descending=True)
    assert values.requires_grad and not indices.requires_grad and indices.dtype == np.int64
    np.testing.assert_array_equal(indices.numpy(), [[0, 2, 1]])
    top = x.topk(1)
    assert top.indices.dtype == np.int64 and top.indices.item() == 0
    top.values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 0, 0]])


def test_sort_is_stable_for_ties():
    x = nerve.tensor([2.0, 1.0, 2.0, 1.0])
    np.testing.assert_array_equal(x.sort().indices.numpy(), [1, 3, 0, 2])
    np.testing.assert_array_equal(x.sort(descending=True).indices.numpy(), [0, 2, 1, 3])


def test_one_hot():
    out = nerve.one_hot(nerve.tensor([[0, 2], [1, 2]]))
    assert out.dtype == np.int64 and out.shape == (2, 2, 3) and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), np.eye(3, dtype=np.int64)[[[0, 2], [1, 2]]])
    assert nerve.one_hot(nerve.tensor([1]), num_classes=4).tolist() == [[0, 1, 0, 0]]
    assert nerve.one_hot(nerve.tensor(np.zeros(0, dtype=np.int64)), 3).shape == (0, 3)
    assert nerve.one_hot(nerve.tensor(2)).tolist() == [0, 0, 1]


def test_masked_fill_keeps_dtype_and_fills_minus_inf():
    x = nerve.zeros(2, 2)
    y = x.masked_fill(nerve.tril(nerve.ones(2, 2)) == 0, float("-inf"))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), [[0, -np.inf], [0, 0]])


@pytest.mark.parametrize("call, err, match", [
    (lambda: nerve.ones(2, 3)[5], IndexError, r"index: .*5.* \(tensor of shape \(2, 3\)\)"),
    (lambda: nerve.ones(2, 3)[0, 0, 0], IndexError, r"index: .*shape \(2, 3\)"),
    (lambda: nerve.ones(2, 3)[nerve.tensor([True, False, True])], IndexError, r"index: .*shape \(2, 3\)"),
    (lambda: nerve.ones(2, 3)[nerve.tensor([0.0])], IndexError, r"index: .*integer"),
    (lambda: nerve.ones(2, 3).gather(1, nerve.tensor([[0, 3]])), IndexError,
     "gather: index 3 is out of bounds for dim 1 with size 3"),
    (lambda: nerve.ones(2, 3).gather(1, nerve.tensor([[-1]])), IndexError, "gather: index -1 is out of bounds"),
    (lambda: nerve.ones(2, 3).gather(1, nerve.tensor([0, 1])), ValueError,
     r"gather: index and input must have the same number of dimensions, got input \(2, 3\), index \(2,\)"),
    (lambda: nerve.ones(2, 3).gather(1, nerve.tensor([[0], [0], [0]])), ValueError,
     r"gather: index of shape \(3, 1\) is larger than input \(2, 3\) in dim 0"),
    (lambda: nerve.ones(2, 3).gather(2, nerve.tensor([[0]])), IndexError, "gather: dim 2 is out of range"),
    (lambda: nerve.ones(2, 3).gather(1, nerve.tensor([[0.0]])), TypeError, "gather: index must be an integer"),
    (lambda: nerve.ones(3).scatter_add(0, nerve.tensor([0, 1]), nerve.ones(1)), ValueError,
     r"scatter_add: index of shape \(2,\) is larger than src \(1,\) in dim 0"),
    (lambda: nerve.ones(3).scatter_add(0, nerve.tensor([3]), nerve.ones(1)), IndexError,
     "scatter_add: index 3 is out of bounds for dim 0 with size 3"),
    (lambda: nerve.ones(3).scatter(0, nerve.tensor([[0]]), 1.0), ValueError, "scatter: index and input"),
    (lambda: nerve.ones(2, 3).index_select(1, nerve.tensor([3])), IndexError,
     "index_select: index 3 is out of bounds for dim 1 with size 3"),
    (lambda: nerve.ones(2, 3).index_select(0, nerve.tensor([[0]])), ValueError, "index_select: index must be 1-D"),
    (lambda: nerve.ones(2, 3).index_add(1, nerve.tensor([3]), nerve.ones(2, 1)), IndexError,
     "index_add: index 3 is out of bounds for dim 1 with size 3"),
    (lambda: nerve.ones(2, 3).index_add(1, nerve.tensor([[0]]), nerve.ones(2, 1)), ValueError,
     "index_add: index must be 1-D"),
    (lambda: nerve.ones(2, 3).index_add(1, nerve.tensor([0.0]), nerve.ones(2, 1)), TypeError,
     "index_add: index must be an integer"),
    (lambda: nerve.ones(2, 3).index_add(1, nerve.tensor([0, 1]), nerve.ones(2, 3)), ValueError,
     r"index_add: source of shape \(2, 3\) does not match input \(2, 3\) and an index of length 2 along dim 1: "
     r"expected \(2, 2\)"),
    (lambda: nerve.ones(2, 3).index_add(0, nerve.tensor([0]), nerve.ones(1, 3, dtype=nerve.float64)), TypeError,
     r"index_add: input \(float32\) and source \(float64\) must have the same dtype"),
    (lambda: nerve.ones(2, 3).index_add(2, nerve.tensor([0]), nerve.ones(2, 3)), IndexError,
     "index_add: dim 2 is out of range"),
    (lambda: nerve.ones(2, 3).masked_fill(nerve.ones(2, 3), 0.0), TypeError, "masked_fill: mask must be boolean"),
    (lambda: nerve.ones(2, 3).masked_fill(nerve.ones(3, 3) > 0, 0.0), ValueError,
     r"masked_fill: mask of shape \(3, 3\) does not broadcast to the input's shape \(2, 3\)"),
    (lambda: nerve.ones(2, 3).masked_fill(nerve.ones(2, 3) > 0, nerve.ones(2)), ValueError,
     "masked_fill: value must be a number or a 0-d tensor"),
    (lambda: nerve.tril(nerve.ones(3)), ValueError, r"tril: input must have at least 2 dimensions, got shape \(3,\)"),
    (lambda: nerve.triu(nerve.ones(())), ValueError, "triu: input must have at least 2 dimensions"),
    (lambda: nerve.ones(2, 3).topk(4), ValueError, r"topk: k \(4\) is out of range for dim 1 of size 3"),
    (lambda: nerve.ones(2, 3).sort(dim=-3), IndexError, "sort: dim -3 is out of range"),
    (lambda: nerve.one_hot(nerve.tensor([0, 5]), num_classes=3), ValueError,
     "one_hot: class value 5 is out of range for num_classes=3"),
    (lambda: nerve.one_hot(nerve.tensor([0, -1])), ValueError, "one_hot: class values must be non-negative, got -1"),
    (lambda: nerve.one_hot(nerve.tensor([0.0])), TypeError, "one_hot: expected an integer tensor"),
    (lambda: nerve.one_hot(nerve.tensor(np.zeros(0, dtype=np.int64))), ValueError,
     "one_hot: cannot infer num_classes"),
])
def test_errors_name_the_op_and_shapes(call, err, match):
    with pytest.raises(err, match=match):
        call()
