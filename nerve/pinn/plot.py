"""Pictures of a PINN run: prediction, reference and error fields as heat maps with slices at chosen times,
and the loss components over iterations (PNG files; needs matplotlib)."""
from __future__ import annotations

import os

import numpy as np

__all__ = ["plot_field", "plot_losses"]


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("nerve.pinn.plot needs matplotlib (pip install matplotlib)") from e
    return plt


def plot_field(x: np.ndarray, t: np.ndarray, pred: np.ndarray, ref: np.ndarray, path: str | os.PathLike,
               slices: tuple[float, ...] = (0.25, 0.5, 0.75), title: str = "") -> str:
    """Heat maps of ``pred``, ``ref`` and |pred - ref| over (t, x) (arrays of shape (len(x), len(t))) and the
    two solutions at the times ``slices``; saved to ``path``."""
    pred, ref = np.asarray(pred).reshape(len(x), len(t)), np.asarray(ref).reshape(len(x), len(t))
    plt = _pyplot()
    fig = plt.figure(figsize=(13, 7.5))
    grid = fig.add_gridspec(2, max(3, len(slices)))
    extent = [t.min(), t.max(), x.min(), x.max()]
    lim = np.abs(ref).max()
    for k, (field, name, cmap) in enumerate([(pred, "prediction u(t, x)", "rainbow"),
                                             (ref, "reference u(t, x)", "rainbow"),
                                             (np.abs(pred - ref), "|prediction - reference|", "viridis")]):
        ax = fig.add_subplot(grid[0, k])
        vmin, vmax = (-lim, lim) if k < 2 else (None, None)
        im = ax.imshow(field, extent=extent, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_xlabel("t")
        ax.set_ylabel("x")
        ax.set_title(name)
        fig.colorbar(im, ax=ax)
    for k, ts in enumerate(slices):
        j = int(np.argmin(np.abs(t - ts)))
        ax = fig.add_subplot(grid[1, k])
        ax.plot(x, ref[:, j], "b-", lw=2, label="reference")
        ax.plot(x, pred[:, j], "r--", lw=2, label="prediction")
        ax.set_title(f"t = {t[j]:.2f}")
        ax.set_xlabel("x")
        ax.set_ylabel("u")
        if k == 0:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return os.fspath(path)


def plot_losses(losshistory: list[dict], path: str | os.PathLike, extra: dict[str, list] | None = None) -> str:
    """Each loss component (and the total) against iterations, log scale, with the optimiser switch marked;
    ``extra`` adds named curves given as [(step, value), ...] (e.g. the test error)."""
    plt = _pyplot()
    if not losshistory:
        raise ValueError("plot_losses: the loss history is empty (train first)")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    steps = [row["step"] for row in losshistory]
    names = [k for k in losshistory[0] if k not in ("step", "time", "optimizer")]
    for name in names:
        ax.semilogy(steps, [row[name] for row in losshistory], label=name, lw=2 if name == "loss" else 1)
    for name, pts in (extra or {}).items():
        if pts:
            ax.semilogy(*zip(*pts), "k.:", label=name)
    for a, b in zip(losshistory, losshistory[1:]):
        if a["optimizer"] != b["optimizer"]:
            ax.axvline(a["step"], color="gray", ls="--")
            ax.text(a["step"], ax.get_ylim()[1], f" {b['optimizer']}", va="top", color="gray")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (and error)")
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return os.fspath(path)
