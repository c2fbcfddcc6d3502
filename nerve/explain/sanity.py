"""Checks that tell a faithful explanation from a pretty one.

- ``parameter_randomization`` (Adebayo et al. 2018): re-initialise the model's layers from the top down
  (cascading) or one at a time (independent) and measure how much the maps change (Spearman rank correlation with
  the original maps, with and without absolute values). A method whose maps survive randomised weights does not
  explain the model; it is flagged.
- ``completeness_gap``: |sum of attributions - (F(x) - F(x'))| relative to |F(x) - F(x')|, per example.
- ``deletion_curve``: accuracy as the most-attributed features are removed first, against removing random ones.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.explain._common import as_inputs, baselines_for, eval_mode, forward_values, model_dtype
from nerve.nn.module import Module
from nerve.tensor import Tensor

__all__ = ["completeness_gap", "deletion_curve", "parameter_randomization", "rankdata", "spearman"]


def rankdata(values) -> np.ndarray:
    """Ranks 1..n of a 1-d array, ties given their average rank (as scipy.stats.rankdata)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(v, kind="mergesort")
    sorted_v = v[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_v)) + 1]
    ends = np.r_[starts[1:], len(v)]
    ranks = np.empty(len(v))
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = 0.5 * (s + e - 1) + 1
    return ranks


def spearman(a, b) -> float:
    """Spearman rank correlation of two maps (flattened); 0 when either map is constant."""
    ra, rb = rankdata(a), rankdata(b)
    if ra.shape != rb.shape:
        raise ValueError(f"spearman: maps of different sizes {np.shape(a)} and {np.shape(b)}")
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def _maps(explain: Callable, inputs) -> np.ndarray:
    out = explain(inputs)
    out = out[0] if isinstance(out, tuple) else out
    return np.asarray(out.numpy() if isinstance(out, Tensor) else out, dtype=np.float64)


