"""``nerve.distributions`` against SciPy's densities, moments and entropies, sample moments, reparameterised
gradients, and KL divergences against numerical integration."""
import math

import numpy as np
import pytest
from scipy import integrate, stats

import nerve
from nerve import distributions as D
from tests.helpers import T

X = np.array([0.2, 0.7, 1.5, 3.0])

CONTINUOUS = [
    ("Normal", lambda: D.Normal(T(0.5), T(1.5)), stats.norm(0.5, 1.5), True),
    ("LogNormal", lambda: D.LogNormal(T(0.2), T(0.6)), stats.lognorm(0.6, scale=math.exp(0.2)), False),
    ("Uniform", lambda: D.Uniform(T(0.1), T(3.5)), stats.uniform(0.1, 3.4), True),
    ("Exponential", lambda: D.Exponential(T(1.7)), stats.expon(scale=1 / 1.7), True),
    ("Laplace", lambda: D.Laplace(T(1.0), T(0.8)), stats.laplace(1.0, 0.8), True),
    ("Gamma", lambda: D.Gamma(T(2.5), T(1.5)), stats.gamma(2.5, scale=1 / 1.5), False),
    ("Beta", lambda: D.Beta(T(2.0), T(3.0)), stats.beta(2.0, 3.0), False),
]


@pytest.mark.parametrize("name,make,ref,has_cdf", CONTINUOUS, ids=[c[0] for c in CONTINUOUS])
def test_continuous_against_scipy(name, make, ref, has_cdf):
    d = make()
    x = X / 4 if name == "Beta" else X
    np.testing.assert_allclose(d.log_prob(T(x)).numpy(), ref.logpdf(x), rtol=1e-10)
    np.testing.assert_allclose(d.entropy().numpy(), ref.entropy(), rtol=1e-10)
    np.testing.assert_allclose(d.mean.numpy(), ref.mean(), rtol=1e-10)
    np.testing.assert_allclose(d.variance.numpy(), ref.var(), rtol=1e-10)
    if has_cdf:
        np.testing.assert_allclose(d.cdf(T(x)).numpy(), ref.cdf(x), rtol=1e-10)
    nerve.manual_seed(0)
    draws = d.sample((20000,)).numpy()
    assert draws.shape == (20000,)
    stderr = math.sqrt(ref.var() / draws.size)
    assert abs(draws.mean() - ref.mean()) < 5 * stderr, (draws.mean(), ref.mean())
    assert stats.kstest(draws, ref.cdf).pvalue > 1e-4


def test_log_prob_gradients_and_reparameterised_samples():
    loc, scale = T([0.3, -1.0], requires_grad=True), T([0.7, 2.0], requires_grad=True)
    value = T([0.1, 0.5])
    assert nerve.gradcheck(lambda m, s: D.Normal(m, s).log_prob(value), (loc, scale))
    a, b = T([2.0], requires_grad=True), T([1.5], requires_grad=True)
    assert nerve.gradcheck(lambda p, q: D.Gamma(p, q).log_prob(T([0.8])), (a, b))
    assert nerve.gradcheck(lambda p, q: D.Beta(p, q).entropy(), (a, b))
    # d/d(loc, scale) of E[x^2] = loc^2 + scale^2 is (2 loc, 2 scale); the pathwise estimate from rsample
    nerve.manual_seed(1)
    x = D.Normal(loc, scale).rsample((200000,))
    (x ** 2).mean(0).sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), 2 * loc.detach().numpy(), atol=0.03)
    np.testing.assert_allclose(scale.grad.numpy(), 2 * scale.detach().numpy(), rtol=0.02)
    with pytest.raises(NotImplementedError, match="Gamma has no reparameterised sampler"):
        D.Gamma(a, b).rsample()


