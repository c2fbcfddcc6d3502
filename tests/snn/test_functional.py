"""Spike losses and accuracy against NumPy formulas; gradients by gradcheck; bad input."""
from __future__ import annotations

import numpy as np
import pytest

import nerve
from nerve.autograd import gradcheck
from nerve.snn import functional as SF

rng = np.random.default_rng(0)
SPK = (rng.random((6, 4, 3)) < 0.4).astype(np.float64)
MEM = rng.normal(size=(6, 4, 3))
Y = np.array([0, 2, 1, 2])


def ce(logits, y):
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean()


def test_losses_match_numpy():
    out = (nerve.tensor(SPK), nerve.tensor(MEM))
    np.testing.assert_allclose(SF.ce_rate_loss()(out, Y).item(), np.mean([ce(s, Y) for s in SPK]))
    np.testing.assert_allclose(SF.ce_count_loss()(out, Y).item(), ce(SPK.sum(0), Y))
    np.testing.assert_allclose(SF.ce_max_membrane_loss()(out, Y).item(), ce(MEM.max(0), Y))
    np.testing.assert_allclose(SF.ce_membrane_loss()(out, Y).item(), sum(ce(m, Y) for m in MEM))
    target = np.full((4, 3), 0.2 * 6)
    target[np.arange(4), Y] = 0.8 * 6
    np.testing.assert_allclose(SF.mse_count_loss(0.8, 0.2)(out, Y).item(), ((SPK.sum(0) - target) ** 2).mean() / 6)
    on = np.full((4, 3), -0.5)
    on[np.arange(4), Y] = 1.5
    np.testing.assert_allclose(SF.mse_membrane_loss(1.5, -0.5)(out, Y).item(), sum(((m - on) ** 2).mean() for m in MEM))
    np.testing.assert_allclose(SF.l1_rate_sparsity(1e-2)(out).item(), 1e-2 * SPK.sum() / 4)
    assert SF.accuracy_rate(out, Y) == np.mean(SPK.sum(0).argmax(-1) == Y)


def test_losses_are_differentiable():
    for loss in (SF.ce_rate_loss(), SF.ce_count_loss(), SF.mse_count_loss(0.8, 0.2)):
        assert gradcheck(lambda s: loss(s, Y), [nerve.tensor(SPK * 0.7 + 0.1, requires_grad=True)])
    for loss in (SF.ce_membrane_loss(), SF.mse_membrane_loss(), SF.ce_max_membrane_loss()):
        assert gradcheck(lambda m: loss(m, Y), [nerve.tensor(MEM, requires_grad=True)])


def test_spike_accuracy_metric_accumulates():
    m = SF.SpikeAccuracy()
    m.update((nerve.tensor(SPK), nerve.tensor(MEM)), Y)
    m.update(nerve.tensor(SPK[:, :2]), Y[:2])
    expected = np.concatenate([SPK.sum(0).argmax(-1) == Y, SPK[:, :2].sum(0).argmax(-1) == Y[:2]]).mean()
    assert m.result() == pytest.approx(expected)
    state = m.state_dict()
    m.reset()
    m.load_state_dict(state)
    assert m.result() == pytest.approx(expected)


def test_bad_input_names_the_loss():
    with pytest.raises(ValueError, match=r"SF.ce_rate_loss: expected a time-first record"):
        SF.ce_rate_loss()(nerve.tensor(SPK[0]), Y)
    with pytest.raises(ValueError, match="SF.ce_count_loss: 4 samples in the record but 3 targets"):
        SF.ce_count_loss()(nerve.tensor(SPK), Y[:3])
    with pytest.raises(ValueError, match="SF.mse_count_loss: correct_rate must be in"):
        SF.mse_count_loss(correct_rate=2.0)
