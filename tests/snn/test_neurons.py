"""Each neuron's spikes and states against a plain NumPy loop of snnTorch's equations; state safety; bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

import nerve
from nerve import nn, snn

T, B, N = 12, 3, 5


pytestmark = pytest.mark.usefixtures("float64_default")


def currents(seed=0, scale=1.2):
    return np.random.default_rng(seed).uniform(-0.3, scale, (T, B, N))


def H(u):
    return (u > 0).astype(np.float64)


def run(neuron, cur, n_states):
    """Drive ``neuron`` with explicit state passing; returns spikes and each state's trace."""
    states = [None] * n_states
    spk_rec, rec = [], [[] for _ in range(n_states)]
    for t in range(cur.shape[0]):
        out = neuron(nerve.tensor(cur[t]), *states)
        spk_rec.append(out[0].numpy())
        states = list(out[1:])
        for r, s in zip(rec, states):
            r.append(s.numpy())
    return np.array(spk_rec), [np.array(r) for r in rec]


def ref_leaky(cur, beta, thr, reset, delay=True):
    mem = np.zeros(cur.shape[1:])
    spk_rec, mem_rec = [], []
    for t in range(cur.shape[0]):
        R = H(mem - thr) if t else np.zeros_like(mem)
        if reset == "zero":
            mem = beta * (1 - R) * mem + cur[t]
        else:
            mem = beta * mem + cur[t] - (R * thr if reset == "subtract" else 0)
        spk = H(mem - thr)
        if not delay:
            do = spk - R
            mem = mem - do * thr if reset == "subtract" else mem - do * mem if reset == "zero" else mem
        spk_rec.append(spk)
        mem_rec.append(mem)
    return np.array(spk_rec), np.array(mem_rec)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("delay", [True, False])
def test_leaky_matches_numpy_loop(reset, delay):
    cur = currents()
    beta = np.array([0.5, 0.8, 0.9, 0.95, 1.0])  # per-neuron decay, including the IF case β = 1
    spk, (mem,) = run(snn.Leaky(beta=beta, threshold=0.7, reset_mechanism=reset, reset_delay=delay), cur, 1)
    ref_spk, ref_mem = ref_leaky(cur, beta, 0.7, reset, delay)
    np.testing.assert_array_equal(spk, ref_spk)
    np.testing.assert_allclose(mem, ref_mem, rtol=1e-12, atol=1e-12)
    assert 0 < spk.mean() < 1  # the input drives some spikes, not all


def test_leaky_init_hidden_equals_explicit_state():
    cur = currents(1)
    hidden = snn.Leaky(beta=0.9, init_hidden=True, output=True)
    spk = np.array([hidden(nerve.tensor(c))[0].numpy() for c in cur])
    ref_spk, _ = ref_leaky(cur, 0.9, 1.0, "subtract")
    np.testing.assert_array_equal(spk, ref_spk)
    plain = snn.Leaky(beta=0.9, init_hidden=True)
    assert isinstance(plain(nerve.tensor(cur[0])), nerve.Tensor)  # spk only


