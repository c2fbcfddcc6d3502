"""``GANModel``: the one Module ``fit`` trains and checkpoints for a GAN: the generator, the discriminator,
an optional exponential moving average of the generator's weights (used for sampling), and the step counters
that make a resumed run continue exactly."""
from __future__ import annotations

import copy
from typing import Any

from nerve import backend, nn
from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.tensor import Tensor

__all__ = ["GANModel"]


class GANModel(nn.Module):
    """``generator`` (z [, labels] -> samples) and ``discriminator`` (samples [, labels] -> one score each).

    ``ema_decay`` (e.g. 0.999) keeps ``generator_ema``, the weights' moving average
    ema <- decay ema + (1 - decay) weights after each generator step (buffers copied), which ``sample`` uses:
    it averages out the oscillation of the game (Yazici et al. 2019). ``num_classes`` makes it conditional.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, latent_dim: int,
                 ema_decay: float | None = None, num_classes: int | None = None) -> None:
        super().__init__()
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"GANModel: latent_dim must be a positive int, got {latent_dim!r}")
        gen_latent = getattr(generator, "latent_dim", None)
        if gen_latent is not None and gen_latent != latent_dim:
            raise ValueError(f"GANModel: latent_dim={latent_dim} but the generator "
                             f"{type(generator).__name__} takes latent_dim={gen_latent}")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"GANModel: ema_decay must be in (0, 1) or None, got {ema_decay!r}")
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim, self.ema_decay, self.num_classes = latent_dim, ema_decay, num_classes
        if ema_decay is not None:
            self.generator_ema = copy.deepcopy(generator).requires_grad_(False)
        # NOTE: counters as buffers, so checkpoints carry them (n_critic phase, annealing, collapse streak).
        self.register_buffer("steps", Tensor(xp.zeros((), xp.int64)))
        self.register_buffer("collapse_streak", Tensor(xp.zeros((), xp.int64)))

    def forward(self, z: Tensor, labels: Any = None) -> Tensor:
        """The generator's samples for noise ``z`` (``predict`` runs this)."""
        return self.generator(z) if labels is None else self.generator(z, labels)

    @property
    def sampler(self) -> nn.Module:
        """The network ``sample`` uses: the moving average when kept, else the generator."""
        return self.generator_ema if self.ema_decay is not None else self.generator

    def update_ema(self) -> None:
        """One moving-average step of ``generator_ema`` towards the generator's current weights."""
        if self.ema_decay is None:
            return
        d = self.ema_decay
        with no_grad():
            for p_ema, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
                p_ema.data *= d
                p_ema.data += (1.0 - d) * p.data
            for b_ema, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
                b_ema.data[...] = b.data

    def noise(self, n: int, generator: Any = None, dtype=None) -> Tensor:
        """Latent noise z ~ N(0, I), (n, latent_dim), from ``generator`` (a seed or NumPy Generator) or nerve's."""
        from nerve.creation import randn

        if isinstance(generator, int):
            generator = backend.generator(generator)
        return randn(n, self.latent_dim, dtype=dtype, generator=generator)

    def sample(self, n: int, labels: Any = None, generator: Any = None, ema: bool = True, z: Tensor | None = None
               ) -> Tensor:
        """``n`` samples in eval mode without a graph, from the moving average unless ``ema=False``; a
        conditional model draws classes 0, 1, ..., num_classes - 1 in turn unless ``labels`` are given."""
        from nerve.creation import arange

        net = self.sampler if ema else self.generator
        if z is None:
            z = self.noise(n, generator)
        if self.num_classes is not None and labels is None:
            labels = arange(z.shape[0]) % self.num_classes
        was_training = net.training
        net.eval()
        try:
            with no_grad():
                return net(z) if labels is None else net(z, labels)
        finally:
            net.train(was_training)
