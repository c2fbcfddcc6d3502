"""The GAN training step for ``nerve.train.fit(..., train_step=gan_step(...))``: one discriminator update per
batch and one generator update every ``n_critic`` batches, with the stabilisers (label smoothing, instance
noise, gradient penalties, EMA of the generator) and the divergence checks."""
from __future__ import annotations

import math
import warnings
from typing import Any

from nerve.autograd.grad_mode import no_grad
from nerve.backend import expit, xp
from nerve.gan.losses import GANLoss, get_loss, gradient_penalty, r1_penalty
from nerve.gan.model import GANModel
from nerve.tensor import Tensor

__all__ = ["GANStep", "gan_step", "check_gan", "pack_samples"]

_PENALTIES = (None, "gp", "r1")


def _as_tensor(value: Any) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor(xp.asarray(value))


def split_gan_batch(batch: Any, conditional: bool, who: str) -> tuple[Tensor, Tensor | None]:
    """(real samples, labels or None) from a batch: a tensor, (x,), or (x, y) whose y a conditional GAN uses."""
    if isinstance(batch, (tuple, list)):
        if conditional and len(batch) < 2:
            raise ValueError(f"{who}: a conditional GAN needs (samples, labels) batches, got {len(batch)} field(s)")
        real = _as_tensor(batch[0])
        return real, (_as_tensor(batch[1]) if conditional else None)
    if conditional:
        raise ValueError(f"{who}: a conditional GAN needs (samples, labels) batches, got a single tensor")
    return _as_tensor(batch), None


