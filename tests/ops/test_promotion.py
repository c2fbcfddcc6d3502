"""PyTorch's type promotion in the binary ops, written as a table of rules: for each pair of operands (a tensor
with dimensions, a 0-d tensor, or a Python number) the dtype every arithmetic op gives, and the dtype true
division gives (integers divide to the default float dtype)."""
import numpy as np
import pytest

import nerve

D = "default"  # the default float dtype (nerve.get_default_dtype())

# (a, b, arithmetic result, true-division result); "int32" is a tensor of shape (2,), "int32[]" a 0-d tensor
RULES = [
    # tensors of one category: the wider dtype (NumPy agrees)
    ("float32", "float64", "float64", "float64"),
    ("float16", "float32", "float32", "float32"),
    ("int32", "int64", "int64", D),
    ("uint8", "int8", "int16", D),
    ("bool", "bool", "bool", D),
    ("int64", "int64", "int64", D),
    # integer with floating tensor: the floating dtype (NumPy would widen int32 + float32 to float64)
    ("int32", "float32", "float32", "float32"),
    ("int64", "float32", "float32", "float32"),
    ("int64", "float16", "float16", "float16"),
    ("uint8", "float16", "float16", "float16"),
    ("bool", "int32", "int32", D),
    ("bool", "float16", "float16", "float16"),
    # a 0-d tensor does not widen a tensor with dimensions of its own category, but lifts a lower category
    ("float32", "float64[]", "float32", "float32"),
    ("float16", "float64[]", "float16", "float16"),
    ("int32", "int64[]", "int32", D),
    ("int32", "float64[]", "float64", "float64"),
    ("bool", "int64[]", "int64", D),
    ("int64[]", "float32[]", "float32", "float32"),
    ("float32[]", "float64[]", "float64", "float64"),
    # a Python number: its category counts, never its width; a Python float lifts integers to the default dtype
    ("float32", 1.5, "float32", "float32"),
    ("float16", 2.5, "float16", "float16"),
    ("float64", 1.5, "float64", "float64"),
    ("int32", 2, "int32", D),
    ("int64", 1.5, D, D),
    ("int32", 1.5, D, D),
    ("uint8", 3, "uint8", D),
    ("bool", 2, "int64", D),
    ("bool", 1.5, D, D),
    ("bool", True, "bool", D),
    ("float32[]", 1.5, "float32", "float32"),
    ("int64[]", 1.5, D, D),
    (2, "int32", "int32", D),
    (1.5, "int64", D, D),
]

ARITHMETIC = {
    "add": lambda a, b: a + b, "mul": lambda a, b: a * b, "maximum": nerve.maximum, "minimum": nerve.minimum,
}
FLOAT_RESULT = {"div": lambda a, b: a / b, "true_divide": nerve.true_divide}
BOOL_FREE = {"sub": lambda a, b: a - b, "remainder": lambda a, b: a % b, "fmod": nerve.fmod,
             "floor_divide": lambda a, b: a // b, "pow": lambda a, b: a ** b}


def _operand(spec):
    if not isinstance(spec, str):
        return spec
    name, zero_d = spec.rstrip("[]"), spec.endswith("[]")
    values = np.array([1, 2] if name != "bool" else [True, True]).astype(name)
    return nerve.tensor(values[0] if zero_d else values)


def _want(spec):
    return nerve.get_default_dtype() if spec == D else np.dtype(spec)


def _has_tensor(a, b):
    return isinstance(a, nerve.Tensor) or isinstance(b, nerve.Tensor)


@pytest.mark.parametrize("default", [np.float32, np.float64])
@pytest.mark.parametrize("a, b, arith, division", RULES, ids=[f"{r[0]}-{r[1]}" for r in RULES])
def test_binary_ops_promote_like_pytorch(a, b, arith, division, default):
    previous = nerve.get_default_dtype()
    nerve.set_default_dtype(default)
    try:
        x, y = _operand(a), _operand(b)
        assert _has_tensor(x, y)
        for name, fn in ARITHMETIC.items():
            if name in ("maximum", "minimum") and not (isinstance(x, nerve.Tensor) and isinstance(y, nerve.Tensor)):
                continue  # PyTorch's maximum takes two tensors
            assert fn(x, y).dtype == _want(arith), name
        assert nerve.result_type(x, y) == _want(arith)
        for name, fn in FLOAT_RESULT.items():
            assert fn(x, y).dtype == _want(division), name
        if _want(arith) != np.bool_:  # PyTorch rejects these on two booleans too
            for name, fn in BOOL_FREE.items():
                assert fn(x, y).dtype == _want(arith), name
    finally:
        nerve.set_default_dtype(previous)


def test_promote_types_prefers_the_floating_dtype():
    assert nerve.promote_types(nerve.int64, nerve.float16) == np.float16
    assert nerve.promote_types(nerve.int32, nerve.float32) == np.float32
    assert nerve.promote_types(nerve.uint8, nerve.int8) == np.int16
    assert nerve.promote_types(nerve.float32, nerve.float64) == np.float64


def test_promotion_keeps_the_gradient_in_each_inputs_dtype():
    a = nerve.tensor([1.0, 2.0], requires_grad=True)  # float32
    b = nerve.tensor(3.0, dtype=nerve.float64, requires_grad=True)  # 0-d float64: does not widen a
    out = a * b
    assert out.dtype == np.float32
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad.numpy(), 3.0)
    np.testing.assert_allclose(b.grad.numpy(), 3.0)


def test_unary_float_ops_take_integers_to_the_default_dtype():
    i = nerve.tensor([1, 4])
    for fn in (nerve.exp, nerve.log, nerve.sqrt, nerve.sin, nerve.tanh, nerve.sigmoid, nerve.log2, nerve.atan):
        assert fn(i).dtype == nerve.get_default_dtype(), fn.__name__
    np.testing.assert_allclose(nerve.sqrt(i).numpy(), [1.0, 2.0])


def test_rounding_division_keeps_integers_and_rounds_like_pytorch():
    a, b = nerve.tensor([7, -7, 6, -6]), nerve.tensor([2, 2, -4, 4])
    np.testing.assert_array_equal(nerve.div(a, b, rounding_mode="trunc").numpy(), [3, -3, -1, -1])
    np.testing.assert_array_equal(a.div(b, rounding_mode="floor").numpy(), [3, -4, -2, -2])
    assert nerve.div(a, b, rounding_mode="trunc").dtype == np.int64
    x = nerve.tensor([7.5, -7.5], dtype=nerve.float64, requires_grad=True)
    out = nerve.div(x, 2.0, rounding_mode="trunc")
    np.testing.assert_array_equal(out.numpy(), [3.0, -3.0])
    (g,) = nerve.grad(out.sum(), x)
    np.testing.assert_array_equal(g.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(nerve.floor_divide(x.detach(), 2).numpy(), [3.0, -4.0])
    with pytest.raises(ValueError, match="div: rounding_mode must be None, 'trunc' or 'floor', got 'round'"):
        nerve.div(a, b, rounding_mode="round")


def test_type_as_casts_to_the_other_tensors_dtype():
    x = nerve.tensor([1.5, 2.5], requires_grad=True)
    y = x.type_as(nerve.zeros(1, dtype=nerve.float64))
    assert y.dtype == np.float64 and y.requires_grad
    assert x.type_as(nerve.tensor([1])).dtype == np.int64
