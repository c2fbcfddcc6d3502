"""Elementwise ops through the op table (forward against NumPy, gradcheck and gradgradcheck in float64, both rule
paths, poisoned namespace), and their special cases."""
import numpy as np
import pytest
from scipy import special

import nerve
from tests.ops.table import Case, table_tests

BINARY_SHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)), ((), (2, 3)), ((0, 3), (3,))]
UNARY_SHAPES = [(5,), (2, 3), (), (0, 4)]


def _away_from_zero(shape):
    """Inputs with |x| in [0.2, 2] and random sign: keeps kinks (relu, abs) out of the differences."""
    def make(rng):
        return [rng.uniform(0.2, 2, size=s) * rng.choice([-1.0, 1.0], size=s) for s in shape]
    return make


BINARY = [
    ("add", lambda a, b: a + b, np.add, -2, 2),
    ("sub", lambda a, b: a - b, np.subtract, -2, 2),
    ("mul", lambda a, b: a * b, np.multiply, -2, 2),
    ("div", lambda a, b: a / b, np.divide, 0.5, 2),
    ("pow", lambda a, b: a ** b, np.power, 0.5, 2),
    ("maximum", nerve.maximum, np.maximum, -2, 2),
    ("minimum", nerve.minimum, np.minimum, -2, 2),
]

UNARY = [
    ("neg", lambda a: -a, np.negative, -2, 2, None),
    ("exp", nerve.exp, np.exp, -2, 2, None),
    ("log", nerve.log, np.log, 0.3, 3, None),
    ("log1p", nerve.log1p, np.log1p, -0.5, 2, None),
    ("expm1", nerve.expm1, np.expm1, -2, 2, None),
    ("sqrt", nerve.sqrt, np.sqrt, 0.3, 3, None),
    ("rsqrt", nerve.rsqrt, lambda a: 1 / np.sqrt(a), 0.3, 3, None),
    ("abs", nerve.abs, np.abs, -2, 2, "away"),
    ("sign", nerve.sign, np.sign, -2, 2, "away"),
    ("sin", nerve.sin, np.sin, -3, 3, None),
    ("cos", nerve.cos, np.cos, -3, 3, None),
    ("tanh", nerve.tanh, np.tanh, -2, 2, None),
    ("sigmoid", nerve.sigmoid, special.expit, -4, 4, None),
    ("erf", nerve.erf, special.erf, -2, 2, None),
    ("pow_scalar", lambda a: a ** 3, lambda a: a ** 3, -2, 2, None),
    ("pow_half", lambda a: a ** 0.5, np.sqrt, 0.3, 2, None),
    ("rpow", lambda a: 2.0 ** a, lambda a: 2.0 ** a, -2, 2, None),
    ("square", lambda a: a ** 2, np.square, -2, 2, None),
    ("square_fn", nerve.square, np.square, -2, 2, None),
    ("reciprocal", lambda a: a.reciprocal(), np.reciprocal, 0.5, 2, None),
    ("clamp", lambda a: nerve.clamp(a, -0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), -2, 2, "away"),
    ("scalar_ops", lambda a: (3.0 - a) * 2.0 / (a * a + 1.0) + 1.0,
     lambda a: (3.0 - a) * 2.0 / (a * a + 1.0) + 1.0, -2, 2, None),
]


def _unary_cases():
    for name, fn, ref, lo, hi, mode in UNARY:
        for shape in UNARY_SHAPES:
            make = _away_from_zero([shape]) if mode == "away" else None
            if name == "clamp":
                make = _clamp_inputs(shape)
            yield Case(name, fn, ref, [shape], lo, hi, second=True, make=make)


def _clamp_inputs(shape):
    def make(rng):
        x = rng.uniform(-2, 2, size=shape)
        x[np.abs(x + 0.5) < 0.05] += 0.2
        x[np.abs(x - 0.7) < 0.05] += 0.2
        return [x]
    return make


def _binary_cases():
    for name, fn, ref, lo, hi in BINARY:
        for shapes in BINARY_SHAPES:
            make = None
            if name in ("maximum", "minimum"):
                def make(rng, shapes=shapes):  # distinct values: no ties inside the difference step
                    return [rng.uniform(-2, 2, size=s) + (0.01 * i) for i, s in enumerate(shapes)]
            yield Case(name, fn, ref, list(shapes), lo, hi, second=True, make=make)


