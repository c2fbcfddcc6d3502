"""Channel dropout (``F.dropout1d``, ``F.dropout2d``): whole channels zeroed, the rest scaled by 1 / (1 - p), the
gradient through the same mask, identity when not training, errors. (``F.dropout`` is tested with its layer.)"""
import numpy as np
import pytest

import nerve
import nerve.functional as F


@pytest.mark.parametrize("fn,shape", [(F.dropout1d, (8, 16, 5)), (F.dropout2d, (8, 16, 3, 3)),
                                      (F.dropout1d, (16, 5)), (F.dropout2d, (16, 3, 3))])
def test_whole_channels_dropped_and_the_rest_scaled(fn, shape):
    x = nerve.ones(*shape)
    out = fn(x, 0.5, generator=np.random.default_rng(0)).numpy()
    spatial = 1 if fn is F.dropout1d else 2
    channels = out.reshape(out.shape[:out.ndim - spatial] + (-1,))
    assert set(np.unique(channels)) <= {0.0, 2.0}
    assert (channels.min(axis=-1) == channels.max(axis=-1)).all()
    assert 0.3 < (channels[..., 0] == 0).mean() < 0.7
    assert out.dtype == np.float32


def test_gradient_uses_the_same_mask_and_gradchecks():
    x = nerve.randn(4, 6, 3, 3, dtype=nerve.float64, requires_grad=True)
    out = F.dropout2d(x, 0.4, generator=np.random.default_rng(1))
    out.sum().backward()
    scale = out.numpy() / np.where(x.numpy() == 0, 1, x.numpy())
    np.testing.assert_allclose(x.grad.numpy(), scale, rtol=1e-12)
    assert nerve.gradcheck(lambda t: F.dropout1d(t, 0.3, generator=np.random.default_rng(2)),
                           [nerve.randn(2, 5, 4, dtype=nerve.float64, requires_grad=True)])


def test_generators_repeat_and_the_default_one_is_seeded():
    x = nerve.ones(4, 8, 5)
    a = F.dropout1d(x, 0.5, generator=np.random.default_rng(3)).numpy()
    np.testing.assert_array_equal(a, F.dropout1d(x, 0.5, generator=np.random.default_rng(3)).numpy())
    nerve.manual_seed(5)
    b = F.dropout2d(nerve.ones(4, 8, 2, 2), 0.5).numpy()
    nerve.manual_seed(5)
    np.testing.assert_array_equal(b, F.dropout2d(nerve.ones(4, 8, 2, 2), 0.5).numpy())


def test_identity_when_not_training_or_p_zero_and_zeros_at_p_one():
    x = nerve.randn(2, 3, 4, 4)
    assert F.dropout2d(x, 0.5, training=False) is x
    assert F.dropout2d(x, 0.0) is x
    assert not F.dropout2d(x, 1.0).numpy().any()


def test_errors_name_the_function_and_shapes():
    with pytest.raises(ValueError, match="dropout2d: p must be in"):
        F.dropout2d(nerve.ones(2, 3, 4, 4), 1.5)
    with pytest.raises(ValueError, match=r"dropout2d: expected input \(N, C, H, W\) or \(C, H, W\), got \(2, 3\)"):
        F.dropout2d(nerve.ones(2, 3))
    with pytest.raises(ValueError, match=r"dropout1d: expected input \(N, C, L\) or \(C, L\), got \(2, 3, 4, 5\)"):
        F.dropout1d(nerve.ones(2, 3, 4, 5))