def test_lapicque_matches_rc_equation():
    cur = currents(2, scale=200.0)
    neuron = snn.Lapicque(R=5.0, C=5e-3, time_step=1e-3, threshold=1.0)
    spk, (mem,) = run(neuron, cur, 1)
    m, ref_spk = np.zeros((B, N)), []
    for t in range(T):
        R = H(m - 1.0) if t else 0 * m
        m = cur[t] * 1e-3 / 5e-3 + (1 - 1e-3 / (5.0 * 5e-3)) * m - R * 1.0
        ref_spk.append(H(m - 1.0))
        np.testing.assert_allclose(mem[t], m, rtol=1e-12)
    np.testing.assert_array_equal(spk, np.array(ref_spk))
    beta_form = snn.Lapicque(beta=0.9)
    assert math.isclose(beta_form.C, 1e-3 / math.log(1 / 0.9)) and beta_form.R == 1.0


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_synaptic_matches_numpy_loop(reset):
    cur = currents(3)
    spk, (syn, mem) = run(snn.Synaptic(alpha=0.8, beta=0.7, reset_mechanism=reset), cur, 2)
    s, m = np.zeros((B, N)), np.zeros((B, N))
    for t in range(T):
        R = H(m - 1.0)
        s = 0.8 * s + cur[t]
        m = 0.7 * m + s - R if reset == "subtract" else (0.7 * m + s) * (1 - R)
        np.testing.assert_allclose(syn[t], s, rtol=1e-12)
        np.testing.assert_allclose(mem[t], m, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(spk[t], H(m - 1.0))
    assert 0 < spk.mean() < 1


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_alpha_matches_numpy_loop(reset):
    cur = currents(4, scale=3.0)
    a, b = 0.9, 0.8
    spk, (exc, inh, mem) = run(snn.Alpha(alpha=a, beta=b, threshold=0.5, reset_mechanism=reset), cur, 3)
    e, i, m = (np.zeros((B, N)) for _ in range(3))
    tau = math.log(a) / (math.log(b) - math.log(a)) + 1
    for t in range(T):
        R = H(m - 0.5)
        i_old = i
        e, i = a * e + cur[t], b * i - cur[t]
        m = tau * (e + i)
        if reset == "zero":
            e, i, m = e * (1 - R), i * (1 - R), m * (1 - R)
        else:
            e, i, m = e - 0.5 * R, i * (1 - R), m + i_old * R
        np.testing.assert_allclose(mem[t], m, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(exc[t], e, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(spk[t], H(m - 0.5))
    assert spk.sum() > 0


def test_rleaky_linear_and_one_to_one_match_numpy_loop():
    cur = currents(5)
    lin = snn.RLeaky(beta=0.9, linear_features=N)
    W, c = lin.recurrent.weight.numpy(), lin.recurrent.bias.numpy()
    s, m = np.zeros((B, N)), np.zeros((B, N))
    for t in range(T):
        spk, mem = lin(nerve.tensor(cur[t]))
        R = H(m - 1.0)
        m = 0.9 * m + cur[t] + s @ W.T + c - R
        s = H(m - 1.0)
        np.testing.assert_allclose(mem.numpy(), m, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(spk.numpy(), s)
    one = snn.RLeaky(beta=0.9, all_to_all=False, V=-0.5, init_hidden=True, output=True)
    s, m = np.zeros((B, N)), np.zeros((B, N))
    for t in range(T):
        out, mem_t = one(nerve.tensor(cur[t]))
        R = H(m - 1.0)
        m = 0.9 * m + cur[t] - 0.5 * s - R
        s = H(m - 1.0)
        np.testing.assert_allclose(mem_t.numpy(), m, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(out.numpy(), s)


def test_adaptive_leaky_raises_its_threshold():
    cur = np.full((40, 1, 1), 0.6)
    neuron = snn.AdaptiveLeaky(beta=0.9, adapt_decay=0.9, adapt_strength=1.0)
    spk, (mem,) = run(neuron, cur, 1)
    m, b, A_old, ref = 0.0, 0.0, 1.0, []
    for t in range(40):
        R = float(m > A_old) if t else 0.0
        m = 0.9 * m + 0.6 - R * A_old
        b = 0.9 * b + 0.1 * R
        A_old = 1.0 + b
        ref.append(float(m > A_old))
    np.testing.assert_array_equal(spk[:, 0, 0], ref)
    plain, _ = run(snn.Leaky(beta=0.9), cur, 1)
    assert 0 < spk.sum() < plain.sum()  # adaptation lowers the rate


def test_learnable_beta_and_threshold_are_parameters_per_neuron():
    lif = snn.Leaky(beta=[0.5, 0.9], threshold=[1.0, 0.5], learn_beta=True, learn_threshold=True)
    names = dict(lif.named_parameters())
    assert set(names) == {"beta", "threshold"} and names["beta"].shape == (2,)
    x = nerve.tensor(np.full((4, 2), 0.8, dtype=np.float32))
    total = 0
    for _ in range(5):
        spk, mem = lif(x)
        total = total + mem.sum()
    total.backward()
    assert lif.beta.grad.shape == (2,) and np.abs(lif.beta.grad.numpy()).sum() > 0
    assert np.abs(lif.threshold.grad.numpy()).sum() > 0
    fixed = snn.Leaky(beta=0.9)
    assert list(dict(fixed.named_parameters())) == [] and {"beta", "threshold"} <= set(fixed.state_dict())


def test_state_is_not_saved_and_reset_walks_the_tree():
    net = nn.Sequential(nn.Linear(3, 4), snn.Leaky(0.9, init_hidden=True), nn.Linear(4, 2),
                        snn.Synaptic(0.5, 0.9, init_hidden=True))
    net(nerve.ones(2, 3))
    assert net[1].mem is not None and net[3].syn is not None
    assert not any(k.endswith((".mem", ".syn")) for k in net.state_dict())
    snn.reset(net)
    assert net[1].mem is None and net[3].syn is None and net[3].mem is None


def test_changed_batch_size_raises():
    lif = snn.Leaky(beta=0.9, init_hidden=True)
    lif(nerve.ones(4, 3))
    with pytest.raises(ValueError, match=r"Leaky: state mem has shape \(4, 3\) but the input has shape \(2, 3\)"):
        lif(nerve.ones(2, 3))
    snn.reset(lif)
    assert lif(nerve.ones(2, 3)).shape == (2, 3)
    with pytest.raises(ValueError, match="Synaptic: state syn"):
        snn.Synaptic(0.5, 0.5)(nerve.ones(2, 3), nerve.zeros(5, 3), None)


def test_forgotten_reset_raises_a_clear_error():
    fc, lif = nn.Linear(3, 4), snn.Leaky(beta=0.9, init_hidden=True)
    for _ in range(3):
        spk = lif(fc(nerve.ones(2, 3)))
    spk.sum().backward()
    with pytest.raises(RuntimeError, match="Leaky: state mem belongs to a graph that backward"):
        lif(fc(nerve.ones(2, 3)))
    snn.detach_hidden(lif)
    lif(fc(nerve.ones(2, 3))).sum().backward()  # carried on after detaching: allowed


def test_bad_arguments_raise_naming_the_neuron():
    with pytest.raises(ValueError, match="Leaky: threshold must be > 0"):
        snn.Leaky(beta=0.9, threshold=0.0)
    with pytest.raises(ValueError, match=r"Leaky: beta must be in \[0, 1\]"):
        snn.Leaky(beta=1.5)
    with pytest.raises(ValueError, match=r"Synaptic: alpha must be in \[0, 1\]"):
        snn.Synaptic(alpha=-0.1, beta=0.5)
    with pytest.raises(ValueError, match="Leaky: reset_mechanism must be"):
        snn.Leaky(beta=0.9, reset_mechanism="hard")
    with pytest.raises(ValueError, match="Alpha: needs alpha > beta"):
        snn.Alpha(alpha=0.5, beta=0.8)
    with pytest.raises(TypeError, match="Leaky: spike_grad must be a callable"):
        snn.Leaky(beta=0.9, spike_grad=3)
    with pytest.raises(TypeError, match="Leaky: mem must not be passed while init_hidden=True"):
        snn.Leaky(beta=0.9, init_hidden=True)(nerve.ones(2), nerve.zeros(2))
    with pytest.raises(ValueError, match="RLeaky: all_to_all=True needs"):
        snn.RLeaky(beta=0.9)
