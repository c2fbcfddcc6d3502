"""Continuous distributions with PyTorch's parameters: Normal, LogNormal, Uniform, Exponential, Laplace (each
with ``rsample``), Gamma and Beta (``sample`` only)."""
from __future__ import annotations

import math

from nerve import backend
from nerve.backend import xp
from nerve.distributions.distribution import LOG_SQRT_2PI, Distribution, as_tensor, broadcast_all
from nerve.creation import rand, randn
from nerve.ops import digamma, erf, erfinv, lgamma, log1p, where
from nerve.tensor import Tensor

__all__ = ["Normal", "LogNormal", "Uniform", "Exponential", "Laplace", "Gamma", "Beta"]


def _positive(name: str, owner: str, *values: Tensor) -> None:
    for v in values:
        if not bool(xp.all(v.data > 0)):
            raise ValueError(f"{owner}: {name} must be positive, got {v}")


class _LocationScale(Distribution):
    """A distribution of ``loc + scale * noise``: its two parameters, broadcast, scale checked positive."""

    has_rsample = True

    def __init__(self, loc, scale, validate_args: bool | None = None) -> None:
        self.loc, self.scale = broadcast_all(loc, scale)
        _positive("scale", type(self).__name__, self.scale)
        super().__init__(tuple(self.loc.shape), validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc


class Normal(_LocationScale):
    """N(loc, scale^2)."""

    def rsample(self, sample_shape=()) -> Tensor:
        eps = randn(*self._extended_shape(sample_shape), dtype=self.loc.dtype)
        return self.loc + eps * self.scale

    def log_prob(self, value) -> Tensor:
        value = self._checked(value)
        return -((value - self.loc) ** 2) / (2 * self.scale ** 2) - self.scale.log() - LOG_SQRT_2PI

    def cdf(self, value) -> Tensor:
        return 0.5 * (1 + erf((as_tensor(value) - self.loc) / (self.scale * math.sqrt(2))))

    def icdf(self, value) -> Tensor:
        return self.loc + self.scale * erfinv(2 * as_tensor(value) - 1) * math.sqrt(2)

    def entropy(self) -> Tensor:
        return 0.5 + LOG_SQRT_2PI + self.scale.log()

    @property
    def variance(self) -> Tensor:
        return self.scale ** 2

    @property
    def stddev(self) -> Tensor:
        return self.scale


class LogNormal(Distribution):
    """exp(X) for X ~ N(loc, scale^2)."""

    has_rsample = True
    support_check = staticmethod(lambda v: v > 0)

    def __init__(self, loc, scale, validate_args: bool | None = None) -> None:
        self.base = Normal(loc, scale)
        self.loc, self.scale = self.base.loc, self.base.scale
        super().__init__(self.base.batch_shape, validate_args=validate_args)

    def rsample(self, sample_shape=()) -> Tensor:
        return self.base.rsample(sample_shape).exp()

    def log_prob(self, value) -> Tensor:
        value = self._checked(value)
        return self.base.log_prob(value.log()) - value.log()

    def entropy(self) -> Tensor:
        return self.base.entropy() + self.loc

    @property
    def mean(self) -> Tensor:
        return (self.loc + self.scale ** 2 / 2).exp()

    @property
    def mode(self) -> Tensor:
        return (self.loc - self.scale ** 2).exp()

    @property
    def variance(self) -> Tensor:
        s2 = self.scale ** 2
        return (s2.exp() - 1) * (2 * self.loc + s2).exp()


class Uniform(Distribution):
    """Uniform on [low, high)."""

    has_rsample = True

    def __init__(self, low, high, validate_args: bool | None = None) -> None:
        self.low, self.high = broadcast_all(low, high)
        if not bool(xp.all(self.low.data < self.high.data)):
            raise ValueError(f"Uniform: low must be below high, got low={self.low} high={self.high}")
        super().__init__(tuple(self.low.shape), validate_args=validate_args)

    def rsample(self, sample_shape=()) -> Tensor:
        u = rand(*self._extended_shape(sample_shape), dtype=self.low.dtype)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value) -> Tensor:
        value = self._checked(value)
        inside = (value.data >= self.low.data) & (value.data < self.high.data)
        return where(Tensor._make(inside, None), -(self.high - self.low).log(), -math.inf)

    def cdf(self, value) -> Tensor:
        return ((as_tensor(value) - self.low) / (self.high - self.low)).clamp(0, 1)

    def icdf(self, value) -> Tensor:
        return self.low + as_tensor(value) * (self.high - self.low)

    def entropy(self) -> Tensor:
        return (self.high - self.low).log()

    @property
    def mean(self) -> Tensor:
        return (self.low + self.high) / 2

    @property
    def variance(self) -> Tensor:
        return (self.high - self.low) ** 2 / 12


