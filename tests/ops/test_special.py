"""Special functions (nerve/ops/special.py) through the op table against SciPy: values, gradcheck and
gradgradcheck (each derivative is the next polygamma, so every order has a rule)."""
import numpy as np
import pytest
import scipy.special as sp

import nerve
from tests.ops.table import Case, table_tests

SHAPES = [(5,), (2, 3), ()]

CASES = [Case(f"{name}{list(s)}", fn, ref, [s], low, high, second=True)
         for name, fn, ref, low, high in [
             ("lgamma", nerve.lgamma, sp.gammaln, 0.2, 5.0),
             ("lgamma_negative", nerve.lgamma, sp.gammaln, -2.9, -2.1),
             ("digamma", nerve.digamma, sp.digamma, 0.3, 5.0),
             ("polygamma1", lambda a: nerve.polygamma(1, a), lambda a: sp.polygamma(1, a), 0.3, 5.0),
             ("polygamma3", lambda a: a.polygamma(3), lambda a: sp.polygamma(3, a), 0.5, 4.0),
             ("erfinv", nerve.erfinv, sp.erfinv, -0.9, 0.9),
             ("mvlgamma", lambda a: nerve.mvlgamma(a, 3), lambda a: sp.multigammaln(a, 3)
              if a.ndim == 0 else np.vectorize(lambda v: sp.multigammaln(v, 3))(a), 1.2, 4.0),
         ] for s in SHAPES]

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


def test_dtype_kept_integers_promoted_and_errors():
    assert nerve.lgamma(nerve.ones(2)).dtype == nerve.float32
    assert nerve.digamma(nerve.tensor([1, 2])).dtype == nerve.float32
    np.testing.assert_allclose(nerve.digamma(nerve.tensor([1.0])).numpy(), [-np.euler_gamma], rtol=1e-6)
    with pytest.raises(ValueError, match="polygamma: n must be a non-negative int"):
        nerve.polygamma(-1, nerve.ones(2))
    with pytest.raises(ValueError, match="mvlgamma: p must be a positive int"):
        nerve.mvlgamma(nerve.ones(2), 0)


def test_the_torch_special_namespace():
    x = nerve.tensor([0.1, 0.5, 0.9], dtype=nerve.float64)
    np.testing.assert_allclose(nerve.special.ndtr(nerve.special.ndtri(x)).numpy(), x.numpy(), rtol=1e-12)
    np.testing.assert_allclose(nerve.special.ndtri(x).numpy(), sp.ndtri(x.numpy()), rtol=1e-12)
    np.testing.assert_allclose(nerve.special.erfc(x).numpy(), sp.erfc(x.numpy()), rtol=1e-12)
    np.testing.assert_allclose(nerve.special.entr(nerve.tensor([0.0, 0.5])).numpy(), sp.entr([0.0, 0.5]))
    assert nerve.special.gammaln is nerve.lgamma and nerve.special.expit is nerve.sigmoid
