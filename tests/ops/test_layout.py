"""Layout conveniences (nerve/ops/layout.py), compositions of shape and index primitives: forward against
NumPy, gradcheck and gradgradcheck in float64 (all are linear)."""
import numpy as np
import pytest

import nerve
from tests.ops.table import Case, table_tests

IDX = np.array([[[1], [0]], [[2], [2]]])  # (2, 2, 1): broadcast against a (2, 3, 4) input along dim 1


def _np_diag_embed(a, offset=0):
    n = a.shape[-1] + abs(offset)
    out = np.zeros(a.shape[:-1] + (n, n))
    for k in range(a.shape[-1]):
        out[..., k + max(-offset, 0), k + max(offset, 0)] = a[..., k]
    return out


def _np_block_diag(*mats):
    mats = [np.atleast_2d(m) for m in mats]
    out = np.zeros((sum(m.shape[0] for m in mats), sum(m.shape[1] for m in mats)))
    r = c = 0
    for m in mats:
        out[r:r + m.shape[0], c:c + m.shape[1]] = m
        r, c = r + m.shape[0], c + m.shape[1]
    return out


CASES = [
    Case("t", lambda a: a.t(), lambda a: a.T, [(2, 3)]),
    Case("t_1d", nerve.t, lambda a: a, [(3,)]),
    Case("narrow", lambda a: a.narrow(1, 1, 2), lambda a: a[:, 1:3], [(2, 4)]),
    Case("narrow_neg_start", lambda a: nerve.narrow(a, -1, -3, 2), lambda a: a[..., -3:-1], [(2, 4)]),
    Case("select", lambda a: a.select(1, -1), lambda a: a[:, -1], [(2, 3, 4)]),
    Case("take", lambda a: a.take(nerve.tensor([[0, 5], [-1, 2]])), lambda a: a.reshape(-1)[[[0, 5], [-1, 2]]],
         [(2, 3)]),
    Case("take_along_dim", lambda a: nerve.take_along_dim(a, nerve.tensor(IDX), 1),
         lambda a: np.take_along_axis(a, np.broadcast_to(IDX, (2, 2, 4)), 1), [(2, 3, 4)]),
    Case("take_along_dim_flat", lambda a: a.take_along_dim(nerve.tensor([3, 0, 3])), lambda a: a.reshape(-1)[[3, 0, 3]],
         [(2, 3)]),
    Case("hstack", lambda a, b: nerve.hstack([a, b]), lambda a, b: np.hstack([a, b]), [(2, 3), (2, 1)]),
    Case("hstack_1d", lambda a, b: nerve.hstack([a, b]), lambda a, b: np.hstack([a, b]), [(3,), (2,)]),
    Case("vstack", lambda a, b: nerve.vstack([a, b]), lambda a, b: np.vstack([a, b]), [(3,), (2, 3)]),
    Case("row_stack", lambda a, b: nerve.row_stack((a, b)), lambda a, b: np.vstack([a, b]), [(2, 3), (1, 3)]),
    Case("dstack", lambda a, b: nerve.dstack([a, b]), lambda a, b: np.dstack([a, b]), [(2, 3), (2, 3)]),
    Case("column_stack", lambda a, b: nerve.column_stack([a, b]), lambda a, b: np.column_stack([a, b]),
         [(3,), (3, 2)]),
    Case("atleast_3d", lambda a, b: nerve.atleast_3d(a, b), lambda a, b: (np.atleast_3d(a), np.atleast_3d(b)),
         [(3,), (2, 3)]),
    Case("atleast_2d_0d", nerve.atleast_2d, np.atleast_2d, [()]),
    Case("atleast_1d", lambda a, b: nerve.atleast_1d([a, b]), lambda a, b: (np.atleast_1d(a), np.atleast_1d(b)),
         [(), (2,)]),
    Case("ravel", lambda a: a.ravel(), np.ravel, [(2, 3)]),
    Case("fliplr", lambda a: a.fliplr(), np.fliplr, [(2, 3)]),
    Case("flipud", nerve.flipud, np.flipud, [(2, 3)]),
    *[Case(f"rot90_{k}", lambda a, k=k: a.rot90(k, (1, 2)), lambda a, k=k: np.rot90(a, k, (1, 2)), [(2, 3, 4)])
      for k in (-1, 0, 1, 2, 3, 5)],
    Case("diag_embed", lambda a: a.diag_embed(), _np_diag_embed, [(2, 3)]),
    Case("diag_embed_offset", lambda a: nerve.diag_embed(a, -1), lambda a: _np_diag_embed(a, -1), [(2, 3)]),
    Case("diag_embed_dims", lambda a: nerve.diag_embed(a, 1, 0, 2),
         lambda a: np.moveaxis(_np_diag_embed(a, 1), (-2, -1), (0, 2)), [(2, 3)]),
    Case("block_diag", nerve.block_diag, _np_block_diag, [(2, 3), (1, 1), (2,)]),
    Case("cartesian_prod", nerve.cartesian_prod, lambda a, b: np.array([[x, y] for x in a for y in b]),
         [(3,), (2,)]),
]
for _case in CASES:
    _case.second = True

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


def test_triangle_indices_match_numpy():
    np.testing.assert_array_equal(nerve.tril_indices(4, 3, -1).numpy(), np.stack(np.tril_indices(4, -1, 3)))
    np.testing.assert_array_equal(nerve.triu_indices(3, 5, 1).numpy(), np.stack(np.triu_indices(3, 1, 5)))
    assert nerve.tril_indices(3, 3).dtype == np.int64


@pytest.mark.parametrize("call, err, match", [
    (lambda: nerve.ones(2, 3, 4).t(), RuntimeError, r"t: expected a tensor with at most 2 dimensions"),
    (lambda: nerve.ones(2, 4).narrow(1, 3, 2), IndexError, "narrow: start 3 and length 2 do not fit dim 1"),
    (lambda: nerve.ones(2, 4).select(0, 2), IndexError, "select: index 2 is out of range for dim 0 of size 2"),
    (lambda: nerve.ones(6).take(nerve.tensor([6])), IndexError, "take: index out of range"),
    (lambda: nerve.ones(3).fliplr(), RuntimeError, "fliplr: expected at least 2 dimensions"),
    (lambda: nerve.take_along_dim(nerve.ones(2, 3), nerve.tensor([0]), 1), RuntimeError, "take_along_dim"),
])
def test_layout_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_numel_and_fill_diagonal():
    assert nerve.numel(nerve.ones(2, 3)) == 6
    x = nerve.zeros(5, 2)
    x.fill_diagonal_(3.0, wrap=True)
    want = np.zeros((5, 2))
    np.fill_diagonal(want, 3.0, wrap=True)
    np.testing.assert_array_equal(x.numpy(), want)
    with pytest.raises(RuntimeError, match=r"fill_diagonal_: expected a matrix or a tensor with all dims equal"):
        nerve.zeros(2, 3, 4).fill_diagonal_(1.0)
    w = nerve.zeros(2, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match="fill_diagonal_: in-place change of a leaf tensor"):
        w.fill_diagonal_(1.0)