class Exponential(Distribution):
    """Density rate * exp(-rate x) on x >= 0."""

    has_rsample = True
    support_check = staticmethod(lambda v: v >= 0)

    def __init__(self, rate, validate_args: bool | None = None) -> None:
        (self.rate,) = broadcast_all(rate)
        _positive("rate", "Exponential", self.rate)
        super().__init__(tuple(self.rate.shape), validate_args=validate_args)

    def rsample(self, sample_shape=()) -> Tensor:
        u = rand(*self._extended_shape(sample_shape), dtype=self.rate.dtype)
        return -log1p(-u) / self.rate

    def log_prob(self, value) -> Tensor:
        value = self._checked(value)
        return self.rate.log() - self.rate * value

    def cdf(self, value) -> Tensor:
        return 1 - (-self.rate * as_tensor(value)).exp()

    def icdf(self, value) -> Tensor:
        return -log1p(-as_tensor(value)) / self.rate

    def entropy(self) -> Tensor:
        return 1 - self.rate.log()

    @property
    def mean(self) -> Tensor:
        return 1 / self.rate

    @property
    def mode(self) -> Tensor:
        return self.rate * 0

    @property
    def variance(self) -> Tensor:
        return self.rate ** -2


class Laplace(_LocationScale):
    """Density exp(-|x - loc| / scale) / (2 scale)."""

    def rsample(self, sample_shape=()) -> Tensor:
        finfo = xp.finfo(self.loc.data.dtype)
        u = rand(*self._extended_shape(sample_shape), dtype=self.loc.dtype) * 2 - 1
        u = u.clamp(-1 + finfo.eps, 1 - finfo.eps)
        return self.loc - self.scale * u.sign() * log1p(-u.abs())

    def log_prob(self, value) -> Tensor:
        value = self._checked(value)
        return -(2 * self.scale).log() - (value - self.loc).abs() / self.scale

    def cdf(self, value) -> Tensor:
        z = (as_tensor(value) - self.loc) / self.scale
        return 0.5 - 0.5 * z.sign() * (-z.abs()).expm1()

    def entropy(self) -> Tensor:
        return 1 + (2 * self.scale).log()

    @property
    def variance(self) -> Tensor:
        return 2 * self.scale ** 2


def _draw(fn, shape: tuple, like: Tensor) -> Tensor:
    """A NumPy draw from nerve's generator, as a tensor of ``like``'s dtype."""
    return Tensor._make(xp.asarray(fn(backend.default_generator(), shape), dtype=like.data.dtype), None)


class Gamma(Distribution):
    """Shape ``concentration``, ``rate`` (PyTorch's parametrisation: mean concentration / rate)."""

    support_check = staticmethod(lambda v: v > 0)

    def __init__(self, concentration, rate, validate_args: bool | None = None) -> None:
        self.concentration, self.rate = broadcast_all(concentration, rate)
        _positive("concentration and rate", "Gamma", self.concentration, self.rate)
        super().__init__(tuple(self.rate.shape), validate_args=validate_args)

    def sample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        a = xp.broadcast_to(self.concentration.data, shape)
        return _draw(lambda g, s: g.standard_gamma(a, size=s), shape, self.rate) / self.rate.detach()

    def log_prob(self, value) -> Tensor:
        value = self._checked(value)
        a, b = self.concentration, self.rate
        return a * b.log() + (a - 1) * value.log() - b * value - lgamma(a)

    def entropy(self) -> Tensor:
        a = self.concentration
        return a - self.rate.log() + lgamma(a) + (1 - a) * digamma(a)

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.rate

    @property
    def variance(self) -> Tensor:
        return self.concentration / self.rate ** 2


class Beta(Distribution):
    """Density x^(a-1) (1-x)^(b-1) / B(a, b) on (0, 1)."""

    support_check = staticmethod(lambda v: (v > 0) & (v < 1))

    def __init__(self, concentration1, concentration0, validate_args: bool | None = None) -> None:
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        _positive("concentrations", "Beta", self.concentration1, self.concentration0)
        super().__init__(tuple(self.concentration1.shape), validate_args=validate_args)

    def sample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        a = xp.broadcast_to(self.concentration1.data, shape)
        b = xp.broadcast_to(self.concentration0.data, shape)
        return _draw(lambda g, s: g.beta(a, b, size=s), shape, self.concentration1)

    def log_prob(self, value) -> Tensor:
        value = self._checked(value)
        a, b = self.concentration1, self.concentration0
        return (a - 1) * value.log() + (b - 1) * log1p(-value) - (lgamma(a) + lgamma(b) - lgamma(a + b))

    def entropy(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        return (lgamma(a) + lgamma(b) - lgamma(a + b) - (a - 1) * digamma(a) - (b - 1) * digamma(b)
                + (a + b - 2) * digamma(a + b))

    @property
    def mean(self) -> Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def variance(self) -> Tensor:
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total ** 2 * (total + 1))

