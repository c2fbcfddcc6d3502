"""finfo/iinfo, constants, print options (checked against strings PyTorch 2.14 prints for the same calls),
Tensor.numpy(force=), share_memory_, apply_/map_, and nerve.testing.assert_close's checks and messages (PyTorch's
wording, recorded from torch.testing)."""
import math

import numpy as np
import pytest

import nerve
from nerve.testing import assert_allclose, assert_close, make_tensor


@pytest.fixture(autouse=True)
def default_print_options():
    yield
    nerve.set_printoptions(profile="default")


def test_finfo_iinfo_fields():
    f = nerve.finfo(nerve.float32)
    assert f.bits == 32 and f.eps == float(np.finfo(np.float32).eps) and f.max == float(np.finfo(np.float32).max)
    assert f.min == -f.max and f.tiny == f.smallest_normal == float(np.finfo(np.float32).tiny)
    assert f.dtype == "float32" and f.resolution == 1e-06
    assert nerve.finfo().dtype == np.dtype(nerve.get_default_dtype()).name
    assert nerve.finfo(nerve.float64).eps == 2.220446049250313e-16 and nerve.finfo("float16").bits == 16
    assert nerve.finfo(nerve.complex64).eps == f.eps
    i = nerve.iinfo(nerve.int16)
    assert (i.bits, i.min, i.max, i.dtype) == (16, -32768, 32767, "int16")
    assert nerve.iinfo(nerve.uint8).max == 255 and nerve.iinfo(nerve.int64).min == -2 ** 63
    assert repr(i) == "iinfo(min=-32768, max=32767, dtype=int16)"
    with pytest.raises(TypeError, match="finfo: expected a floating point dtype, got int32"):
        nerve.finfo(nerve.int32)
    with pytest.raises(TypeError, match="iinfo: expected a integer dtype, got float32"):
        nerve.iinfo(nerve.float32)


def test_constants():
    assert nerve.inf == math.inf and math.isnan(nerve.nan) and nerve.pi == math.pi and nerve.e == math.e
    assert nerve.ones(3)[nerve.newaxis].shape == (1, 3)


