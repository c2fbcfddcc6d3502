"""Discrete distributions with PyTorch's parameters: Bernoulli, Categorical, OneHotCategorical (probabilities
or logits) and Poisson; and Independent, which turns batch dimensions into event dimensions."""
from __future__ import annotations

from nerve import backend
from nerve.backend import xp
from nerve.distributions.distribution import Distribution, as_tensor, broadcast_all, shape_of
from nerve.ops import bernoulli, expand, gather, lgamma, logsumexp, multinomial, one_hot, sigmoid
from nerve.ops import softmax, softplus, xlogy
from nerve.tensor import Tensor

__all__ = ["Bernoulli", "Categorical", "OneHotCategorical", "Poisson", "Independent"]


def _probs_or_logits(owner: str, probs, logits) -> tuple:
    if (probs is None) == (logits is None):
        raise ValueError(f"{owner}: give exactly one of probs or logits")
    return (as_tensor(probs), None) if logits is None else (None, as_tensor(logits))


class Bernoulli(Distribution):
    """1 with probability ``probs`` (or sigmoid(``logits``)), else 0."""

    support_check = staticmethod(lambda v: (v == 0) | (v == 1))

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None) -> None:
        probs, logits = _probs_or_logits("Bernoulli", probs, logits)
        if probs is not None and not bool(xp.all((probs.data >= 0) & (probs.data <= 1))):
            raise ValueError(f"Bernoulli: probs must lie in [0, 1], got {probs}")
        self._probs, self._logits = probs, logits
        super().__init__(tuple((probs if probs is not None else logits).shape), validate_args=validate_args)

    @property
    def probs(self) -> Tensor:
        return self._probs if self._probs is not None else sigmoid(self._logits)

    @property
    def logits(self) -> Tensor:
        if self._logits is not None:
            return self._logits
        eps = xp.finfo(self._probs.data.dtype).eps
        p = self._probs.clamp(eps, 1 - eps)
        return p.log() - (1 - p).log()

    def sample(self, sample_shape=()) -> Tensor:
        p = self.probs.detach()
        return bernoulli(expand(p, *self._extended_shape(sample_shape)))

    def log_prob(self, value) -> Tensor:
        value = self._checked(value)
        logits = self.logits
        return value * logits - softplus(logits)  # log sigmoid(l) for 1, log sigmoid(-l) for 0, stably

    def entropy(self) -> Tensor:
        logits = self.logits
        return softplus(logits) - self.probs * logits

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        return (self.probs > 0.5).to(self.probs.dtype)

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)


class Categorical(Distribution):
    """One of K classes, by ``probs`` (normalised over the last dim) or ``logits``."""

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None) -> None:
        probs, logits = _probs_or_logits("Categorical", probs, logits)
        if probs is not None:
            if probs.ndim < 1 or not bool(xp.all(probs.data >= 0)):
                raise ValueError(f"Categorical: probs must be non-negative with the classes last, got {probs}")
            probs = probs / probs.sum(-1, keepdim=True)
        else:
            logits = logits - logsumexp(logits, -1, keepdim=True)
        self._probs, self._logits = probs, logits
        param = probs if probs is not None else logits
        self.num_classes = param.shape[-1]
        super().__init__(tuple(param.shape[:-1]), validate_args=validate_args)

    @property
    def probs(self) -> Tensor:
        return self._probs if self._probs is not None else softmax(self._logits, -1)

    @property
    def logits(self) -> Tensor:
        if self._logits is not None:
            return self._logits
        return self._probs.clamp(xp.finfo(self._probs.data.dtype).tiny, 1).log()

    def sample(self, sample_shape=()) -> Tensor:
        shape = shape_of(sample_shape)
        n = 1
        for s in shape:
            n *= s
        probs = self.probs.detach().reshape(-1, self.num_classes)
        draws = multinomial(probs, n, replacement=True)  # (batch, n)
        return draws.t().reshape(shape + self.batch_shape)

    def log_prob(self, value) -> Tensor:
        value = value if isinstance(value, Tensor) else Tensor._make(xp.asarray(value), None)
        if self._validate and not bool(xp.all((value.data >= 0) & (value.data < self.num_classes))):
            raise ValueError(f"Categorical.log_prob: classes must lie in [0, {self.num_classes})")
        logits = self.logits
        shape = xp.broadcast_shapes(tuple(value.shape), tuple(logits.shape[:-1]))
        logits = expand(logits, *shape, self.num_classes)
        index = expand(value.long(), *shape).unsqueeze(-1)
        return gather(logits, -1, index).squeeze(-1)

    def entropy(self) -> Tensor:
        return -xlogy(self.probs, self.probs).sum(-1)

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError("Categorical.mean is undefined (classes are labels); use probs")

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(-1)