def test_discrete_against_scipy_and_shapes():
    p = T([0.2, 0.9])
    bern = D.Bernoulli(probs=p)
    np.testing.assert_allclose(bern.log_prob(T([1.0, 0.0])).numpy(), stats.bernoulli(p.numpy()).logpmf([1, 0]))
    np.testing.assert_allclose(bern.entropy().numpy(), stats.bernoulli(p.numpy()).entropy())
    np.testing.assert_allclose(D.Bernoulli(logits=bern.logits).probs.numpy(), p.numpy(), rtol=1e-12)
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]])
    cat = D.Categorical(probs=T(probs * 3))  # normalised
    np.testing.assert_allclose(cat.log_prob(nerve.tensor([2, 1])).numpy(), np.log([0.7, 0.25]))
    np.testing.assert_allclose(cat.entropy().numpy(), [stats.entropy(r) for r in probs])
    nerve.manual_seed(0)
    draws = cat.sample((30000,))
    assert draws.shape == (30000, 2)
    freq = np.stack([(draws.numpy()[:, k][:, None] == np.arange(3)).mean(0) for k in range(2)])
    np.testing.assert_allclose(freq, probs, atol=0.015)
    onehot = D.OneHotCategorical(logits=cat.logits)
    assert onehot.sample((5,)).shape == (5, 2, 3) and onehot.event_shape == (3,)
    pois = D.Poisson(T([0.5, 4.0]))
    np.testing.assert_allclose(pois.log_prob(T([0.0, 3.0])).numpy(), stats.poisson([0.5, 4.0]).logpmf([0, 3]))
    diag = D.Independent(D.Normal(T(np.zeros((4, 3))), T(np.ones((4, 3)))), 1)
    assert diag.batch_shape == (4,) and diag.event_shape == (3,)
    np.testing.assert_allclose(diag.log_prob(T(np.zeros((4, 3)))).numpy(), 3 * stats.norm.logpdf(0) * np.ones(4))
    with pytest.raises(ValueError, match="exactly one of probs or logits"):
        D.Bernoulli(probs=p, logits=p)
    with pytest.raises(ValueError, match="scale must be positive"):
        D.Normal(0.0, -1.0)
    with pytest.raises(ValueError, match="outside the support"):
        D.Exponential(1.0, validate_args=True).log_prob(-1.0)


def _kl_quad(p_ref, q_ref, lo, hi):
    value, _ = integrate.quad(lambda x: p_ref.pdf(x) * (p_ref.logpdf(x) - q_ref.logpdf(x)), lo, hi, limit=200)
    return value


@pytest.mark.parametrize("p,q,p_ref,q_ref,lo,hi", [
    (D.Normal(T(0.3), T(1.2)), D.Normal(T(-0.5), T(0.7)), stats.norm(0.3, 1.2), stats.norm(-0.5, 0.7), -15, 15),
    (D.Exponential(T(2.0)), D.Exponential(T(0.5)), stats.expon(scale=0.5), stats.expon(scale=2.0), 0, 60),
    (D.Laplace(T(0.0), T(1.0)), D.Laplace(T(0.5), T(2.0)), stats.laplace(0, 1), stats.laplace(0.5, 2), -40, 40),
    (D.Gamma(T(2.0), T(1.0)), D.Gamma(T(3.0), T(2.0)), stats.gamma(2, scale=1), stats.gamma(3, scale=0.5), 0, 60),
    (D.Uniform(T(0.2), T(0.8)), D.Uniform(T(0.0), T(1.0)), stats.uniform(0.2, 0.6), stats.uniform(0, 1), 0.2, 0.8),
], ids=["Normal", "Exponential", "Laplace", "Gamma", "Uniform"])
def test_kl_closed_forms_against_numerical_integration(p, q, p_ref, q_ref, lo, hi):
    np.testing.assert_allclose(D.kl_divergence(p, q).numpy(), _kl_quad(p_ref, q_ref, lo, hi), rtol=1e-6)


def test_discrete_kl_and_registry():
    p, q = np.array([0.1, 0.6, 0.3]), np.array([0.3, 0.3, 0.4])
    np.testing.assert_allclose(D.kl_divergence(D.Categorical(T(p)), D.Categorical(T(q))).numpy(),
                               stats.entropy(p, q), rtol=1e-12)
    np.testing.assert_allclose(D.kl_divergence(D.Bernoulli(T(0.2)), D.Bernoulli(T(0.7))).numpy(),
                               stats.entropy([0.2, 0.8], [0.7, 0.3]), rtol=1e-12)
    k = np.arange(200)
    np.testing.assert_allclose(D.kl_divergence(D.Poisson(T(3.0)), D.Poisson(T(5.0))).numpy(),
                               stats.entropy(stats.poisson(3).pmf(k), stats.poisson(5).pmf(k)), rtol=1e-10)
    with pytest.raises(NotImplementedError, match=r"no closed form for Normal \|\| Laplace"):
        D.kl_divergence(D.Normal(0.0, 1.0), D.Laplace(0.0, 1.0))


def test_reachable_as_an_attribute_of_the_package():
    """``import nerve as torch; torch.distributions.Normal`` without importing the subpackage."""
    import subprocess
    import sys
    code = "import nerve; print(nerve.distributions.Normal.__name__, nerve.special.gammaln.__name__)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == \
        ["Normal", "lgamma"]
