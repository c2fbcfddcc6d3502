"""Pictures of spiking activity (snnTorch's ``spikeplot`` names): raster, membrane traces, firing rates, and
the receptive fields STDP learns. PNGs through matplotlib, which stays optional (imported when called)."""
from __future__ import annotations

import os

import numpy as np

from nerve.tensor import Tensor

__all__ = ["raster", "traces", "firing_rates", "receptive_fields"]


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("nerve.snn.spikeplot needs matplotlib (pip install matplotlib)") from None
    return plt


def _np(x, who: str, ndim: int) -> np.ndarray:
    a = np.asarray(x.numpy() if isinstance(x, Tensor) else x, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"spikeplot.{who}: expected {ndim} dimensions, got shape {a.shape}")
    return a


def _save(fig, path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def raster(spk, path: str, title: str = "spike raster", max_neurons: int | None = None) -> str:
    """Raster plot of one sample's spikes (num_steps, neurons): a dot per spike; saves a PNG, returns path."""
    a = _np(spk, "raster", 2)
    if max_neurons is not None:
        a = a[:, :max_neurons]
    t, n = np.nonzero(a)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.scatter(t, n, s=4, c="black", marker="|")
    ax.set(xlabel="time step", ylabel="neuron", title=f"{title} ({int(a.sum())} spikes)", xlim=(-0.5, a.shape[0]),
           ylim=(-0.5, a.shape[1]))
    return _save(fig, path)


def traces(mem, path: str, spk=None, threshold: float | None = 1.0, title: str = "membrane") -> str:
    """Membrane traces of a few neurons (num_steps, neurons), one panel each, spikes marked; saves a PNG."""
    a = _np(mem, "traces", 2)
    s = None if spk is None else _np(spk, "traces", 2)
    plt = _plt()
    fig, axes = plt.subplots(a.shape[1], 1, figsize=(8, 1.2 * a.shape[1] + 0.5), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(a[:, i], lw=1)
        if threshold is not None:
            ax.axhline(threshold, color="gray", ls="--", lw=0.7)
        if s is not None:
            for t in np.nonzero(s[:, i])[0]:
                ax.axvline(t, color="red", lw=0.6, alpha=0.6)
        ax.set_ylabel(f"n{i}")
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("time step")
    return _save(fig, path)


def firing_rates(stats: dict, path: str, title: str = "firing rate per layer") -> str:
    """Bar chart of the '<layer>.rate' entries of ``TimeLoop.stats()``/``Recorder.stats()``; saves a PNG."""
    rates = {k[:-5]: v for k, v in stats.items() if k.endswith(".rate")}
    if not rates:
        raise ValueError("spikeplot.firing_rates: no '<layer>.rate' entries in the stats")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.2 * len(rates) + 2, 3))
    ax.bar(list(rates), list(rates.values()), color="tab:blue")
    ax.set(ylabel="spikes / neuron / step", title=title)
    return _save(fig, path)


def receptive_fields(weight, path: str, shape: tuple = (28, 28), columns: int | None = None,
                     title: str = "receptive fields") -> str:
    """Each row of ``weight`` (neurons, pixels) drawn as a ``shape`` image in a grid; saves a PNG."""
    w = _np(weight, "receptive_fields", 2)
    if w.shape[1] != shape[0] * shape[1]:
        raise ValueError(f"spikeplot.receptive_fields: rows of {w.shape[1]} values do not make {shape} images")
    n = w.shape[0]
    cols = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.full((rows * (shape[0] + 1), cols * (shape[1] + 1)), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        img = w[i].reshape(shape)
        span = img.max() - img.min()
        grid[r * (shape[0] + 1): r * (shape[0] + 1) + shape[0], c * (shape[1] + 1): c * (shape[1] + 1) + shape[1]] = (
            (img - img.min()) / span if span > 0 else img * 0)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(min(12, cols * 0.6 + 1), min(12, rows * 0.6 + 1)))
    ax.imshow(grid, cmap="hot_r", interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title)
    return _save(fig, path)