def pack_samples(x: Tensor, pack: int, who: str = "gan_step") -> Tensor:
    """PacGAN's packing: ``pack`` consecutive samples joined along the feature (or channel) dimension, so D
    judges them together: (N, C, ...) -> (N / pack, pack C, ...)."""
    if pack == 1:
        return x
    n = x.shape[0]
    if n % pack:
        raise ValueError(f"{who}: a batch of {n} samples cannot be packed by {pack}; use a batch size that "
                         f"{pack} divides (and drop_last in a DataLoader)")
    return x.reshape((n // pack, pack * x.shape[1]) + tuple(x.shape[2:]))


def check_gan(model: GANModel, real: Tensor, labels: Tensor | None, who: str = "GAN", pack: int = 1) -> None:
    """Fail early with a clear message when G's output shape differs from the data's, when D does not give
    one score per sample (per pack of ``pack`` samples), or when the generator does not take ``latent_dim``
    inputs."""
    if real.shape[0] < pack:
        raise ValueError(f"{who}: packing by {pack} needs batches of at least {pack} samples, got {real.shape[0]}")
    n = pack * max(1, min(2, real.shape[0] // pack))
    real, labels = real[:n], (None if labels is None else labels[:n])
    modes = [m.training for m in model.modules()]
    model.eval()
    try:
        with no_grad():
            z = model.noise(n, generator=0, dtype=real.dtype)
            try:
                fake = model(z, labels)
            except Exception as error:
                raise ValueError(f"{who}: the generator {type(model.generator).__name__} failed on noise of shape "
                                 f"{tuple(z.shape)} (latent_dim={model.latent_dim}"
                                 f"{'' if labels is None else ' with labels'}): {error}") from error
            if tuple(fake.shape[1:]) != tuple(real.shape[1:]):
                raise ValueError(f"{who}: the generator makes samples of shape {tuple(fake.shape[1:])} but the data's "
                                 f"are {tuple(real.shape[1:])}")
            packed = pack_samples(real, pack, who)
            scores = model.discriminator(packed) if labels is None else model.discriminator(packed, labels[::pack])
            k = n // pack
            if tuple(scores.shape) not in ((k,), (k, 1)):
                what = "sample" if pack == 1 else f"pack of {pack} samples"
                raise ValueError(f"{who}: the discriminator {type(model.discriminator).__name__} must return one "
                                 f"score per {what}, shape ({k},) or ({k}, 1), got {tuple(scores.shape)} for "
                                 f"input {tuple(packed.shape)}")
    finally:
        for m, mode in zip(model.modules(), modes):
            m.training = mode


class GANStep:
    """``step(model, batch, optimizer) -> logs`` for ``fit``: ``model`` a ``GANModel``, ``optimizer`` a dict
    {'generator': ..., 'discriminator': ...} (or a pair (g, d)). Logs d_loss, g_loss (on generator steps),
    d_real and d_fake (D's mean belief that the batch is real, sigmoid(score), for the logistic losses; the
    mean score for the others) and the penalty when one is used. See ``gan_step`` for the options."""

    def __init__(self, loss: str | GANLoss = "non_saturating", n_critic: int = 1, penalty: str | None = None,
                 penalty_weight: float = 10.0, label_smoothing: float = 0.0, instance_noise: float = 0.0,
                 instance_noise_steps: int | None = None, collapse_patience: int = 200,
                 collapse_threshold: float = 1e-3, pack: int = 1) -> None:
        self.loss = get_loss(loss)
        if not isinstance(n_critic, int) or n_critic < 1:
            raise ValueError(f"gan_step: n_critic must be an int >= 1 (discriminator steps per generator step), "
                             f"got {n_critic!r}")
        if penalty not in _PENALTIES:
            raise ValueError(f"gan_step: penalty must be one of {_PENALTIES}, got {penalty!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"gan_step: label_smoothing must be in [0, 1), got {label_smoothing!r}")
        if label_smoothing and not self.loss.probabilities and self.loss.name != "least_squares":
            raise ValueError(f"gan_step: label_smoothing applies to the logistic and least-squares losses, not to "
                             f"{self.loss.name!r}")
        if instance_noise < 0 or (instance_noise_steps is not None and instance_noise_steps < 1):
            raise ValueError(f"gan_step: instance_noise must be >= 0 and instance_noise_steps >= 1 or None, got "
                             f"{instance_noise!r} and {instance_noise_steps!r}")
        if not isinstance(pack, int) or pack < 1:
            raise ValueError(f"gan_step: pack must be an int >= 1 (samples the discriminator judges together), "
                             f"got {pack!r}")
        self.n_critic, self.penalty, self.penalty_weight = n_critic, penalty, float(penalty_weight)
        self.pack = pack
        self.label_smoothing, self.instance_noise = float(label_smoothing), float(instance_noise)
        self.instance_noise_steps = instance_noise_steps
        self.collapse_patience, self.collapse_threshold = collapse_patience, collapse_threshold
        self.collapse: str | None = None  # the message, once the discriminator's loss has stayed at 0
        self.checked: set[int] = set()

    def __repr__(self) -> str:
        return (f"GANStep(loss={self.loss.name!r}, n_critic={self.n_critic}, penalty={self.penalty!r}, "
                f"label_smoothing={self.label_smoothing}, instance_noise={self.instance_noise})")

    def noise_std(self, step: int) -> float:
        """Instance noise's standard deviation at discriminator step ``step``: annealed linearly to 0."""
        if not self.instance_noise_steps:
            return self.instance_noise
        return self.instance_noise * max(0.0, 1.0 - step / self.instance_noise_steps)

    def _d(self, model: GANModel, x: Tensor, labels: Tensor | None, std: float) -> Tensor:
        if std:
            from nerve.creation import randn_like
            x = x + std * randn_like(x)
        x = pack_samples(x, self.pack)
        scores = model.discriminator(x) if labels is None else model.discriminator(x, labels[::self.pack])
        return scores.reshape(-1)

    def _belief(self, scores: Tensor) -> float:
        a = scores.data
        return float(expit(a).mean()) if self.loss.probabilities else float(a.mean())

    def __call__(self, model: GANModel, batch: Any, optimizer: Any) -> dict:
        if not isinstance(model, GANModel):
            raise TypeError(f"gan_step: fit's model must be a nerve.gan.GANModel(generator, discriminator, ...), got "
                            f"{type(model).__name__}")
        g_opt, d_opt = _optimizers(optimizer)
        real, labels = split_gan_batch(batch, model.num_classes is not None, "gan_step")
        if id(model) not in self.checked:
            check_gan(model, real, labels, "gan_step", self.pack)
            self.checked.add(id(model))
        step = int(model.steps.data)
        g_due = (step + 1) % self.n_critic == 0
        std = self.noise_std(step)
        z = model.noise(real.shape[0], dtype=real.dtype)
        if g_due:
            fake = model(z, labels)
        else:
            with no_grad():
                fake = model(z, labels)

        d_opt.zero_grad()
        r, f = self._d(model, real, labels, std), self._d(model, fake.detach(), labels, std)
        d_loss = self.loss.discriminator(r, f, 1.0 - self.label_smoothing)
        logs = {"d_loss": d_loss.item(), "d_real": self._belief(r), "d_fake": self._belief(f)}
        total = d_loss
        if self.penalty == "gp":
            pen = gradient_penalty(model.discriminator, pack_samples(real, self.pack),
                                   pack_samples(fake.detach(), self.pack), self.penalty_weight,
                                   labels=None if labels is None else labels[::self.pack])
            logs["gp"] = pen.item()
            total = total + pen
        elif self.penalty == "r1":
            pen = r1_penalty(model.discriminator, pack_samples(real, self.pack), self.penalty_weight,
                             labels=None if labels is None else labels[::self.pack])
            logs["r1"] = pen.item()
            total = total + pen
        total.backward()
        d_opt.step()

        if g_due:
            g_opt.zero_grad()
            g_loss = self.loss.generator(self._d(model, fake, labels, std))
            g_loss.backward()
            g_opt.step()
            model.update_ema()
            logs["g_loss"] = g_loss.item()
        model.steps.data[...] = step + 1
        self._watch(model, logs["d_loss"])
        return logs

    def _watch(self, model: GANModel, d_loss: float) -> None:
        """Count discriminator steps with loss ~ 0 (D wins, G's gradient vanishes); warn once at the patience."""
        if not math.isfinite(d_loss) or self.loss.name == "wasserstein":
            return
        streak = int(model.collapse_streak.data) + 1 if abs(d_loss) < self.collapse_threshold else 0
        model.collapse_streak.data[...] = streak
        if streak >= self.collapse_patience and self.collapse is None:
            self.collapse = (f"GAN diverged: d_loss below {self.collapse_threshold} for {streak} steps in a row "
                             "(the discriminator wins and the generator gets no gradient)")
            warnings.warn(self.collapse, RuntimeWarning, stacklevel=2)


def _optimizers(optimizer: Any) -> tuple:
    if isinstance(optimizer, dict) and set(optimizer) == {"generator", "discriminator"}:
        return optimizer["generator"], optimizer["discriminator"]
    if isinstance(optimizer, (tuple, list)) and len(optimizer) == 2:
        return optimizer[0], optimizer[1]
    raise TypeError("gan_step: fit's optimizer must be {'generator': g_optimizer, 'discriminator': d_optimizer} "
                    f"or a pair (g_optimizer, d_optimizer), got {type(optimizer).__name__}")


def gan_step(loss: str | GANLoss = "non_saturating", n_critic: int = 1, penalty: str | None = None,
             penalty_weight: float = 10.0, label_smoothing: float = 0.0, instance_noise: float = 0.0,
             instance_noise_steps: int | None = None, collapse_patience: int = 200, pack: int = 1) -> GANStep:
    """The stock GAN step for ``fit(GANModel(G, D, latent_dim), data, optimizer={'generator': ...,
    'discriminator': ...}, train_step=gan_step(...))``.

    ``loss``: 'minimax', 'non_saturating', 'hinge', 'least_squares', 'wasserstein' (or 'wgan-gp', which adds
    ``penalty='gp'``) or a ``GANLoss``; ``n_critic`` discriminator steps (one per batch) per generator step;
    ``penalty`` 'gp' (WGAN-GP on interpolates) or 'r1' (on real data), times ``penalty_weight``;
    ``label_smoothing`` s: real targets 1 - s (one-sided); ``instance_noise`` sigma: Gaussian noise added to
    D's inputs, real and fake, annealed to 0 over ``instance_noise_steps`` steps when given. A run whose
    d_loss stays below 1e-3 for ``collapse_patience`` steps is reported as diverged (warning; ``GAN.fit``
    stops it). ``pack`` m: PacGAN (Lin et al. 2018), D scores m samples at a time, all real or all fake
    (build D for m times the features/channels), which penalises mode collapse.
    """
    if isinstance(loss, str) and loss.lower().replace("_", "-") == "wgan-gp" and penalty is None:
        penalty = "gp"
    return GANStep(loss, n_critic, penalty, penalty_weight, label_smoothing, instance_noise, instance_noise_steps,
                   collapse_patience, pack=pack)
