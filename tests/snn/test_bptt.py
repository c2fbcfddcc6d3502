"""BPTT through a two-layer, two-step spiking network against finite differences, with the spike made exact
(a smooth stand-in for the Heaviside step in the forward too): with the reset detached, the reference is the
NumPy network with the reset signals held at their values; without a reset, nerve's gradcheck on the whole."""
from __future__ import annotations

import numpy as np
import pytest

import nerve
from nerve import nn, ops, snn
from nerve.autograd import gradcheck


def smooth(u):
    return ops.sigmoid(u * 4.0)


def np_smooth(u):
    return 1 / (1 + np.exp(-4.0 * u))


pytestmark = pytest.mark.usefixtures("float64_default")


class Net(nn.Module):
    def __init__(self, reset):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 2)
        self.lif1 = snn.Leaky(beta=[0.6, 0.7, 0.8, 0.9], threshold=0.5, spike_grad=smooth, learn_beta=True,
                              learn_threshold=True, reset_mechanism=reset)
        self.lif2 = snn.Leaky(beta=0.8, threshold=0.4, spike_grad=smooth, learn_threshold=True,
                              reset_mechanism=reset)

    def forward(self, x):
        snn.reset(self)
        out = 0
        for t in range(x.shape[0]):
            spk1, _ = self.lif1(self.fc1(x[t]))
            spk2, mem2 = self.lif2(self.fc2(spk1))
            out = out + (spk2 * 1.5 + mem2 * 0.5) * (t + 1)
        return out


def numpy_net(p, x, reset, frozen=None):
    """The same network in NumPy; returns the scalar loss and the reset signals (detached in nerve)."""
    W1, b1, beta1, th1, W2, b2, th2 = p
    m1 = m2 = 0.0
    resets, total = [], 0.0
    for t in range(x.shape[0]):
        r1 = np_smooth(m1 - th1) if t else 0.0
        r2 = np_smooth(m2 - th2) if t else 0.0
        if frozen is not None:
            r1, r2 = frozen[t]
        resets.append((r1, r2))
        c1 = x[t] @ W1.T + b1
        m1 = beta1 * m1 + c1 - r1 * th1 if reset == "subtract" else beta1 * (1 - r1) * m1 + c1
        s1 = np_smooth(m1 - th1)
        c2 = s1 @ W2.T + b2
        m2 = 0.8 * m2 + c2 - r2 * th2 if reset == "subtract" else 0.8 * (1 - r2) * m2 + c2
        s2 = np_smooth(m2 - th2)
        total += ((s2 * 1.5 + m2 * 0.5) * (t + 1)).sum()
    return total, resets


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_bptt_with_detached_reset_matches_finite_differences(reset):
    nerve.manual_seed(1)
    net = Net(reset)
    x = np.random.default_rng(0).uniform(0, 1.5, (2, 5, 3))
    net(nerve.tensor(x)).sum().backward()
    params = [net.fc1.weight, net.fc1.bias, net.lif1.beta, net.lif1.threshold, net.fc2.weight, net.fc2.bias,
              net.lif2.threshold]
    p = [q.numpy().copy() for q in params]
    _, frozen = numpy_net(p, x, reset)
    eps = 1e-6
    for k, q in enumerate(params):
        fd = np.zeros_like(p[k])
        for idx in np.ndindex(p[k].shape):
            hi = [a.copy() for a in p]
            lo = [a.copy() for a in p]
            hi[k][idx] += eps
            lo[k][idx] -= eps
            fd[idx] = (numpy_net(hi, x, reset, frozen)[0] - numpy_net(lo, x, reset, frozen)[0]) / (2 * eps)
        np.testing.assert_allclose(q.grad.numpy(), fd, rtol=1e-6, atol=1e-8, err_msg=f"parameter {k}")
    assert np.abs(net.lif1.threshold.grad.numpy()).sum() > 0


def test_gradcheck_without_reset_through_the_inputs():
    nerve.manual_seed(2)
    net = Net("none")
    x = nerve.tensor(np.random.default_rng(3).uniform(0, 1.5, (2, 2, 3)), requires_grad=True)
    assert gradcheck(lambda x: net(x), [x])