CASES = list(_unary_cases()) + list(_binary_cases())
CASES += [
    Case("hypot", nerve.hypot, np.hypot, [(3, 1), (1, 4)], low=0.5, high=2.0, second=True),
    Case("maximum_scalar", lambda a: nerve.maximum(a, 0.3), lambda a: np.maximum(a, 0.3), [(3, 4)], second=True,
         make=_away_from_zero([(3, 4)])),
    Case("rminimum_scalar", lambda a: nerve.minimum(-0.3, a), lambda a: np.minimum(-0.3, a), [(3, 4)],
         second=True, make=_away_from_zero([(3, 4)])),
    Case("clamp_min", lambda a: nerve.clamp(a, min=0.4), lambda a: np.maximum(a, 0.4), [(3, 4)], second=True,
         make=_away_from_zero([(3, 4)])),
    Case("clamp_tensor_bounds", nerve.clamp, lambda a, lo, hi: np.minimum(np.maximum(a, lo), hi),
         [(3, 4), (4,), (4,)], second=True,
         make=lambda rng: [rng.uniform(-2, 2, (3, 4)), np.array([-1.5, -0.5, -1.0, 0.1]) + 0.003,
                           np.array([1.5, 0.5, 1.0, 1.8]) + 0.007]),
    Case("where", lambda c, a, b: nerve.where(c > 0, a, b), lambda c, a, b: np.where(c > 0, a, b),
         [(3, 4), (3, 4), (4,)], grad=[1, 2], second=True),
    Case("where_scalar", lambda c, a: nerve.where(c > 0, 0.5, a), lambda c, a: np.where(c > 0, 0.5, a),
         [(3, 4), (3, 4)], grad=[1], second=True),
    Case("remainder", lambda a, b: a % b, np.remainder, [(3, 4), (4,)], 0.3, 3, second=True,
         make=lambda rng: [rng.uniform(0.1, 0.9, (3, 4)) + rng.integers(0, 4, (3, 4)), rng.uniform(1.05, 1.4, (4,))]),
    Case("rremainder", lambda b: nerve.remainder(5.5, b), lambda b: np.remainder(5.5, b), [(4,)], 1.05, 1.4,
         second=True),
    Case("pow_base_tensor", lambda a, b: a ** b, np.power, [(2, 3), (3,)], 0.5, 2, second=True),
    Case("clone", lambda a: a.clone() * 2.0, lambda a: a * 2.0, [(2, 3)], second=True),
    Case("to_device", lambda a: a.to_device("cpu") * 2.0, lambda a: a * 2.0, [(2, 3)], second=True),
    Case("clone_astype", lambda a: a.clone().astype(nerve.float32).astype(nerve.float64) * 1.0,
         lambda a: a.astype(np.float32).astype(np.float64), [(2, 3)], rtol=1e-6, check_grad=False),
]

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


def test_cast_gradient_comes_back_in_input_dtype():
    x = nerve.randn(3, requires_grad=True)
    (x.astype(nerve.float64) * 2).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), 2.0)


def test_tie_gradient_is_shared_like_pytorch():
    a = nerve.tensor([1.0, 2.0], requires_grad=True)
    b = nerve.tensor([1.0, 3.0], requires_grad=True)
    nerve.maximum(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.5, 0.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.5, 1.0])


def test_floor_divide_has_no_gradient():
    x = nerve.tensor([5.0, 7.0], requires_grad=True)
    y = x // 2
    np.testing.assert_array_equal(y.numpy(), [2.0, 3.0])
    assert not y.requires_grad


def test_broadcast_error_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"mul: shapes \(3,\) and \(4,\) do not broadcast"):
        nerve.ones(3) * nerve.ones(4)
    with pytest.raises(ValueError, match=r"where: shapes"):
        nerve.where(nerve.ones(2) > 0, nerve.ones(3), 0.0)
    with pytest.raises(ValueError, match=r"maximum: shapes \(3,\) and \(4,\) do not broadcast"):
        nerve.maximum(nerve.ones(3), nerve.ones(4))
    with pytest.raises(ValueError, match=r"minimum: shapes \(2,\) and \(4,\) do not broadcast"):
        nerve.minimum(nerve.ones(2), nerve.ones(4))


