"""``GAN``: a trainer over ``nerve.train.fit`` (progress bar, history, checkpoints and exact resume, Ctrl-C
safety) with the generator, the discriminator, their two optimisers and the stabilisers in one place."""
from __future__ import annotations

import os
from typing import Any, Iterable

from nerve import nn, optim
from nerve.gan.losses import GANLoss
from nerve.gan.model import GANModel
from nerve.gan.step import check_gan, gan_step, split_gan_batch
from nerve.tensor import Tensor
from nerve.train import Callback, TerminateOnNaN, fit
from nerve.train.history import History

__all__ = ["GAN", "StopOnCollapse"]


class StopOnCollapse(Callback):
    """Stop training once the GAN step reports a collapse (d_loss stuck at 0), naming it."""

    def __init__(self, step) -> None:
        self.step = step

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.step.collapse is not None and not self.trainer.stop_training:
            message = f"{self.step.collapse}; training stopped at epoch {self.trainer.epoch + 1}, batch {batch + 1}"
            print(message)
            self.trainer.stop(message)


class GAN:
    """A generative adversarial network and its training.

    ``generator(z [, labels])`` maps noise (N, latent_dim) to samples shaped like the data;
    ``discriminator(x [, labels])`` gives one score (logit) per sample. ``loss`` and the stabilisers are
    those of ``gan_step`` (n_critic, penalty, label_smoothing, instance noise, pack); ``ema_decay`` keeps a moving
    average of the generator for sampling. The optimisers default to Adam(betas=(0.5, 0.999)) with ``g_lr``
    and ``d_lr`` (two time-scale rates: Heusel et al. 2017 use d_lr > g_lr). ``num_classes`` makes a
    conditional GAN: batches are (samples, labels) and both networks take the labels.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss: str | GANLoss = "non_saturating", *,
                 latent_dim: int | None = None, g_optimizer: Any = None, d_optimizer: Any = None,
                 g_lr: float = 2e-4, d_lr: float = 2e-4, betas: tuple = (0.5, 0.999), n_critic: int = 1,
                 penalty: str | None = None, penalty_weight: float = 10.0, label_smoothing: float = 0.0,
                 instance_noise: float = 0.0, instance_noise_steps: int | None = None,
                 ema_decay: float | None = None, num_classes: int | None = None,
                 collapse_patience: int = 200, pack: int = 1) -> None:
        if latent_dim is None:
            latent_dim = getattr(generator, "latent_dim", None)
            if latent_dim is None:
                raise ValueError(f"GAN: pass latent_dim= (the generator {type(generator).__name__} does not say "
                                 "its latent size)")
        self.step = gan_step(loss, n_critic, penalty, penalty_weight, label_smoothing, instance_noise,
                             instance_noise_steps, collapse_patience, pack)
        self.model = GANModel(generator, discriminator, latent_dim, ema_decay, num_classes)
        self.g_optimizer = g_optimizer or optim.Adam(generator.parameters(), lr=g_lr, betas=betas)
        self.d_optimizer = d_optimizer or optim.Adam(discriminator.parameters(), lr=d_lr, betas=betas)

    @property
    def generator(self) -> nn.Module:
        return self.model.generator

    @property
    def discriminator(self) -> nn.Module:
        return self.model.discriminator

    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim

    def __repr__(self) -> str:
        return (f"GAN({type(self.generator).__name__}, {type(self.discriminator).__name__}, {self.step!r}, "
                f"latent_dim={self.latent_dim}, ema_decay={self.model.ema_decay}, "
                f"num_classes={self.model.num_classes})")

    def fit(self, data: Any, epochs: int = 1, batch_size: int = 64, callbacks: Iterable[Callback] = (),
            verbose: int = 1, shuffle: bool = True, checkpoint: str | os.PathLike | None = None,
            resume: str | os.PathLike | bool | None = None) -> History:
        """Train on ``data`` (samples X, (X, labels), a Dataset or a DataLoader) for ``epochs``; returns the
        History of d_loss, g_loss, d_real, d_fake (and what the callbacks add: mode coverage, ...).
        TerminateOnNaN and a collapse check run unless given; checkpoint/resume as in ``nerve.train.fit``."""
        self._check(data)
        callbacks = list(callbacks)
        if not any(isinstance(cb, TerminateOnNaN) for cb in callbacks):
            callbacks.insert(0, TerminateOnNaN())
        callbacks.insert(1, StopOnCollapse(self.step))
        self.step.collapse = None
        return fit(self.model, data, optimizer={"generator": self.g_optimizer, "discriminator": self.d_optimizer},
                   train_step=self.step, epochs=epochs, batch_size=batch_size, callbacks=callbacks, verbose=verbose,
                   shuffle=shuffle, checkpoint=checkpoint, resume=resume)

    def _check(self, data: Any) -> None:
        """Shapes of G's output and D's scores against the first samples, before any training."""
        from nerve.data import DataLoader, Dataset
        conditional = self.model.num_classes is not None
        if isinstance(data, DataLoader):
            first = next(iter(data))
        elif isinstance(data, Dataset):
            first = data[0]
            first = tuple(_as_batch(f) for f in first) if isinstance(first, tuple) else _as_batch(first)
        elif isinstance(data, (tuple, list)):
            first = tuple(f[:2 * self.step.pack] for f in data)
        else:
            first = data[:2 * self.step.pack]
        real, labels = split_gan_batch(first, conditional, "GAN.fit")
        check_gan(self.model, real, labels, "GAN.fit", self.step.pack)
        self.step.checked.add(id(self.model))

    def sample(self, n: int, labels: Any = None, generator: Any = None, ema: bool = True) -> Tensor:
        """``n`` samples (eval mode, no graph), from the EMA generator when kept unless ``ema=False``;
        ``generator``: a seed or a NumPy Generator for the noise (nerve's shared one when None)."""
        return self.model.sample(n, labels, generator, ema)

    def interpolate(self, steps: int = 8, pairs: int = 1, labels: Any = None, generator: Any = None,
                    ema: bool = True) -> Tensor:
        """Samples along straight lines in latent space: (pairs * steps, ...), each row of ``steps`` going
        from one random z to another (smooth changes mean G has not memorised isolated points)."""
        from nerve import ops
        from nerve.creation import linspace

        ends = self.model.noise(2 * pairs, generator)
        t = linspace(0.0, 1.0, steps).reshape(1, steps, 1)
        z0, z1 = ends[:pairs].reshape(pairs, 1, -1), ends[pairs:].reshape(pairs, 1, -1)
        z = ops.reshape(z0 * (1.0 - t) + z1 * t, (pairs * steps, self.latent_dim))
        return self.model.sample(pairs * steps, labels, None, ema, z=z)


def _as_batch(x: Any) -> Any:
    """A Dataset item as a batch of one."""
    if isinstance(x, Tensor):
        return x.reshape((1,) + tuple(x.shape))
    import numpy as np
    return np.asarray(x)[None]
