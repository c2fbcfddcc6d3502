"""Attribution and diagnostics of spiking networks (nerve.models.SpikingMLP through SpikeCount): surrogate
gradients against their closed form, occlusion of spike counts against a loop, the gradient-flow monitor."""
import numpy as np

import nerve
from nerve import explain
from nerve.models.snn import SpikeCount, SpikingMLP


def one_step_snn():
    nerve.manual_seed(0)
    net = SpikingMLP(num_inputs=6, num_hidden=5, num_outputs=3, num_steps=1).double()
    with nerve.no_grad():  # weights large enough that some units spike
        net.fc1.weight.mul_(4.0)
        net.fc2.weight.mul_(4.0)
    return net, SpikeCount(net)


def test_saliency_of_spike_counts_is_the_surrogate_gradient_in_closed_form():
    net, model = one_step_snn()
    x = np.random.default_rng(0).normal(size=(8, 6))
    w1, b1 = net.fc1.weight.numpy(), net.fc1.bias.numpy()
    w2, b2 = net.fc2.weight.numpy(), net.fc2.bias.numpy()
    u1 = x @ w1.T + b1 - 1.0  # one step from rest: membrane = input current; threshold 1
    u2 = (u1 > 0).astype(float) @ w2.T + b2 - 1.0

    def atan_slope(u):  # snnTorch's atan surrogate, alpha 2: dS/du = 1 / (1 + (pi u)^2)
        return 1.0 / (1.0 + (np.pi * u) ** 2)
    target = [0, 1, 2, 0, 1, 2, 0, 1]
    expected = np.stack([atan_slope(u2[i, t]) * (w2[t] * atan_slope(u1[i])) @ w1 for i, t in enumerate(target)])
    got = explain.Saliency(model).attribute(x, target=target, abs=False)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)
    counts = model(nerve.tensor(x)).numpy()
    np.testing.assert_array_equal(counts, (u2 > 0).astype(float))


def test_occlusion_of_spike_counts_against_a_loop_and_ig_runs_on_a_multi_step_snn():
    nerve.manual_seed(1)
    net = SpikingMLP(num_inputs=6, num_hidden=8, num_outputs=3, num_steps=5).double()
    with nerve.no_grad():
        net.fc1.weight.mul_(3.0)
        net.fc2.weight.mul_(3.0)
    model = SpikeCount(net)
    x = np.random.default_rng(1).normal(size=(4, 6))
    got = explain.Occlusion(model).attribute(x, sliding_window_shapes=(2,), target=1)

    def f(a):
        return model(nerve.tensor(a)).numpy()[:, 1]
    expected, count = np.zeros_like(x), np.zeros(6)
    for start in range(5):
        occluded = x.copy()
        occluded[:, start:start + 2] = 0.0
        expected[:, start:start + 2] += (f(x) - f(occluded))[:, None]
        count[start:start + 2] += 1
    np.testing.assert_allclose(got.numpy(), expected / count, atol=1e-12)
    ig = explain.IntegratedGradients(model).attribute(x, target=1, n_steps=8)
    assert ig.shape == x.shape and np.isfinite(ig.numpy()).all()


def test_gradient_flow_monitor_on_a_spiking_network():
    nerve.manual_seed(2)
    net = SpikingMLP(num_inputs=6, num_hidden=8, num_outputs=3, num_steps=4)
    model = SpikeCount(net)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(16, 6)).astype(np.float32), rng.integers(0, 3, 16)
    monitor = explain.GradientFlowMonitor(every=1, warn=False)
    history = nerve.train.fit(model, (x, y), loss="cross_entropy", epochs=1, batch_size=16, verbose=0,
                              optimizer=nerve.optim.Adam(model.parameters()), callbacks=[monitor])
    assert {"net.fc1/grad_norm", "net.fc2/act_grad_norm"} <= set(history.history)
    assert np.isfinite(history.history["net.fc1/grad_norm"][0])
