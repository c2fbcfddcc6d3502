"""``nerve.distributions``: probability distributions with PyTorch's names and parameters, differentiable in
their parameters (``rsample`` by the reparameterisation trick where it exists; ``log_prob`` always), and
``kl_divergence`` in closed form: what VAEs, policy gradients and Bayesian layers are built from."""
from nerve.distributions.continuous import Beta, Exponential, Gamma, Laplace, LogNormal, Normal, Uniform
from nerve.distributions.discrete import Bernoulli, Categorical, Independent, OneHotCategorical, Poisson
from nerve.distributions.distribution import Distribution
from nerve.distributions.kl import kl_divergence, register_kl

__all__ = ["Distribution", "Normal", "LogNormal", "Uniform", "Exponential", "Laplace", "Gamma", "Beta",
           "Bernoulli", "Categorical", "OneHotCategorical", "Poisson", "Independent", "kl_divergence",
           "register_kl"]
