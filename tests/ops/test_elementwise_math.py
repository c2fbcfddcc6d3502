"""The rest of the elementwise ops (nerve/ops/elementwise_math.py) through the op table, and the ops without
gradients (tests, logical, bitwise, comparisons) against NumPy."""
import numpy as np
import pytest

import nerve
from tests.ops.table import Case, table_tests

SHAPES = [(5,), (2, 3), (), (0, 4)]


def _off_integers(lo, hi):
    """Inputs in [lo, hi] at least 0.1 away from integers: rounding ops have no jump inside a difference step."""
    def make_for(shape):
        def make(rng):
            x = rng.uniform(lo, hi, size=shape)
            return [np.floor(x) + 0.1 + 0.8 * (x - np.floor(x))]
        return make
    return make_for


UNARY = [
    ("tan", nerve.tan, np.tan, -1.2, 1.2),
    ("asin", nerve.asin, np.arcsin, -0.9, 0.9),
    ("acos", nerve.acos, np.arccos, -0.9, 0.9),
    ("atan", nerve.atan, np.arctan, -3, 3),
    ("sinh", nerve.sinh, np.sinh, -2, 2),
    ("cosh", nerve.cosh, np.cosh, -2, 2),
    ("asinh", nerve.asinh, np.arcsinh, -3, 3),
    ("acosh", nerve.acosh, np.arccosh, 1.2, 3),
    ("atanh", nerve.atanh, np.arctanh, -0.9, 0.9),
    ("log2", nerve.log2, np.log2, 0.3, 3),
    ("log10", nerve.log10, np.log10, 0.3, 3),
    ("exp2", nerve.exp2, np.exp2, -2, 2),
    ("floor", nerve.floor, np.floor, -3, 3),
    ("ceil", nerve.ceil, np.ceil, -3, 3),
    ("trunc", nerve.trunc, np.trunc, -3, 3),
    ("round", nerve.round, np.round, -3, 3),
    ("frac", nerve.frac, lambda a: a - np.trunc(a), -3, 3),
    ("method_tan", lambda a: a.tan(), np.tan, -1.2, 1.2),
]
ROUNDING = {"floor", "ceil", "trunc", "round", "frac"}


def _unary_cases():
    for name, fn, ref, lo, hi in UNARY:
        for shape in SHAPES:
            make = _off_integers(lo, hi)(shape) if name in ROUNDING else None
            yield Case(name, fn, ref, [shape], lo, hi, second=True, make=make)


def _fmod_inputs(rng):
    a = rng.uniform(0.1, 0.9, (3, 4)) + rng.integers(-3, 3, (3, 4))
    return [a, rng.uniform(1.05, 1.4, (4,)) * rng.choice([-1.0, 1.0], (4,))]


