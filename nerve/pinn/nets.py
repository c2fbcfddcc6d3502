"""Networks and feature transforms for PINNs (DeepXDE's names): ``FNN`` with optional input (feature) and output
transforms, ``scale_to_unit`` (inputs to [-1, 1]), ``FourierFeatures`` (random Fourier features against spectral
bias) and ``hard_dirichlet`` (an output transform that meets a Dirichlet condition exactly).
"""
from __future__ import annotations

from typing import Callable, Sequence

import nerve
from nerve import nn
from nerve.nn import init
from nerve.tensor import Tensor

__all__ = ["FNN", "scale_to_unit", "FourierFeatures", "hard_dirichlet"]

_ACTIVATIONS = {"tanh": nerve.tanh, "sin": nerve.sin, "sigmoid": nerve.sigmoid, "relu": nerve.relu}


class FNN(nn.Module):
    """A fully connected network ``layer_sizes`` = [in, hidden..., out] with ``activation`` between layers,
    Glorot-normal weights and zero biases (Raissi's and DeepXDE's set-up)."""

    def __init__(self, layer_sizes: Sequence[int], activation: str = "tanh", initializer: str = "Glorot normal",
                 dtype=None) -> None:
        super().__init__()
        if len(layer_sizes) < 2 or any(not isinstance(n, int) or n < 1 for n in layer_sizes):
            raise ValueError(f"FNN: layer_sizes must list at least two positive ints, got {list(layer_sizes)}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"FNN: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if initializer not in ("Glorot normal", "Glorot uniform"):
            raise ValueError(f"FNN: initializer must be 'Glorot normal' or 'Glorot uniform', got {initializer!r}")
        self.activation = _ACTIVATIONS[activation]
        self.linears = nn.ModuleList([nn.Linear(a, b, dtype=dtype) for a, b in zip(layer_sizes[:-1], layer_sizes[1:])])
        for layer in self.linears:
            (init.xavier_normal_ if initializer == "Glorot normal" else init.xavier_uniform_)(layer.weight)
            init.zeros_(layer.bias)
        self._input_transform: Callable | None = None
        self._output_transform: Callable | None = None

    def apply_feature_transform(self, transform: Callable[[Tensor], Tensor]) -> None:
        """Feed ``transform(x)`` to the first layer instead of x (normalisation, Fourier features)."""
        self._input_transform = transform

    def apply_output_transform(self, transform: Callable[[Tensor, Tensor], Tensor]) -> None:
        """Return ``transform(x, net(x))`` (hard constraints)."""
        self._output_transform = transform

    def forward(self, x: Tensor) -> Tensor:
        h = self._input_transform(x) if self._input_transform is not None else x
        for layer in self.linears[:-1]:
            h = self.activation(layer(h))
        h = self.linears[-1](h)
        return self._output_transform(x, h) if self._output_transform is not None else h


def scale_to_unit(lower: Sequence[float], upper: Sequence[float]) -> Callable[[Tensor], Tensor]:
    """The feature transform x -> 2 (x - lower) / (upper - lower) - 1, mapping the domain's box to [-1, 1]^d."""
    lo, hi = [float(v) for v in lower], [float(v) for v in upper]
    if len(lo) != len(hi) or any(a >= b for a, b in zip(lo, hi)):
        raise ValueError(f"scale_to_unit: need lower < upper coordinate-wise, got {lo} and {hi}")

    def transform(x: Tensor) -> Tensor:
        if x.shape[-1] != len(lo):
            raise ValueError(f"scale_to_unit: built for {len(lo)} input dimensions, got x of shape {tuple(x.shape)}")
        low = nerve.tensor(lo, dtype=x.dtype)
        return 2.0 * (x - low) / nerve.tensor([b - a for a, b in zip(lo, hi)], dtype=x.dtype) - 1.0
    return transform


class FourierFeatures(nn.Module):
    """x -> [cos(2π x B), sin(2π x B)] with a fixed Gaussian B (in_features x num_features, std ``sigma``)
    (Tancik et al. 2020): high frequencies a plain MLP learns slowly become reachable."""

    def __init__(self, in_features: int, num_features: int, sigma: float = 1.0, generator=None, dtype=None) -> None:
        super().__init__()
        b = nerve.randn(in_features, num_features, generator=generator, dtype=dtype) * sigma
        self.register_buffer("B", b)
        self.out_features = 2 * num_features

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.B.shape[0]:
            raise ValueError(f"FourierFeatures: expected x (..., {self.B.shape[0]}), got {tuple(x.shape)}")
        z = (2 * 3.141592653589793) * (x @ self.B)
        return nerve.cat([nerve.cos(z), nerve.sin(z)], dim=-1)


def hard_dirichlet(distance: Callable[[Tensor], Tensor], boundary_value: Callable[[Tensor], Tensor] | None = None
                   ) -> Callable[[Tensor, Tensor], Tensor]:
    """The output transform u(x) = g(x) + D(x) N(x): with D = ``distance`` zero on the boundary and g =
    ``boundary_value`` (0 if None) the condition u = g holds exactly there, whatever the network N learns."""
    def transform(x: Tensor, out: Tensor) -> Tensor:
        u = distance(x) * out
        return u if boundary_value is None else u + boundary_value(x)
    return transform
