"""Robustness evaluation: ``robust_accuracy`` (accuracy per attack and ε, the per-sample worst case over attacks of
one threat model, every perturbation checked against its ε-ball and the bounds), its report and plots, and
``make_attack`` (attacks by name with Madry's step-size rule)."""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.robust.attack import Attack, _attack_mode, as_array, batch_norms
from nerve.robust.blackbox import Square
from nerve.robust.gradient import FFGSM, FGM, FGSM, MIFGSM, PGD, PGDL2
from nerve.robust.minimal import CW, DeepFool
from nerve.tensor import Tensor

__all__ = ["ATTACKS", "make_attack", "robust_accuracy", "RobustnessReport", "adversarial_grid",
           "plot_adversarial_examples"]

ATTACKS = {"fgsm": FGSM, "ffgsm": FFGSM, "fgm": FGM, "pgd": PGD, "pgdl2": PGDL2, "mifgsm": MIFGSM, "square": Square,
           "cw": CW, "deepfool": DeepFool}
#: tolerance of the ε-ball check (float32 rounding of x + δ, then clipping)
_TOL = 1e-5


def make_attack(name: str, model: Callable, eps: float, **options) -> Attack:
    """The attack ``name`` (a key of ``ATTACKS``) at radius ``eps``; iterative attacks take ``steps`` (20 by
    default) of alpha = 2.5 ε / steps (Madry et al.) unless ``alpha`` is given."""
    key = name.lower()
    if key not in ATTACKS:
        raise ValueError(f"make_attack: unknown attack {name!r}; known: {sorted(ATTACKS)}")
    cls = ATTACKS[key]
    if cls in (CW, DeepFool):
        return cls(model, **options)
    if cls in (PGD, PGDL2, MIFGSM):
        options.setdefault("steps", 20)
        options.setdefault("alpha", 2.5 * eps / max(options["steps"], 1))
    if cls is FFGSM:
        options.setdefault("alpha", 1.25 * eps)
    return cls(model, eps=eps, **options)


def _attacks(model, attacks, eps0: float) -> list[Attack]:
    out = []
    for spec in [attacks] if isinstance(attacks, (str, Attack)) else list(attacks):
        if isinstance(spec, Attack):
            out.append(spec)
        elif isinstance(spec, str):
            out.append(make_attack(spec, model, eps0))
        elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
            out.append(make_attack(spec[0], model, eps0, **spec[1]))
        else:
            raise TypeError(f"robust_accuracy: an attack is an Attack, a name or (name, options), got {spec!r}")
    if not out:
        raise ValueError("robust_accuracy: no attacks given")
    return out


def _batches(data: Any, batch_size: int):
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = as_array(data[0]), as_array(data[1])
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"robust_accuracy: expected (X, y) of one non-zero length, got {len(x)} and {len(y)}")
        for i in range(0, len(x), batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]
        return
    for batch in data:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError("robust_accuracy: data must be (X, y) or yield (inputs, labels) batches")
        yield as_array(batch[0]), as_array(batch[1])


class RobustnessReport:
    """Per attack and ε: accuracy; per threat model: the worst case over its attacks (``robust``); the clean
    accuracy; per minimum-norm attack (CW, DeepFool) the median norm of its successful perturbations; per attack
    its seconds."""

    def __init__(self, eps: list[float], clean: float, accuracy: dict, robust: dict, norms: dict, seconds: dict,
                 n: int) -> None:
        self.eps, self.clean, self.accuracy, self.robust = eps, clean, accuracy, robust
        self.norms, self.seconds, self.n = norms, seconds, n

    def table(self) -> str:
        """The accuracy table as text, one row per attack and one per threat model's worst case."""
        names = list(self.accuracy) + [f"worst case ({norm})" for norm in self.robust]
        width = max(len(n) for n in names + ["attack"]) + 2
        head = "attack".ljust(width) + "".join(f"eps={e:<8g}" for e in self.eps) + "median |d|  seconds"
        lines = [f"{self.n} samples, clean accuracy {self.clean:.4f}", head]
        for name, row in self.accuracy.items():
            norm = self.norms.get(name)
            lines.append(name.ljust(width) + "".join(f"{a:<12.4f}" for a in row)
                         + (f"{norm:<11.4g}" if norm is not None else "-".ljust(11)) + f"{self.seconds[name]:.1f}")
        for norm, row in self.robust.items():
            lines.append(f"worst case ({norm})".ljust(width) + "".join(f"{a:<12.4f}" for a in row))
        return "\n".join(line.rstrip() for line in lines)

    __str__ = table

    def plot(self, path=None, title: str = "accuracy under attack"):
        """Accuracy against ε, one line per attack (and each worst case dashed); saved to ``path`` if given."""
        try:
            import matplotlib
            if path is not None:
                matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError("RobustnessReport.plot needs matplotlib: pip install matplotlib") from exc
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, row in self.accuracy.items():
            ax.plot(self.eps, row, marker="o", label=name)
        for norm, row in self.robust.items():
            ax.plot(self.eps, row, "k--", label=f"worst case ({norm})")
        ax.set_xlabel("ε")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if path is not None:
            fig.savefig(path, bbox_inches="tight", dpi=100)
        return fig


