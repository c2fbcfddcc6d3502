"""nerve.explain attribution methods against closed forms (linear and quadratic models) and plain NumPy loops."""
import warnings

import numpy as np
import pytest

import nerve
from nerve import explain, nn
from nerve.explain import (
    GradientShap, InputXGradient, IntegratedGradients, NoiseTunnel, Occlusion, Saliency, approximation_parameters,
)


def linear(seed=0, inp=6, out=3):
    nerve.manual_seed(seed)
    return nn.Linear(inp, out).double()


def batch(seed=1, shape=(4, 6)):
    return np.random.default_rng(seed).normal(size=shape)


class Quadratic(nn.Module):
    """F(x)_c = sum_i w_ci x_i^2: gradient 2 w x, integrated gradients from 0 exactly w x^2."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(nerve.tensor(w))

    def forward(self, x):
        return (x * x) @ self.w.T


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 2).double(), nn.Linear(4, 2).double()

    def forward(self, x, z):
        return self.a(x) + self.b(z)


@pytest.mark.parametrize("method", ["riemann_left", "riemann_right", "riemann_middle", "gausslegendre"])
def test_integrated_gradients_of_a_linear_model_is_input_minus_baseline_times_weight(method):
    model, x = linear(), batch()
    base = batch(2, (1, 6))
    w = model.weight.numpy()
    attr, delta = IntegratedGradients(model).attribute(x, baselines=base, target=2, method=method, n_steps=9,
                                                       return_convergence_delta=True)
    np.testing.assert_allclose(attr.numpy(), (x - base) * w[2], atol=1e-12)
    assert attr.shape == x.shape and np.abs(delta.numpy()).max() < 1e-12


def test_trapezoid_keeps_captums_weights_which_sum_to_n_minus_1_over_n():
    steps, alphas = approximation_parameters("riemann_trapezoid")
    np.testing.assert_allclose(steps(4), [1 / 8, 1 / 4, 1 / 4, 1 / 8])
    np.testing.assert_allclose(alphas(4), [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(approximation_parameters("riemann_left")[1](4), [0, .25, .5, .75])
    np.testing.assert_allclose(approximation_parameters("riemann_right")[1](4), [.25, .5, .75, 1])
    np.testing.assert_allclose(approximation_parameters("riemann_middle")[1](4), [.125, .375, .625, .875])
    model, x = linear(), batch()
    attr = IntegratedGradients(model).attribute(x, target=0, method="riemann_trapezoid", n_steps=4)
    np.testing.assert_allclose(attr.numpy(), 0.75 * x * model.weight.numpy()[0], atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16, 50, 64])
def test_gauss_legendre_nodes_and_weights_match_numpy(n):
    nodes, weights = explain.gauss_legendre(n)
    ref_nodes, ref_weights = np.polynomial.legendre.leggauss(n)
    np.testing.assert_allclose(nodes, ref_nodes, atol=1e-13)
    np.testing.assert_allclose(weights, ref_weights, atol=1e-13)
    steps, alphas = approximation_parameters("gausslegendre")
    np.testing.assert_allclose(steps(n), 0.5 * ref_weights, atol=1e-13)
    np.testing.assert_allclose(alphas(n), 0.5 * (1 + ref_nodes), atol=1e-13)


def test_integrated_gradients_of_a_quadratic_and_internal_batches():
    w = batch(3, (2, 5))
    model, x = Quadratic(w), batch(4, (3, 5))
    ig = IntegratedGradients(model)
    full = ig.attribute(x, target=[0, 1, 1], n_steps=8)
    np.testing.assert_allclose(full.numpy(), w[[0, 1, 1]] * x * x, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chunked = ig.attribute(x, target=[0, 1, 1], n_steps=8, internal_batch_size=7)  # 2 steps of 3 per pass
    np.testing.assert_allclose(chunked.numpy(), full.numpy(), atol=1e-12)
    with pytest.warns(UserWarning, match="internal_batch_size 2 is below the batch size 3"):
        ig.attribute(x, target=0, n_steps=4, internal_batch_size=2)
    plain = ig.attribute(x, target=0, n_steps=8, method="riemann_middle")
    no_mult = IntegratedGradients(model, multiply_by_inputs=False).attribute(x, target=0, n_steps=8,
                                                                             method="riemann_middle")
    np.testing.assert_allclose(no_mult.numpy() * x, plain.numpy(), atol=1e-12)


def test_saliency_input_x_gradient_and_tuple_inputs():
    model, x = linear(), batch()
    w = model.weight.numpy()
    np.testing.assert_allclose(Saliency(model).attribute(x, target=1).numpy(), np.broadcast_to(abs(w[1]), x.shape))
    signed = Saliency(model).attribute(x, target=1, abs=False).numpy()
    np.testing.assert_allclose(signed, np.broadcast_to(w[1], x.shape))
    np.testing.assert_allclose(InputXGradient(model).attribute(x, target=1).numpy(), x * w[1], atol=1e-14)
    nerve.manual_seed(0)
    two = TwoInputs()
    x1, x2 = batch(5, (3, 3)), batch(6, (3, 4))
    a1, a2 = IntegratedGradients(two).attribute((x1, x2), target=1, baselines=(0.5, np.zeros((1, 4))))
    np.testing.assert_allclose(a1.numpy(), (x1 - 0.5) * two.a.weight.numpy()[1], atol=1e-12)
    np.testing.assert_allclose(a2.numpy(), x2 * two.b.weight.numpy()[1], atol=1e-12)
    s1, s2 = Saliency(two).attribute([x1, x2], target=0)
    assert s1.shape == x1.shape and s2.shape == x2.shape


def test_attributions_keep_the_models_dtype():
    model = nn.Linear(4, 2)  # float32
    out = IntegratedGradients(model).attribute(batch(0, (2, 4)), target=0)  # float64 input
    assert out.dtype == np.float32


def test_noise_tunnel_with_zero_noise_equals_the_inner_method():
    model, x = Quadratic(batch(3, (2, 5))), batch(4, (3, 5))
    for inner, kwargs in ((Saliency(model), {"abs": False}), (IntegratedGradients(model), {"n_steps": 5})):
        ref = inner.attribute(x, target=1, **kwargs).numpy()
        smooth = NoiseTunnel(inner).attribute(x, nt_samples=4, stdevs=0.0, target=1, **kwargs).numpy()
        np.testing.assert_allclose(smooth, ref, atol=1e-12)
        sq = NoiseTunnel(inner).attribute(x, nt_type="smoothgrad_sq", nt_samples=3, stdevs=0.0, target=1, **kwargs)
        np.testing.assert_allclose(sq.numpy(), ref ** 2, atol=1e-12)
        var = NoiseTunnel(inner).attribute(x, nt_type="vargrad", nt_samples=3, stdevs=0.0, target=1, **kwargs)
        np.testing.assert_allclose(var.numpy(), 0, atol=1e-12)


def test_smoothgrad_against_a_loop_over_the_same_noise():
    w = batch(3, (2, 5))
    model, x = Quadratic(w), batch(4, (3, 5))
    nt = NoiseTunnel(Saliency(model))
    nerve.manual_seed(7)
    got = {t: nt.attribute(x, nt_type=t, nt_samples=6, nt_samples_batch_size=6, stdevs=0.3, target=[0, 1, 0],
                           abs=False).numpy() for t in ("smoothgrad",)}
    nerve.manual_seed(7)
    noise = nerve.backend.default_generator().normal(0.0, 0.3, (18, 5))  # example-major, as NoiseTunnel draws
    rows = np.repeat(x, 6, axis=0) + noise
    targets = np.repeat([0, 1, 0], 6)
    grads = np.array([2 * w[t] * r for r, t in zip(rows, targets)]).reshape(3, 6, 5)
    np.testing.assert_allclose(got["smoothgrad"], grads.mean(axis=1), atol=1e-12)
    nerve.manual_seed(7)
    var = nt.attribute(x, nt_type="vargrad", nt_samples=6, stdevs=0.3, target=[0, 1, 0], abs=False).numpy()
    np.testing.assert_allclose(var, grads.var(axis=1), atol=1e-12)


def test_gradient_shap_closed_forms_and_convergence_delta():
    model, x = linear(), batch()
    w = model.weight.numpy()
    one = batch(9, (1, 6))
    attr = GradientShap(model).attribute(x, baselines=one, n_samples=7, target=2)
    np.testing.assert_allclose(attr.numpy(), (x - one) * w[2], atol=1e-12)
    # several baselines: the mean of (x - b_drawn) * w, with the draws of the seeded generator
    bases = batch(10, (5, 6))
    nerve.manual_seed(3)
    attr, delta = GradientShap(model).attribute(x, baselines=bases, n_samples=4, target=0,
                                                return_convergence_delta=True)
    nerve.manual_seed(3)
    gen = nerve.backend.default_generator()
    index = gen.integers(0, 5, 16)
    expected = ((np.repeat(x, 4, axis=0) - bases[index]) * w[0]).reshape(4, 4, 6).mean(axis=1)
    np.testing.assert_allclose(attr.numpy(), expected, atol=1e-12)
    assert delta.shape == (16,) and np.abs(delta.numpy()).max() < 1e-12


def occlusion_loop(f, x, window, stride, base):
    """Captum's occlusion, written out: every window position, its drop added to the covered elements, averaged."""
    n, c, h, w = x.shape
    total, count = np.zeros_like(x), np.zeros((c, h, w))
    ys = sorted({min(k * stride, h - window) for k in range(-(-(h - window) // stride) + 1)})
    xs = sorted({min(k * stride, w - window) for k in range(-(-(w - window) // stride) + 1)})
    for i in ys:
        for j in xs:
            occluded = x.copy()
            occluded[:, :, i:i + window, j:j + window] = base
            drop = f(x) - f(occluded)
            total[:, :, i:i + window, j:j + window] += drop[:, None, None, None]
            count[:, i:i + window, j:j + window] += 1
    return total / count


@pytest.mark.parametrize("stride,per_eval", [(1, 1), (2, 5), (3, 64)])
def test_occlusion_against_a_plain_loop(stride, per_eval):
    nerve.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 7 * 7, 4)).double()
    x = batch(1, (2, 2, 7, 7))

    def f(a):
        return model(nerve.tensor(a)).numpy()[:, 3]
    got = Occlusion(model).attribute(x, sliding_window_shapes=(2, 3, 3), strides=(2, stride, stride), baselines=0.25,
                                     target=3, perturbations_per_eval=per_eval)
    np.testing.assert_allclose(got.numpy(), occlusion_loop(f, x, 3, stride, 0.25), atol=1e-12)


def test_occlusion_of_a_linear_model_is_the_change_of_the_logit():
    model, x = linear(), batch()
    got = Occlusion(model).attribute(x, sliding_window_shapes=(1,), target=1, baselines=batch(3, (1, 6)))
    np.testing.assert_allclose(got.numpy(), (x - batch(3, (1, 6))) * model.weight.numpy()[1], atol=1e-12)


def test_bad_input_gives_clear_errors():
    model, x = linear(), batch()
    with pytest.raises(IndexError, match=r"Saliency.attribute: target \(3,\) is out of range .*\(N, 3\)"):
        Saliency(model).attribute(x, target=3)
    with pytest.raises(ValueError, match="IntegratedGradients.attribute: target is needed.*3 outputs"):
        IntegratedGradients(model).attribute(x)
    with pytest.raises(ValueError, match="target must be an int, a tuple or one per example"):
        Saliency(model).attribute(x, target=[0, 1])
    with pytest.raises(ValueError, match=r"baseline 0 has shape \(2, 6\); expected the input's shape \(4, 6\)"):
        IntegratedGradients(model).attribute(x, baselines=np.zeros((2, 6)), target=0)
    with pytest.raises(ValueError, match="method must be one of"):
        IntegratedGradients(model).attribute(x, target=0, method="simpson")
    with pytest.raises(ValueError, match=r"Occlusion.attribute: sliding window \(7,\) is larger than the example"):
        Occlusion(model).attribute(x, sliding_window_shapes=(7,), target=0)
    with pytest.raises(ValueError, match="strides .* may not exceed the sliding window"):
        Occlusion(model).attribute(x, sliding_window_shapes=(2,), strides=3, target=0)
    with pytest.raises(TypeError, match="holds integers"):
        Saliency(model).attribute(np.ones((2, 6), dtype=np.int64), target=0)
    with pytest.raises(ValueError, match="GradientShap.attribute: baselines 0 have shape"):
        GradientShap(model).attribute(x, baselines=np.zeros((3, 5)), target=0)
    with pytest.raises(ValueError, match="nt_type must be one of"):
        NoiseTunnel(Saliency(model)).attribute(x, nt_type="smooth", target=0)
    with pytest.raises(ValueError, match="gauss_legendre: n must be a positive int"):
        explain.gauss_legendre(0)


def test_a_model_in_training_mode_with_dropout_warns_and_is_explained_in_eval_mode():
    nerve.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Linear(8, 2)).double()
    x = batch()
    model.eval()
    ref = Saliency(model).attribute(x, target=0, abs=False).numpy()
    model.train()
    with pytest.warns(UserWarning, match="Saliency.attribute: the model is in training mode and has dropout"):
        got = Saliency(model).attribute(x, target=0, abs=False).numpy()
    np.testing.assert_array_equal(got, ref)
    assert model.training and model[1].training  # modes restored
