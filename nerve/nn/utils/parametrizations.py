"""PyTorch's ``nn.utils.parametrizations``: ``weight_norm`` and ``spectral_norm`` as parametrizations
(``module.parametrizations.weight.original0/original1`` for g and v; ``original`` plus the power-iteration
buffers ``_u``, ``_v`` of the spectral norm), sharing their arithmetic with the hook versions in ``nn.utils``."""
from __future__ import annotations

from nerve.nn.module import Module
from nerve.nn.utils.norms import _matrix, _power_iteration, _sigma, _start_vectors, norm_except_dim
from nerve.nn.utils.parametrize import register_parametrization
from nerve.tensor import Tensor

__all__ = ["weight_norm", "spectral_norm"]


class _WeightNorm(Module):
    """weight = g * v / |v|; ``right_inverse`` splits a weight into (g, v) = (|w|, w)."""

    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return weight_v * (weight_g / norm_except_dim(weight_v, self.dim))

    def right_inverse(self, weight: Tensor) -> tuple:
        return norm_except_dim(weight, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Weight normalisation as a parametrization: ``module.<name>`` = g * v / |v|, g and v stored as
    ``module.parametrizations.<name>.original0`` and ``original1``."""
    return register_parametrization(module, name, _WeightNorm(dim), unsafe=True)


class _SpectralNorm(Module):
    """weight / sigma, sigma the largest singular value by power iteration on the buffers ``_u``, ``_v``
    (advanced in training mode); a 1-d weight is divided by its norm."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        super().__init__()
        if n_power_iterations < 1:
            raise ValueError(f"spectral_norm: n_power_iterations must be >= 1, got {n_power_iterations}")
        self.dim = dim + weight.ndim if dim < 0 else dim
        self.n_power_iterations, self.eps = n_power_iterations, eps
        if weight.ndim > 1:
            u, v = _start_vectors(weight, self.dim, eps)
            self.register_buffer("_u", Tensor(u))
            self.register_buffer("_v", Tensor(v))
            _power_iteration(_matrix(weight.data, self.dim), u, v, 15, eps)

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return weight / norm_except_dim(weight, None).clamp(min=self.eps)
        if self.training:
            _power_iteration(_matrix(weight.data, self.dim), self._u.data, self._v.data, self.n_power_iterations,
                             self.eps)
        return weight / _sigma(weight, self._u.data, self._v.data, self.dim)

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """Spectral normalisation as a parametrization (Miyato et al. 2018): ``module.<name>`` = W / sigma(W), the
    weight kept as ``module.parametrizations.<name>.original``; ``dim`` defaults to 1 for transposed
    convolutions, else 0."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter or buffer {name!r}")
    if dim is None:
        dim = 1 if getattr(module, "_transposed", False) else 0
    return register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
