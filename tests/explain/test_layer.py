"""nerve.explain layer methods against hand computations (NumPy convolution, hand-written backprop)."""
import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.explain import (
    GuidedBackprop, GuidedGradCam, LayerActivation, LayerAttribution, LayerConductance, LayerGradCam,
    LayerIntegratedGradients,
)


def rand(seed, shape):
    return np.random.default_rng(seed).normal(size=shape)


def conv2d_loop(x, w, b):
    """Valid 2-d cross-correlation written as loops: (N, C, H, W) * (O, C, k, k) -> (N, O, H-k+1, W-k+1)."""
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    out = np.zeros((n, o, h - k + 1, wd - k + 1))
    for i in range(h - k + 1):
        for j in range(wd - k + 1):
            out[:, :, i, j] = np.einsum("ncij,ocij->no", x[:, :, i:i + k, j:j + k], w) + b
    return out


def cnn():
    nerve.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 5 * 5, 4)).double()


@pytest.mark.parametrize("relu", [False, True])
def test_grad_cam_weights_against_a_hand_computation(relu):
    model, x = cnn(), rand(1, (3, 2, 7, 7))
    conv, fc = model[0], model[3]
    a = conv2d_loop(x, conv.weight.numpy(), conv.bias.numpy())
    target = [0, 3, 1]
    grads = fc.weight.numpy()[target].reshape(3, 3, 5, 5) * (a > 0)  # through Flatten and the ReLU
    weights = grads.mean(axis=(2, 3))
    cam = (weights[:, :, None, None] * a).sum(axis=1, keepdims=True)
    got = LayerGradCam(model, model[0]).attribute(x, target=target, relu_attributions=relu)
    np.testing.assert_allclose(got.numpy(), np.maximum(cam, 0) if relu else cam, atol=1e-12)
    per_channel = LayerGradCam(model, "0").attribute(x, target=target, attr_dim_summation=False)
    np.testing.assert_allclose(per_channel.numpy(), weights[:, :, None, None] * a, atol=1e-12)


def test_layer_activation_and_interpolate():
    model, x = cnn(), rand(1, (2, 2, 7, 7))
    act = LayerActivation(model, model[0]).attribute(x)
    np.testing.assert_allclose(act.numpy(), conv2d_loop(x, model[0].weight.numpy(), model[0].bias.numpy()),
                               atol=1e-12)
    into_relu = LayerActivation(model, model[1]).attribute(x, attribute_to_layer_input=True)
    np.testing.assert_allclose(into_relu.numpy(), act.numpy())
    up = LayerAttribution.interpolate(np.arange(4.0).reshape(1, 1, 2, 2), (4, 4))
    np.testing.assert_array_equal(up.numpy()[0, 0], np.kron(np.arange(4.0).reshape(2, 2), np.ones((2, 2))))


def test_guided_backprop_against_hand_written_backprop():
    nerve.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3)).double()
    x = rand(2, (4, 5))
    w1, b1, w2 = model[0].weight.numpy(), model[0].bias.numpy(), model[2].weight.numpy()
    z = x @ w1.T + b1
    g = w2[2]
    guided = ((z > 0) * (g > 0) * g) @ w1
    np.testing.assert_allclose(GuidedBackprop(model).attribute(x, target=2).numpy(), guided, atol=1e-12)
    # the model's own gradients are unchanged afterwards
    from nerve.explain import Saliency
    plain = Saliency(model).attribute(x, target=2, abs=False).numpy()
    np.testing.assert_allclose(plain, ((z > 0) * g) @ w1, atol=1e-12)


def test_guided_grad_cam_is_guided_backprop_times_the_upsampled_relu_cam():
    model, x = cnn(), rand(3, (2, 2, 7, 7))
    cam = LayerGradCam(model, model[0]).attribute(x, target=1, relu_attributions=True).numpy()
    guided = GuidedBackprop(model).attribute(x, target=1).numpy()
    up = np.zeros((2, 1, 7, 7))
    rows = np.floor(np.arange(7) * 5 / 7).astype(int)  # nearest: source index floor(i * in / out)
    up[:] = cam[:, :, rows][:, :, :, rows]
    got = GuidedGradCam(model, model[0]).attribute(x, target=1)
    np.testing.assert_allclose(got.numpy(), guided * up, atol=1e-12)