class OneHotCategorical(Distribution):
    """``Categorical`` whose draws are one-hot vectors (event shape (K,))."""

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None) -> None:
        self._categorical = Categorical(probs, logits)
        super().__init__(self._categorical.batch_shape, (self._categorical.num_classes,), validate_args)

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits

    def sample(self, sample_shape=()) -> Tensor:
        draws = self._categorical.sample(sample_shape)
        return one_hot(draws, self._categorical.num_classes).to(self.probs.dtype)

    def log_prob(self, value) -> Tensor:
        return self._categorical.log_prob(as_tensor(value).argmax(-1))

    def entropy(self) -> Tensor:
        return self._categorical.entropy()

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)


class Poisson(Distribution):
    """Counts with mean ``rate``."""

    support_check = staticmethod(lambda v: (v >= 0) & (v == xp.floor(v)))

    def __init__(self, rate, validate_args: bool | None = None) -> None:
        (self.rate,) = broadcast_all(rate)
        if not bool(xp.all(self.rate.data >= 0)):
            raise ValueError(f"Poisson: rate must be non-negative, got {self.rate}")
        super().__init__(tuple(self.rate.shape), validate_args=validate_args)

    def sample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        lam = xp.broadcast_to(self.rate.data, shape)
        draws = backend.default_generator().poisson(lam, size=shape)
        return Tensor._make(xp.asarray(draws, dtype=self.rate.data.dtype), None)

    def log_prob(self, value) -> Tensor:
        value = self._checked(value)
        return xlogy(value, self.rate) - self.rate - lgamma(value + 1)

    @property
    def mean(self) -> Tensor:
        return self.rate

    @property
    def variance(self) -> Tensor:
        return self.rate


class Independent(Distribution):
    """``base`` with its last ``reinterpreted_batch_ndims`` batch dims counted as event dims: log_prob and
    entropy sum over them (e.g. a diagonal Gaussian over vectors)."""

    def __init__(self, base_distribution: Distribution, reinterpreted_batch_ndims: int,
                 validate_args: bool | None = None) -> None:
        n = reinterpreted_batch_ndims
        if not 0 <= n <= len(base_distribution.batch_shape):
            raise ValueError(f"Independent: reinterpreted_batch_ndims must be between 0 and "
                             f"{len(base_distribution.batch_shape)}, got {n}")
        self.base_dist, self.reinterpreted_batch_ndims = base_distribution, n
        cut = len(base_distribution.batch_shape) - n
        shape = base_distribution.batch_shape
        super().__init__(shape[:cut], shape[cut:] + base_distribution.event_shape, validate_args)
        self.has_rsample = base_distribution.has_rsample

    def _sum(self, value: Tensor) -> Tensor:
        return value.sum(tuple(range(-self.reinterpreted_batch_ndims, 0))) if self.reinterpreted_batch_ndims \
            else value

    def sample(self, sample_shape=()) -> Tensor:
        return self.base_dist.sample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        return self.base_dist.rsample(sample_shape)

    def log_prob(self, value) -> Tensor:
        return self._sum(self.base_dist.log_prob(value))

    def entropy(self) -> Tensor:
        return self._sum(self.base_dist.entropy())

    @property
    def mean(self) -> Tensor:
        return self.base_dist.mean

    @property
    def mode(self) -> Tensor:
        return self.base_dist.mode

    @property
    def variance(self) -> Tensor:
        return self.base_dist.variance
