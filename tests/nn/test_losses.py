"""Losses, functional and module: NumPy references, PyTorch's recorded values, gradients, bad input (the fused
cross-entropy and binary cross-entropies as ops: tests/ops/test_loss.py)."""
import numpy as np
import pytest

import nerve
import nerve.functional as F
import nerve.nn as nn
from tests.helpers import T, np_reduce

RNG = np.random.default_rng(0)


# --- cross-entropy and NLL (the op itself is tested in tests/ops/test_loss.py) -----------------------------
def ref_nll(logp, y, weight, reduction, ignore_index=-100):
    """-w[y] logp[n, y] per position, ignored positions 0; the mean divides by the summed weights."""
    valid = y != ignore_index
    safe = np.where(valid, y, 0)
    picked = np.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
    w = weight[safe] * valid
    return np_reduce(-w * picked, reduction, w.sum())


X4 = [[1.0, 2.0, 0.5], [0.1, -1.0, 2.0], [0.3, 0.3, -0.7], [2.0, 1.0, 0.0]]
Y4 = [0, 2, -100, 1]
W3 = [1.0, 2.0, 0.5]


def test_cross_entropy_loss_module_matches_values_recorded_from_pytorch():
    """Weighted mean over non-ignored targets, with label smoothing (recorded with torch 2.13)."""
    x = T(X4, requires_grad=True)
    loss = nn.CrossEntropyLoss(weight=T(W3), label_smoothing=0.1)(x, nerve.tensor(Y4))
    assert loss.item() == pytest.approx(1.2794374011986582, rel=1e-12)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [
        [-0.1995016297383282, 0.16352588034246435, 0.0359757493958638],
        [0.010666924496316172, -0.012326707533680124, 0.0016597830373639836], [0.0, 0.0, 0.0],
        [0.3547748091147834, -0.3993153610890395, 0.04454055197425596]], rtol=1e-10)
    summed = nn.CrossEntropyLoss(weight=T(W3), reduction="sum", ignore_index=-100)(T(X4), nerve.tensor(Y4))
    assert summed.item() == pytest.approx(4.3704729557912625)
    with pytest.raises(ValueError, match="CrossEntropyLoss: reduction must be 'none', 'mean' or 'sum', got 'avg'"):
        nn.CrossEntropyLoss(reduction="avg")


def test_nll_loss_against_loops_and_gradients():
    x = RNG.standard_normal((3, 4, 2))
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    y = RNG.integers(0, 4, (3, 2))
    y[0, 0] = -100
    w = RNG.uniform(0.5, 2.0, 4)
    for reduction in ("mean", "sum", "none"):
        got = F.nll_loss(T(logp), nerve.tensor(y), weight=w, reduction=reduction)
        want = ref_nll(np.moveaxis(logp, 1, -1).reshape(-1, 4), y.reshape(-1), w, reduction)
        np.testing.assert_allclose(got.numpy(), want.reshape(y.shape) if reduction == "none" else want, rtol=1e-12)
        loss = nn.NLLLoss(weight=T(w), reduction=reduction)(F.log_softmax(T(x), 1), nerve.tensor(y))
        np.testing.assert_allclose(loss.numpy(), got.numpy(), rtol=1e-12)

    def fn(lp):
        return F.nll_loss(lp, nerve.tensor(y), weight=w)
    assert nerve.gradcheck(fn, [T(logp, True)]) and nerve.gradgradcheck(fn, [T(logp, True)])
    with pytest.raises(ValueError, match="nll_loss: target class 4 is out of range for 4 classes"):
        F.nll_loss(T(logp), nerve.tensor(np.full((3, 2), 4)))


# --- binary cross-entropies ---------------------------------------------------------------------------
def test_bce_loss_modules_against_formulas():
    p = RNG.uniform(0.05, 0.95, (4, 3))
    t = RNG.uniform(0, 1, (4, 3))
    w = RNG.uniform(0.5, 2, 3)
    want = -w * (t * np.log(p) + (1 - t) * np.log(1 - p))
    for reduction in ("mean", "sum", "none"):
        got = nn.BCELoss(weight=T(w), reduction=reduction)(T(p), T(t))
        np.testing.assert_allclose(got.numpy(), np_reduce(want, reduction), rtol=1e-12)
    x = RNG.standard_normal((4, 3)) * 4
    pw = RNG.uniform(0.5, 3, 3)
    s = 1 / (1 + np.exp(-x))
    want = -w * (pw * t * np.log(s) + (1 - t) * np.log(1 - s))
    for reduction in ("mean", "sum", "none"):
        got = nn.BCEWithLogitsLoss(weight=T(w), pos_weight=T(pw), reduction=reduction)(T(x), T(t))
        np.testing.assert_allclose(got.numpy(), np_reduce(want, reduction), rtol=1e-10)
    plain = nn.BCEWithLogitsLoss()(T(x), T(t))
    assert plain.item() == pytest.approx(np.mean(-(t * np.log(s) + (1 - t) * np.log(1 - s))), rel=1e-12)


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
            np.testing.assert_allclose(got.numpy(), np_reduce(want, reduction), rtol=1e-12,
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
        np.testing.assert_allclose(got.numpy(), np_reduce(pointwise, reduction), rtol=1e-12)
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