def _check_ball(attack: Attack, x, x_adv, eps: float, norm: str) -> None:
    """A perturbation outside its ε-ball or the bounds is a bug in the attack: say which and by how much."""
    if x_adv.shape != x.shape:
        raise RuntimeError(f"robust_accuracy: {attack!r} returned shape {tuple(x_adv.shape)} for {tuple(x.shape)}")
    worst = float(batch_norms(x_adv - x, norm).max())
    if worst > eps * (1 + _TOL) + _TOL:
        raise RuntimeError(f"robust_accuracy: {attack!r} left the {norm} ball: |delta| = {worst:g} > eps = {eps:g}")
    if attack.bounds is not None and (float(x_adv.min()) < attack.bounds[0] or float(x_adv.max()) > attack.bounds[1]):
        raise RuntimeError(f"robust_accuracy: {attack!r} left the bounds {attack.bounds}: values in "
                           f"[{float(x_adv.min()):g}, {float(x_adv.max()):g}]")


def robust_accuracy(model: Callable, data: Any, attacks: Any, eps: Sequence[float] | None = None,
                    batch_size: int = 500) -> RobustnessReport:
    """Accuracy of ``model`` on ``data`` ((X, y) or batches) under each of ``attacks`` at each ``eps``.

    ``attacks``: Attack objects, names ('fgsm', 'pgd', 'square', 'cw', ...) or (name, options) pairs, moved to
    each ε by ``Attack.at_eps``. A sample counts as robust at ε when it is classified correctly on the clean input
    and on every adversarial example found at any ε' ≤ ε (each is inside the larger ball too), so accuracy never
    rises with ε. Minimum-norm attacks (CW, DeepFool) run once: robust at ε when they fail or need ‖δ‖ > ε.
    ``robust[norm]``: the per-sample worst case over the attacks of that threat model.
    """
    eps_list = sorted(float(e) for e in (eps if eps is not None else []))
    if any(e < 0 or math.isnan(e) for e in eps_list):
        raise ValueError(f"robust_accuracy: eps must be >= 0, got {eps_list}")
    attack_list = _attacks(model, attacks, eps_list[-1] if eps_list else 8 / 255)
    if not eps_list:
        eps_list = sorted({a.eps for a in attack_list if a.norm is not None}) or [0.0]
    names = []
    for a in attack_list:
        name = repr(a.at_eps(eps_list[-1])) if a.norm is not None else repr(a)
        names.append(name if name not in names else f"{name} #{len(names)}")
    robust = {name: [] for name in names}
    norms_found = {name: [] for name in names}
    seconds = dict.fromkeys(names, 0.0)
    clean_all = []
    with _attack_mode(model):  # NOTE: eval mode for the clean pass and the checks between the attacks' calls
        for x, y in _batches(data, batch_size):
            with no_grad():
                clean = as_array(model(_model_input(attack_list[0], x))).argmax(axis=1) == y
            clean_all.append(clean)
            for name, attack in zip(names, attack_list):
                start = time.perf_counter()
                robust[name].append(_attack_batch(attack, x, y, clean, eps_list, norms_found[name]))
                seconds[name] += time.perf_counter() - start
    clean = xp.concatenate(clean_all)
    per_attack = {name: xp.concatenate(rows, axis=1) for name, rows in robust.items()}
    accuracy = {name: [float(r.mean()) for r in rows] for name, rows in per_attack.items()}
    worst = {}
    for name, attack in zip(names, attack_list):
        norm = attack.norm or attack.measure
        worst[norm] = per_attack[name] if norm not in worst else worst[norm] & per_attack[name]
    found = {name: np.concatenate([_host(a) for a in norms_found[name]] or [np.zeros(0)]) for name in names}
    median = {name: float(np.median(v)) if len(v) else None for name, v in found.items()}
    return RobustnessReport(eps_list, float(clean.mean()), accuracy,
                            {norm: [float(r.mean()) for r in rows] for norm, rows in worst.items()},
                            median, seconds, len(clean))


