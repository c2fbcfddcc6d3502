"""STDP: the weight change for hand-built spike trains against the pair formula, the rule contract (−ΔW/batch in
.grad, SGD applies it), bounds and normalisation, errors, and two patterns learned by two competing neurons."""
from __future__ import annotations

import math

import numpy as np
import pytest

import nerve
from nerve import nn, snn
from nerve.models.snn import DiehlCook, assign_labels, predict_by_assignment
from nerve.rules import Rule
from nerve.rules.stdp import STDP


def train(times: dict, steps: int, n: int) -> np.ndarray:
    s = np.zeros((steps, 1, n))
    for i, ts in times.items():
        s[ts, 0, i] = 1
    return s


PRE = train({0: [1, 6, 7], 1: [3, 12], 2: []}, 15, 3)
POST = train({0: [2, 7, 13], 1: [0, 9]}, 15, 2)


def pair_sum(pre, post, a_plus, a_minus, tau_pre, tau_post):
    """Σ over every (pre, post) spike pair: A+ e^{−Δ/τ_pre} if post is not earlier, −A− e^{−Δ/τ_post} if pre is
    not earlier (a simultaneous pair counts both)."""
    dw = np.zeros((post.shape[2], pre.shape[2]))
    for j in range(post.shape[2]):
        for i in range(pre.shape[2]):
            for tp in np.nonzero(post[:, 0, j])[0]:
                for tq in np.nonzero(pre[:, 0, i])[0]:
                    if tp >= tq:
                        dw[j, i] += a_plus * math.exp(-(tp - tq) / tau_pre)
                    if tq >= tp:
                        dw[j, i] -= a_minus * math.exp(-(tq - tp) / tau_post)
    return dw


def nearest(pre, post, a_plus, a_minus, tau_pre, tau_post):
    """Nearest-spike pairing: each post spike with the latest pre spike at or before it, and vice versa."""
    dw = np.zeros((post.shape[2], pre.shape[2]))
    for j in range(post.shape[2]):
        for i in range(pre.shape[2]):
            tq_all, tp_all = np.nonzero(pre[:, 0, i])[0], np.nonzero(post[:, 0, j])[0]
            for tp in tp_all:
                earlier = tq_all[tq_all <= tp]
                if len(earlier):
                    dw[j, i] += a_plus * math.exp(-(tp - earlier.max()) / tau_pre)
            for tq in tq_all:
                earlier = tp_all[tp_all <= tq]
                if len(earlier):
                    dw[j, i] -= a_minus * math.exp(-(tq - earlier.max()) / tau_post)
    return dw


def model(n_in=3, n_out=2):
    return nn.Sequential(nn.Linear(n_in, n_out, bias=False), snn.Leaky(0.9, init_hidden=True))


def test_weight_change_matches_the_pair_formula():
    rule = STDP(model(), a_plus=0.3, a_minus=0.2, tau_pre=4.0, tau_post=6.0)
    w = np.full((2, 3), 0.5)
    np.testing.assert_allclose(rule.delta(w, PRE, POST), pair_sum(PRE, POST, 0.3, 0.2, 4.0, 6.0), rtol=1e-12)
    near = STDP(model(), a_plus=0.3, a_minus=0.2, tau_pre=4.0, tau_post=6.0, trace="nearest")
    np.testing.assert_allclose(near.delta(w, PRE, POST), nearest(PRE, POST, 0.3, 0.2, 4.0, 6.0), rtol=1e-12)
    soft = STDP(model(), a_plus=0.3, a_minus=0.2, tau_pre=4.0, tau_post=6.0, soft_bounds=True, w_max=2.0)
    w = np.random.default_rng(0).uniform(0, 2, (2, 3))
    plus = pair_sum(PRE, POST, 0.3, 0.0, 4.0, 6.0)
    minus = -pair_sum(PRE, POST, 0.0, 0.2, 4.0, 6.0)
    np.testing.assert_allclose(soft.delta(w, PRE, POST), plus * (2.0 - w) - minus * w, rtol=1e-12)