def test_cast_rule_agrees_on_both_paths():
    x = nerve.tensor([0.5, -1.25, 2.0], dtype=nerve.float64, requires_grad=True)
    v = nerve.tensor([1.0, 2.0, 3.0], dtype=nerve.float32)
    fast = nerve.grad(x.astype(nerve.float32), x, v)[0]
    graph = nerve.grad(x.astype(nerve.float32), x, v, create_graph=True)[0]
    assert fast.dtype == graph.dtype == np.float64
    np.testing.assert_array_equal(fast.numpy(), graph.numpy())


def test_clamp_passes_the_gradient_at_its_bounds():
    x = nerve.tensor([-0.5, 0.0, 0.7, 0.9, -2.0], dtype=nerve.float64, requires_grad=True)
    nerve.clamp(x, -0.5, 0.7).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 1.0, 0.0, 0.0])


def test_rule_where_takes_raw_values_on_both_paths():
    from nerve.autograd.rule_math import ARRAY, TENSOR
    cond = np.array([True, False, True])
    b = np.array([4.0, 5.0, 6.0])
    np.testing.assert_array_equal(ARRAY.where(cond, 1.0, b), [1.0, 5.0, 1.0])
    got = TENSOR.where(nerve.tensor(cond), 1.0, b)
    assert isinstance(got, nerve.Tensor)
    np.testing.assert_array_equal(got.numpy(), [1.0, 5.0, 1.0])


def test_python_base_power_follows_pytorch_dtypes():
    assert (2.0 ** nerve.tensor([1.0, 2.0], dtype=nerve.float32)).dtype == np.float32
    assert (2.0 ** nerve.tensor([1, 2])).dtype == nerve.get_default_dtype()
    assert (2 ** nerve.tensor([1, 2])).dtype == np.int64
    x = nerve.tensor([1.0, 2.0], dtype=nerve.float32, requires_grad=True)
    (2.0 ** x).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), 2.0 ** np.array([1.0, 2.0]) * np.log(2.0), rtol=1e-6)


def _pow_grads(base, exponent):
    a = nerve.tensor(base, dtype=nerve.float64, requires_grad=True)
    b = nerve.tensor(exponent, dtype=nerve.float64, requires_grad=True)
    out = a ** b
    ga, gb = nerve.grad(out.sum(), [a, b])
    return out.numpy(), ga.numpy(), gb.numpy()


def test_pow_gradient_at_zero_base_is_finite_for_exponents_of_one_or_more():
    out, ga, gb = _pow_grads([0.0, 0.0, 0.0], [1.0, 2.0, 3.5])
    np.testing.assert_array_equal(out, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(ga, [1.0, 0.0, 0.0])  # y 0^(y-1): 1 * 0^0 = 1, then 0
    np.testing.assert_array_equal(gb, [0.0, 0.0, 0.0])  # d(0^y)/dy = 0 for y >= 0, as PyTorch
    for p, want in ((1, 1.0), (2, 0.0), (3.5, 0.0)):
        x = nerve.tensor([0.0], dtype=nerve.float64, requires_grad=True)
        (g,) = nerve.grad((x ** p).sum(), x)
        assert g.item() == want, p


def test_pow_with_zero_exponent_is_one_with_zero_gradient_even_at_infinity():
    out, ga, gb = _pow_grads([np.inf, -np.inf, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(out, [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(ga, [0.0, 0.0, 0.0, 0.0])
    x = nerve.tensor([np.inf, -np.inf, 0.0], dtype=nerve.float64, requires_grad=True)
    (g,) = nerve.grad((x ** 0).sum(), x)
    np.testing.assert_array_equal(g.numpy(), [0.0, 0.0, 0.0])


def test_pow_second_derivative_at_zero_base():
    x = nerve.tensor([0.0], dtype=nerve.float64, requires_grad=True)
    (g,) = nerve.grad((x ** 3).sum(), x, create_graph=True)
    (gg,) = nerve.grad(g.sum(), x)
    assert g.item() == 0.0 and gg.item() == 0.0
    (g,) = nerve.grad((x ** 2).sum(), x, create_graph=True)
    (gg,) = nerve.grad(g.sum(), x)
    assert gg.item() == 2.0


def test_where_with_the_condition_alone_is_nonzero_as_tuple():
    rows, cols = nerve.where(nerve.tensor([[0.0, 2.0], [3.0, 0.0]]) > 1)
    np.testing.assert_array_equal(rows.numpy(), [0, 1])
    np.testing.assert_array_equal(cols.numpy(), [1, 0])