def test_repr_follows_pytorch_formats():
    assert repr(nerve.tensor([1.5, 2.0])) == "tensor([1.5000, 2.0000])"
    assert repr(nerve.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(nerve.tensor([1.23456, 2e-5, 100.0])) == "tensor([1.2346e+00, 2.0000e-05, 1.0000e+02])"
    assert repr(nerve.arange(2000.0)) == ("tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"
                                          "        1.9990e+03])")
    assert repr(nerve.tensor([[1, 2], [3, 4]])) == "tensor([[1, 2],\n        [3, 4]])"


def test_set_printoptions_is_honoured():
    nerve.set_printoptions(precision=2)
    assert repr(nerve.tensor([1.23456, 2e-5, 100.0])) == "tensor([1.23e+00, 2.00e-05, 1.00e+02])"
    nerve.set_printoptions(sci_mode=False)
    assert repr(nerve.tensor([1.23456, 2e-5, 1e6])) == "tensor([      1.23,       0.00, 1000000.00])"
    nerve.set_printoptions(profile="default")
    nerve.set_printoptions(threshold=5, edgeitems=1)
    assert repr(nerve.tensor([1.5, 2.5, 3.5, 4.5, 5.5, 6.5])) == "tensor([1.5000,  ..., 6.5000])"
    nerve.set_printoptions(profile="full")
    assert "..." not in repr(nerve.arange(2000.0))
    nerve.set_printoptions(profile="default", linewidth=30)
    assert max(len(line) for line in repr(nerve.arange(12.0) + 0.5).splitlines()) <= 30
    assert nerve.get_printoptions()["linewidth"] == 30
    with pytest.raises(ValueError, match="profile must be one of"):
        nerve.set_printoptions(profile="long")


def test_tensor_numpy_share_apply_map():
    x = nerve.tensor([1.0, 2.0], requires_grad=True)
    assert x.numpy(force=True) is x.data and x.numpy() is x.data  # nerve converts without force (PyTorch raises)
    y = nerve.tensor([1.0, 2.0, 3.0])
    assert not y.is_shared() and y.share_memory_() is y and y.is_shared()
    assert y.apply_(lambda v: v * 10) is y and y.tolist() == [10.0, 20.0, 30.0]
    assert y.map_(nerve.tensor([1.0]), lambda a, b: a + b).tolist() == [11.0, 21.0, 31.0]
    with pytest.raises(RuntimeError, match="apply_: in-place change of a leaf tensor that requires grad"):
        x.apply_(abs)
    v = y[1:]  # a view: apply_ writes through it
    v.apply_(lambda a: -a)
    assert y.tolist() == [11.0, -21.0, -31.0]


def _message(actual, expected, **kw):
    with pytest.raises(AssertionError) as info:
        assert_close(actual, expected, **kw)
    return str(info.value)


def test_assert_close_messages_match_pytorch():
    t = nerve.tensor
    assert _message(t([1.0, 2.0, 3.0]), t([1.0, 2.1, 3.0])).splitlines() == [
        "Tensor-likes are not close!", "", "Mismatched elements: 1 / 3 (33.3%)",
        "Greatest absolute difference: 0.09999990463256836 at index (1,) (up to 1e-05 allowed)",
        "Greatest relative difference: 0.047619004368509764 at index (1,) (up to 1.3e-06 allowed)"]
    assert _message(t([[1, 2], [3, 4]]), t([[1, 2], [3, 5]])).splitlines()[0] == "Tensor-likes are not equal!"
    assert "Greatest absolute difference: 1 at index (1, 1)" in _message(t([[1, 2], [3, 4]]), t([[1, 2], [3, 5]]))
    assert _message(t([1.0, 2.0]), t([1.0, 2.0, 3.0])) == "The values for attribute 'shape' do not match: (2,) != (3,)."
    assert _message(t([1.0]), t([1.0], dtype=nerve.float64)) == ("The values for attribute 'dtype' do not match: "
                                                                 "nerve.float32 != nerve.float64.")
    assert _message(1, 2) == ("Scalars are not equal!\n\nExpected 2 but got 1.\nAbsolute difference: 1\n"
                              "Relative difference: 0.5")
    assert _message([t(1.0)], [t(1.0), t(2.0)]) == "The length of the sequences mismatch: 1 != 2"
    assert "Missing keys in the actual mapping: ['b']" in _message({"a": t(1.0)}, {"b": t(1.0)})
    assert "nan at index (0,)" in _message(t([math.nan]), t([math.nan]))
    assert _message(t([1.0]), t([2.0]), msg="custom") == "custom"
    wrapped = _message(t([1.0]), t([2.0]), msg=lambda m: "wrapped: " + m.splitlines()[0])
    assert wrapped == "wrapped: Tensor-likes are not close!"


def test_assert_close_passes_and_raises_as_pytorch():
    t = nerve.tensor
    assert_close(t([1.0, 2.0]), t([1.0, 2.0 + 1e-6]))  # within float32's defaults
    assert_close(t([1.0, 2.0]), t([1.0, 2.0], dtype=nerve.float64), check_dtype=False)
    assert_close(t([math.nan]), t([math.nan]), equal_nan=True)
    assert_close(t([1.0, 2.0]), t([1.0, 2.05]), rtol=0.1, atol=0.0)
    assert_close(np.array([1.0]), np.array([1.0]))
    assert_close({"w": [t(1.0), 2]}, {"w": [t(1.0), 2]})
    assert_close(t([1.0], requires_grad=True), t([1.0]))
    with pytest.raises(AssertionError):
        assert_close(t([1.0, 2.0], dtype=nerve.float64), t([1.0, 2.0 + 1e-6], dtype=nerve.float64))
    with pytest.raises(ValueError, match="Both 'rtol' and 'atol' must be either specified or omitted, but got no atol"):
        assert_close(t([1.0]), t([1.0]), rtol=0.1)
    with pytest.raises(TypeError, match="No comparison pair"):
        assert_close(t([1.0]), [1.0])
    with pytest.raises(TypeError, match="No comparison pair"):
        assert_close(t(1.0), 1.0)
    assert_allclose(t([1.0]), t([1.0], dtype=nerve.float64))


def test_make_tensor():
    nerve.manual_seed(0)
    a = make_tensor(2, 3, dtype=nerve.float32, low=-1, high=1)
    assert a.shape == (2, 3) and a.dtype == nerve.float32 and bool(((a >= -1) & (a < 1)).all())
    b = make_tensor((4,), dtype=nerve.int64, exclude_zero=True)
    assert b.dtype == nerve.int64 and 0 not in b.tolist()
    assert make_tensor(3, dtype=nerve.float64, requires_grad=True).requires_grad
    nerve.manual_seed(0)
    assert make_tensor(2, 3, dtype=nerve.float32, low=-1, high=1).tolist() == a.tolist()
