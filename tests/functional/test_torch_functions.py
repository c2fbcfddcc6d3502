"""PyTorch's remaining functional names (activations, margin and likelihood losses, pairwise_distance, rms_norm,
alpha_dropout) against NumPy transcriptions of their documented formulas, with gradcheck and gradgradcheck in
float64 through the op table."""
import numpy as np
import pytest
from scipy import special

import nerve
import nerve.functional as F
from tests.ops.table import Case, table_tests

SIGN = np.array([1.0, -1.0, -1.0, 1.0])


def _away(lo, hi, shape, avoid=()):
    """Uniform inputs kept 0.05 away from the kinks in ``avoid``."""
    def make(rng):
        x = rng.uniform(lo, hi, size=shape)
        for k in avoid:
            x[np.abs(x - k) < 0.05] += 0.1
        return [x]
    return make


def _np_pdist(a, b, p=2.0, eps=1e-6):
    return (np.abs(a - b + eps) ** p).sum(-1) ** (1 / p)


def _np_multi_margin(x, y, p=1, margin=1.0):
    n, c = x.shape
    out = np.zeros(n)
    for i in range(n):
        for j in range(c):
            if j != y[i]:
                out[i] += max(0.0, margin - x[i, y[i]] + x[i, j]) ** p
    return out / c


Y = np.array([2, 0, 1])
LABELS = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]])

CASES = [
    Case("softmin", lambda a: F.softmin(a, 1), lambda a: special.softmax(-a, 1), [(3, 4)], second=True),
    Case("glu", lambda a: F.glu(a, 1), lambda a: a[:, :2] * special.expit(a[:, 2:]), [(3, 4)], second=True),
    Case("softshrink", lambda a: F.softshrink(a, 0.5), lambda a: np.where(a > 0.5, a - 0.5, np.where(a < -0.5,
         a + 0.5, 0.0)), [(3, 4)], second=True, make=_away(-2, 2, (3, 4), (-0.5, 0.5))),
    Case("hardshrink", lambda a: F.hardshrink(a, 0.3), lambda a: np.where(np.abs(a) > 0.3, a, 0.0), [(3, 4)],
         second=True, make=_away(-2, 2, (3, 4), (-0.3, 0.3))),
    Case("threshold", lambda a: F.threshold(a, 0.2, -1.0), lambda a: np.where(a > 0.2, a, -1.0), [(3, 4)],
         second=True, make=_away(-2, 2, (3, 4), (0.2,))),
    Case("rrelu_eval", lambda a: F.rrelu(a, 0.1, 0.3), lambda a: np.where(a >= 0, a, 0.2 * a), [(3, 4)],
         second=True, make=_away(-2, 2, (3, 4), (0.0,))),
    Case("pairwise_distance", lambda a, b: F.pairwise_distance(a, b, 3.0), lambda a, b: _np_pdist(a, b, 3.0),
         [(3, 4), (3, 4)], second=True),
    Case("margin_ranking", lambda a, b: F.margin_ranking_loss(a, b, nerve.tensor(SIGN), 0.1, reduction="none"),
         lambda a, b: np.maximum(0, -SIGN * (a - b) + 0.1), [(4,), (4,)], second=True,
         make=lambda rng: [np.array([0.5, 1.0, -0.3, 2.0]), np.array([0.1, 1.5, 0.6, -1.0])]),
    Case("hinge_embedding", lambda a: F.hinge_embedding_loss(a, nerve.tensor(SIGN), 1.0),
         lambda a: np.mean(np.where(SIGN == 1, a, np.maximum(0, 1.0 - a))), [(4,)], second=True,
         make=lambda rng: [np.array([0.5, 0.3, 1.7, -2.0])]),
    Case("soft_margin", lambda a: F.soft_margin_loss(a, nerve.tensor(SIGN), reduction="sum"),
         lambda a: np.log1p(np.exp(-SIGN * a)).sum(), [(4,)], second=True),
    Case("multilabel_soft_margin", lambda a: F.multilabel_soft_margin_loss(a, nerve.tensor(LABELS)),
         lambda a: np.mean(-np.mean(LABELS * np.log(special.expit(a)) + (1 - LABELS) * np.log(special.expit(-a)),
                                    -1)), [(3, 4)], second=True),
    Case("cosine_embedding", lambda a, b: F.cosine_embedding_loss(a, b, nerve.tensor(SIGN[:3]), 0.1, reduction="none"),
         lambda a, b: np.where(SIGN[:3] == 1, 1 - _np_cos(a, b), np.maximum(0, _np_cos(a, b) - 0.1)), [(3, 4), (3, 4)],
         second=True, make=lambda rng: [rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (3, 4))]),
    Case("triplet_margin", lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=1.0, reduction="none"),
         lambda a, p, n: np.maximum(_np_pdist(a, p) - _np_pdist(a, n) + 1.0, 0), [(3, 4)] * 3, second=True),
    Case("triplet_margin_swap", lambda a, p, n: F.triplet_margin_loss(a, p, n, swap=True, p=1.0),
         lambda a, p, n: np.mean(np.maximum(_np_pdist(a, p, 1) - np.minimum(_np_pdist(a, n, 1), _np_pdist(p, n, 1))
                                            + 1.0, 0)), [(3, 4)] * 3),
    Case("multi_margin", lambda a: F.multi_margin_loss(a, nerve.tensor(Y), reduction="none"),
         lambda a: _np_multi_margin(a, Y), [(3, 4)], second=True, make=_away(-2, 2, (3, 4))),
    Case("multi_margin_p2", lambda a: F.multi_margin_loss(a, nerve.tensor(Y), p=2, margin=0.5),
         lambda a: _np_multi_margin(a, Y, 2, 0.5).mean(), [(3, 4)], second=True),
    Case("poisson_nll", lambda a, t: F.poisson_nll_loss(a, t), lambda a, t: np.mean(np.exp(a) - t * a),
         [(3, 4), (3, 4)], grad=[0], second=True),
    Case("poisson_nll_full", lambda a, t: F.poisson_nll_loss(a, t * 3, log_input=False, full=True, reduction="none"),
         lambda a, t: a - 3 * t * np.log(a + 1e-8) + np.where(3 * t > 1, 3 * t * np.log(3 * t) - 3 * t
                                                               + 0.5 * np.log(2 * np.pi * 3 * t), 0),
         [(3, 4), (3, 4)], 0.2, 2, grad=[0], second=True),
    Case("gaussian_nll", lambda a, t, v: F.gaussian_nll_loss(a, t, v, full=True),
         lambda a, t, v: np.mean(0.5 * (np.log(v) + (a - t) ** 2 / v) + 0.5 * np.log(2 * np.pi)),
         [(3, 4), (3, 4), (3, 4)], 0.2, 2, second=True),
    Case("bilinear", F.bilinear, lambda a, b, w, c: np.einsum("ni,oij,nj->no", a, w, b) + c,
         [(3, 4), (3, 2), (5, 4, 2), (5,)], second=True),
    Case("rms_norm", lambda a, w: F.rms_norm(a, (4,), w), lambda a, w: a / np.sqrt((a * a).mean(-1, keepdims=True)
         + np.finfo(np.float64).eps) * w, [(3, 4), (4,)], second=True),
]


