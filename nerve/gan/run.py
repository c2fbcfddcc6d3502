"""``train_dcgan``: a DCGAN run on 28x28 images in a run directory (what ``nerve train --model gan`` calls): sample
grids per epoch, history.csv, a checkpoint that resumes exactly, the generator's weights, a latent interpolation."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nerve.gan.callbacks import SampleGrid
from nerve.gan.plots import save_image
from nerve.gan.trainer import GAN

__all__ = ["train_dcgan", "as_images"]


def as_images(x: Any) -> Any:
    """uint8 or [0, 1] float images, (N, 784) or (N, 28, 28) or (N, 1, 28, 28), as float32 (N, 1, 28, 28) in
    [-1, 1] (the generator's tanh range)."""
    import numpy

    a = numpy.asarray(x)
    if a.size == 0 or a.size % 784 or a.shape[-1] not in (28, 784):
        raise ValueError(f"train_dcgan: expected 28x28 images as (N, 784), (N, 28, 28) or (N, 1, 28, 28), got "
                         f"shape {a.shape}")
    scale = 255.0 if a.dtype.kind in "iu" or a.max() > 1.0 else 1.0
    return a.reshape(-1, 1, 28, 28).astype(numpy.float32) / (scale / 2.0) - 1.0


def train_dcgan(images: Any, run: str | os.PathLike, epochs: int = 5, batch_size: int = 64, lr: float = 2e-4,
                latent_dim: int = 64, width: int = 32, ema_decay: float | None = 0.999, verbose: int = 1,
                resume: bool = False) -> GAN:
    """Train DCGANGenerator/DCGANDiscriminator (non-saturating loss, Adam(lr, betas (0.5, 0.999))) on
    ``images`` and write into ``run``: samples_epoch_NN.png (fixed noise, each epoch), history.csv,
    checkpoint.safetensors (``resume=True`` continues it), generator.safetensors (the EMA generator when kept),
    samples.png and interpolation.png."""
    import nerve
    from nerve.models.gan import DCGANDiscriminator, DCGANGenerator
    from nerve.train import CSVLogger

    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    gan = GAN(DCGANGenerator(latent_dim, width=width), DCGANDiscriminator(width=width), "non_saturating",
              g_lr=lr, d_lr=lr, ema_decay=ema_decay)
    callbacks = [SampleGrid(run / "samples_epoch_{epoch:02d}.png"), CSVLogger(run / "history.csv")]
    gan.fit(as_images(images), epochs=epochs, batch_size=batch_size, callbacks=callbacks, verbose=verbose,
            checkpoint=run / "checkpoint.safetensors", resume=resume)
    nerve.save(gan.model.sampler, run / "generator.safetensors")
    save_image(gan.sample(64, generator=1), run / "samples.png")
    save_image(gan.interpolate(steps=10, pairs=6, generator=2), run / "interpolation.png", nrow=10)
    return gan
