"""Property tests: broadcasting gradients and numerically extreme inputs."""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import nerve


@settings(max_examples=60, deadline=None, derandomize=True)
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4))
def test_broadcast_gradients_sum_back_to_each_input(shapes):
    sa, sb = shapes.input_shapes
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal(sa), rng.standard_normal(sb)
    a = nerve.tensor(a_np, requires_grad=True)
    b = nerve.tensor(b_np, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == sa and b.grad.shape == sb
    full = np.broadcast_shapes(sa, sb)
    ones = np.ones(full)
    want_a = (ones * b_np).sum(axis=tuple(range(len(full) - len(sa)))) if len(full) > len(sa) else ones * b_np
    want_a = want_a.sum(axis=tuple(i for i, s in enumerate(sa) if s == 1), keepdims=True) if sa else want_a.sum()
    np.testing.assert_allclose(a.grad.numpy(), np.broadcast_to(want_a, sa), rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.floats(min_value=-100, max_value=100, allow_nan=False))
def test_sigmoid_and_softplus_stay_finite_and_exact(v):
    x = nerve.tensor(np.array([v]), requires_grad=True)
    s = nerve.sigmoid(x)
    sp = nerve.softplus(x)
    (s + sp).sum().backward()
    want_s = 1 / (1 + np.exp(-v)) if v > -700 else 0.0
    want_sp = v if v > 20 else np.logaddexp(0, v)  # PyTorch's threshold: linear above 20
    np.testing.assert_allclose(s.numpy(), [want_s], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(sp.numpy(), [want_sp], rtol=1e-12, atol=1e-300)
    assert np.isfinite(x.grad.numpy()).all()
    want_dsp = 1.0 if v > 20 else want_s  # softplus is linear above the threshold
    np.testing.assert_allclose(x.grad.numpy(), [want_s * (1 - want_s) + want_dsp], rtol=1e-9, atol=1e-300)


def test_sigmoid_and_softplus_at_plus_minus_100_in_float32():
    x = nerve.tensor([-100.0, 100.0], requires_grad=True)
    (nerve.sigmoid(x) + nerve.softplus(x)).sum().backward()
    np.testing.assert_allclose(nerve.sigmoid(x).numpy(), [0.0, 1.0], atol=1e-30)
    np.testing.assert_allclose(nerve.softplus(x).numpy(), [0.0, 100.0], atol=1e-30)
    assert np.isfinite(x.grad.numpy()).all()
