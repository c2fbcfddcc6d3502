"""GAN losses on the discriminator's raw scores (logits), each a pair: ``discriminator(real, fake)`` and
``generator(fake)``, batch means; and the two gradient penalties (WGAN-GP, R1), which differentiate the
discriminator's input gradient (``nerve.grad(..., create_graph=True)``)."""
from __future__ import annotations

from typing import Any, Callable

import nerve.functional as F
from nerve.autograd.engine import grad
from nerve.tensor import Tensor

__all__ = ["GANLoss", "MinimaxLoss", "NonSaturatingLoss", "HingeLoss", "LeastSquaresLoss", "WassersteinLoss",
           "get_loss", "gradient_penalty", "r1_penalty", "LOSSES"]


class GANLoss:
    """A GAN objective: ``discriminator(real_scores, fake_scores, real_label=1.0)`` and
    ``generator(fake_scores)``, both means over the batch; ``probabilities`` says whether the scores are
    logits of 'real' (so that sigmoid(score) is D's belief, logged as d_real / d_fake)."""

    name = ""
    probabilities = False

    def discriminator(self, real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
        raise NotImplementedError

    def generator(self, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _bce_real(real: Tensor, label: float) -> Tensor:
    """E[BCE(sigmoid(real), label)] = E[label softplus(-r) + (1 - label) softplus(r)]."""
    if label == 1.0:
        return F.softplus(-real).mean()
    return (label * F.softplus(-real) + (1.0 - label) * F.softplus(real)).mean()


class MinimaxLoss(GANLoss):
    """Goodfellow et al. (2014): D maximises log D(x) + log(1 - D(G(z))), G minimises log(1 - D(G(z)))
    (= -softplus(f)); G's gradient vanishes when D rejects its samples."""

    name = "minimax"
    probabilities = True

    def discriminator(self, real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
        return _bce_real(real, real_label) + F.softplus(fake).mean()

    def generator(self, fake: Tensor) -> Tensor:
        return -F.softplus(fake).mean()


class NonSaturatingLoss(MinimaxLoss):
    """The minimax D loss with G maximising log D(G(z)) instead (= softplus(-f)): strong gradients early."""

    name = "non_saturating"

    def generator(self, fake: Tensor) -> Tensor:
        return F.softplus(-fake).mean()


class HingeLoss(GANLoss):
    """Lim & Ye (2017), Miyato et al. (2018): D: E[relu(1 - r)] + E[relu(1 + f)]; G: -E[f]."""

    name = "hinge"

    def discriminator(self, real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def generator(self, fake: Tensor) -> Tensor:
        return -fake.mean()


class LeastSquaresLoss(GANLoss):
    """LSGAN, Mao et al. (2017) with a = 0, b = c = 1: D: (E[(r - 1)^2] + E[f^2]) / 2; G: E[(f - 1)^2] / 2."""

    name = "least_squares"

    def discriminator(self, real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
        return 0.5 * ((real - real_label) ** 2).mean() + 0.5 * (fake ** 2).mean()

    def generator(self, fake: Tensor) -> Tensor:
        return 0.5 * ((fake - 1.0) ** 2).mean()


class WassersteinLoss(GANLoss):
    """WGAN, Arjovsky et al. (2017): the critic minimises E[f] - E[r], G minimises -E[f]; needs a Lipschitz
    critic (``gradient_penalty`` for WGAN-GP, or spectral norm)."""

    name = "wasserstein"

    def discriminator(self, real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
        return fake.mean() - real.mean()

    def generator(self, fake: Tensor) -> Tensor:
        return -fake.mean()


LOSSES = {cls.name: cls for cls in (MinimaxLoss, NonSaturatingLoss, HingeLoss, LeastSquaresLoss,
                                    WassersteinLoss)}
_ALIASES = {"vanilla": "minimax", "ns": "non_saturating", "lsgan": "least_squares", "wgan": "wasserstein",
            "wgan-gp": "wasserstein", "wgan_gp": "wasserstein"}


def get_loss(loss: str | GANLoss) -> GANLoss:
    """A ``GANLoss`` from a name ('minimax', 'non_saturating', 'hinge', 'least_squares', 'wasserstein',
    'wgan-gp', ...) or the instance itself."""
    if isinstance(loss, GANLoss):
        return loss
    key = _ALIASES.get(loss, loss) if isinstance(loss, str) else None
    if key not in LOSSES:
        raise ValueError(f"nerve.gan: unknown loss {loss!r}; choose one of {sorted(LOSSES) + sorted(_ALIASES)} "
                         "or pass a GANLoss")
    return LOSSES[key]()


def _input_grad(discriminator: Callable, x: Tensor, labels: Any) -> Tensor:
    """d(sum of D's scores)/dx per sample, kept in the graph (create_graph) so the penalty trains D."""
    x = x.detach().requires_grad_(True)
    scores = discriminator(x) if labels is None else discriminator(x, labels)
    (g,) = grad(scores.sum(), x, create_graph=True)
    return g.reshape(g.shape[0], -1)


def gradient_penalty(discriminator: Callable, real: Tensor, fake: Tensor, weight: float = 10.0,
                     alpha: Any = None, labels: Any = None) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): weight * E[(|grad_x D(x_hat)| - 1)^2] at x_hat = alpha real +
    (1 - alpha) fake, alpha ~ U[0, 1) per sample (drawn from nerve's generator when not given); ``labels``
    (a conditional GAN's classes) go to the discriminator as its second argument."""
    from nerve.creation import rand, tensor

    if tuple(real.shape) != tuple(fake.shape):
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape")
    n = real.shape[0]
    if alpha is None:
        alpha = rand(n, dtype=real.dtype, device=real.device)
    alpha = alpha if isinstance(alpha, Tensor) else tensor(alpha, dtype=real.dtype)
    if tuple(alpha.shape) != (n,):
        raise ValueError(f"gradient_penalty: alpha must hold one weight per sample, shape ({n},), got "
                         f"{tuple(alpha.shape)}")
    alpha = alpha.detach().reshape((n,) + (1,) * (real.ndim - 1))
    mixed = alpha * real.detach() + (1.0 - alpha) * fake.detach()
    g = _input_grad(discriminator, mixed, labels)
    norm = ((g * g).sum(1) + 1e-12).sqrt()  # NOTE: the epsilon keeps the norm's gradient finite at g = 0
    return weight * ((norm - 1.0) ** 2).mean()


def r1_penalty(discriminator: Callable, real: Tensor, weight: float = 10.0, labels: Any = None) -> Tensor:
    """R1 (Mescheder et al. 2018): weight / 2 * E[|grad_x D(x)|^2] on real samples (``labels`` as above)."""
    g = _input_grad(discriminator, real, labels)
    return 0.5 * weight * (g * g).sum(1).mean()
