"""Tensor: attributes, conversions, repr, operators, comparisons, in-place rules, detach and requires_grad."""
import numpy as np
import pytest

import nerve


def test_attributes_and_conversions():
    x = nerve.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert x.shape == (2, 2) and x.ndim == 2 and x.size() == (2, 2) and x.size(1) == 2
    assert x.numel() == 4 and x.device == "cpu"
    assert x[1, 0].item() == 3.0
    assert np.asarray(x).shape == (2, 2)
    assert x.to(nerve.float64).dtype == np.float64
    assert x.astype("float64").dtype == np.float64
    assert x.to("cpu") is x
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert float(x.sum()) == 10.0
    assert len(x) == 2 and [r.shape for r in x] == [(2,), (2,)]


def test_repr_shows_values_and_grad_fn():
    x = nerve.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert "grad_fn=<MulBackward>" in repr(x * 2)
    assert "dtype=float64" in repr(nerve.zeros(1, dtype=nerve.float64))


def test_operators_broadcast_and_reflect():
    a = nerve.tensor([[1.0], [2.0]])
    b = nerve.tensor([10.0, 20.0, 30.0])
    np.testing.assert_allclose((a + b).numpy(), np.array([[1.0], [2.0]]) + np.array([10.0, 20.0, 30.0]))
    np.testing.assert_allclose((2 - a).numpy(), [[1.0], [0.0]])
    np.testing.assert_allclose((6 / a).numpy(), [[6.0], [3.0]])
    np.testing.assert_allclose((2 ** a).numpy(), [[2.0], [4.0]])
    np.testing.assert_allclose((np.ones((2, 1)) * a).numpy(), [[1.0], [2.0]])
    assert isinstance(np.ones(3) + b, nerve.Tensor)
    np.testing.assert_allclose((b @ b).numpy(), 1400.0)
    np.testing.assert_allclose((-a).numpy(), [[-1.0], [-2.0]])
    np.testing.assert_allclose(abs(nerve.tensor([-3.0])).numpy(), [3.0])
    np.testing.assert_allclose((b // 7).numpy(), [1.0, 2.0, 4.0])


def test_comparisons_return_boolean_tensors_without_grad():
    x = nerve.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for result, want in ((x > 1.5, [False, True, True]), (x <= 2, [True, True, False]),
                         (x == 2, [False, True, False]), (x != 2, [True, False, True]),
                         (x >= 3, [False, False, True]), (x < 1, [False, False, False])):
        assert result.dtype == np.bool_ and not result.requires_grad
        assert result.numpy().tolist() == want
    assert ((x > 1) & (x < 3)).numpy().tolist() == [False, True, False]
    assert (~(x > 1)).numpy().tolist() == [True, False, False]


def test_inplace_operators_on_plain_tensors_bump_version():
    x = nerve.zeros(3)
    v = x._version
    x += 1
    x *= 3
    x -= 1
    x /= 2
    x.add_(1, alpha=2).clamp_(max=2.5)
    np.testing.assert_allclose(x.numpy(), 2.5)
    assert x._version > v
    x[0] = 7
    x.zero_()
    assert x.numpy().sum() == 0


def test_detach_and_requires_grad_flags():
    x = nerve.randn(3, requires_grad=True)
    y = x * 2
    assert y.requires_grad and not y.is_leaf
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.data, y.data)
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)
