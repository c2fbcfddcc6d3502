"""``kl_divergence(p, q)`` in closed form for pairs registered with ``register_kl`` (PyTorch's names)."""
from __future__ import annotations

from typing import Callable

from nerve.distributions.continuous import Exponential, Gamma, Laplace, Normal, Uniform
from nerve.distributions.discrete import Bernoulli, Categorical, Independent, OneHotCategorical, Poisson
from nerve.distributions.distribution import Distribution
from nerve.ops import digamma, lgamma, softplus, where, xlogy
from nerve.tensor import Tensor

__all__ = ["kl_divergence", "register_kl"]

_KL: dict = {}


def register_kl(type_p: type, type_q: type) -> Callable:
    """Decorator: ``@register_kl(P, Q) def kl(p, q): ...`` adds a closed form for KL(P || Q)."""
    def add(fn: Callable) -> Callable:
        _KL[(type_p, type_q)] = fn
        return fn
    return add


def kl_divergence(p: Distribution, q: Distribution) -> Tensor:
    """KL(p || q) = E_p[log p - log q], one value per batch element."""
    for (tp, tq), fn in _KL.items():
        if isinstance(p, tp) and isinstance(q, tq):
            return fn(p, q)
    raise NotImplementedError(f"kl_divergence: no closed form for {type(p).__name__} || {type(q).__name__}; add "
                              "one with register_kl, or estimate E_p[log p(x) - log q(x)] from samples")


@register_kl(Normal, Normal)
def _normal(p: Normal, q: Normal) -> Tensor:
    ratio = (p.scale / q.scale) ** 2
    return 0.5 * (ratio + ((p.loc - q.loc) / q.scale) ** 2 - 1 - ratio.log())


@register_kl(Bernoulli, Bernoulli)
def _bernoulli(p: Bernoulli, q: Bernoulli) -> Tensor:
    # NOTE: in logits, stable at probabilities 0 and 1: p (log p - log q) + (1-p) (log(1-p) - log(1-q))
    pp = p.probs
    return pp * (softplus(-q.logits) - softplus(-p.logits)) + (1 - pp) * (softplus(q.logits) - softplus(p.logits))


@register_kl(Categorical, Categorical)
def _categorical(p: Categorical, q: Categorical) -> Tensor:
    terms = p.probs * (p.logits - q.logits)
    return where(p.probs == 0, 0.0, terms).sum(-1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _one_hot(p: OneHotCategorical, q: OneHotCategorical) -> Tensor:
    return _categorical(p._categorical, q._categorical)


@register_kl(Uniform, Uniform)
def _uniform(p: Uniform, q: Uniform) -> Tensor:
    inside = (q.low.data <= p.low.data) & (p.high.data <= q.high.data)
    return where(Tensor._make(inside, None), ((q.high - q.low) / (p.high - p.low)).log(), float("inf"))


@register_kl(Exponential, Exponential)
def _exponential(p: Exponential, q: Exponential) -> Tensor:
    ratio = q.rate / p.rate
    return ratio - ratio.log() - 1


@register_kl(Laplace, Laplace)
def _laplace(p: Laplace, q: Laplace) -> Tensor:
    ratio = p.scale / q.scale
    gap = (p.loc - q.loc).abs()
    return -ratio.log() + gap / q.scale + ratio * (-gap / p.scale).exp() - 1


@register_kl(Gamma, Gamma)
def _gamma(p: Gamma, q: Gamma) -> Tensor:
    a, b, c, d = p.concentration, p.rate, q.concentration, q.rate
    return ((a - c) * digamma(a) - lgamma(a) + lgamma(c) + c * (b.log() - d.log()) + a * (d - b) / b)


@register_kl(Poisson, Poisson)
def _poisson(p: Poisson, q: Poisson) -> Tensor:
    return xlogy(p.rate, p.rate) - xlogy(p.rate, q.rate) - p.rate + q.rate


@register_kl(Independent, Independent)
def _independent(p: Independent, q: Independent) -> Tensor:
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError("kl_divergence: Independent distributions with different event dims")
    return p._sum(kl_divergence(p.base_dist, q.base_dist))