CASES = list(_unary_cases()) + [
    Case("round_decimals", lambda a: nerve.round(a, decimals=2), lambda a: np.round(a, 2), [(3, 4)], second=True),
    Case("atan2", nerve.atan2, np.arctan2, [(3, 4), (4,)], second=True),
    Case("atan2_bcast", nerve.atan2, np.arctan2, [(3, 1), (1, 5)], second=True),
    Case("arctan2_method", lambda a, b: a.arctan2(b), np.arctan2, [(2, 3), (2, 3)], second=True),
    Case("logaddexp", nerve.logaddexp, np.logaddexp, [(3, 4), (4,)], -3, 3, second=True),
    Case("logaddexp_large", lambda a, b: nerve.logaddexp(a * 400.0, b), lambda a, b: np.logaddexp(a * 400.0, b),
         [(2, 3), (2, 3)], 1, 2, second=True),
    Case("fmod", nerve.fmod, np.fmod, [(3, 4), (4,)], second=True, make=_fmod_inputs),
    Case("fmod_scalar", lambda a: nerve.fmod(a, 1.5), lambda a: np.fmod(a, 1.5), [(3, 4)], second=True,
         make=lambda rng: [rng.uniform(0.1, 1.4, (3, 4)) + 1.5 * rng.integers(-2, 2, (3, 4))]),
    Case("copysign", nerve.copysign, np.copysign, [(3, 4), (4,)], second=True,
         make=lambda rng: [rng.uniform(0.2, 2, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4)),
                           rng.uniform(0.2, 2, (4,)) * np.array([-1.0, 1.0, -1.0, 1.0])]),
    Case("lerp_scalar", lambda a, b: nerve.lerp(a, b, 0.3), lambda a, b: a + 0.3 * (b - a), [(3, 4), (4,)],
         second=True),
    Case("lerp_tensor", nerve.lerp, lambda a, b, w: a + w * (b - a), [(3, 4), (3, 4), (4,)], second=True),
    Case("clip", lambda a: a.clip(-0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), [(3, 4)], second=True,
         make=lambda rng: [np.array([-1.0, -0.3, 0.2, 1.5]) + rng.uniform(-0.05, 0.05, (3, 4))]),
    Case("clamp_min_max", lambda a: nerve.clamp_max(nerve.clamp_min(a, -0.5), 0.7),
         lambda a: np.clip(a, -0.5, 0.7), [(3, 4)], second=True,
         make=lambda rng: [np.array([-1.0, -0.3, 0.2, 1.5]) + rng.uniform(-0.05, 0.05, (3, 4))]),
]


def _xlogy_inputs(rng):
    x = rng.uniform(0.2, 2, (3, 4))
    x[0, 1] = x[2, 3] = 0.0  # x = 0: the value and the gradients are 0, as PyTorch defines them
    return [x, rng.uniform(0.3, 2, (4,))]


def _nan_apart(rng):
    a, b = rng.uniform(-2, 2, (3, 4)), rng.uniform(-2, 2, (3, 4)) + 0.01
    a[0, 0], b[1, 1] = np.nan, np.nan
    return [a, b]


CASES += [
    Case("xlogy", nerve.xlogy, lambda x, y: np.where(x == 0, 0.0, x * np.log(y)), [(3, 4), (4,)], second=True,
         make=_xlogy_inputs),
    Case("logit", nerve.logit, lambda p: np.log(p / (1 - p)), [(3, 4)], 0.1, 0.9, second=True),
    Case("logit_eps", lambda p: p.logit(eps=0.2), lambda p: np.log(np.clip(p, 0.2, 0.8) / (1 - np.clip(p, 0.2, 0.8))),
         [(3, 4)], 0.3, 0.7, second=True),
    Case("sinc", nerve.sinc, np.sinc, [(3, 4)], second=True),
    Case("sinc_at_zero", nerve.sinc, np.sinc, [(3,)], second=True, make=lambda rng: [np.array([0.0, 0.5, -1.25])]),
    Case("addcmul", lambda a, b, c: nerve.addcmul(a, b, c, value=0.5), lambda a, b, c: a + 0.5 * b * c,
         [(3, 4), (4,), (3, 1)], second=True),
    Case("addcdiv", lambda a, b, c: a.addcdiv(b, c, value=-2.0), lambda a, b, c: a - 2.0 * b / c,
         [(3, 4), (4,), (3, 1)], 0.5, 2, second=True),
    Case("rsub", lambda a, b: nerve.rsub(a, b, alpha=2), lambda a, b: b - 2 * a, [(3, 4), (4,)], second=True),
    Case("deg2rad", nerve.deg2rad, np.deg2rad, [(3, 4)], -180, 180, second=True),
    Case("rad2deg", lambda a: a.rad2deg(), np.rad2deg, [(3, 4)], second=True),
    Case("fmax", nerve.fmax, np.fmax, [(3, 4), (3, 4)], make=_nan_apart, check_grad=False),
    Case("fmin", nerve.fmin, np.fmin, [(3, 4), (3, 4)], make=_nan_apart, check_grad=False),
    Case("fmax_grad", nerve.fmax, np.fmax, [(3, 4), (3, 4)], second=True,
         make=lambda rng: [rng.uniform(-2, 2, (3, 4)), rng.uniform(-2, 2, (3, 4)) + 0.01]),
    Case("aliases", lambda a, b: nerve.subtract(nerve.multiply(a, b), nerve.divide(a, b)) + nerve.negative(
        nerve.absolute(a)) + nerve.sgn(a) + nerve.positive(b), lambda a, b: a * b - a / b - np.abs(a) + np.sign(a) + b,
         [(3, 4), (4,)], second=True, make=lambda rng: [rng.uniform(0.2, 2, (3, 4)) * rng.choice([-1, 1], (3, 4)),
                                                         rng.uniform(0.5, 2, (4,))]),
]


