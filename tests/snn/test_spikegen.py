"""Spike encoders and decoders against their formulas: layout, statistics, spike times, delta modulation."""
from __future__ import annotations

import numpy as np
import pytest

import nerve
from nerve.snn import spikegen


def test_rate_is_time_first_bernoulli_with_clipped_probability():
    data = np.array([[0.0, 0.25, 0.5, 1.0, 1.7]])
    spk = spikegen.rate(data, num_steps=4000, gain=1.0).numpy()
    assert spk.shape == (4000, 1, 5) and set(np.unique(spk)) <= {0.0, 1.0}
    np.testing.assert_allclose(spk.mean(0)[0], [0.0, 0.25, 0.5, 1.0, 1.0], atol=0.03)
    half = spikegen.rate(data, num_steps=4000, gain=0.5).numpy().mean(0)[0]
    np.testing.assert_allclose(half, [0.0, 0.125, 0.25, 0.5, 0.85], atol=0.03)
    assert spikegen.rate(data).shape == (1, 5)  # no num_steps: one draw
    late = spikegen.rate(np.ones((2, 3)), num_steps=5, first_spike_time=2).numpy()
    assert late[:2].sum() == 0 and late[2:].sum() == 18
    nerve.manual_seed(7)
    a = spikegen.rate(data, num_steps=10).numpy()
    nerve.manual_seed(7)
    np.testing.assert_array_equal(a, spikegen.rate(data, num_steps=10).numpy())


def test_latency_log_and_linear_times_follow_snntorch_formulas():
    x = np.array([0.02, 0.5, 1.0])
    t, below = spikegen.latency_code(x, num_steps=5, normalize=True, linear=True)
    np.testing.assert_allclose(t, [3.92, 2.0, 0.0])  # snnTorch's documented example
    t, _ = spikegen.latency_code(x, num_steps=5, normalize=True)
    raw = np.log(x / (x - 0.01))
    np.testing.assert_allclose(t, raw * 4 / raw.max(), rtol=1e-6)  # documented: [4.0, 0.1166, 0.0580]
    np.testing.assert_allclose(t, [4.0, 0.1166, 0.0580], atol=1e-4)
    spk = spikegen.latency(x, num_steps=5, normalize=True, linear=True).numpy()
    assert spk.shape == (5, 3) and (spk.sum(0) == 1).all()
    np.testing.assert_array_equal(spk.argmax(0), [4, 2, 0])
    faint = spikegen.latency(np.array([0.001, 0.9]), num_steps=5, normalize=True, linear=True, clip=True).numpy()
    assert faint[:, 0].sum() == 0 and faint[:, 1].sum() == 1
    slow = spikegen.latency(np.array([0.02]), num_steps=3, tau=5.0).numpy()  # t = 5 ln 2 ≈ 3.5: past the end
    assert slow.sum() == 0


def test_delta_modulation_matches_a_loop():
    x = np.array([[0.0], [0.5], [0.55], [0.2], [0.9]])
    on = spikegen.delta(x, threshold=0.1).numpy()[:, 0]
    np.testing.assert_array_equal(on, [0, 1, 0, 0, 1])
    both = spikegen.delta(x + 0.3, threshold=0.1, off_spike=True).numpy()[:, 0]
    np.testing.assert_array_equal(both, [1, 1, 0, -1, 1])
    padded = spikegen.delta(x + 0.3, threshold=0.1, padding=True).numpy()[:, 0]
    assert padded[0] == 0


def test_decoders_count_and_first_spike():
    spk = np.zeros((4, 2, 3))
    spk[[0, 1, 2], 0, 2] = 1  # sample 0: neuron 2 fires 3 times from step 0
    spk[3, 0, 1] = 1
    spk[1, 1, 0] = 1  # sample 1: neuron 0 first at step 1, neuron 1 twice later
    spk[[2, 3], 1, 1] = 1
    np.testing.assert_array_equal(spikegen.spike_count(spk).numpy(), [[0, 1, 3], [1, 2, 0]])
    np.testing.assert_array_equal(spikegen.first_spike_time(spk).numpy(), [[4, 3, 0], [1, 2, 4]])
    np.testing.assert_array_equal(spikegen.count_decode(spk).numpy(), [2, 1])
    np.testing.assert_array_equal(spikegen.latency_decode(spk).numpy(), [2, 0])


def test_bad_input_raises():
    with pytest.raises(ValueError, match="spikegen.latency: threshold must be in"):
        spikegen.latency(np.ones(3), num_steps=5, threshold=1.5)
    with pytest.raises(ValueError, match="spikegen.latency: num_steps is required"):
        spikegen.latency(np.ones(3), num_steps=None)
    with pytest.raises(ValueError, match="spikegen.rate: num_steps must be a positive int"):
        spikegen.rate(np.ones(3), num_steps=0)
    with pytest.raises(ValueError, match="spikegen.count_decode: expected a time-first spike train"):
        spikegen.count_decode(np.ones(3))