def test_step_writes_minus_the_batch_mean_and_sgd_applies_it():
    nerve.manual_seed(0)
    net = model(4, 3)
    loop = snn.TimeLoop(net, num_steps=20, time_var=True)
    rule = STDP(loop, a_plus=0.05, a_minus=0.04, tau_pre=5.0, tau_post=5.0)
    assert isinstance(rule, Rule) and not rule.supervised
    x = snn.spikegen.rate(np.full((2, 4), 0.5, dtype=np.float32), num_steps=20)
    pre, post = [], []
    net[0].register_forward_hook(lambda m, a, out: pre.append(a[0].numpy()))
    net[1].register_forward_hook(lambda m, a, out: post.append(out.numpy()))
    w0 = net[0].weight.numpy().copy()
    optimizer = nerve.optim.SGD(loop.parameters(), lr=0.5)
    optimizer.zero_grad()
    logs = rule.step(x)
    pre, post = np.array(pre), np.array(post)
    expected = sum(pair_sum(pre[:, b:b + 1], post[:, b:b + 1], 0.05, 0.04, 5.0, 5.0) for b in range(2)) / 2
    assert post.sum() > 0 and np.abs(expected).sum() > 0
    np.testing.assert_allclose(net[0].weight.grad.numpy(), -expected, rtol=1e-5, atol=1e-7)
    assert logs["post_spikes"] == pytest.approx(post.sum() / 2)
    optimizer.step()
    np.testing.assert_allclose(net[0].weight.numpy(), w0 + 0.5 * expected, rtol=1e-5, atol=1e-7)


def test_constrain_clips_and_normalises():
    net = model(4, 2)
    net[0].weight.data[...] = np.array([[-1.0, 0.5, 2.0, 0.5], [0.2, 0.2, 0.2, 0.2]])
    STDP(net, w_max=1.0).constrain()
    np.testing.assert_allclose(net[0].weight.numpy(), [[0, 0.5, 1.0, 0.5], [0.2, 0.2, 0.2, 0.2]])
    STDP(net, w_max=1.0, norm=2.0).constrain()
    np.testing.assert_allclose(net[0].weight.numpy().sum(1), [2.0, 2.0], rtol=1e-6)


def test_bad_input_raises_naming_the_rule():
    rule = STDP(model())
    with pytest.raises(ValueError, match="STDP: layer 'layer' received non-binary input"):
        rule.delta(np.zeros((2, 3)), PRE * 0.5, POST)
    with pytest.raises(ValueError, match="STDP: layer '0' received non-binary input"):
        rule.step(np.full((1, 3), 0.7, dtype=np.float32))
    with pytest.raises(ValueError, match="STDP: layer '0' has a bias"):
        STDP(nn.Sequential(nn.Linear(3, 2), snn.Leaky(0.9, init_hidden=True)))
    with pytest.raises(ValueError, match="STDP: layer '0' is not followed by a spiking neuron"):
        STDP(nn.Sequential(nn.Linear(3, 2, bias=False)))
    with pytest.raises(ValueError, match="STDP: trace must be"):
        STDP(model(), trace="last")
    with pytest.raises(ValueError, match="STDP: needs w_min < w_max"):
        STDP(model(), w_min=1.0, w_max=1.0)


def test_two_competing_neurons_learn_two_patterns():
    nerve.manual_seed(3)
    patterns = np.zeros((2, 20), dtype=np.float32)
    patterns[0, :10] = patterns[1, 10:] = 1.0
    net = DiehlCook(n_input=20, n_neurons=2, num_steps=50, rate=0.3, threshold=4.0, w_inh=10.0, theta_plus=0.2)
    rule = STDP(net, trace="nearest", norm=5.0)
    rule.constrain()
    optimizer = nerve.optim.SGD(net.parameters(), lr=1.0)
    rng = np.random.default_rng(0)
    for _ in range(60):
        optimizer.zero_grad()
        rule.step(nerve.tensor(patterns[rng.integers(0, 2, 1)]))
        optimizer.step()
        rule.constrain()
    w = net.fc.weight.numpy()
    overlap = w @ patterns.T  # (neurons, patterns)
    assert overlap[0].argmax() != overlap[1].argmax()  # each neuron took a different pattern
    assert (overlap.max(1) > 0.8 * 5.0).all()  # and concentrated its weight on it
    net.eval()
    labels = np.array([0, 1] * 10)
    with nerve.no_grad():
        counts = net(nerve.tensor(patterns[labels])).numpy().sum(0)
    assert (predict_by_assignment(counts, assign_labels(counts, labels, 2), 2) == labels).mean() == 1.0


def test_fit_with_the_rule_applies_and_constrains():
    nerve.manual_seed(0)
    net = DiehlCook(n_input=20, n_neurons=4, num_steps=20, threshold=4.0)
    rule = STDP(net, trace="nearest", norm=5.0)
    w0 = net.fc.weight.numpy().copy()
    X = (np.random.default_rng(0).random((64, 20)) > 0.5).astype(np.float32)
    hist = nerve.train.fit(net, X, optimizer=nerve.optim.SGD(net.parameters(), lr=1.0), rule=rule, epochs=1,
                           batch_size=16, verbose=0)
    assert hist.history["post_spikes"][0] > 0 and hist.history["update"][0] > 0
    np.testing.assert_allclose(net.fc.weight.numpy().sum(1), 5.0, rtol=1e-5)
    assert np.abs(net.fc.weight.numpy() - w0).max() > 1e-3
