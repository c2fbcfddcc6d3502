"""``nerve.special``: PyTorch's ``torch.special`` names, over nerve's differentiable ops."""
from __future__ import annotations

import math

from nerve.ops import (
    digamma, erf, erfinv, exp2, expm1, lgamma, log1p, log_softmax, logit, logsumexp, mvlgamma, polygamma, sigmoid,
    softmax, xlogy,
)
from nerve.tensor import Tensor

__all__ = ["gammaln", "digamma", "psi", "polygamma", "multigammaln", "erf", "erfc", "erfinv", "expit", "logit",
           "xlogy", "entr", "ndtr", "ndtri", "log1p", "expm1", "exp2", "logsumexp", "softmax", "log_softmax"]

gammaln = lgamma
psi = digamma
multigammaln = mvlgamma
expit = sigmoid


def erfc(input: Tensor) -> Tensor:
    """1 - erf(x)."""
    return 1.0 - erf(input)


def entr(input: Tensor) -> Tensor:
    """-x log x (0 at x = 0), elementwise."""
    return -xlogy(input, input)


def ndtr(input: Tensor) -> Tensor:
    """The standard normal CDF."""
    return 0.5 * (1.0 + erf(input / math.sqrt(2.0)))


def ndtri(input: Tensor) -> Tensor:
    """The standard normal quantile function (inverse of ``ndtr``)."""
    return math.sqrt(2.0) * erfinv(2.0 * input - 1.0)