def test_signbit():
    np.testing.assert_array_equal(nerve.signbit(nerve.tensor([-1.0, -0.0, 0.0, 2.0])).numpy(),
                                  [True, True, False, False])


(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


def test_rounding_gradient_is_zero_and_frac_passes_it():
    x = nerve.tensor([-1.5, 0.3, 2.7], dtype=nerve.float64, requires_grad=True)
    for fn in (nerve.floor, nerve.ceil, nerve.trunc, nerve.round):
        (g,) = nerve.grad(fn(x).sum(), x)
        np.testing.assert_array_equal(g.numpy(), 0.0)
    (g,) = nerve.grad(nerve.frac(x).sum(), x)
    np.testing.assert_array_equal(g.numpy(), 1.0)


def test_rounding_keeps_integers_and_float_ops_promote_them():
    i = nerve.tensor([1, -2, 3])
    assert nerve.floor(i).dtype == np.int64 and nerve.round(i).dtype == np.int64
    assert nerve.tan(i).dtype == nerve.get_default_dtype()
    assert nerve.atan2(i, i).dtype == nerve.get_default_dtype()
    np.testing.assert_allclose(nerve.log2(nerve.tensor([1, 8])).numpy(), [0.0, 3.0])


def test_round_half_to_even_and_decimals_check():
    np.testing.assert_array_equal(nerve.round(nerve.tensor([0.5, 1.5, 2.5, -0.5])).numpy(), [0.0, 2.0, 2.0, -0.0])
    with pytest.raises(TypeError, match="round: decimals must be an int"):
        nerve.round(nerve.tensor([1.0]), decimals=1.5)


def test_fmod_and_remainder_signs_and_scalar_mod_tensor():
    a = nerve.tensor([5.0, -5.0, 5.0, -5.0])
    b = nerve.tensor([3.0, 3.0, -3.0, -3.0])
    np.testing.assert_array_equal(nerve.fmod(a, b).numpy(), [2.0, -2.0, 2.0, -2.0])
    np.testing.assert_array_equal((a % b).numpy(), [2.0, 1.0, -1.0, -2.0])
    np.testing.assert_array_equal((7 % nerve.tensor([3.0, -3.0])).numpy(), [1.0, -2.0])
    np.testing.assert_array_equal((7 % nerve.tensor([3, -3])).numpy(), [1, -2])
    np.testing.assert_array_equal(nerve.remainder(nerve.tensor([5, -5]), 3).numpy(), [2, 1])


def test_copysign_follows_the_sign_bit():
    out = nerve.copysign(nerve.tensor([1.0, 2.0, -3.0]), nerve.tensor([-0.0, 0.0, 1.0]))
    np.testing.assert_array_equal(out.numpy(), [-1.0, 2.0, 3.0])


def test_isnan_isinf_isfinite():
    x = nerve.tensor([1.0, np.nan, np.inf, -np.inf])
    np.testing.assert_array_equal(nerve.isnan(x).numpy(), [False, True, False, False])
    np.testing.assert_array_equal(x.isinf().numpy(), [False, False, True, True])
    np.testing.assert_array_equal(nerve.isfinite(x).numpy(), [True, False, False, False])
    np.testing.assert_array_equal(nerve.isposinf(x).numpy(), [False, False, True, False])
    np.testing.assert_array_equal(nerve.isneginf(x).numpy(), [False, False, False, True])
    assert nerve.isnan(x).dtype == np.bool_ and not nerve.isnan(x).requires_grad


def test_logical_ops_against_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.integers(-1, 2, (3, 4)), rng.uniform(-1, 1, (4,)).round()
    ta, tb = nerve.tensor(a), nerve.tensor(b)
    for name in ("logical_and", "logical_or", "logical_xor"):
        np.testing.assert_array_equal(getattr(nerve, name)(ta, tb).numpy(), getattr(np, name)(a, b))
        np.testing.assert_array_equal(getattr(ta, name)(tb).numpy(), getattr(np, name)(a, b))
    np.testing.assert_array_equal(nerve.logical_not(ta).numpy(), np.logical_not(a))


def test_bitwise_ops_and_shifts_on_integers():
    a = np.array([[5, -3, 12], [0, 7, -8]], dtype=np.int64)
    b = np.array([3, 1, 2], dtype=np.int64)
    ta, tb = nerve.tensor(a), nerve.tensor(b)
    np.testing.assert_array_equal(nerve.bitwise_and(ta, tb).numpy(), a & b)
    np.testing.assert_array_equal(nerve.bitwise_or(ta, tb).numpy(), a | b)
    np.testing.assert_array_equal(ta.bitwise_xor(tb).numpy(), a ^ b)
    np.testing.assert_array_equal(nerve.bitwise_not(ta).numpy(), ~a)
    np.testing.assert_array_equal((ta << tb).numpy(), a << b)
    np.testing.assert_array_equal((ta >> 1).numpy(), a >> 1)
    np.testing.assert_array_equal((1 << tb).numpy(), 1 << b)
    np.testing.assert_array_equal((6 & tb).numpy(), 6 & b)
    np.testing.assert_array_equal((6 | tb).numpy(), 6 | b)
    np.testing.assert_array_equal((6 ^ tb).numpy(), 6 ^ b)
    assert nerve.bitwise_and(nerve.tensor([1], dtype=nerve.int32), nerve.tensor([3], dtype=nerve.uint8)).dtype \
        == np.int32
    flags = nerve.tensor([True, False])
    np.testing.assert_array_equal(nerve.bitwise_not(flags).numpy(), [False, True])


def test_bitwise_ops_reject_floats():
    with pytest.raises(TypeError, match="bitwise_and: expected integer or boolean operands, got float32"):
        nerve.bitwise_and(nerve.ones(2), nerve.tensor([1, 2]))
    with pytest.raises(TypeError, match="bitwise_left_shift: expected integer"):
        nerve.tensor([1, 2]) << 1.5


@pytest.mark.parametrize("name, ref", [("eq", np.equal), ("ne", np.not_equal), ("lt", np.less),
                                       ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal),
                                       ("greater", np.greater), ("less_equal", np.less_equal)])
def test_comparison_functions_and_methods(name, ref):
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 3, (3, 4)).astype(float), rng.integers(0, 3, (4,)).astype(float)
    ta, tb = nerve.tensor(a, requires_grad=True), nerve.tensor(b)
    for got in (getattr(nerve, name)(ta, tb), getattr(ta, name)(tb)):
        assert got.dtype == np.bool_ and not got.requires_grad
        np.testing.assert_array_equal(got.numpy(), ref(a, b))
    np.testing.assert_array_equal(getattr(ta, name)(1.0).numpy(), ref(a, 1.0))


def test_eq_sum_item_counts_matches_as_in_pytorch_scripts():
    pred = nerve.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]).argmax(dim=1, keepdim=True)
    target = nerve.tensor([1, 1, 1])
    assert pred.eq(target.view_as(pred)).sum().item() == 2
    assert nerve.equal(target, nerve.tensor([1, 1, 1])) is True
    assert nerve.equal(target, nerve.tensor([1, 1])) is False
