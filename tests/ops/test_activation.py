"""Activation ops through the op table (forward against NumPy, gradcheck and gradgradcheck in float64, both rule
paths, poisoned namespace), and GELU's shared slope."""
import math

import numpy as np
import pytest
from scipy import special

import nerve
from nerve.ops.activation import GELUSlope, gelu_slope
from tests.helpers import away_from_kinks
from tests.ops.table import Case, table_tests

SHAPES = [(5,), (2, 3), (), (0, 4)]
_C = math.sqrt(2 / math.pi)


def _gelu(x):
    return 0.5 * x * (1 + special.erf(x / math.sqrt(2)))


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(_C * (x + 0.044715 * x ** 3)))


def _gelu_slope(x):
    return 0.5 * (1 + special.erf(x / math.sqrt(2))) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _gelu_tanh_slope(x):
    t = np.tanh(_C * (x + 0.044715 * x ** 3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _C * (1 + 3 * 0.044715 * x * x)


def _away_from_zero(shape):
    """Inputs at least 0.2 from relu's kink at 0."""
    return lambda rng: [away_from_kinks(rng, shape, kinks=(0.0,), gap=0.2, low=-2.0, high=2.0)]


ACTIVATIONS = [
    ("relu", nerve.relu, lambda a: np.maximum(a, 0), -2, 2, True),
    ("leaky_relu", lambda a: nerve.leaky_relu(a, 0.1), lambda a: np.where(a > 0, a, 0.1 * a), -2, 2, True),
    ("elu", lambda a: nerve.elu(a, 1.5), lambda a: np.where(a > 0, a, 1.5 * np.expm1(a)), -2, 2, True),
    ("gelu", nerve.gelu, _gelu, -3, 3, False),
    ("gelu_tanh", lambda a: nerve.gelu(a, approximate="tanh"), _gelu_tanh, -3, 3, False),
    ("gelu_slope", lambda a: GELUSlope.apply(a, "none"), _gelu_slope, -3, 3, False),
    ("gelu_tanh_slope", lambda a: GELUSlope.apply(a, "tanh"), _gelu_tanh_slope, -3, 3, False),
    ("silu", nerve.silu, lambda a: a * special.expit(a), -3, 3, False),
    ("softplus", nerve.softplus, lambda a: np.logaddexp(0, a), -3, 3, False),
    ("softplus_beta", lambda a: nerve.softplus(a, beta=2.0), lambda a: np.logaddexp(0, 2 * a) / 2, -3, 3, False),
    ("softplus_threshold", lambda a: nerve.softplus(a, beta=2.0, threshold=1.0),
     lambda a: np.where(2 * a > 1.0, a, np.logaddexp(0, 2 * a) / 2), -3, 3, False),
]

CASES = [Case(name, fn, ref, [shape], lo, hi, second=True, make=_away_from_zero(shape) if kink else None)
         for name, fn, ref, lo, hi, kink in ACTIVATIONS for shape in SHAPES]
CASES[-len(SHAPES):] = [Case(c.name, c.fn, c.ref, c.shapes, second=True,  # away from the switch at beta a = 1
                             make=lambda rng, s=c.shapes[0]: [away_from_kinks(rng, s, kinks=(0.5,), gap=0.1,
                                                                              low=-3.0, high=3.0)])
                        for c in CASES[-len(SHAPES):]]

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


@pytest.mark.parametrize("approximate, value, slope", [("none", _gelu, _gelu_slope),
                                                        ("tanh", _gelu_tanh, _gelu_tanh_slope)])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_gelu_slope_gives_value_and_derivative(approximate, value, slope, dtype, tol):
    x = np.linspace(-9, 9, 1001)
    if dtype == np.float32 and approximate == "tanh":
        tol = 3e-6  # NOTE: float32's tanh is within 6e-8 of -1 below x = -5: (1 + t) and (1 - t^2) keep few digits
    got_value, got_slope = gelu_slope(x.astype(dtype), approximate)
    assert got_value.dtype == got_slope.dtype == dtype
    np.testing.assert_allclose(got_value, value(x), rtol=tol, atol=tol)
    np.testing.assert_allclose(got_slope, slope(x), rtol=tol, atol=tol)


def test_gelu_slope_keeps_zero_dimensional_arrays():
    got_value, got_slope = gelu_slope(np.float32(0.5) * np.ones((), np.float32), "none")
    assert got_value.shape == got_slope.shape == ()
    np.testing.assert_allclose([got_value, got_slope], [_gelu(0.5), _gelu_slope(0.5)], rtol=1e-6)


def test_gelu_third_derivative_matches_differences():
    x = nerve.tensor([-1.3, 0.2, 2.1], dtype=nerve.float64, requires_grad=True)
    for approximate in ("none", "tanh"):
        def second(x):
            (d1,) = nerve.grad(nerve.gelu(x, approximate).sum(), x, create_graph=True)
            (d2,) = nerve.grad(d1.sum(), x, create_graph=True)
            return d2
        assert nerve.gradcheck(second, [x])


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="gelu"):
        nerve.gelu(nerve.ones(2), approximate="fast")
