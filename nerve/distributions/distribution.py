"""``Distribution``: the interface every distribution follows (PyTorch's): shapes, sampling with and without
the reparameterisation trick, densities, moments."""
from __future__ import annotations

import math

from nerve import backend
from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.ops import expand
from nerve.tensor import Tensor


def as_tensor(value, like: Tensor | None = None) -> Tensor:
    """A parameter or value as a floating Tensor (Python numbers take the default dtype, or ``like``'s)."""
    if isinstance(value, Tensor):
        return value if value.is_floating_point() else value.float()
    dtype = like.dtype if like is not None else backend.get_default_dtype()
    return Tensor._make(xp.asarray(value, dtype=dtype), None)


def broadcast_all(*values) -> list[Tensor]:
    """The parameters as tensors of one broadcast shape (PyTorch's ``broadcast_all``)."""
    like = next((v for v in values if isinstance(v, Tensor) and v.is_floating_point()), None)
    tensors = [as_tensor(v, like) for v in values]
    shape = xp.broadcast_shapes(*(tuple(t.shape) for t in tensors))
    return [t if tuple(t.shape) == shape else expand(t, *shape) for t in tensors]


def shape_of(sample_shape) -> tuple:
    return (sample_shape,) if isinstance(sample_shape, int) else tuple(sample_shape)


class Distribution:
    """Base class: ``batch_shape`` (independent distributions side by side) and ``event_shape`` (one draw's
    shape); ``sample`` draws without a graph, ``rsample`` (where ``has_rsample``) with one, so gradients flow
    to the parameters."""

    has_rsample = False
    support_check = None  # a function value -> bool array, for validate_args

    def __init__(self, batch_shape: tuple = (), event_shape: tuple = (), validate_args: bool | None = None) -> None:
        self.batch_shape, self.event_shape = tuple(batch_shape), tuple(event_shape)
        self._validate = bool(validate_args)

    def _extended_shape(self, sample_shape=()) -> tuple:
        return shape_of(sample_shape) + self.batch_shape + self.event_shape

    def sample(self, sample_shape=()) -> Tensor:
        """A draw of shape ``sample_shape + batch_shape + event_shape``, without a graph."""
        with no_grad():
            return self.rsample(sample_shape).detach()

    def rsample(self, sample_shape=()) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no reparameterised sampler (has_rsample is False); "
                                  "use sample(), or a score-function estimator with log_prob")

    def sample_n(self, n: int) -> Tensor:
        return self.sample((n,))

    def log_prob(self, value) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.log_prob is not defined")

    def _checked(self, value) -> Tensor:
        value = as_tensor(value)
        if self._validate and self.support_check is not None and not bool(xp.all(self.support_check(value.data))):
            raise ValueError(f"{type(self).__name__}.log_prob: the value is outside the support")
        return value

    def prob(self, value) -> Tensor:
        return self.log_prob(value).exp()

    def cdf(self, value) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.cdf is not defined")

    def icdf(self, value) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.icdf is not defined")

    def entropy(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.entropy is not defined")

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.mean is not defined")

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.mode is not defined")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.variance is not defined")

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def perplexity(self) -> Tensor:
        return self.entropy().exp()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_shape={self.batch_shape}, event_shape={self.event_shape})"


LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
