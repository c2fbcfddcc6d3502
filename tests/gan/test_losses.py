"""GAN losses against their formulas written in NumPy on fixed logits, and the two penalties against NumPy
gradients of a closed-form critic and against finite differences of the penalty itself (a second derivative)."""
import math

import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.gan import LOSSES, get_loss, gradient_penalty, r1_penalty

REAL = np.array([2.0, -0.5, 0.3, 4.0, -3.0])
FAKE = np.array([-1.0, 0.7, -2.5, 0.1, 3.0, -0.2])


def log_sigmoid(x):
    return np.array([-math.log1p(math.exp(-v)) if v > 0 else v - math.log1p(math.exp(v)) for v in x])


def reference(name, r, f, smooth=0.0):
    """(D loss, G loss) by the papers' formulas, with D(x) = sigmoid(logit) for the logistic losses."""
    if name in ("minimax", "non_saturating"):
        d = -np.mean((1 - smooth) * log_sigmoid(r) + smooth * log_sigmoid(-r)) - np.mean(log_sigmoid(-f))
        g = np.mean(log_sigmoid(-f)) if name == "minimax" else -np.mean(log_sigmoid(f))
    elif name == "hinge":
        d = np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f))
        g = -np.mean(f)
    elif name == "least_squares":
        d = 0.5 * np.mean((r - (1 - smooth)) ** 2) + 0.5 * np.mean(f ** 2)
        g = 0.5 * np.mean((f - 1) ** 2)
    else:
        d = np.mean(f) - np.mean(r)
        g = -np.mean(f)
    return d, g


# label smoothing only for the losses with a real target (gan_step refuses it for hinge and Wasserstein)
CASES = [(n, 0.0) for n in sorted(LOSSES)] + [(n, 0.1) for n in ("minimax", "non_saturating", "least_squares")]


@pytest.mark.parametrize("name, smooth", CASES)
def test_loss_matches_formula(name, smooth):
    loss = get_loss(name)
    r, f = nerve.tensor(REAL, dtype=nerve.float64), nerve.tensor(FAKE, dtype=nerve.float64)
    d_ref, g_ref = reference(name, REAL, FAKE, smooth)
    assert loss.discriminator(r, f, 1.0 - smooth).item() == pytest.approx(d_ref, rel=1e-12)
    assert loss.generator(f).item() == pytest.approx(g_ref, rel=1e-12)


def test_minimax_generator_gradient_vanishes_where_non_saturating_does_not():
    # D confidently rejects the fakes (logit -10): minimax's G gradient ~ sigmoid(-10)/n, the NS one ~ 1/n.
    for name, expected in (("minimax", -1 / (1 + math.exp(10))), ("non_saturating", -1 / (1 + math.exp(-10)))):
        f = nerve.tensor([-10.0], dtype=nerve.float64, requires_grad=True)
        get_loss(name).generator(f).backward()
        assert f.grad.item() == pytest.approx(expected, rel=1e-9)


def test_aliases_and_unknown_loss():
    assert get_loss("wgan-gp").name == "wasserstein" and get_loss("lsgan").name == "least_squares"
    with pytest.raises(ValueError, match="unknown loss 'bogus'"):
        get_loss("bogus")


class Quadratic(nn.Module):
    """D(x) = sum_j w_j x_j^2 + c^T x: grad_x D = 2 w x + c in closed form."""

    def __init__(self, w, c):
        super().__init__()
        self.w = nn.Parameter(nerve.tensor(w, dtype=nerve.float64))
        self.c = nn.Parameter(nerve.tensor(c, dtype=nerve.float64))

    def forward(self, x, labels=None):
        out = (self.w * x * x).sum(1) + (self.c * x).sum(1)
        return out if labels is None else out + labels


RNG = np.random.default_rng(3)
W, C = RNG.standard_normal(3), RNG.standard_normal(3)
XR, XF, ALPHA = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3)), RNG.random(4)


def gp_numpy(w, c, alpha=ALPHA, weight=10.0):
    mixed = alpha[:, None] * XR + (1 - alpha[:, None]) * XF
    g = 2 * w * mixed + c
    return weight * np.mean((np.linalg.norm(g, axis=1) - 1) ** 2)