def _mean_rho(original: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    rho = [spearman(o, r) for o, r in zip(original, other)]
    rho_abs = [spearman(np.abs(o), np.abs(r)) for o, r in zip(original, other)]
    return float(np.mean(rho)), float(np.mean(rho_abs))


def _layers(model: Module, layers) -> list:
    if layers is not None:
        named = dict(model.named_modules())
        out = []
        for layer in layers:
            if isinstance(layer, str):
                if layer not in named:
                    raise ValueError(f"parameter_randomization: no layer named {layer!r} in {type(model).__name__}")
                out.append((layer, named[layer]))
            else:
                names = [n for n, m in named.items() if m is layer]
                if not names:
                    raise ValueError(f"parameter_randomization: layer {type(layer).__name__} is not part of the model")
                out.append((names[0], layer))
        return out
    return [(n, m) for n, m in model.named_modules() if list(m.parameters(recurse=False))]


def _randomize(module: Module, rng: np.random.Generator) -> None:
    """Re-initialise one layer: ``reset_parameters`` where it has one, else N(0, std) of each parameter."""
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
        return
    with no_grad():
        for p in module.parameters(recurse=False):
            std = float(np.std(p.numpy())) or 0.05
            p.data[...] = xp.asarray(rng.normal(0.0, std, p.shape).astype(p.data.dtype))


def parameter_randomization(model: Module, explain: Callable, inputs, cascading: bool = True,
                            layers: Sequence | None = None, threshold: float = 0.5, seed: int = 0) -> dict:
    """Adebayo et al.'s model-parameter randomisation test for ``explain(inputs) -> maps`` (e.g.
    ``lambda x: Saliency(model).attribute(x, target=y)``).

    Layers (default: every module holding parameters) are re-initialised from the output down, cumulatively
    (``cascading``) or each alone with the others restored (independent). Returns {"rows": [{"layer", "spearman",
    "spearman_abs"} per step, ρ averaged over examples], "flagged": whether the maps with every layer randomised
    (cascading) or the top layer randomised (independent) still correlate above ``threshold`` (absolute values),
    "message"}. The model's weights are restored afterwards.
    """
    chosen = _layers(model, layers)
    if not chosen:
        raise ValueError(f"parameter_randomization: {type(model).__name__} has no layers with parameters")
    saved = {k: v.data.copy() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(seed)
    from nerve import backend
    state = backend.get_rng_state()
    backend.manual_seed(seed)
    rows = []
    try:
        original = _maps(explain, inputs)
        for name, layer in reversed(chosen):
            if not cascading:
                _restore(model, saved)
            _randomize(layer, rng)
            rho, rho_abs = _mean_rho(original, _maps(explain, inputs))
            rows.append({"layer": name, "spearman": rho, "spearman_abs": rho_abs})
    finally:
        _restore(model, saved)
        backend.set_rng_state(state)
    final = rows[-1] if cascading else rows[0]
    flagged = abs(final["spearman_abs"]) > threshold
    kind = "every layer" if cascading else f"the top layer {final['layer']!r}"
    message = (f"maps with {kind} randomised still correlate with the trained model's "
               f"(Spearman of |maps| {final['spearman_abs']:.2f} > {threshold}): they show the input or the "
               "architecture more than what the model learned" if flagged else
               f"maps change when the weights are randomised (Spearman of |maps| {final['spearman_abs']:.2f} with "
               f"{kind} randomised)")
    return {"rows": rows, "flagged": flagged, "message": message}


def _restore(model: Module, saved: dict) -> None:
    state = model.state_dict()
    with no_grad():
        for k, v in saved.items():
            state[k].data[...] = v


def completeness_gap(model, attributions, inputs, baselines=None, target=None,
                     additional_forward_args=None) -> np.ndarray:
    """Per example |sum(attributions) - (F(x) - F(x'))| / |F(x) - F(x')|: IG's completeness (0 for exact IG)."""
    arrays, _ = as_inputs(inputs, model_dtype(model), "completeness_gap")
    bases = baselines_for(arrays, baselines, "completeness_gap")
    attrs = attributions if isinstance(attributions, (tuple, list)) else (attributions,)
    n = arrays[0].shape[0]
    args = () if additional_forward_args is None else (additional_forward_args if isinstance(
        additional_forward_args, tuple) else (additional_forward_args,))
    with eval_mode(model, "completeness_gap"):
        diff = (forward_values(model, arrays, target, args, "completeness_gap")
                - forward_values(model, bases, target, args, "completeness_gap"))
    total = sum(np.asarray(a.numpy() if isinstance(a, Tensor) else a).reshape(n, -1).sum(axis=1) for a in attrs)
    diff = np.asarray(diff.get() if hasattr(diff, "get") else diff)
    return np.abs(total - diff) / np.maximum(np.abs(diff), 1e-12)


def deletion_curve(model, inputs, attributions, labels, fractions: Sequence[float] = (0, .05, .1, .2, .3, .5),
                   baseline: float = 0.0, seed: int = 0, batch_size: int = 256) -> dict:
    """Accuracy on ``inputs`` as the top fraction of features by attribution (summed over channels for images)
    is set to ``baseline``, and as the same number of random features is: {"fractions", "attributed",
    "random"}. A faithful map makes accuracy fall faster than random deletion."""
    x = np.asarray(inputs.numpy() if isinstance(inputs, Tensor) else inputs)
    a = np.asarray(attributions.numpy() if isinstance(attributions, Tensor) else attributions, dtype=np.float64)
    if a.shape != x.shape:
        raise ValueError(f"deletion_curve: attributions {a.shape} must have the inputs' shape {x.shape}")
    y = np.asarray(labels).ravel()
    n = len(x)
    spatial = x.shape[2:] if x.ndim >= 3 else x.shape[1:]
    score = np.abs(a).sum(axis=1) if x.ndim >= 3 else np.abs(a)
    score = score.reshape(n, -1)
    size = score.shape[1]
    rng = np.random.default_rng(seed)
    random_order = np.argsort(rng.random((n, size)), axis=1)
    attributed_order = np.argsort(-score, axis=1, kind="mergesort")
    result = {"fractions": list(fractions), "attributed": [], "random": []}
    dtype = model_dtype(model)
    for order, key in ((attributed_order, "attributed"), (random_order, "random")):
        for f in fractions:
            k = int(round(f * size))
            mask = np.zeros((n, size), dtype=bool)
            np.put_along_axis(mask, order[:, :k], True, axis=1)
            mask = mask.reshape((n,) + spatial)
            if x.ndim >= 3:
                mask = np.broadcast_to(mask[:, None], x.shape)
            removed = np.where(mask, baseline, x).astype(dtype or x.dtype)
            correct = 0
            with eval_mode(model, "deletion_curve"), no_grad():
                for s in range(0, n, batch_size):
                    out = model(Tensor(xp.asarray(removed[s:s + batch_size]))).numpy()
                    correct += int((out.argmax(axis=1) == y[s:s + batch_size]).sum())
            result[key].append(correct / n)
    return result
