"""Smaller PyTorch names: broadcast_tensors/shapes, tensordot, tensor_split, aminmax, renorm, nan_to_num,
heaviside, isin, index_put_, the in-place random fills, H/mH, storage_offset, detach_, __index__, __format__,
memory formats: against NumPy and, where differentiable, gradcheck in float64."""
import numpy as np
import pytest

import nerve
from tests.helpers import T

rng = np.random.default_rng(0)


def test_broadcast_tensors_and_shapes():
    a, b = T(rng.normal(size=(3, 1)), requires_grad=True), T(rng.normal(size=(4,)), requires_grad=True)
    x, y = nerve.broadcast_tensors(a, b)
    assert x.shape == y.shape == (3, 4) and nerve.broadcast_shapes((3, 1), 4, (2, 1, 1)) == (2, 3, 4)
    assert nerve.gradcheck(lambda p, q: nerve.broadcast_tensors(p, q)[0] * nerve.broadcast_tensors(p, q)[1], (a, b))
    with pytest.raises(ValueError, match="do not broadcast"):
        nerve.broadcast_shapes((3,), (4,))


@pytest.mark.parametrize("dims", [2, 1, ([1, 0], [0, 1]), ([2], [0])])
def test_tensordot_against_numpy_and_gradcheck(dims):
    a, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 3, 5)) if dims != 2 else rng.normal(size=(3, 4, 5))
    if dims == ([1, 0], [0, 1]):
        a, b = rng.normal(size=(3, 2, 4)), rng.normal(size=(2, 3, 5))
    if dims == 1:
        b = rng.normal(size=(4, 5))
    np.testing.assert_allclose(nerve.tensordot(T(a), T(b), dims).numpy(), np.tensordot(a, b, dims), rtol=1e-12)
    assert nerve.gradcheck(lambda p, q: nerve.tensordot(p, q, dims), (T(a, True), T(b, True)))


def test_tensor_split_like_numpy():
    x = T(np.arange(14.0).reshape(2, 7), requires_grad=True)
    for spec in (3, [2, 5], [5, 2, 9]):
        got = x.tensor_split(spec, dim=1)
        want = np.array_split(x.detach().numpy(), spec, axis=1)
        assert [g.shape for g in got] == [w.shape for w in want]
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w)
    assert nerve.gradcheck(lambda t: nerve.tensor_split(t, 3, 1)[1] * 2, (x,))


def test_aminmax_renorm_nan_to_num_heaviside_isin():
    x = T(rng.normal(size=(3, 4)), requires_grad=True)
    lo, hi = x.aminmax(dim=1)
    np.testing.assert_array_equal(lo.numpy(), x.detach().numpy().min(1))
    np.testing.assert_array_equal(hi.numpy(), x.detach().numpy().max(1))
    r = x.renorm(2, 0, 1.0).detach().numpy()
    norms = np.linalg.norm(x.detach().numpy(), axis=1)
    np.testing.assert_allclose(r, x.detach().numpy() * np.where(norms > 1, 1 / (norms + 1e-7), 1)[:, None])
    assert nerve.gradcheck(lambda t: t.renorm(2, 0, 1.5), (x,))
    y = T([np.nan, np.inf, -np.inf, 2.0], requires_grad=True)
    out = nerve.nan_to_num(y, nan=0.5, posinf=9.0)
    np.testing.assert_array_equal(out.detach().numpy(), [0.5, 9.0, np.finfo(np.float64).min, 2.0])
    out.sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(nerve.heaviside(T([-1.0, 0.0, 2.0]), T(0.5)).numpy(), [0.0, 0.5, 1.0])
    assert nerve.isin(nerve.tensor([1, 2, 3]), nerve.tensor([3, 1])).tolist() == [True, False, True]
    assert nerve.isin(nerve.tensor([1, 2]), nerve.tensor([1]), invert=True).tolist() == [False, True]


def test_index_put_and_random_fills():
    t = nerve.zeros(4)
    t.index_put_((nerve.tensor([0, 0, 3]),), nerve.tensor(1.0), accumulate=True)
    assert t.tolist() == [2.0, 0.0, 0.0, 1.0]
    t.index_put_((nerve.tensor([1]),), nerve.tensor(5.0))
    assert t.tolist() == [2.0, 5.0, 0.0, 1.0]
    with pytest.raises(TypeError, match="indices must be a tuple"):
        t.index_put_(nerve.tensor([1]), nerve.tensor(1.0))
    nerve.manual_seed(0)
    ints = nerve.zeros(20000, dtype=nerve.int64).random_(2, 5)
    assert set(ints.tolist()) == {2, 3, 4}
    e = nerve.zeros(20000).exponential_(2.0)
    assert abs(e.mean().item() - 0.5) < 0.02 and e.min().item() >= 0
    g = nerve.zeros(20000).geometric_(0.25)
    assert g.min().item() == 1 and abs(g.mean().item() - 4.0) < 0.15
    ln = nerve.zeros(20000).log_normal_(0.0, 0.5)
    assert abs(np.log(ln.numpy()).std() - 0.5) < 0.02
    c = nerve.zeros(20000).cauchy_(1.0, 2.0)
    assert abs(np.median(c.numpy()) - 1.0) < 0.1
    with pytest.raises(ValueError, match="random_: expects from_ < to"):
        nerve.zeros(2).random_(3, 3)


def test_small_tensor_protocols():
    x = T(rng.normal(size=(3, 4)))
    np.testing.assert_array_equal(x.H.numpy(), x.numpy().T)
    assert x.mH.shape == (4, 3) and x[1:].storage_offset() == 4 and x.storage_offset() == 0
    with pytest.raises(ValueError, match="expected a matrix"):
        nerve.ones(2, 2, 2).H
    assert f"{T(3.14159):.2f}" == "3.14" and f"{x}" == repr(x)
    assert [10, 20, 30][nerve.tensor(2)] == 30 and range(5)[nerve.tensor(1)] == 1
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        [1, 2][nerve.tensor(1.0)]
    y = (T([1.0], requires_grad=True) * 2).detach_()
    assert y.grad_fn is None and not y.requires_grad
    assert nerve.is_nonzero(nerve.tensor([1])) and not nerve.is_nonzero(nerve.tensor(0.0))
    with pytest.raises(RuntimeError, match="one element"):
        nerve.is_nonzero(nerve.ones(2))
    assert x.clone(memory_format=nerve.contiguous_format).shape == x.shape
    assert nerve.channels_last == "channels_last"


def test_jit_entry_points_return_the_model_and_archives_are_refused():
    model = nerve.nn.Linear(2, 2)
    assert nerve.jit.script(model) is model and nerve.jit.trace(model, nerve.ones(1, 2)) is model
    assert nerve.jit.ignore(len) is len and not nerve.jit.is_scripting()
    with pytest.raises(NotImplementedError, match="nerve.save"):
        nerve.jit.save(model, "m.pt")
    with pytest.raises(NotImplementedError, match="onnxruntime"):
        nerve.jit.load("m.pt")
