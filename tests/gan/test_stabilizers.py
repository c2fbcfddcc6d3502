"""Stabilisers: spectral norm's sigma against NumPy's SVD (and PyTorch's layout choices), the EMA of the generator
against a NumPy recurrence, instance-noise annealing, and the option checks."""
import copy

import numpy as np
import pytest

import nerve
from nerve import nn, optim
from nerve.gan import GANModel, gan_step
from nerve.models.gan import MLPDiscriminator, MLPGenerator


def top_singular_value(w, dim=0):
    mat = np.swapaxes(w, 0, dim)
    return np.linalg.svd(mat.reshape(mat.shape[0], -1), compute_uv=False)[0]


@pytest.mark.parametrize("make, dim, shape", [
    (lambda: nn.Linear(6, 4), 0, (3, 6)),
    (lambda: nn.Conv2d(3, 5, 3), 0, (2, 3, 7, 7)),
    (lambda: nn.ConvTranspose2d(5, 3, 4, stride=2, padding=1), 1, (2, 5, 4, 4)),
])
def test_spectral_norm_sigma_matches_svd(make, dim, shape):
    nerve.manual_seed(0)
    layer = nn.utils.spectral_norm(make())
    x = nerve.randn(*shape)
    for _ in range(20):  # power iteration advances once per training-mode forward
        layer(x)
    w_orig = layer.weight_orig.numpy()
    sigma = top_singular_value(w_orig.astype(np.float64), dim)
    np.testing.assert_allclose(w_orig / layer.weight.numpy(), sigma, rtol=1e-4)
    assert top_singular_value(layer.weight.numpy().astype(np.float64), dim) == pytest.approx(1.0, rel=1e-4)
    # eval mode freezes u and v
    u = layer.weight_u.numpy().copy()
    layer.eval()
    layer(x)
    np.testing.assert_array_equal(layer.weight_u.numpy(), u)


def test_spectral_norm_state_gradient_and_removal():
    nerve.manual_seed(1)
    layer = nn.utils.spectral_norm(nn.Linear(4, 3).double())
    assert sorted(layer.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert [n for n, _ in layer.named_parameters()] == ["bias", "weight_orig"]
    x = nerve.randn(5, 4, dtype=nerve.float64)
    layer.eval()  # u, v fixed: the map weight_orig -> output is then a plain function to gradcheck
    w0 = layer.weight_orig

    def f(w):
        u, v = nerve.tensor(layer.weight_u.numpy()), nerve.tensor(layer.weight_v.numpy())
        return nerve.matmul(x, (w / (u * nerve.matmul(w, v)).sum()).transpose(0, 1))

    assert nerve.gradcheck(f, (w0,))
    out = layer(x)
    out.sum().backward()
    # NumPy: W_sn = W / sigma, sigma = u^T W v (u, v constant): dL/dW = G / sigma - <G, W> / sigma^2 u v^T
    W, u, v = w0.numpy(), layer.weight_u.numpy(), layer.weight_v.numpy()
    sigma = u @ W @ v
    G = np.ones((5, 3)).T @ x.numpy()
    np.testing.assert_allclose(w0.grad.numpy(), G / sigma - (G * W).sum() / sigma ** 2 * np.outer(u, v), rtol=1e-10)
    copied = copy.deepcopy(layer)
    np.testing.assert_allclose(copied(x).numpy(), out.numpy())
    expected = layer.weight.numpy().copy()
    nn.utils.remove_spectral_norm(layer)
    assert sorted(layer.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(layer.weight.numpy(), expected)


def test_spectral_norm_errors():
    with pytest.raises(ValueError, match="Linear has no parameter 'kernel'"):
        nn.utils.spectral_norm(nn.Linear(2, 2), name="kernel")
    with pytest.raises(ValueError, match=r"bias has shape \(2,\)"):
        nn.utils.spectral_norm(nn.Linear(2, 2), name="bias")
    layer = nn.utils.spectral_norm(nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="already spectrally normalised"):
        nn.utils.spectral_norm(layer)
    with pytest.raises(ValueError, match="not found in Linear"):
        nn.utils.remove_spectral_norm(nn.Linear(2, 2))


def test_ema_follows_the_numpy_recurrence():
    nerve.manual_seed(2)
    G, D = MLPGenerator(3, 2, hidden=(8,)), MLPDiscriminator(2, hidden=(8,))
    model = GANModel(G, D, 3, ema_decay=0.9)
    opt = {"generator": optim.SGD(G.parameters(), lr=0.1), "discriminator": optim.SGD(D.parameters(), lr=0.1)}
    ema = [p.numpy().astype(np.float64) for p in G.parameters()]
    step = gan_step("non_saturating")
    for _ in range(4):
        step(model, (nerve.randn(6, 2),), opt)
        ema = [0.9 * e + 0.1 * p.numpy() for e, p in zip(ema, G.parameters())]
    for e, p in zip(ema, model.generator_ema.parameters()):
        np.testing.assert_allclose(p.numpy(), e, rtol=1e-5, atol=1e-7)
        assert not p.requires_grad
    assert model.sampler is model.generator_ema
    # the moving average moved away from the generator, and sampling uses it
    assert not np.allclose(model.sample(3, generator=0).numpy(), model.sample(3, generator=0, ema=False).numpy())


def test_instance_noise_anneals_linearly():
    step = gan_step(instance_noise=0.5, instance_noise_steps=100)
    assert [step.noise_std(s) for s in (0, 50, 100, 200)] == [0.5, 0.25, 0.0, 0.0]
    assert gan_step(instance_noise=0.3).noise_std(10_000) == 0.3


def test_instance_noise_reaches_the_discriminator():
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x):
            seen.append(x.numpy().copy())
            return self.lin(x).reshape(-1)

    nerve.manual_seed(0)
    G = MLPGenerator(2, 2, hidden=(4,))
    model = GANModel(G, Spy(), 2)
    opt = (optim.SGD(G.parameters(), lr=0.0), optim.SGD(model.discriminator.parameters(), lr=0.0))
    real = np.zeros((8, 2), np.float32)
    gan_step(instance_noise=0.7).__call__(model, (real,), opt)
    noisy_real = seen[-3]  # check_gan's forward, then real, fake, fake (G step)
    assert noisy_real.std() == pytest.approx(0.7, rel=0.5) and np.abs(noisy_real).max() > 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_critic=0), "n_critic must be an int >= 1"),
    (dict(penalty="l2"), "penalty must be one of"),
    (dict(label_smoothing=1.0), r"label_smoothing must be in \[0, 1\)"),
    (dict(loss="hinge", label_smoothing=0.1), "not to 'hinge'"),
    (dict(instance_noise=-1.0), "instance_noise must be >= 0"),
])
def test_step_option_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gan_step(**kwargs)


def test_wgan_gp_name_adds_the_penalty():
    step = gan_step("wgan-gp")
    assert step.penalty == "gp" and step.loss.name == "wasserstein"
