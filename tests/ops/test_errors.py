"""The exception classes PyTorch raises, with nerve's messages: shape mismatches raise ``nerve.ShapeError``
(a RuntimeError, as in PyTorch, and a ValueError, as nerve raised before); out-of-range indices raise
IndexError (class labels: ``TargetIndexError``, also a ValueError)."""
import numpy as np
import pytest

import nerve
import nerve.nn.functional as F

SHAPE_ERRORS = [
    ("reshape", lambda: nerve.ones(2, 3).reshape(4, 2), r"reshape: cannot reshape a tensor of shape \(2, 3\)"),
    ("view", lambda: nerve.ones(6).view(4, -1), "reshape: cannot reshape"),
    ("permute", lambda: nerve.ones(2, 3).permute(0, 0), r"permute: \(0, 0\) is not a permutation"),
    ("expand", lambda: nerve.ones(2, 3).expand(4, 3), r"expand: shape \(2, 3\) does not broadcast"),
    ("matmul", lambda: nerve.ones(2, 3) @ nerve.ones(4, 2), r"matmul: shapes \(2, 3\) and \(4, 2\) do not align"),
    ("mm", lambda: nerve.mm(nerve.ones(2, 3), nerve.ones(2, 3)), r"mm: expected matrices"),
    ("mv", lambda: nerve.mv(nerve.ones(2, 3), nerve.ones(2)), r"mv: expected a matrix"),
    ("bmm", lambda: nerve.bmm(nerve.ones(2, 3, 4), nerve.ones(2, 3, 4)), r"bmm: shapes"),
    ("dot", lambda: nerve.dot(nerve.ones(3), nerve.ones(4)), r"dot: expected two 1-D tensors of the same length"),
    ("einsum", lambda: nerve.einsum("ij,jk->ik", nerve.ones(2, 3), nerve.ones(4, 2)), r"einsum 'ij,jk->ik'"),
    ("broadcast_add", lambda: nerve.ones(3) + nerve.ones(4), r"add: shapes \(3,\) and \(4,\) do not broadcast"),
    ("broadcast_maximum", lambda: nerve.maximum(nerve.ones(3), nerve.ones(4)), "maximum: shapes"),
    ("concat", lambda: nerve.cat([nerve.ones(2, 3), nerve.ones(2, 4)]), "concat: tensors must have the same shape"),
    ("stack", lambda: nerve.stack([nerve.ones(2), nerve.ones(3)]), "stack: tensors must all have the same shape"),
    ("linear", lambda: F.linear(nerve.ones(2, 3), nerve.ones(4, 5)), r"linear: input \(2, 3\) does not match"),
    ("cross_entropy", lambda: F.cross_entropy(nerve.ones(4, 3), nerve.tensor([0, 1])),
     r"cross_entropy: class-index target of shape \(2,\)"),
    ("cross_entropy_probs", lambda: F.cross_entropy(nerve.ones(4, 3), nerve.ones(4, 2)),
     "cross_entropy: probability target"),
    ("gather", lambda: nerve.ones(2, 3).gather(1, nerve.tensor([0, 1])), "gather: index and input must have"),
    ("masked_fill", lambda: nerve.ones(2, 3).masked_fill(nerve.tensor([True, False]), 0.0), "masked_fill: mask"),
    ("layer_norm", lambda: F.layer_norm(nerve.ones(2, 3), (4,)), "layer_norm: expected input"),
]


@pytest.mark.parametrize("name, call, match", SHAPE_ERRORS, ids=[e[0] for e in SHAPE_ERRORS])
def test_shape_mismatches_raise_runtime_error_and_value_error(name, call, match):
    with pytest.raises(RuntimeError, match=match) as info:
        call()
    assert isinstance(info.value, ValueError) and isinstance(info.value, nerve.ShapeError)


INDEX_ERRORS = [
    ("getitem", lambda: nerve.ones(3)[5], "index"),
    ("getitem_array", lambda: nerve.ones(3)[nerve.tensor([0, 3])], "index"),
    ("gather", lambda: nerve.ones(2, 3).gather(1, nerve.tensor([[0, 3]])), "gather: index 3 is out of bounds"),
    ("index_select", lambda: nerve.ones(2, 3).index_select(0, nerve.tensor([2])), "index_select: index 2"),
    ("scatter", lambda: nerve.ones(2, 3).scatter(1, nerve.tensor([[4]]), 1.0), "scatter: index 4"),
    ("embedding", lambda: F.embedding(nerve.tensor([5]), nerve.ones(3, 2)), "index 5 is out of range"),
    ("cross_entropy_target", lambda: F.cross_entropy(nerve.ones(2, 3), nerve.tensor([0, 3])),
     "cross_entropy: target class 3 is out of range for 3 classes"),
]


@pytest.mark.parametrize("name, call, match", INDEX_ERRORS, ids=[e[0] for e in INDEX_ERRORS])
def test_out_of_range_indices_raise_index_error(name, call, match):
    with pytest.raises(IndexError, match=match):
        call()


def test_target_index_error_is_also_a_value_error():
    with pytest.raises(ValueError, match="target class -2"):
        F.nll_loss(nerve.ones(2, 3).log_softmax(1), nerve.tensor([0, -2]))


def test_shape_error_is_one_class_exported_where_users_look():
    assert nerve.ShapeError is nerve.autograd.ShapeError
    assert issubclass(nerve.ShapeError, RuntimeError) and issubclass(nerve.ShapeError, ValueError)
    assert np.all(nerve.ones(2).reshape(2, 1).numpy() == 1)  # a fitting shape still works