def _host(a) -> np.ndarray:
    """A NumPy copy of an array from either device (for reporting and plotting)."""
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _model_input(attack: Attack, x):
    return attack._model_input(Tensor(x))


def _attack_batch(attack: Attack, x, y, clean, eps_list: list, norms_found: list):
    """(len(eps), N) robust flags of one batch under ``attack``."""
    rows = []
    if attack.norm is None:  # a minimum-norm attack: once, then compare its norm with each ε
        x_adv = attack(x, y).data
        fooled = attack.logits(x_adv).argmax(axis=1) != y
        size = batch_norms(x_adv - x, attack.measure)
        norms_found.append(size[fooled & clean])
        return xp.stack([clean & (~fooled | (size > e)) for e in eps_list])
    still = clean.copy()
    for e in eps_list:
        idx = xp.nonzero(still)[0]  # NOTE: only the samples not yet fooled at a smaller ε need attacking
        if e > 0 and len(idx):
            atk = attack.at_eps(e)
            x_adv = atk(x[idx], y[idx]).data
            _check_ball(atk, x[idx], x_adv, e, attack.norm)
            fooled = atk.logits(x_adv).argmax(axis=1) != y[idx]
            still[idx[fooled]] = False
        rows.append(still.copy())
    return xp.stack(rows)


def adversarial_grid(attack: Attack, images, labels, amplify: float | None = None) -> dict:
    """Originals, perturbations and adversarial examples of ``images`` (N, C, H, W) as NumPy arrays with their
    predictions: {'clean', 'delta' (mapped to [0, 1] around 0.5, ×``amplify``, default 0.5/max|δ|), 'adversarial',
    'labels', 'clean_pred', 'adv_pred'}."""
    x, y = as_array(images), as_array(labels)
    x_adv = attack(x, y).data
    delta = x_adv - x
    scale = amplify if amplify is not None else 0.5 / max(float(xp.abs(delta).max()), 1e-12)
    with no_grad(), _attack_mode(attack.model):
        clean_pred, adv_pred = attack.logits(x).argmax(axis=1), attack.logits(x_adv).argmax(axis=1)
    return {"clean": _host(x), "delta": np.clip(_host(0.5 + scale * delta), 0, 1), "adversarial": _host(x_adv),
            "labels": _host(y), "clean_pred": _host(clean_pred), "adv_pred": _host(adv_pred), "amplify": scale}


def plot_adversarial_examples(attack: Attack, images, labels, path=None, class_names: Sequence[str] | None = None,
                              amplify: float | None = None):
    """A 3-row PNG grid: originals (label -> prediction), perturbations (amplified, grey = 0), adversarial
    examples (prediction, red when fooled); saved to ``path`` if given; returns the Figure."""
    try:
        import matplotlib
        if path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plot_adversarial_examples needs matplotlib: pip install matplotlib (adversarial_grid "
                          "returns the arrays without it)") from exc
    g = adversarial_grid(attack, images, labels, amplify)
    n, (h, w), pad = len(g["clean"]), g["clean"].shape[-2:], 2
    canvas = np.ones((3 * (h + pad) + pad, n * (w + pad) + pad) + ((3,) if g["clean"].shape[1] == 3 else ()))
    for r, key in enumerate(("clean", "delta", "adversarial")):
        for i in range(n):
            tile = g[key][i]
            tile = tile[0] if tile.shape[0] == 1 else tile.transpose(1, 2, 0)
            canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + i * (w + pad):pad + i * (w + pad) + w] = tile
    name = (lambda k: class_names[int(k)]) if class_names is not None else (lambda k: str(int(k)))
    fig, ax = plt.subplots(figsize=(0.9 * n + 1.2, 3.4))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for i in range(n):
        x = pad + i * (w + pad) + w / 2
        ax.text(x, pad - 1, f"{name(g['labels'][i])} -> {name(g['clean_pred'][i])}", ha="center", va="bottom",
                fontsize=6)
        fooled = g["adv_pred"][i] != g["labels"][i]
        ax.text(x, 3 * (h + pad) + 1, name(g["adv_pred"][i]), ha="center", va="top", fontsize=7,
                color="red" if fooled else "green")
    for r, label in enumerate(("clean", f"δ ×{g['amplify']:.3g}", "adversarial")):
        ax.text(-1, pad + r * (h + pad) + h / 2, label, ha="right", va="center", fontsize=8)
    ax.axis("off")
    ax.set_title(repr(attack), fontsize=8, pad=12)
    if path is not None:
        fig.savefig(path, bbox_inches="tight", dpi=150)
    return fig
