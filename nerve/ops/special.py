"""Special functions with their derivatives to any order: ``lgamma``, ``digamma``, ``polygamma``, ``erfinv``
(SciPy on the CPU, cupyx on a GPU), what the Gamma, Beta, Dirichlet and Student-t densities need."""
from __future__ import annotations

import math

from nerve import backend
from nerve.autograd.function import Function
from nerve.ops.dtypes import floating
from nerve.tensor import Tensor

__all__ = ["lgamma", "digamma", "polygamma", "erfinv", "mvlgamma"]
METHODS = ["lgamma", "digamma", "polygamma", "erfinv", "mvlgamma"]


def _special(a, name: str, *args):
    return backend._special(a, name)(*args, a).astype(a.dtype, copy=False)


class Lgamma(Function):
    def forward(self, a):
        return _special(a, "gammaln")

    def backward(self, g, m):  # d lgamma a = digamma(a) da
        return g * m.apply(Polygamma, m.inputs(self)[0], 0)


class Polygamma(Function):
    """The n-th derivative of digamma (n = 0: digamma itself)."""

    def forward(self, a, n):
        self.n = n
        return _special(a, "digamma") if n == 0 else _special(a, "polygamma", n)

    def backward(self, g, m):  # d psi_n(a) = psi_(n+1)(a) da
        a = m.inputs(self)[0]
        return g * m.apply(Polygamma, a, self.n + 1), None


class Erfinv(Function):
    saves_output = True

    def forward(self, a):
        return _special(a, "erfinv")

    def backward(self, g, m):  # d erfinv a = sqrt(pi)/2 exp(erfinv(a)^2) da
        y = m.output(self)
        return g * m.exp(y * y) * (math.sqrt(math.pi) / 2)


def lgamma(input) -> Tensor:
    """log |Gamma(x)|."""
    return Lgamma.apply(floating(input))


def digamma(input) -> Tensor:
    """d/dx lgamma(x) (``psi``)."""
    return Polygamma.apply(floating(input), 0)


def polygamma(n: int, input) -> Tensor:
    """The n-th derivative of digamma (PyTorch's argument order: n first)."""
    if isinstance(n, Tensor) and not isinstance(input, Tensor):
        n, input = input, n  # NOTE: Tensor.polygamma(n) is bound as polygamma(self, n)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"polygamma: n must be a non-negative int, got {n!r}")
    return Polygamma.apply(floating(input), n)


def erfinv(input) -> Tensor:
    """The inverse of erf on (-1, 1)."""
    return Erfinv.apply(floating(input))


def mvlgamma(input, p: int) -> Tensor:
    """The multivariate log-gamma function of dimension ``p``: sum_i lgamma(x - i/2) + p(p-1)/4 log(pi)."""
    if not isinstance(p, int) or p < 1:
        raise ValueError(f"mvlgamma: p must be a positive int, got {p!r}")
    x = floating(input)
    total = lgamma(x)
    for i in range(1, p):
        total = total + lgamma(x - i / 2)
    return total + p * (p - 1) / 4 * math.log(math.pi)
