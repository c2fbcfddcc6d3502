"""Input attribution with Captum's names and call convention: ``Method(model).attribute(inputs, target=...)``.

Each method runs the model in eval mode (modes restored afterwards), on the model's dtype, batched (one backward
per batch of examples, scaled inputs or noisy copies), and returns attributions with the input's shape: a Tensor,
or a tuple of them when the inputs came as a tuple. Definitions follow Captum's exactly, quirks included (see
``approximation_parameters``, ``NoiseTunnel`` and ``Occlusion``), so results match attribution for attribution.
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from nerve import backend
from nerve.backend import xp
from nerve.explain._common import (
    as_inputs, as_output, baselines_for, eval_mode, expand_target, extra_args, forward_values, gradients,
    model_dtype, repeat_args,
)
from nerve.tensor import Tensor

__all__ = ["Attribution", "GradientShap", "InputXGradient", "IntegratedGradients", "NoiseTunnel", "Occlusion",
           "Saliency", "approximation_parameters", "gauss_legendre"]

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on [-1, 1] for ``n`` points (ascending), by Newton's method on the
    three-term recurrence of the Legendre polynomials."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"gauss_legendre: n must be a positive int, got {n!r}")
    x = np.cos(np.pi * (np.arange(n, 0, -1) - 0.25) / (n + 0.5))
    for _ in range(100):
        p_prev, p = np.ones_like(x), x.copy()
        for j in range(2, n + 1):
            p_prev, p = p, ((2 * j - 1) * x * p - (j - 1) * p_prev) / j
        dp = n * (x * p - p_prev) / (x * x - 1)
        step = p / dp
        x -= step
        if np.max(np.abs(step)) < 1e-15:
            break
    p_prev, p = np.ones_like(x), x.copy()
    for j in range(2, n + 1):
        p_prev, p = p, ((2 * j - 1) * x * p - (j - 1) * p_prev) / j
    dp = n * (x * p - p_prev) / (x * x - 1)
    return x, 2.0 / ((1 - x * x) * dp * dp)


def approximation_parameters(method: str) -> tuple[Callable, Callable]:
    """(step_sizes(n), alphas(n)) of Captum's path-integral rules.

    Riemann: every step weighs 1/n; ``riemann_trapezoid`` puts its n points on linspace(0, 1, n) and halves the
    two end weights (Captum's quirk: the weights sum to (n - 1)/n, not 1); left/right/middle shift the n points.
    ``gausslegendre``: nodes and weights of ``gauss_legendre(n)`` mapped from [-1, 1] onto [0, 1].
    """
    if method == "gausslegendre":
        return (lambda n: 0.5 * gauss_legendre(n)[1]), (lambda n: 0.5 * (1 + gauss_legendre(n)[0]))
    if method not in METHODS:
        raise ValueError(f"approximation_parameters: method must be one of {METHODS}, got {method!r}")

    def step_sizes(n: int) -> np.ndarray:
        if n < 2:
            raise ValueError(f"{method}: n_steps must be at least 2, got {n}")
        steps = np.full(n, 1.0 / n)
        if method == "riemann_trapezoid":
            steps[0] /= 2
            steps[-1] /= 2
        return steps

    def alphas(n: int) -> np.ndarray:
        if n < 2:
            raise ValueError(f"{method}: n_steps must be at least 2, got {n}")
        low, high = {"riemann_trapezoid": (0.0, 1.0), "riemann_left": (0.0, 1 - 1 / n),
                     "riemann_middle": (1 / (2 * n), 1 - 1 / (2 * n)), "riemann_right": (1 / n, 1.0)}[method]
        return np.linspace(low, high, n)
    return step_sizes, alphas


class Attribution:
    """Base of the attribution methods: holds the model (any callable returning a Tensor)."""

    def __init__(self, forward_func) -> None:
        if not callable(forward_func):
            raise TypeError(f"{type(self).__name__}: expected a model or function, got {type(forward_func).__name__}")
        self.forward_func = forward_func

    @property
    def who(self) -> str:
        return f"{type(self).__name__}.attribute"

    def has_convergence_delta(self) -> bool:
        """Whether ``attribute`` can return a completeness gap (Captum's name)."""
        return False

    def _inputs(self, inputs):
        return as_inputs(inputs, model_dtype(self.forward_func), self.who)


class Saliency(Attribution):
    """Gradient of the target with respect to the input (Simonyan et al. 2014); absolute by default."""

    def attribute(self, inputs, target=None, abs: bool = True, additional_forward_args=None):
        """|d target / d input| (the signed gradient with ``abs=False``)."""
        arrays, is_tuple = self._inputs(inputs)
        with eval_mode(self.forward_func, self.who):
            grads, _ = gradients(self.forward_func, arrays, target, extra_args(additional_forward_args), self.who)
        return as_output([xp.abs(g) if abs else g for g in grads], is_tuple)


class InputXGradient(Attribution):
    """Input times the gradient of the target (Shrikumar et al. 2016)."""

    def attribute(self, inputs, target=None, additional_forward_args=None):
        """x * d target / d x."""
        arrays, is_tuple = self._inputs(inputs)
        with eval_mode(self.forward_func, self.who):
            grads, _ = gradients(self.forward_func, arrays, target, extra_args(additional_forward_args), self.who)
        return as_output([a * g for a, g in zip(arrays, grads)], is_tuple)


class IntegratedGradients(Attribution):
    """(x - x') times the average gradient on the straight path from the baseline x' to x (Sundararajan et al.
    2017); the attributions of an example sum to F(x) - F(x') up to the quadrature error (completeness)."""

    def __init__(self, forward_func, multiply_by_inputs: bool = True) -> None:
        super().__init__(forward_func)
        self.multiply_by_inputs = multiply_by_inputs

    def has_convergence_delta(self) -> bool:
        return True

    def attribute(self, inputs, baselines=None, target=None, additional_forward_args=None, n_steps: int = 50,
                  method: str = "gausslegendre", internal_batch_size: int | None = None,
                  return_convergence_delta: bool = False):
        """Attributions (and, with ``return_convergence_delta``, the gap sum(attr) - (F(x) - F(x')) per example).

        ``internal_batch_size`` caps the scaled inputs per forward/backward (whole steps of the batch each).
        """
        arrays, is_tuple = self._inputs(inputs)
        bases = baselines_for(arrays, baselines, self.who)
        args = extra_args(additional_forward_args)
        with eval_mode(self.forward_func, self.who):
            total = path_gradients(self.forward_func, arrays, bases, target, args, n_steps, method,
                                   internal_batch_size, self.who)
            attributions = [t * (a - b) if self.multiply_by_inputs else t for t, a, b in zip(total, arrays, bases)]
            if not return_convergence_delta:
                return as_output(attributions, is_tuple)
            delta = convergence_delta(self.forward_func, attributions, bases, arrays, target, args, self.who)
        return as_output(attributions, is_tuple), as_output([delta], False)

    def compute_convergence_delta(self, attributions, start_point, end_point, target=None,
                                  additional_forward_args=None):
        """sum(attributions) - (F(end_point) - F(start_point)) per example (Captum's name)."""
        ends, _ = self._inputs(end_point)
        starts = baselines_for(ends, start_point, self.who)
        attrs = attributions if isinstance(attributions, (tuple, list)) else (attributions,)
        with eval_mode(self.forward_func, self.who):
            delta = convergence_delta(self.forward_func, [a.data for a in attrs], starts, ends, target,
                                      extra_args(additional_forward_args), self.who)
        return as_output([delta], False)


def path_gradients(model, arrays: tuple, bases: tuple, target, args: tuple, n_steps: int, method: str,
                   internal_batch_size: int | None, who: str) -> list:
    """sum_k step_k * dF/dx at x' + alpha_k (x - x'), for each input: whole steps of the batch per backward."""
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"{who}: n_steps must be a positive int, got {n_steps!r}")
    step_sizes, alphas = approximation_parameters(method)
    steps, points = step_sizes(n_steps), alphas(n_steps)
    n = arrays[0].shape[0]
    per_chunk = n_steps
    if internal_batch_size is not None:
        if internal_batch_size < n:
            warnings.warn(f"{who}: internal_batch_size {internal_batch_size} is below the batch size {n}; "
                          f"running one step ({n} scaled inputs) per pass", stacklevel=3)
        per_chunk = max(1, internal_batch_size // n)
    total = [xp.zeros_like(a) for a in arrays]
    for start in range(0, n_steps, per_chunk):
        alpha = points[start:start + per_chunk]
        k = len(alpha)
        shape = lambda a: (k,) + (1,) * a.ndim  # noqa: E731
        scaled = tuple((b[None] + xp.asarray(alpha, dtype=a.dtype).reshape(shape(a)) * (a - b)[None])
                       .reshape((k * n,) + a.shape[1:]) for a, b in zip(arrays, bases))
        grads, _ = gradients(model, scaled, expand_target(target, k), repeat_args(args, k), who)
        for t, g, a in zip(total, grads, arrays):
            w = xp.asarray(steps[start:start + k], dtype=a.dtype).reshape(shape(a))
            t += (g.reshape((k,) + a.shape) * w).sum(axis=0)
    return total


def convergence_delta(model, attributions, starts, ends, target, args: tuple, who: str):
    """sum of the attributions per example minus (F(end) - F(start))."""
    n = ends[0].shape[0]
    total = sum(a.reshape(n, -1).sum(axis=1) for a in attributions)
    return total - (forward_values(model, ends, target, args, who) - forward_values(model, starts, target, args, who))


class NoiseTunnel(Attribution):
    """SmoothGrad around any method (Smilkov et al. 2017): attributions averaged over ``nt_samples`` copies of
    each input with N(0, stdevs²) noise; ``smoothgrad_sq`` averages their squares, ``vargrad`` takes their
    variance (Adebayo et al. 2018). ``stdevs`` is absolute (in input units), as in Captum."""

    NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")

    def __init__(self, attribution_method: Attribution) -> None:
        if not isinstance(attribution_method, Attribution):
            raise TypeError(f"NoiseTunnel: expected an attribution method, got {type(attribution_method).__name__}")
        super().__init__(attribution_method.forward_func)
        self.attribution_method = attribution_method

    def has_convergence_delta(self) -> bool:
        return self.attribution_method.has_convergence_delta()

    def attribute(self, inputs, nt_type: str = "smoothgrad", nt_samples: int = 5,
                  nt_samples_batch_size: int | None = None, stdevs=1.0, draw_baseline_from_distrib: bool = False,
                  **kwargs):
        """The reduced attributions; ``kwargs`` go to the inner method (target, baselines, n_steps, ...), with
        per-example targets and forward arguments repeated for every noisy copy (example-major, as Captum)."""
        if nt_type not in self.NT_TYPES:
            raise ValueError(f"NoiseTunnel.attribute: nt_type must be one of {self.NT_TYPES}, got {nt_type!r}")
        if not isinstance(nt_samples, int) or nt_samples < 1:
            raise ValueError(f"NoiseTunnel.attribute: nt_samples must be a positive int, got {nt_samples!r}")
        arrays, is_tuple = self._inputs(inputs)
        sds = stdevs if isinstance(stdevs, (tuple, list)) else (stdevs,) * len(arrays)
        if len(sds) != len(arrays):
            raise ValueError(f"NoiseTunnel.attribute: {len(sds)} stdevs for {len(arrays)} inputs")
        n = arrays[0].shape[0]
        batch = nt_samples_batch_size or nt_samples
        want_delta = kwargs.get("return_convergence_delta", False)
        sums = sq_sums = None
        deltas = []
        for start in range(0, nt_samples, batch):
            k = min(batch, nt_samples - start)
            noisy = tuple(xp.repeat(a, k, axis=0) + _normal(xp.repeat(a, k, axis=0).shape, sd, a.dtype)
                          for a, sd in zip(arrays, sds))
            inner = self._inner_kwargs(kwargs, k, n, draw_baseline_from_distrib)
            result = self.attribution_method.attribute(noisy if is_tuple else noisy[0], **inner)
            if want_delta:
                result, delta = result
                deltas.append(delta.data)
            parts = [r.data.reshape((n, k) + a.shape[1:]) for r, a in zip(
                result if is_tuple else (result,), arrays)]
            part_sums = [p.sum(axis=1) for p in parts]
            part_sq = [(p * p).sum(axis=1) for p in parts]
            sums = part_sums if sums is None else [s + p for s, p in zip(sums, part_sums)]
            sq_sums = part_sq if sq_sums is None else [s + p for s, p in zip(sq_sums, part_sq)]
        means = [s / nt_samples for s in sums]
        mean_sq = [s / nt_samples for s in sq_sums]
        out = {"smoothgrad": means, "smoothgrad_sq": mean_sq,
               "vargrad": [q - m * m for q, m in zip(mean_sq, means)]}[nt_type]
        if want_delta:
            return as_output(out, is_tuple), as_output([xp.concatenate(deltas)], False)
        return as_output(out, is_tuple)

    def _inner_kwargs(self, kwargs: dict, k: int, n: int, draw_baseline: bool) -> dict:
        inner = dict(kwargs)
        if "target" in inner:
            inner["target"] = expand_target(inner["target"], k, interleave=True)
        if inner.get("additional_forward_args") is not None:
            inner["additional_forward_args"] = repeat_args(extra_args(inner["additional_forward_args"]), k,
                                                           interleave=True)
        if draw_baseline and inner.get("baselines") is not None:
            inner["baselines"] = draw_baselines(inner["baselines"], n * k)
        elif inner.get("baselines") is not None:
            inner["baselines"] = _repeat_baselines(inner["baselines"], k, n)
        return inner


def _normal(shape: tuple, sd: float, dtype):
    if sd == 0:
        return xp.zeros(shape, dtype=dtype)
    return xp.asarray(backend.default_generator().normal(0.0, sd, shape).astype(dtype))


def _as_array(b):
    return b.data if isinstance(b, Tensor) else xp.asarray(b)


def draw_baselines(baselines, rows: int):
    """For each of ``rows`` rows one baseline drawn uniformly from the given ones (Captum's
    ``draw_baseline_from_distrib``); a tuple of baseline batches draws the same index in each."""
    items = baselines if isinstance(baselines, (tuple, list)) else (baselines,)
    arrays = [_as_array(b) for b in items]
    index = xp.asarray(backend.default_generator().integers(0, arrays[0].shape[0], rows))
    drawn = tuple(a[index] for a in arrays)
    return drawn if isinstance(baselines, (tuple, list)) else drawn[0]


def _repeat_baselines(baselines, k: int, n: int):
    items = baselines if isinstance(baselines, (tuple, list)) else (baselines,)
    out = []
    for b in items:
        if isinstance(b, (int, float)):
            out.append(b)
            continue
        a = _as_array(b)
        out.append(xp.repeat(a, k, axis=0) if a.shape[0] == n and n > 1 else a)
    return tuple(out) if isinstance(baselines, (tuple, list)) else out[0]


class GradientShap(Attribution):
    """Expected gradients (Lundberg & Lee 2017, Captum's GradientShap): for ``n_samples`` draws per example of a
    baseline from ``baselines``, a point x' + alpha (x~ - x') with alpha ~ U(0, 1) and x~ = x + N(0, stdevs²),
    the mean of grad * (x~ - x'). Approximates SHAP values of a model with nearly linear pieces."""

    def __init__(self, forward_func, multiply_by_inputs: bool = True) -> None:
        super().__init__(forward_func)
        self.multiply_by_inputs = multiply_by_inputs

    def has_convergence_delta(self) -> bool:
        return True

    def attribute(self, inputs, baselines, n_samples: int = 5, stdevs=0.0, target=None,
                  additional_forward_args=None, return_convergence_delta: bool = False):
        """Attributions; with ``return_convergence_delta`` also sum(attr) - (F(x~) - F(x')) for each of the
        N * n_samples draws (example-major)."""
        if not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"GradientShap.attribute: n_samples must be a positive int, got {n_samples!r}")
        arrays, is_tuple = self._inputs(inputs)
        items = baselines if isinstance(baselines, (tuple, list)) else (baselines,)
        if baselines is None or len(items) != len(arrays):
            raise ValueError(f"GradientShap.attribute: needs a batch of baselines per input ({len(arrays)}), got "
                             f"{baselines!r:.60}")
        for i, (a, b) in enumerate(zip(arrays, items)):
            b = _as_array(b)
            if b.ndim != a.ndim or b.shape[1:] != a.shape[1:]:
                raise ValueError(f"GradientShap.attribute: baselines {i} have shape {tuple(b.shape)}; expected a "
                                 f"batch of examples (B, {', '.join(map(str, a.shape[1:]))})")
        tunnel = NoiseTunnel(_InputBaselineXGradient(self.forward_func, self.multiply_by_inputs))
        return tunnel.attribute(tuple(arrays) if is_tuple else arrays[0], nt_type="smoothgrad",
                                nt_samples=n_samples, stdevs=stdevs, draw_baseline_from_distrib=True,
                                baselines=baselines, target=target, additional_forward_args=additional_forward_args,
                                return_convergence_delta=return_convergence_delta)


class _InputBaselineXGradient(Attribution):
    """One GradientShap draw per row: the gradient at x' + alpha (x - x'), alpha ~ U(0, 1), times x - x'."""

    def __init__(self, forward_func, multiply_by_inputs: bool) -> None:
        super().__init__(forward_func)
        self.multiply_by_inputs = multiply_by_inputs

    @property
    def who(self) -> str:
        return "GradientShap.attribute"

    def attribute(self, inputs, baselines=None, target=None, additional_forward_args=None,
                  return_convergence_delta: bool = False):
        arrays, is_tuple = self._inputs(inputs)
        bases = baselines_for(arrays, baselines, self.who)
        n = arrays[0].shape[0]
        alpha = backend.default_generator().uniform(0.0, 1.0, n)
        scaled = tuple(b + xp.asarray(alpha, dtype=a.dtype).reshape((n,) + (1,) * (a.ndim - 1)) * (a - b)
                       for a, b in zip(arrays, bases))
        args = extra_args(additional_forward_args)
        with eval_mode(self.forward_func, self.who):
            grads, _ = gradients(self.forward_func, scaled, target, args, self.who)
            attributions = [g * (a - b) if self.multiply_by_inputs else g for g, a, b in zip(grads, arrays, bases)]
            if not return_convergence_delta:
                return as_output(attributions, is_tuple)
            delta = convergence_delta(self.forward_func, attributions, bases, arrays, target, args, self.who)
        return as_output(attributions, is_tuple), as_output([delta], False)


class Occlusion(Attribution):
    """Occlusion (Zeiler & Fergus 2014): slide a window over each input, replace it by the baseline, and give
    every element covered the drop F(x) - F(x occluded), averaged over the windows that covered it (Captum's
    definition: ceil((size - window) / stride) + 1 positions per dimension, the last one moved back to end at the
    border, so every element is covered; a stride may not exceed its window)."""

    def attribute(self, inputs, sliding_window_shapes, strides=None, baselines=None, target=None,
                  additional_forward_args=None, perturbations_per_eval: int = 1, show_progress: bool = False):
        """``sliding_window_shapes``: one example's window per input, e.g. (1, 3, 3) for (C, H, W) images;
        ``strides``: an int or a tuple per dimension (default 1); ``perturbations_per_eval`` windows per forward."""
        arrays, is_tuple = self._inputs(inputs)
        windows = sliding_window_shapes if is_tuple else (sliding_window_shapes,)
        several = is_tuple and len(arrays) > 1 and isinstance(strides, tuple)
        stride_items = strides if several else (strides,) * len(arrays)
        if len(windows) != len(arrays):
            raise ValueError(f"{self.who}: {len(windows)} sliding window shapes for {len(arrays)} inputs")
        if not isinstance(perturbations_per_eval, int) or perturbations_per_eval < 1:
            raise ValueError(f"{self.who}: perturbations_per_eval must be a positive int, got "
                             f"{perturbations_per_eval!r}")
        bases = baselines_for(arrays, baselines, self.who)
        args = extra_args(additional_forward_args)
        n = arrays[0].shape[0]
        out = []
        with eval_mode(self.forward_func, self.who):
            reference = forward_values(self.forward_func, arrays, target, args, self.who)
            for i, (a, b) in enumerate(zip(arrays, bases)):
                window, stride = self._geometry(a.shape[1:], windows[i], stride_items[i], i)
                starts = _window_starts(a.shape[1:], window, stride)
                total, counts = xp.zeros_like(a), xp.zeros(a.shape[1:], dtype=a.dtype)
                for first in range(0, len(starts), perturbations_per_eval):
                    chunk = starts[first:first + perturbations_per_eval]
                    occluded = xp.concatenate([a] * len(chunk))
                    masks = xp.zeros((len(chunk),) + a.shape[1:], dtype=bool)
                    for j, corner in enumerate(chunk):
                        masks[(j,) + tuple(slice(c, c + w) for c, w in zip(corner, window))] = True
                    mask_rows = xp.repeat(masks, n, axis=0)
                    occluded = xp.where(mask_rows, xp.concatenate([b] * len(chunk)), occluded)
                    full = tuple(occluded if j == i else xp.concatenate([arrays[j]] * len(chunk))
                                 for j in range(len(arrays)))
                    values = forward_values(self.forward_func, full, expand_target(target, len(chunk)),
                                            repeat_args(args, len(chunk)), self.who)
                    drop = (xp.concatenate([reference] * len(chunk)) - values).reshape(len(chunk), n)
                    for j in range(len(chunk)):
                        total += drop[j].reshape((n,) + (1,) * (a.ndim - 1)) * masks[j]
                    counts += masks.sum(axis=0)
                out.append(total / xp.where(counts > 0, counts, 1))
        return as_output(out, is_tuple)

    def _geometry(self, shape: tuple, window, stride, i: int) -> tuple[tuple, tuple]:
        window = (window,) if isinstance(window, int) else tuple(window)
        if len(window) != len(shape):
            raise ValueError(f"{self.who}: sliding window {window} for input {i} must have one size per dimension "
                             f"of an example {tuple(shape)}")
        if any(w < 1 or w > s for w, s in zip(window, shape)):
            raise ValueError(f"{self.who}: sliding window {window} is larger than the example {tuple(shape)} of "
                             f"input {i} (or has a size below 1)")
        stride = (1,) * len(shape) if stride is None else (stride,) * len(shape) if isinstance(stride, int) \
            else tuple(stride)
        if len(stride) != len(shape) or any(s < 1 for s in stride):
            raise ValueError(f"{self.who}: strides {stride} for input {i} must be positive, one per dimension of "
                             f"{tuple(shape)}")
        if any(st > w and w < s for st, w, s in zip(stride, window, shape)):
            raise ValueError(f"{self.who}: strides {stride} may not exceed the sliding window {window} where it does "
                             f"not cover the example {tuple(shape)} (elements would be skipped)")
        return window, stride


def _window_starts(shape: tuple, window: tuple, stride: tuple) -> list:
    ranges = [[min(k * st, s - w) for k in range(-(-(s - w) // st) + 1)] for s, w, st in zip(shape, window, stride)]
    starts = [()]
    for r in ranges:
        starts = [c + (k,) for c in starts for k in r]
    return starts
