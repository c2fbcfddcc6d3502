"""Casting and dtypes under PyTorch's names: type(), the cast methods, view(dtype), the default dtype."""
import numpy as np
import pytest

import nerve
from nerve.tensor import GradDtypeError


def test_dtype_names_are_numpy_dtypes_with_pytorch_aliases():
    table = {"float16": np.float16, "half": np.float16, "float32": np.float32, "float": np.float32,
             "float64": np.float64, "double": np.float64, "uint8": np.uint8, "int8": np.int8, "int16": np.int16,
             "short": np.int16, "int32": np.int32, "int": np.int32, "int64": np.int64, "long": np.int64,
             "bool": np.bool_, "complex64": np.complex64, "cfloat": np.complex64, "complex128": np.complex128}
    for name, want in table.items():
        assert getattr(nerve, name) == np.dtype(want), name
    with pytest.raises(AttributeError, match="no bfloat16 type"):
        nerve.bfloat16  # noqa: B018
    with pytest.raises(TypeError, match="no bfloat16 type"):
        nerve.ones(2).bfloat16()


@pytest.mark.parametrize("method, dtype", [("float", np.float32), ("double", np.float64), ("half", np.float16),
                                           ("int", np.int32), ("long", np.int64), ("bool", np.bool_),
                                           ("short", np.int16), ("byte", np.uint8), ("char", np.int8)])
def test_cast_methods_match_numpy_astype(method, dtype):
    values = np.array([-2.7, -0.0, 0.4, 1.0, 3.9])
    out = getattr(nerve.tensor(values), method)()
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.numpy(), values.astype(dtype))


def test_type_names_and_casts():
    x = nerve.ones(2)
    assert x.type() == "torch.FloatTensor" and x.long().type() == "torch.LongTensor"
    assert nerve.ones(1, dtype=nerve.bool).type() == "torch.BoolTensor"
    assert x.type(nerve.float64).dtype == np.float64
    assert x.type("torch.IntTensor").dtype == np.int32
    assert x.type("torch.DoubleTensor").dtype == np.float64
    assert x.type(nerve.float32) is x                       # no cast needed: the same tensor, as in PyTorch
    with pytest.raises(TypeError, match="unknown dtype"):
        x.type("torch.NoSuchTensor")


def test_float_casts_stay_differentiable_and_integer_casts_leave_the_graph():
    x = nerve.tensor([1.0, 2.0, 3.0], dtype=nerve.float64, requires_grad=True)
    y = x.float() * nerve.tensor([1.0, 2.0, 3.0])
    assert y.dtype == np.float32 and y.requires_grad
    y.sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0, 3.0])
    assert not x.long().requires_grad and not x.bool().requires_grad


def test_view_dtype_reinterprets_bytes_with_pytorchs_size_rule():
    x = nerve.tensor([[1.0, -2.0], [0.5, 3.0]])
    same = x._view_dtype(nerve.int32)
    assert same.shape == (2, 2) and same.dtype == np.int32
    np.testing.assert_array_equal(same.numpy(), np.array([[1.0, -2.0], [0.5, 3.0]], np.float32).view(np.int32))
    halves = x._view_dtype(nerve.float16)
    assert halves.shape == (2, 4)
    wide = nerve.arange(6)._view_dtype(nerve.float64)   # int64 -> float64: same element size, the shape kept
    assert wide.shape == (6,)
    assert x._view_dtype(nerve.uint8).shape == (2, 8)
    with pytest.raises(RuntimeError, match="not a multiple"):
        nerve.ones(3)._view_dtype(nerve.float64)
    with pytest.raises(RuntimeError, match="0-d"):
        nerve.tensor(1.0)._view_dtype(nerve.float16)
    with pytest.raises(RuntimeError, match="contiguous"):
        nerve.ones(4, 2).T._view_dtype(nerve.float64)


def test_view_method_takes_a_dtype():
    """``x.view(dtype)`` is bound by nerve.ops (shape.view) and hands dtypes to ``Tensor._view_dtype``."""
    x = nerve.tensor([1.0, 2.0])
    np.testing.assert_array_equal(x.view(nerve.int32).numpy(), np.array([1.0, 2.0], np.float32).view(np.int32))
    assert x.view(nerve.float16).shape == (4,) and x.view(2, 1).shape == (2, 1)


def test_default_dtype_and_is_floating_point():
    assert nerve.get_default_dtype() == np.float32
    nerve.set_default_dtype(nerve.float64)
    try:
        assert nerve.tensor([1.5]).dtype == np.float64 and nerve.rand(2).dtype == np.float64
        assert nerve.arange(0.0, 1.0, 0.5).dtype == np.float64 and nerve.arange(3).dtype == np.int64
    finally:
        nerve.set_default_dtype(nerve.float32)
    assert nerve.ones(1).is_floating_point() and nerve.is_floating_point(nerve.ones(1, dtype=nerve.float16))
    assert not nerve.arange(2).is_floating_point() and not nerve.ones(1, dtype=nerve.bool).is_floating_point()
    assert nerve.is_tensor(nerve.ones(1)) and not nerve.is_tensor(np.ones(1))
    assert nerve.ones(3).element_size() == 4 and nerve.ones(3, dtype=nerve.float64).element_size() == 8


def test_requires_grad_on_integer_tensor_raises_through_attribute_and_method():
    t = nerve.tensor([1, 2])
    for set_flag in (lambda: setattr(t, "requires_grad", True), lambda: t.requires_grad_(True)):
        with pytest.raises(RuntimeError, match="only floating-point tensors can require gradients, got dtype int64"):
            set_flag()
        assert not t.requires_grad
    with pytest.raises(GradDtypeError):
        nerve.zeros(2, dtype=nerve.int64, requires_grad=True)
    with pytest.raises(TypeError):           # nerve raised TypeError before; both classes still catch it
        nerve.arange(3, requires_grad=True)
    f = nerve.zeros(2)
    f.requires_grad = True
    assert f.requires_grad and f.is_leaf
    with pytest.raises(RuntimeError, match="detach"):
        (f * 2).requires_grad = False


def test_storage_queries_against_numpy():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = nerve.from_numpy(a)
    assert x.stride() == (12, 4, 1) and x.stride(1) == 4
    assert x.permute(2, 0, 1).stride() == (1, 12, 4)
    assert x.nelement() == 24 and x.ndimension() == 3 and x.itemsize == 4 and x.nbytes == 96
    assert x.data_ptr() == a.ctypes.data and x[1].data_ptr() == a.ctypes.data + 48
    assert x.get_device() == -1 and x.pin_memory() is x and not x.is_pinned()
