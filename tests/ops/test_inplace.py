"""PyTorch's in-place variants bound by nerve/ops/__init__.py (x.exp_() writes exp(x) into x): the values
against the out-of-place op, the version counter, the graph guard, and the errors for results that do not fit."""
import numpy as np
import pytest

import nerve


@pytest.mark.parametrize("name, args", [
    ("exp", ()), ("sqrt", ()), ("abs", ()), ("neg", ()), ("tanh", ()), ("sigmoid", ()), ("floor", ()),
    ("round", ()), ("reciprocal", ()), ("pow", (2,)), ("clamp_min", (0.5,)), ("clip", (0.2, 0.9)),
    ("lerp", (nerve.tensor([1.0, 0.0, 2.0]), 0.25)), ("addcmul", (nerve.ones(3), nerve.tensor([1.0, 2.0, 3.0]))),
    ("masked_fill", (nerve.tensor([True, False, True]), -1.0)), ("relu", ()), ("fmod", (0.3,)),
])
def test_inplace_matches_out_of_place(name, args):
    x = nerve.tensor([0.25, 0.5, 1.75])
    want = getattr(nerve.ops, name)(x, *args).numpy().copy()
    data, version = x.data, x._version
    assert getattr(x, name + "_")(*args) is x
    assert x.data is data and x._version == version + 1
    np.testing.assert_allclose(x.numpy(), want, rtol=1e-6)


def test_inplace_scatter_and_index_add():
    x = nerve.zeros(2, 3)
    x.scatter_(1, nerve.tensor([[2], [0]]), 5.0 * nerve.ones(2, 1))
    x.index_add_(0, nerve.tensor([1]), nerve.ones(1, 3))
    np.testing.assert_array_equal(x.numpy(), [[0, 0, 5], [6, 1, 1]])


def test_reshaping_inplace_methods():
    x = nerve.zeros(2, 3)
    x.unsqueeze_(0)
    assert x.shape == (1, 2, 3)
    x.squeeze_().t_()
    assert x.shape == (3, 2)
    x.transpose_(0, 1)
    assert x.shape == (2, 3)


def test_inplace_guards_the_graph_and_dtypes():
    w = nerve.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="exp_: in-place change of a leaf tensor that requires grad"):
        w.exp_()
    with nerve.no_grad():
        w.mul_(2.0).exp_()
    np.testing.assert_allclose(w.numpy(), np.exp(2.0), rtol=1e-6)
    with pytest.raises(RuntimeError, match="exp_: the result's dtype float32 cannot be written into .* int64"):
        nerve.tensor([1, 2]).exp_()
    with pytest.raises(RuntimeError, match=r"lerp_: the result of shape \(2, 3\) does not fit the tensor of shape"):
        nerve.zeros(3).lerp_(nerve.ones(2, 3), 0.5)
