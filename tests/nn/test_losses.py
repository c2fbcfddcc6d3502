"""Losses, functional and module: NumPy references, PyTorch's recorded values, gradients, bad input."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
import nerve.nn as nn

RNG = np.random.default_rng(0)


def T(a, requires_grad=False):
    return nerve.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def _reduce(loss, reduction, denom=None):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (loss.size if denom is None else denom)


# --- cross-entropy: a loop over positions, PyTorch's definition --------------------------------------
def ref_cross_entropy(x, y, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    n_classes = x.shape[1]
    rows = np.moveaxis(x, 1, -1).reshape(-1, n_classes)
    w = np.ones(n_classes) if weight is None else weight
    losses, denom = [], 0.0
    for row, label in zip(rows, y.reshape(-1)):
        if label == ignore_index:
            losses.append(0.0)
            continue
        m = row.max()
        logp = row - m - np.log(np.sum(np.exp(row - m)))
        nll = -w[label] * logp[label]
        smooth = -np.sum(w * logp)
        losses.append((1 - smoothing) * nll + smoothing / n_classes * smooth)
        denom += w[label]
    return _reduce(np.array(losses).reshape(y.shape), reduction, denom)


def ref_cross_entropy_probs(x, t, weight=None, reduction="mean", smoothing=0.0):
    n_classes = x.shape[1]
    rows = np.moveaxis(x, 1, -1).reshape(-1, n_classes)
    trows = np.moveaxis(t, 1, -1).reshape(-1, n_classes) * (1 - smoothing) + smoothing / n_classes
    w = np.ones(n_classes) if weight is None else weight
    losses = []
    for row, target in zip(rows, trows):
        logp = row - np.log(np.sum(np.exp(row)))
        losses.append(-np.sum(w * target * logp))
    return _reduce(np.array(losses).reshape(x.shape[:1] + x.shape[2:]), reduction, rows.shape[0])


SHAPES = [((6, 4), (6,)), ((3, 4, 2), (3, 2)), ((2, 3, 2, 2), (2, 2, 2))]


@pytest.mark.parametrize("shape,tshape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_indices_against_loops(shape, tshape, reduction):
    x = RNG.standard_normal(shape) * 3
    y = RNG.integers(0, shape[1], tshape)
    y.reshape(-1)[0] = -100
    w = RNG.uniform(0.5, 2.0, shape[1])
    for weight in (None, w):
        for smoothing in (0.0, 0.3):
            got = F.cross_entropy(T(x), nerve.tensor(y), weight=weight, reduction=reduction,
                                  label_smoothing=smoothing)
            want = ref_cross_entropy(x, y, weight, -100, reduction, smoothing)
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape,tshape", SHAPES)
def test_cross_entropy_probabilities_against_loops(shape, tshape):
    x = RNG.standard_normal(shape)
    t = np.moveaxis(RNG.dirichlet(np.ones(shape[1]), size=tshape), -1, 1)
    w = RNG.uniform(0.5, 2.0, shape[1])
    for reduction in ("mean", "sum", "none"):
        for weight, smoothing in ((None, 0.0), (w, 0.2)):
            got = F.cross_entropy(T(x), T(t), weight=weight, reduction=reduction, label_smoothing=smoothing)
            want = ref_cross_entropy_probs(x, t, weight, reduction, smoothing)
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


X4 = [[1.0, 2.0, 0.5], [0.1, -1.0, 2.0], [0.3, 0.3, -0.7], [2.0, 1.0, 0.0]]
Y4 = [0, 2, -100, 1]
W3 = [1.0, 2.0, 0.5]


def test_cross_entropy_matches_values_recorded_from_pytorch():
    """Weighted mean over non-ignored targets, with label smoothing (recorded with torch 2.13)."""
    x = T(X4, requires_grad=True)
    loss = nn.CrossEntropyLoss(weight=T(W3), label_smoothing=0.1)(x, nerve.tensor(Y4))
    assert loss.item() == pytest.approx(1.2794374011986582, rel=1e-12)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [
        [-0.1995016297383282, 0.16352588034246435, 0.0359757493958638],
        [0.010666924496316172, -0.012326707533680124, 0.0016597830373639836], [0.0, 0.0, 0.0],
        [0.3547748091147834, -0.3993153610890395, 0.04454055197425596]], rtol=1e-10)
    assert F.cross_entropy(T(X4), nerve.tensor(Y4), weight=T(W3)).item() == pytest.approx(1.2487065587975035)
    assert F.cross_entropy(T(X4), nerve.tensor(Y4)).item() == pytest.approx(1.0179197447138129)
    assert F.cross_entropy(T(X4), nerve.tensor(Y4), weight=T(W3), reduction="sum").item() == pytest.approx(
        4.3704729557912625)
    np.testing.assert_allclose(
        F.cross_entropy(T(X4), nerve.tensor(Y4), weight=T(W3), reduction="none", label_smoothing=0.1).numpy(),
        [1.4304415971764106, 0.36634454183383086, 0.0, 2.6812447651850624], rtol=1e-12)


def test_cross_entropy_ignore_index_inside_the_class_range_and_unbatched():
    x = RNG.standard_normal((5, 3))
    y = np.array([0, 1, 2, 1, 1])
    got = F.cross_entropy(T(x), nerve.tensor(y), ignore_index=1)
    assert got.item() == pytest.approx(ref_cross_entropy(x, y, ignore_index=1))
    single = F.cross_entropy(T(x[0]), nerve.tensor(2))
    assert single.shape == () and single.item() == pytest.approx(ref_cross_entropy(x[:1], np.array([2])))
    assert F.cross_entropy(T(x[0]), nerve.tensor(2), reduction="none").shape == ()


def test_cross_entropy_is_stable_for_huge_logits():
    x = T([[1e4, 0.0, -1e4], [-1e4, 1e4, 1e4]], requires_grad=True)
    loss = F.cross_entropy(x, nerve.tensor([0, 1]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0.0, np.log(2)], atol=1e-12)
    loss.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))


def test_cross_entropy_empty_and_all_ignored_batches():
    x = T(np.zeros((0, 3)), requires_grad=True)
    assert np.isnan(F.cross_entropy(x, nerve.tensor(np.zeros(0, dtype=np.int64))).item())
    assert F.cross_entropy(x, nerve.tensor(np.zeros(0, dtype=np.int64)), reduction="sum").item() == 0
    x = T(RNG.standard_normal((2, 3)), requires_grad=True)
    loss = F.cross_entropy(x, nerve.tensor([-100, -100]))
    assert np.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)


@pytest.mark.parametrize("shape,tshape", SHAPES[:2])
def test_cross_entropy_first_and_second_derivatives(shape, tshape):
    x = T(RNG.standard_normal(shape), requires_grad=True)
    y = nerve.tensor(RNG.integers(0, shape[1], tshape))
    y.data.reshape(-1)[-1] = -100
    w = RNG.uniform(0.5, 2.0, shape[1])
    for reduction in ("mean", "none"):
        def fn(x):
            return F.cross_entropy(x, y, weight=w, reduction=reduction, label_smoothing=0.2)
        assert nerve.gradcheck(fn, [x])
        assert nerve.gradgradcheck(fn, [x])
    t = T(np.moveaxis(RNG.dirichlet(np.ones(shape[1]), size=tshape), -1, 1), requires_grad=True)

    def soft(x, t):
        return F.cross_entropy(x, t, weight=w, reduction="sum", label_smoothing=0.1)
    assert nerve.gradcheck(soft, [x, t])
    assert nerve.gradgradcheck(soft, [x, t])


def test_cross_entropy_bad_input():
    x = T(RNG.standard_normal((4, 10)))
    with pytest.raises(ValueError, match=r"target class 12 is out of range for 10 classes \(expected 0..9"):
        F.cross_entropy(x, nerve.tensor([1, 12, 3, 4]))
    with pytest.raises(ValueError, match="target class -1 is out of range"):
        F.cross_entropy(x, nerve.tensor([1, -1, 3, 4]))
    with pytest.raises(ValueError, match=r"class indices must be an integer tensor"):
        F.cross_entropy(x, T([1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match=r"target of shape \(3,\) does not match input \(4, 10\)"):
        F.cross_entropy(x, nerve.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"weight must have shape \(10,\), got \(3,\)"):
        F.cross_entropy(x, nerve.tensor([1, 2, 3, 4]), weight=T([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="reduction must be 'none', 'mean' or 'sum', got 'avg'"):
        nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        F.cross_entropy(x, nerve.tensor([1, 2, 3, 4]), label_smoothing=1.5)


def test_nll_loss_against_loops_and_gradients():
    x = RNG.standard_normal((3, 4, 2))
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    y = RNG.integers(0, 4, (3, 2))
    y[0, 0] = -100
    w = RNG.uniform(0.5, 2.0, 4)
    for reduction in ("mean", "sum", "none"):
        got = F.nll_loss(T(logp), nerve.tensor(y), weight=w, reduction=reduction)
        np.testing.assert_allclose(got.numpy(), ref_cross_entropy(x, y, w, -100, reduction), rtol=1e-12)
        loss = nn.NLLLoss(weight=T(w), reduction=reduction)(F.log_softmax(T(x), 1), nerve.tensor(y))
        np.testing.assert_allclose(loss.numpy(), got.numpy(), rtol=1e-12)

    def fn(lp):
        return F.nll_loss(lp, nerve.tensor(y), weight=w)
    assert nerve.gradcheck(fn, [T(logp, True)]) and nerve.gradgradcheck(fn, [T(logp, True)])
    with pytest.raises(ValueError, match="nll_loss: target class 4 is out of range for 4 classes"):
        F.nll_loss(T(logp), nerve.tensor(np.full((3, 2), 4)))


# --- binary cross-entropies ---------------------------------------------------------------------------
def test_bce_against_formula_and_pytorch_clamp():
    p = RNG.uniform(0.05, 0.95, (4, 3))
    t = RNG.uniform(0, 1, (4, 3))
    w = RNG.uniform(0.5, 2, 3)
    want = -w * (t * np.log(p) + (1 - t) * np.log(1 - p))
    for reduction in ("mean", "sum", "none"):
        got = nn.BCELoss(weight=T(w), reduction=reduction)(T(p), T(t))
        np.testing.assert_allclose(got.numpy(), _reduce(want, reduction), rtol=1e-12)
    edge = F.binary_cross_entropy(T([0.0, 1.0, 0.25, 0.9]), T([1.0, 0.0, 0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(edge.numpy(), [100.0, 100.0, 0.2876820724517809, 0.10536051565782628],
                               rtol=1e-12)
    x = T([0.0, 1.0], requires_grad=True)
    F.binary_cross_entropy(x, T([1.0, 0.0])).backward()
    assert np.all(np.isfinite(x.grad.numpy()))

    def fn(p, t):
        return F.binary_cross_entropy(p, t, weight=w)
    assert nerve.gradcheck(fn, [T(p, True), T(t, True)]) and nerve.gradgradcheck(fn, [T(p, True), T(t, True)])
    with pytest.raises(ValueError, match=r"input must hold probabilities in \[0, 1\]"):
        F.binary_cross_entropy(T([0.5, 1.5]), T([1.0, 0.0]))


def test_bce_with_logits_against_formula_and_pytorch():
    x = RNG.standard_normal((4, 3)) * 4
    t = RNG.uniform(0, 1, (4, 3))
    w = RNG.uniform(0.5, 2, 3)
    pw = RNG.uniform(0.5, 3, 3)
    s = 1 / (1 + np.exp(-x))
    want = -w * (pw * t * np.log(s) + (1 - t) * np.log(1 - s))
    for reduction in ("mean", "sum", "none"):
        got = nn.BCEWithLogitsLoss(weight=T(w), pos_weight=T(pw), reduction=reduction)(T(x), T(t))
        np.testing.assert_allclose(got.numpy(), _reduce(want, reduction), rtol=1e-10)
    plain = F.binary_cross_entropy_with_logits(T(x), T(t))
    assert plain.item() == pytest.approx(np.mean(-(t * np.log(s) + (1 - t) * np.log(1 - s))), rel=1e-12)
    recorded = F.binary_cross_entropy_with_logits(T([3.0, -2.0, 0.5, 40.0]), T([1.0, 0.0, 0.0, 1.0]),
                                                  pos_weight=T([2.5]), reduction="none")
    np.testing.assert_allclose(recorded.numpy(), [0.12146837893435515, 0.1269280110429727, 0.9740769841801067,
                                                  1.0620885638228972e-17], rtol=1e-10)
    huge = F.binary_cross_entropy_with_logits(T([1000.0, -1000.0]), T([0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(huge.numpy(), [1000.0, 1000.0])

    def fn(x, t):
        return F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw)
    assert nerve.gradcheck(fn, [T(x, True), T(t, True)]) and nerve.gradgradcheck(fn, [T(x, True), T(t, True)])


# --- regression losses and KL --------------------------------------------------------------------------
def test_regression_losses_against_formulas():
    a = RNG.standard_normal((5, 3)) * 2
    b = RNG.standard_normal((5, 3))
    d = a - b
    huber = np.where(np.abs(d) < 0.7, 0.5 * d ** 2, 0.7 * (np.abs(d) - 0.35))
    smooth = np.where(np.abs(d) < 0.6, 0.5 * d ** 2 / 0.6, np.abs(d) - 0.3)
    cases = [(nn.MSELoss, {}, d ** 2), (nn.L1Loss, {}, np.abs(d)), (nn.HuberLoss, {"delta": 0.7}, huber),
             (nn.SmoothL1Loss, {"beta": 0.6}, smooth), (nn.SmoothL1Loss, {"beta": 0.0}, np.abs(d))]
    for cls, kwargs, want in cases:
        for reduction in ("mean", "sum", "none"):
            got = cls(reduction=reduction, **kwargs)(T(a), T(b))
            np.testing.assert_allclose(got.numpy(), _reduce(want, reduction), rtol=1e-12,
                                       err_msg=cls.__name__)
    recorded_huber = F.huber_loss(T([0.5, 3.0]), T([0.0, 0.0]), delta=2.0, reduction="none")
    np.testing.assert_allclose(recorded_huber.numpy(), [0.125, 4.0])
    recorded_smooth = F.smooth_l1_loss(T([0.5, 3.0]), T([0.0, 0.0]), beta=2.0, reduction="none")
    np.testing.assert_allclose(recorded_smooth.numpy(), [0.0625, 2.0])
    for fn in (F.mse_loss, F.l1_loss, F.huber_loss, F.smooth_l1_loss):
        assert nerve.gradcheck(lambda x, y: fn(x, y), [T(a, True), T(b, True)])
    assert nerve.gradgradcheck(F.mse_loss, [T(a, True), T(b, True)])
    with pytest.raises(ValueError, match=r"mse_loss: target shape \(5,\) differs from input shape \(5, 1\)"):
        F.mse_loss(T(np.zeros((5, 1))), T(np.zeros(5)))


def test_kl_div_against_formula():
    logq = np.log(RNG.dirichlet(np.ones(4), 3))
    p = RNG.dirichlet(np.ones(4), 3)
    p[0, 1] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        pointwise = np.where(p > 0, p * (np.log(p) - logq), 0.0)
    for reduction in ("mean", "sum", "none"):
        got = nn.KLDivLoss(reduction=reduction)(T(logq), T(p))
        np.testing.assert_allclose(got.numpy(), _reduce(pointwise, reduction), rtol=1e-12)
    assert F.kl_div(T(logq), T(p), reduction="batchmean").item() == pytest.approx(pointwise.sum() / 3)
    logp = np.log(RNG.dirichlet(np.ones(4), 3))
    got = F.kl_div(T(logq), T(logp), reduction="none", log_target=True)
    np.testing.assert_allclose(got.numpy(), np.exp(logp) * (logp - logq), rtol=1e-12)
    recorded = F.kl_div(T(np.log([[0.2, 0.3, 0.5]])), T([[0.0, 0.4, 0.6]]), reduction="batchmean")
    assert recorded.item() == pytest.approx(0.2244657630570852, rel=1e-12)
    q = RNG.dirichlet(np.ones(4), 3)
    assert nerve.gradcheck(lambda a, b: F.kl_div(a, b, reduction="batchmean"),
                           [T(logq, True), T(q, True)])
    assert nerve.gradcheck(lambda a, b: F.kl_div(a, b, log_target=True), [T(logq, True), T(logp, True)])


def test_loss_modules_keep_weights_as_buffers():
    loss = nn.CrossEntropyLoss(weight=T([1.0, 2.0]))
    assert list(loss.state_dict()) == ["weight"]
    assert list(nn.BCEWithLogitsLoss(pos_weight=T([3.0])).state_dict()) == ["pos_weight"]
    assert list(nn.MSELoss().state_dict()) == []
    assert nn.CrossEntropyLoss(label_smoothing=0.1).get_config()["label_smoothing"] == 0.1
