"""L1/L2 weight penalties: values, gradients to second order, equivalence with SGD's weight decay, errors."""
import numpy as np
import pytest

import nerve
from nerve import optim

RNG = np.random.default_rng(7)


def _params():
    return [nerve.tensor(RNG.standard_normal(s), dtype=nerve.float64, requires_grad=True) for s in [(3, 2), (4,)]]


def test_penalty_values():
    ps = _params()
    arrays = [p.data for p in ps]
    assert optim.l1_penalty(ps, 0.3).item() == pytest.approx(0.3 * sum(np.abs(a).sum() for a in arrays), rel=1e-12)
    assert optim.l2_penalty(ps, 0.3).item() == pytest.approx(0.3 * sum((a ** 2).sum() for a in arrays), rel=1e-12)
    assert optim.l2_penalty(ps[0]).item() == pytest.approx((arrays[0] ** 2).sum(), rel=1e-12)


@pytest.mark.parametrize("penalty", [optim.l1_penalty, optim.l2_penalty])
def test_penalty_gradients(penalty):
    ps = _params()
    assert nerve.gradcheck(lambda a, b: penalty([a, b], 0.7), ps)
    if penalty is optim.l2_penalty:
        assert nerve.gradgradcheck(lambda a, b: penalty([a, b], 0.7), ps)


def test_l2_penalty_matches_sgd_weight_decay():
    p = nerve.tensor([1.0, -2.0, 3.0], dtype=nerve.float64, requires_grad=True)
    optim.l2_penalty([p], 0.05).backward()
    q = nerve.tensor([1.0, -2.0, 3.0], dtype=nerve.float64, requires_grad=True)
    q.grad = nerve.zeros(3, dtype=nerve.float64)
    optim.SGD([p], lr=0.1).step()
    optim.SGD([q], lr=0.1, weight_decay=0.1).step()
    np.testing.assert_allclose(p.data, q.data, rtol=1e-15)


def test_penalty_errors():
    ps = _params()
    gen = (p for p in ps)
    optim.l1_penalty(gen)
    with pytest.raises(ValueError, match="l1_penalty: got no parameters"):
        optim.l1_penalty(gen)
    with pytest.raises(ValueError, match="l2_penalty: weight must be >= 0, got -1"):
        optim.l2_penalty(ps, -1)
    with pytest.raises(TypeError, match="l2_penalty: parameter 0 is a ndarray"):
        optim.l2_penalty([np.zeros(2)])