def _np_cos(a, b):
    return (a * b).sum(-1) / np.sqrt(((a * a).sum(-1) + 1e-12) * ((b * b).sum(-1) + 1e-12))


(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


def test_gaussian_nll_clamps_the_variance_value_but_passes_its_gradient():
    var = nerve.tensor([0.0, 1.0], dtype=nerve.float64, requires_grad=True)
    loss = F.gaussian_nll_loss(nerve.zeros(2, dtype=nerve.float64), nerve.zeros(2, dtype=nerve.float64), var,
                               eps=1e-3, reduction="sum")
    np.testing.assert_allclose(loss.item(), 0.5 * np.log(1e-3))
    loss.backward()
    np.testing.assert_allclose(var.grad.numpy(), [0.5 / 1e-3, 0.5])
    with pytest.raises(ValueError, match="gaussian_nll_loss: var has negative entries"):
        F.gaussian_nll_loss(nerve.zeros(1), nerve.zeros(1), nerve.tensor([-1.0]))


def test_rrelu_training_draws_slopes_in_its_range():
    x = -nerve.ones(10000, dtype=nerve.float64)
    slopes = -F.rrelu(x, 0.1, 0.3, training=True, generator=np.random.default_rng(0)).numpy()
    assert 0.1 <= slopes.min() and slopes.max() <= 0.3 and abs(slopes.mean() - 0.2) < 0.005
    np.testing.assert_array_equal(F.rrelu(-x, training=True).numpy(), 1.0)


def test_gumbel_softmax_samples_the_softmax_and_hard_is_straight_through():
    logits = nerve.tensor(np.log([[0.2, 0.3, 0.5]]).repeat(20000, 0))
    y = F.gumbel_softmax(logits, tau=1.0, hard=True, generator=np.random.default_rng(1))
    assert set(np.unique(y.numpy())) == {0.0, 1.0} and (y.numpy().sum(1) == 1).all()
    np.testing.assert_allclose(y.numpy().mean(0), [0.2, 0.3, 0.5], atol=4 * np.sqrt(0.25 / 20000))
    x = nerve.tensor([[1.0, 2.0, 0.5]], dtype=nerve.float64, requires_grad=True)
    soft = F.gumbel_softmax(x, tau=0.5, generator=np.random.default_rng(2))
    hard = F.gumbel_softmax(x, tau=0.5, hard=True, generator=np.random.default_rng(2))
    w = nerve.tensor([[1.0, -2.0, 3.0]], dtype=nerve.float64)
    (g_soft,) = nerve.grad((soft * w).sum(), x)
    (g_hard,) = nerve.grad((hard * w).sum(), x)
    np.testing.assert_allclose(g_hard.numpy(), g_soft.numpy())  # the gradient of the soft sample


def test_alpha_dropout_keeps_mean_and_variance_of_selu_activations():
    rng = np.random.default_rng(3)
    x = nerve.tensor(rng.standard_normal(200000))
    out = F.alpha_dropout(x, 0.2, training=True, generator=rng).numpy()
    assert abs(out.mean()) < 0.01 and abs(out.std() - 1.0) < 0.01
    assert F.alpha_dropout(x, 0.2, training=False) is x


@pytest.mark.parametrize("call, match", [
    (lambda: F.glu(nerve.ones(2, 3)), "glu: dim -1 must have an even size, got 3"),
    (lambda: F.softshrink(nerve.ones(2), -1.0), "softshrink: lambd must be non-negative"),
    (lambda: F.rrelu(nerve.ones(2), 0.5, 0.1), "rrelu: expected 0 <= lower <= upper"),
    (lambda: F.multi_margin_loss(nerve.ones(2, 3), nerve.tensor([0, 1]), p=3), "multi_margin_loss: p must be 1 or 2"),
    (lambda: F.rms_norm(nerve.ones(2, 3), (4,)), r"rms_norm: expected input \(\.\.\., 4\)"),
    (lambda: F.alpha_dropout(nerve.ones(2), 1.5, True), r"alpha_dropout: p must be in \[0, 1\]"),
])
def test_errors_name_the_function(call, match):
    with pytest.raises(ValueError, match=match):
        call()
