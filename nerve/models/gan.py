"""GAN reference architectures: MLP generator/discriminator for low-dimensional data (2-D mixtures) and DCGAN
(Radford et al. 2016) for 28x28 images; each takes ``num_classes`` to become conditional (the class enters as
a one-hot vector: concatenated to the noise, to the MLP discriminator's input, or as constant image planes)."""
from __future__ import annotations

from nerve import nn, ops
from nerve.tensor import Tensor

__all__ = ["MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator"]


def _with_labels(x: Tensor, labels, num_classes: int | None, who: str) -> Tensor:
    """``x`` (N, F) with the one-hot labels appended, for conditional models; x itself otherwise."""
    if num_classes is None:
        if labels is not None:
            raise ValueError(f"{who}: got class labels but was built without num_classes")
        return x
    if labels is None:
        raise ValueError(f"{who}: built with num_classes={num_classes}, so it needs class labels")
    labels = labels if isinstance(labels, Tensor) else Tensor(labels)
    if tuple(labels.shape) != (x.shape[0],):
        raise ValueError(f"{who}: expected one label per sample, shape ({x.shape[0]},), got {tuple(labels.shape)}")
    return ops.cat([x, ops.one_hot(labels.long(), num_classes).to(dtype=x.dtype)], 1)


def _maybe_sn(layer: nn.Module, spectral: bool) -> nn.Module:
    return nn.utils.spectral_norm(layer) if spectral else layer


class MLPGenerator(nn.Module):
    """z (N, latent_dim) [+ class] -> Linear-ReLU (hidden) ... -> Linear -> (N, out_features)."""

    def __init__(self, latent_dim: int = 2, out_features: int = 2, hidden: tuple = (128, 128, 128),
                 num_classes: int | None = None, batch_norm: bool = False) -> None:
        super().__init__()
        self.latent_dim, self.out_features, self.num_classes = latent_dim, out_features, num_classes
        layers, width = [], latent_dim + (num_classes or 0)
        for h in hidden:
            layers += [nn.Linear(width, h)] + ([nn.BatchNorm1d(h)] if batch_norm else []) + [nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)
        self.config = {"latent_dim": latent_dim, "out_features": out_features, "hidden": tuple(hidden),
                       "num_classes": num_classes, "batch_norm": batch_norm}

    def forward(self, z: Tensor, labels=None) -> Tensor:
        return self.net(_with_labels(z, labels, self.num_classes, "MLPGenerator"))

    def get_config(self) -> dict:
        """Constructor arguments, saved with the weights."""
        return dict(self.config)


class MLPDiscriminator(nn.Module):
    """x (N, in_features) [+ class] -> Linear-LeakyReLU(0.2) (hidden) ... -> Linear -> one score per sample (N,);
    ``spectral_norm`` normalises every Linear (a 1-Lipschitz critic for hinge/Wasserstein losses)."""

    def __init__(self, in_features: int = 2, hidden: tuple = (128, 128, 128), num_classes: int | None = None,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        self.in_features, self.num_classes = in_features, num_classes
        layers, width = [], in_features + (num_classes or 0)
        for h in hidden:
            layers += [_maybe_sn(nn.Linear(width, h), spectral_norm), nn.LeakyReLU(0.2)]
            width = h
        layers.append(_maybe_sn(nn.Linear(width, 1), spectral_norm))
        self.net = nn.Sequential(*layers)
        self.config = {"in_features": in_features, "hidden": tuple(hidden), "num_classes": num_classes,
                       "spectral_norm": spectral_norm}

    def forward(self, x: Tensor, labels=None) -> Tensor:
        return self.net(_with_labels(x, labels, self.num_classes, "MLPDiscriminator")).reshape(-1)

    def get_config(self) -> dict:
        """Constructor arguments, saved with the weights."""
        return dict(self.config)


class DCGANGenerator(nn.Module):
    """DCGAN's generator for 28x28 images: z [+ class] -> Linear -> (2w, 7, 7) -> BatchNorm-ReLU ->
    ConvTranspose2d(2w -> w, 4, stride 2) 14x14 -> BatchNorm-ReLU -> ConvTranspose2d(w -> channels, 4,
    stride 2) 28x28 -> Tanh (images in [-1, 1])."""

    def __init__(self, latent_dim: int = 64, channels: int = 1, width: int = 64,
                 num_classes: int | None = None) -> None:
        super().__init__()
        self.latent_dim, self.channels, self.width, self.num_classes = latent_dim, channels, width, num_classes
        self.project = nn.Sequential(nn.Linear(latent_dim + (num_classes or 0), 2 * width * 49, bias=False),
                                     nn.BatchNorm1d(2 * width * 49), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1), nn.Tanh(),
        )
        _dcgan_init(self)
        self.config = {"latent_dim": latent_dim, "channels": channels, "width": width, "num_classes": num_classes}

    def forward(self, z: Tensor, labels=None) -> Tensor:
        h = self.project(_with_labels(z, labels, self.num_classes, "DCGANGenerator"))
        return self.net(h.reshape(h.shape[0], 2 * self.width, 7, 7))

    def get_config(self) -> dict:
        """Constructor arguments, saved with the weights."""
        return dict(self.config)


class DCGANDiscriminator(nn.Module):
    """DCGAN's discriminator for 28x28 images: Conv2d(channels [+ classes] -> w, 4, stride 2) 14x14 -
    LeakyReLU(0.2) - Conv2d(w -> 2w, 4, stride 2) 7x7 - BatchNorm - LeakyReLU(0.2) - Linear -> one score per
    image (N,). A conditional one sees the class as one-hot planes; ``spectral_norm`` replaces BatchNorm by
    spectral normalisation of every layer."""

    def __init__(self, channels: int = 1, width: int = 64, num_classes: int | None = None,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        self.channels, self.width, self.num_classes = channels, width, num_classes
        sn = spectral_norm
        self.net = nn.Sequential(
            _maybe_sn(nn.Conv2d(channels + (num_classes or 0), width, 4, stride=2, padding=1), sn),
            nn.LeakyReLU(0.2),
            _maybe_sn(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=sn), sn),
            *([] if sn else [nn.BatchNorm2d(2 * width)]), nn.LeakyReLU(0.2), nn.Flatten(),
            _maybe_sn(nn.Linear(2 * width * 49, 1), sn),
        )
        if not sn:
            _dcgan_init(self)
        self.config = {"channels": channels, "width": width, "num_classes": num_classes, "spectral_norm": sn}

    def forward(self, x: Tensor, labels=None) -> Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.channels, 28, 28):
            raise ValueError(f"DCGANDiscriminator: expected images (N, {self.channels}, 28, 28), got "
                             f"{tuple(x.shape)}")
        if self.num_classes is not None or labels is not None:
            planes = _with_labels(x.reshape(x.shape[0], -1)[:, :0], labels, self.num_classes, "DCGANDiscriminator")
            planes = planes.reshape(x.shape[0], self.num_classes, 1, 1).expand(x.shape[0], self.num_classes, 28, 28)
            x = ops.cat([x, planes], 1)
        return self.net(x).reshape(-1)

    def get_config(self) -> dict:
        """Constructor arguments, saved with the weights."""
        return dict(self.config)


def _dcgan_init(model: nn.Module) -> None:
    """DCGAN's initialisation: conv weights N(0, 0.02), BatchNorm scales N(1, 0.02) and shifts 0."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
