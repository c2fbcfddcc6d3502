"""Finite-difference checks of analytic gradients (first and second order), in float64."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from nerve.autograd.engine import grad as _grad
from nerve.autograd.grad_mode import no_grad
from nerve.tensor import Tensor

#: above this many input elements gradcheck compares random directional derivatives instead
FULL_JACOBIAN_LIMIT = 512


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with finite differences."""


def _outputs(fn, inputs) -> list:
    out = fn(*inputs)
    return [out] if isinstance(out, Tensor) else [o for o in out if isinstance(o, Tensor)]


def _flat_outputs(fn, inputs) -> np.ndarray:
    # NOTE: evaluated with grad enabled: gradgradcheck's fn differentiates inside.
    outs = _outputs(fn, inputs)
    if not outs:
        return np.zeros(0)
    return np.concatenate([np.asarray(o.numpy(), dtype=np.float64).ravel() for o in outs])


def _numerical_column(fn, inputs, t: Tensor, flat_index, direction, eps: float) -> np.ndarray:
    """(f(x + eps d) - f(x - eps d)) / 2 eps for one input, d a unit vector or a direction."""
    data = t.data
    original = data.copy()
    step = direction * eps if direction is not None else None
    if step is None:
        data.flat[flat_index] += eps
    else:
        data += step
    plus = _flat_outputs(fn, inputs)
    data[...] = original
    if step is None:
        data.flat[flat_index] -= eps
    else:
        data -= step
    minus = _flat_outputs(fn, inputs)
    data[...] = original
    return (plus - minus) / (2 * eps)


def _vjp(fn, inputs, diff_inputs, cotangents) -> list:
    """Analytic u^T J for each differentiable input, with u split over the outputs."""
    outs = _outputs(fn, inputs)
    grad_outputs, offset = [], 0
    for o in outs:
        n = o.data.size
        grad_outputs.append(Tensor(cotangents[offset:offset + n].reshape(o.shape).astype(o.dtype)))
        offset += n
    pairs = [(o, g) for o, g in zip(outs, grad_outputs) if o.requires_grad]
    if not pairs:
        return [np.zeros(t.shape) for t in diff_inputs]
    grads = _grad([p[0] for p in pairs], diff_inputs, [p[1] for p in pairs], allow_unused=True)
    return [np.zeros(t.shape) if g is None else np.asarray(g.numpy(), dtype=np.float64) for t, g in
            zip(diff_inputs, grads)]


def gradcheck(fn: Callable, inputs: Sequence[Tensor], eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True, n_directions: int = 8,
              seed: int = 0) -> bool:
    """Compare the analytic Jacobian of ``fn`` at ``inputs`` with central finite differences.

    Inputs that require grad must be float64. Small problems compare every Jacobian entry; large
    ones (more than ``FULL_JACOBIAN_LIMIT`` input elements) compare ``u^T J v`` for random u, v.
    """
    inputs = tuple(inputs)
    diff_inputs = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not diff_inputs:
        raise ValueError("gradcheck: no input requires grad")
    for i, t in enumerate(diff_inputs):
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: differentiable input {i} has dtype {t.dtype}; use float64, "
                            "finite differences in float32 are too coarse")
    m = _flat_outputs(fn, inputs).size
    total = sum(t.data.size for t in diff_inputs)
    rng = np.random.default_rng(seed)
    worst = None  # (excess, message)

    def consider(analytic, numerical, where):
        nonlocal worst
        err = abs(analytic - numerical)
        excess = err - (atol + rtol * abs(numerical))
        if excess > 0 and (worst is None or excess > worst[0]):
            worst = (excess, f"{where}: analytic {analytic:.8g} vs numerical {numerical:.8g} "
                             f"(error {err:.3g} > atol {atol:g} + rtol {rtol:g} * |numerical|)")

    if total <= FULL_JACOBIAN_LIMIT:
        rows = [_vjp(fn, inputs, diff_inputs, np.eye(m)[r]) for r in range(m)]
        for k, t in enumerate(diff_inputs):
            for j in range(t.data.size):
                column = _numerical_column(fn, inputs, t, j, None, eps)
                index = np.unravel_index(j, t.shape) if t.ndim else ()
                for r in range(m):
                    consider(float(rows[r][k].flat[j]), float(column[r]),
                             f"input {k} (shape {tuple(t.shape)}) element {tuple(int(i) for i in index)}, "
                             f"output element {r}")
    else:
        for d in range(n_directions):
            u = rng.standard_normal(m)
            vs = [rng.standard_normal(t.shape) for t in diff_inputs]
            analytic = sum(float((g * v).sum()) for g, v in zip(_vjp(fn, inputs, diff_inputs, u), vs))
            numerical = 0.0
            for t, v in zip(diff_inputs, vs):
                numerical += float(u @ _numerical_column(fn, inputs, t, None, v, eps))
            consider(analytic, numerical, f"random direction {d}")
    if worst is not None:
        if raise_exception:
            raise GradcheckError("gradcheck failed at " + worst[1])
        return False
    return True


def gradgradcheck(fn: Callable, inputs: Sequence[Tensor], grad_outputs: Sequence[Tensor] | None = None,
                  eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  raise_exception: bool = True, seed: int = 0) -> bool:
    """Check second derivatives: gradcheck of (inputs, v) -> v^T J(inputs), built with create_graph."""
    inputs = tuple(inputs)
    diff_idx = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    with no_grad():
        outs = _outputs(fn, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grad_outputs = [Tensor(rng.standard_normal(o.shape), requires_grad=True) for o in outs]
    grad_outputs = list(grad_outputs)
    n_in = len(inputs)

    def first_order(*args):
        xs, vs = args[:n_in], args[n_in:]
        ys = [o for o in _outputs(fn, xs)]
        pairs = [(y, v) for y, v in zip(ys, vs) if y.requires_grad]
        gs = _grad([p[0] for p in pairs], [xs[i] for i in diff_idx], [p[1] for p in pairs],
                   create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_order, inputs + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, seed=seed)