def test_gradient_penalty_value_matches_closed_form():
    D = Quadratic(W, C)
    pen = gradient_penalty(D, nerve.tensor(XR, dtype=nerve.float64), nerve.tensor(XF, dtype=nerve.float64),
                           weight=10.0, alpha=ALPHA)
    assert pen.item() == pytest.approx(gp_numpy(W, C), rel=1e-10)


def test_gradient_penalty_parameter_gradient_matches_finite_differences():
    # d penalty / d(w, c) needs the gradient of grad_x D: a second derivative through create_graph.
    D = Quadratic(W, C)
    pen = gradient_penalty(D, nerve.tensor(XR, dtype=nerve.float64), nerve.tensor(XF, dtype=nerve.float64),
                           alpha=nerve.tensor(ALPHA, dtype=nerve.float64))
    pen.backward()
    eps = 1e-6
    for param, base, other in ((D.w, W, C), (D.c, C, W)):
        fd = np.zeros(3)
        for j in range(3):
            up, down = base.copy(), base.copy()
            up[j] += eps
            down[j] -= eps
            if param is D.w:
                fd[j] = (gp_numpy(up, other) - gp_numpy(down, other)) / (2 * eps)
            else:
                fd[j] = (gp_numpy(other, up) - gp_numpy(other, down)) / (2 * eps)
        np.testing.assert_allclose(param.grad.numpy(), fd, rtol=1e-6, atol=1e-8)


def test_gradient_penalty_trains_an_mlp_critic_like_finite_differences():
    nerve.manual_seed(0)
    D = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1)).double()
    xr, xf = nerve.tensor(XR, dtype=nerve.float64), nerve.tensor(XF, dtype=nerve.float64)
    a = nerve.tensor(ALPHA, dtype=nerve.float64)
    gradient_penalty(D, xr, xf, alpha=a).backward()
    w = D[0].weight
    analytic = w.grad.numpy().copy()
    eps, fd = 1e-6, np.zeros_like(analytic)
    for idx in np.ndindex(*analytic.shape):
        old = w.data[idx]
        w.data[idx] = old + eps
        up = gradient_penalty(D, xr, xf, alpha=a).item()
        w.data[idx] = old - eps
        down = gradient_penalty(D, xr, xf, alpha=a).item()
        w.data[idx] = old
        fd[idx] = (up - down) / (2 * eps)
    np.testing.assert_allclose(analytic, fd, rtol=1e-5, atol=1e-8)


def test_gradient_penalty_draws_alpha_and_passes_labels():
    D = Quadratic(W, C)
    xr, xf = nerve.tensor(XR, dtype=nerve.float64), nerve.tensor(XF, dtype=nerve.float64)
    nerve.manual_seed(5)
    drawn = gradient_penalty(D, xr, xf).item()
    nerve.manual_seed(5)
    alpha = nerve.rand(4, dtype=nerve.float64).numpy()
    assert drawn == pytest.approx(gp_numpy(W, C, alpha), rel=1e-10)
    # labels shift D's score by a constant, which leaves grad_x D and the penalty unchanged
    with_labels = gradient_penalty(D, xr, xf, alpha=ALPHA, labels=nerve.tensor(np.arange(4.0)))
    assert with_labels.item() == pytest.approx(gp_numpy(W, C), rel=1e-10)


def test_gradient_penalty_errors():
    D = Quadratic(W, C)
    xr = nerve.tensor(XR, dtype=nerve.float64)
    with pytest.raises(ValueError, match=r"real \(4, 3\) and fake \(3, 3\)"):
        gradient_penalty(D, xr, xr[:3])
    with pytest.raises(ValueError, match=r"one weight per sample, shape \(4,\), got \(2,\)"):
        gradient_penalty(D, xr, xr, alpha=[0.1, 0.2])


def test_r1_penalty_matches_closed_form_and_its_gradient():
    D = Quadratic(W, C)
    pen = r1_penalty(D, nerve.tensor(XR, dtype=nerve.float64), weight=4.0)

    def r1(w, c):
        g = 2 * w * XR + c
        return 0.5 * 4.0 * np.mean((g * g).sum(1))

    assert pen.item() == pytest.approx(r1(W, C), rel=1e-12)
    pen.backward()
    # d/dc of 2 E|2 w x + c|^2 = 4 E[2 w x + c]
    np.testing.assert_allclose(D.c.grad.numpy(), 4.0 * np.mean(2 * W * XR + C, 0), rtol=1e-10)
