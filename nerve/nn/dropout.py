"""``Dropout``: zero random elements while training, so units cannot co-adapt; identity in eval mode.
``Dropout1d``/``Dropout2d`` zero whole channels of feature maps."""
from __future__ import annotations

from nerve import functional as F
from nerve.nn.module import Module
from nerve.tensor import Tensor


class Dropout(Module):
    """Zero each element with probability ``p`` while training and scale the rest by 1 / (1 - p).

    The mask is drawn from ``generator`` (a NumPy Generator) if given, else from the seeded default
    generator at call time (so ``nerve.manual_seed`` makes runs repeat). ``inplace`` is accepted for
    PyTorch compatibility and ignored.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, generator=None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = p
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        """The input with dropped elements while training, unchanged in eval mode."""
        return F.dropout(input, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def get_config(self) -> dict:
        return {"p": self.p}


class _ChannelDropout(Dropout):
    """Drop whole channels: neighbouring values in a feature map are correlated, so dropping single ones
    regularises little."""

    _fn = None

    def forward(self, input: Tensor) -> Tensor:
        """The input with whole channels zeroed while training, unchanged in eval mode."""
        return type(self)._fn(input, self.p, self.training, self.generator)


class Dropout1d(_ChannelDropout):
    """Zero each channel of (N, C, L) with probability ``p`` while training, scale the rest by 1 / (1 - p)."""

    _fn = F.dropout1d


class Dropout2d(_ChannelDropout):
    """Zero each feature map of (N, C, H, W) with probability ``p`` while training, scale the rest by
    1 / (1 - p)."""

    _fn = F.dropout2d


class Dropout3d(_ChannelDropout):
    """Zero each volume of (N, C, D, H, W) with probability ``p`` while training, scale the rest by 1 / (1 - p)."""

    _fn = F.dropout3d


class AlphaDropout(Dropout):
    """Dropout for SELU networks (Klambauer et al. 2017): dropped units take SELU's negative saturation value and
    an affine correction keeps the mean and variance."""

    def forward(self, input: Tensor) -> Tensor:
        return F.alpha_dropout(input, self.p, self.training, self.generator)


class FeatureAlphaDropout(Dropout):
    """``AlphaDropout`` of whole channels of (N, C, *) while training: ``F.feature_alpha_dropout``."""

    def forward(self, input: Tensor) -> Tensor:
        return F.feature_alpha_dropout(input, self.p, self.training, self.generator)
