"""Callbacks for GAN training under ``fit``: mode coverage every epoch (into the logs and the history) and a
sample grid PNG per epoch, both from fixed noise so that epochs compare and training's random stream is
untouched."""
from __future__ import annotations

import os
from typing import Any

from nerve.gan.metrics import mode_coverage
from nerve.train import Callback

__all__ = ["ModeCoverage", "SampleGrid"]


def _gan_model(callback: Callback):
    from nerve.gan.model import GANModel

    model = callback.trainer.model
    if not isinstance(model, GANModel):
        raise TypeError(f"{type(callback).__name__}: needs fit's model to be a nerve.gan.GANModel, got "
                        f"{type(model).__name__}")
    return model


class ModeCoverage(Callback):
    """Add ``modes``, ``high_quality`` and ``reverse_kl`` (``mode_coverage`` of ``n`` samples against the
    mixture's ``centers`` and ``std``) to each epoch's logs; the noise comes from generator ``seed``."""

    def __init__(self, centers: Any, std: float, n: int = 2500, threshold: float = 3.0, seed: int = 0,
                 ema: bool = True, every: int = 1) -> None:
        if n < 1 or every < 1:
            raise ValueError(f"ModeCoverage: n and every must be >= 1, got {n} and {every}")
        self.centers, self.std, self.n, self.threshold = centers, std, n, threshold
        self.seed, self.ema, self.every = seed, ema, every

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every and epoch + 1 != self.params.get("epochs"):
            return
        samples = _gan_model(self).sample(self.n, generator=self.seed, ema=self.ema)
        if logs is not None:
            logs.update(mode_coverage(samples, self.centers, self.std, self.threshold))


class SampleGrid(Callback):
    """Save a grid of ``n`` samples from fixed noise after each epoch to ``path`` (a pattern with ``{epoch}``,
    1-based, e.g. 'runs/gan/epoch_{epoch:03d}.png'); images in ``value_range``, ``nrow`` per row."""

    def __init__(self, path: str | os.PathLike = "runs/gan/epoch_{epoch:03d}.png", n: int = 64, nrow: int = 8,
                 seed: int = 0, ema: bool = True, value_range: tuple = (-1.0, 1.0)) -> None:
        self.path, self.n, self.nrow, self.seed, self.ema = str(path), n, nrow, seed, ema
        self.value_range = value_range
        self.saved: list[str] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from nerve.gan.plots import save_image

        path = self.path.format(epoch=epoch + 1)
        save_image(_gan_model(self).sample(self.n, generator=self.seed, ema=self.ema), path, self.nrow,
                   value_range=self.value_range)
        self.saved.append(path)
