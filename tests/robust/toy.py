"""Small models and data for the robustness tests: linear softmax models with closed forms, a tanh MLP with a NumPy
forward and input gradient (the independent reference for the iterative attacks), and a toy image task."""
from __future__ import annotations

import numpy as np

import nerve
from nerve import nn


def linear_model(features: int = 12, classes: int = 4, seed: int = 0, dtype=np.float64) -> nn.Module:
    """logits = W flatten(x) + b with random W, b."""
    nerve.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(features, classes)).to(dtype=dtype)


def weights(model: nn.Module) -> list[np.ndarray]:
    """The model's parameters as float64 NumPy arrays, in definition order."""
    return [p.detach().numpy().astype(np.float64) for p in model.parameters()]


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def linear_ce_grad(W, b, x, y) -> np.ndarray:
    """d CE(W x + b, y) / dx for each sample (closed form: W^T (softmax - onehot))."""
    flat = x.reshape(len(x), -1)
    p = softmax(flat @ W.T + b)
    p[np.arange(len(y)), y] -= 1
    return (p @ W).reshape(x.shape)


def mlp(features: int = 12, hidden: int = 16, classes: int = 4, seed: int = 0) -> nn.Module:
    """flatten - Linear - tanh - Linear (float64)."""
    nerve.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, classes)).to(
        dtype=np.float64)


def mlp_logits_grad(params, x, y, loss: str = "ce") -> tuple:
    """NumPy forward of ``mlp`` and the gradient of the per-sample loss (summed) with respect to x."""
    W1, b1, W2, b2 = params
    flat = x.reshape(len(x), -1)
    h = np.tanh(flat @ W1.T + b1)
    z = h @ W2.T + b2
    if loss == "ce":
        dz = softmax(z)
        dz[np.arange(len(y)), y] -= 1
    else:  # margin: max other - own
        other = z.copy()
        other[np.arange(len(y)), y] = -np.inf
        dz = np.zeros_like(z)
        dz[np.arange(len(y)), other.argmax(axis=1)] = 1
        dz[np.arange(len(y)), y] -= 1
    dh = dz @ W2 * (1 - h ** 2)
    return z, (dh @ W1).reshape(x.shape)


def toy_images(n: int = 300, classes: int = 4, side: int = 6, seed: int = 0, noise: float = 0.15) -> tuple:
    """(x (n, 1, side, side) in [0, 1] float64, y): copies of one random prototype per class with Gaussian
    ``noise``, clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    protos = rng.uniform(0.2, 0.8, size=(classes, 1, side, side))
    y = rng.integers(0, classes, size=n)
    x = np.clip(protos[y] + rng.normal(0, noise, size=(n, 1, side, side)), 0, 1)
    return x, y.astype(np.int64)


def trained_mlp(x, y, epochs: int = 30, hidden: int = 32, seed: int = 0) -> nn.Module:
    """``mlp`` fitted to (x, y) with Adam."""
    model = mlp(x[0].size, hidden, int(y.max()) + 1, seed)
    nerve.train.fit(model, (x, y), loss="cross_entropy", optimizer=nerve.optim.Adam(model.parameters(), lr=1e-2),
                    epochs=epochs, batch_size=64, verbose=0)
    return model
