"""nerve.explain gradient diagnostics against hand-written backprop in NumPy; the fit callback and its warnings."""
import math
import warnings

import numpy as np
import pytest

import nerve
from nerve import explain, nn


def mlp():
    nerve.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)).double()


def data(n=12):
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, n)


def reference(model, x, y):
    """Hand-written backprop of the mean cross-entropy through Linear-ReLU-Linear."""
    w1, b1, w2, b2 = (p.numpy().copy() for p in model.parameters())
    z1 = x @ w1.T + b1
    h1 = np.maximum(z1, 0)
    z2 = h1 @ w2.T + b2
    p = np.exp(z2 - z2.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz2 = (p - np.eye(3)[y]) / len(x)
    dz1 = (dz2 @ w2) * (z1 > 0)
    norm = np.linalg.norm
    return {
        "0": {"grad_norm": math.hypot(norm(dz1.T @ x), norm(dz1.sum(0))), "act_grad_norm": norm(dz1),
              "act_mean": z1.mean(), "act_std": z1.std(), "weights": norm(np.r_[w1.ravel(), b1])},
        "1": {"dead_frac": float((h1 <= 0).all(axis=0).mean()), "act_mean": h1.mean()},
        "2": {"grad_norm": math.hypot(norm(dz2.T @ h1), norm(dz2.sum(0))), "act_grad_norm": norm(dz2),
              "act_mean": z2.mean(), "weights": norm(np.r_[w2.ravel(), b2])},
    }


def test_gradient_flow_statistics_against_hand_written_backprop():
    model, (x, y) = mlp(), data()
    ref = reference(model, x, y)
    stats = explain.gradient_flow(model, x, y)
    assert list(stats) == ["0", "2", "1"]  # layers with parameters, then activations
    for layer, row in ref.items():
        for key, value in row.items():
            if key != "weights":
                assert stats[layer][key] == pytest.approx(value, rel=1e-10, abs=1e-14), (layer, key)
    assert all(p.grad is None for p in model.parameters())  # gradients left as they were


def test_the_fit_callback_logs_the_same_norms_and_the_update_ratio():
    model, (x, y) = mlp(), data()
    ref = reference(model, x, y)
    monitor = explain.GradientFlowMonitor(every=1)
    history = nerve.train.fit(model, (x, y), loss="cross_entropy", optimizer=nerve.optim.SGD(model.parameters(),
                              lr=0.1), epochs=1, batch_size=len(x), shuffle=False, verbose=0, callbacks=[monitor])
    logs = history.history
    for layer in ("0", "2"):
        assert logs[f"{layer}/grad_norm"][0] == pytest.approx(ref[layer]["grad_norm"], rel=1e-10)
        assert logs[f"{layer}/act_grad_norm"][0] == pytest.approx(ref[layer]["act_grad_norm"], rel=1e-10)
        # plain SGD: ||dW|| = lr ||g||
        assert logs[f"{layer}/update_ratio"][0] == pytest.approx(0.1 * ref[layer]["grad_norm"]
                                                                 / ref[layer]["weights"], rel=1e-8)
    assert logs["1/dead_frac"][0] == pytest.approx(ref["1"]["dead_frac"])
    assert len(monitor.records) == 1 and monitor.records[0][:2] == (0, 0)
    with pytest.raises(ValueError, match="GradientFlowMonitor: every must be a positive int"):
        explain.GradientFlowMonitor(every=0)


def deep(activation, n=12, width=32, init=None):
    nerve.manual_seed(0)
    layers = []
    for i in range(n):
        layers += [nn.Linear(16 if i == 0 else width, width), activation()]
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    if init is not None:
        for m in model.modules():
            if isinstance(m, nn.Linear):
                init(m.weight)
    return model


def test_vanishing_gradients_warn_naming_the_first_layer():
    model = deep(nn.Sigmoid)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 16)).astype(np.float32), rng.integers(0, 10, 64)
    stats = explain.gradient_flow(model, x, y)
    flow = explain.statistic_values(stats, "act_grad_norm")
    assert flow[0] / flow[-1] < 1e-4  # sigmoid with PyTorch's default init loses orders of magnitude
    monitor = explain.GradientFlowMonitor(every=1)
    with pytest.warns(UserWarning, match=r"gradients vanish: dL/dh at the first layer '0' .*residual connections"):
        nerve.train.fit(model, (x, y), loss="cross_entropy", optimizer=nerve.optim.SGD(model.parameters(), lr=0.1),
                        epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
    relu = deep(nn.ReLU, init=lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not explain.check_flow(explain.gradient_flow(relu, x, y), 1e-3, 1e3, "check")


def test_exploding_gradients_warn_naming_the_layer():
    model = deep(nn.ReLU, n=4, init=lambda w: nn.init.normal_(w, 0.0, 3.0))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 16)).astype(np.float32), rng.integers(0, 10, 32)
    messages = explain.check_flow(explain.gradient_flow(model, x, y), 1e-3, 1e3, "check")
    assert any("gradients explode" in m and "gradient clipping" in m for m in messages), messages
    stats = {"0": {"grad_norm": float("nan")}}
    assert "layer '0' is nan" in explain.check_flow(stats, 1e-3, 1e3, "check")[0]


def test_gradient_flow_plot(tmp_path):
    pytest.importorskip("matplotlib")
    model, (x, y) = mlp(), data()
    path = tmp_path / "flow.png"
    explain.plot_gradient_flow({"mlp": explain.gradient_flow(model, x, y)}, path=path)
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="has no 'nonsense' values"):
        explain.plot_gradient_flow(explain.gradient_flow(model, x, y), statistic="nonsense")