@pytest.mark.parametrize("method", ["riemann_trapezoid", "gausslegendre"])
def test_layer_conductance_and_layer_ig_of_a_linear_stack(method):
    nerve.manual_seed(2)
    model = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 3)).double()
    x, base = rand(3, (6, 5)), rand(4, (1, 5))
    w1, w2 = model[0].weight.numpy(), model[1].weight.numpy()
    expected = ((x - base) @ w1.T) * w2[1]  # (h(x) - h(x')) * dF/dh
    cond, delta = LayerConductance(model, model[0]).attribute(x, baselines=base, target=1, n_steps=12,
                                                              method=method, return_convergence_delta=True)
    # Captum's conductance uses only the alphas: exact for the trapezoid's linspace(0, 1), not for GL's nodes
    if method == "riemann_trapezoid":
        np.testing.assert_allclose(cond.numpy(), expected, atol=1e-12)
        assert np.abs(delta.numpy()).max() < 1e-12
    else:
        alphas = 0.5 * (1 + np.polynomial.legendre.leggauss(13)[0])
        np.testing.assert_allclose(cond.numpy(), expected * (alphas[-1] - alphas[0]), atol=1e-12)
    chunked = LayerConductance(model, model[0]).attribute(x, baselines=base, target=1, n_steps=12, method=method,
                                                          internal_batch_size=18)
    np.testing.assert_allclose(chunked.numpy(), cond.numpy(), atol=1e-12)
    lig, delta = LayerIntegratedGradients(model, model[0]).attribute(x, baselines=base, target=1, method=method,
                                                                     return_convergence_delta=True)
    factor = 49 / 50 if method == "riemann_trapezoid" else 1.0  # Captum's trapezoid weights sum to (n - 1)/n
    np.testing.assert_allclose(lig.numpy(), factor * expected, atol=1e-12)
    np.testing.assert_allclose(delta.numpy(), (factor - 1) * expected.sum(axis=1), atol=1e-12)


def test_layer_integrated_gradients_attributes_token_ids_through_the_embedding():
    nerve.manual_seed(3)
    model = nn.Sequential(nn.Embedding(7, 3), nn.Flatten(), nn.Linear(12, 2)).double()
    tokens = np.array([[1, 2, 3, 4], [5, 6, 0, 1]])
    attr, delta = LayerIntegratedGradients(model, model[0]).attribute(tokens, baselines=0, target=[0, 1],
                                                                      return_convergence_delta=True)
    e, w = model[0].weight.numpy(), model[2].weight.numpy().reshape(2, 4, 3)
    expected = (e[tokens] - e[0]) * w[[0, 1]]
    np.testing.assert_allclose(attr.numpy(), expected, atol=1e-12)
    assert attr.shape == (2, 4, 3) and np.abs(delta.numpy()).max() < 1e-12


def test_layer_methods_reject_layers_outside_the_model():
    model = cnn()
    with pytest.raises(ValueError, match="LayerGradCam: layer Conv2d is not part of Sequential"):
        LayerGradCam(model, nn.Conv2d(2, 3, 3))
    with pytest.raises(ValueError, match="LayerConductance: no layer named 'conv9'"):
        LayerConductance(model, "conv9")
    with pytest.raises(ValueError, match="LayerGradCam.attribute: target is needed"):
        LayerGradCam(model, model[0]).attribute(rand(0, (1, 2, 7, 7)))


def test_grad_cam_of_an_embedding_fed_by_token_ids():
    nerve.manual_seed(4)
    model = nn.Sequential(nn.Embedding(7, 3), nn.Flatten(), nn.Linear(12, 2)).double()
    tokens = np.array([[1, 2, 3, 4], [5, 6, 0, 1]])
    cam = LayerGradCam(model, model[0]).attribute(tokens, target=1)
    e, w = model[0].weight.numpy()[tokens], model[2].weight.numpy()[1].reshape(4, 3)
    np.testing.assert_allclose(cam.numpy(), (w.mean(axis=1)[None, :, None] * e).sum(axis=1, keepdims=True))
    assert all(p.requires_grad for p in model.parameters())  # unfrozen afterwards
