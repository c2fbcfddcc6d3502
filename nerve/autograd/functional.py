"""``nerve.autograd.functional``: Jacobians, Hessians and their products with vectors, by PyTorch's names.

Every function takes ``func`` (tensors to a tensor or a tuple of tensors) and ``inputs`` (a tensor or a tuple
of them) and returns results shaped as PyTorch does: one input given as a tensor gives a tensor, a tuple gives a
tuple. They run on the engine's reverse mode: a Jacobian is one backward pass per output element, a
Jacobian-vector product is the double-backward trick (so ``func`` must be twice differentiable, as every nerve
op is). ``create_graph=True`` keeps the results differentiable.
"""
from __future__ import annotations

from typing import Any, Callable

from nerve.autograd.engine import grad
from nerve.autograd.grad_mode import enable_grad
from nerve.backend import xp
from nerve.tensor import Tensor

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]


def _tuple(value: Any, who: str, what: str) -> tuple[tuple, bool]:
    """``value`` as a tuple of tensors, and whether it was given as a tuple."""
    if isinstance(value, Tensor):
        return (value,), False
    if isinstance(value, (tuple, list)) and all(isinstance(v, Tensor) for v in value):
        return tuple(value), True
    raise TypeError(f"{who}: {what} must be a tensor or a tuple of tensors, got {type(value).__name__}")


def _prepare(inputs: tuple, create_graph: bool) -> tuple:
    """Leaves to differentiate at: still joined to the caller's graph when ``create_graph`` and they require grad."""
    return tuple(t.view_as(t) if create_graph and t.requires_grad else t.detach().requires_grad_(True)
                 for t in inputs)


def _zeros_like(t: Tensor) -> Tensor:
    return Tensor._make(xp.zeros_like(t.data), None)


def _grads(outputs: tuple, inputs: tuple, grad_outputs, create_graph: bool, strict: bool, who: str) -> tuple:
    """d(outputs . grad_outputs)/d inputs, zeros where an input does not reach the outputs (an error if strict)."""
    live = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if not live:
        if strict:
            raise RuntimeError(f"{who}: the outputs do not depend on the inputs (strict=True)")
        return tuple(_zeros_like(t) for t in inputs)
    found = grad([o for o, _ in live], list(inputs), [g for _, g in live], retain_graph=True,
                 create_graph=create_graph, allow_unused=True)
    out = []
    for i, (t, g) in enumerate(zip(inputs, found)):
        if g is None:
            if strict:
                raise RuntimeError(f"{who}: output is independent of input {i} (strict=True)")
            g = _zeros_like(t)
        out.append(g if create_graph else g.detach())
    return tuple(out)


def _check_v(v: Any, like: tuple, who: str, what: str) -> tuple:
    vs, _ = _tuple(v, who, what)
    if len(vs) != len(like) or any(a.shape != b.shape for a, b in zip(vs, like)):
        raise ValueError(f"{who}: v has shapes {[tuple(a.shape) for a in vs]} but the {what} are "
                         f"{[tuple(b.shape) for b in like]}")
    return vs


def _call(func: Callable, inputs: tuple, who: str) -> tuple[tuple, bool]:
    with enable_grad():
        return _tuple(func(*inputs), who, "func's output")


def _one_element(outputs: tuple, who: str) -> Tensor:
    if len(outputs) != 1 or outputs[0].data.size != 1:
        raise RuntimeError(f"{who}: func must return a single tensor with one element, got shapes "
                           f"{[tuple(o.shape) for o in outputs]}")
    return outputs[0]


def _shaped(result: tuple, was_tuple: bool):
    return result if was_tuple else result[0]


def vjp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False) -> tuple:
    """(func(inputs), v^T J): the vector-Jacobian product; ``v`` may be omitted for a one-element output."""
    xs, in_tuple = _tuple(inputs, "vjp", "inputs")
    xs = _prepare(xs, create_graph)
    outs, out_tuple = _call(func, xs, "vjp")
    if v is None:
        _one_element(outs, "vjp (without v)")
        vs = (None,)
    else:
        vs = _check_v(v, outs, "vjp", "outputs")
    result = _grads(outs, xs, vs, create_graph, strict, "vjp")
    outs = outs if create_graph else tuple(o.detach() for o in outs)
    return _shaped(outs, out_tuple), _shaped(result, in_tuple)


def jvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False) -> tuple:
    """(func(inputs), J v): the Jacobian-vector product, as the derivative of u -> u^T J (linear in u) along v."""
    xs, in_tuple = _tuple(inputs, "jvp", "inputs")
    if v is None:
        _one_element(xs, "jvp (without v)")
        vs = (Tensor._make(xp.ones_like(xs[0].data), None),)
    else:
        vs = _check_v(v, xs, "jvp", "inputs")
    xs = _prepare(xs, create_graph)
    outs, out_tuple = _call(func, xs, "jvp")
    us = tuple(_zeros_like(o).requires_grad_(True) for o in outs)
    with enable_grad():
        back = _grads(outs, xs, us, True, strict, "jvp")
        result = _grads(back, us, vs, create_graph, strict, "jvp")
    outs = outs if create_graph else tuple(o.detach() for o in outs)
    return _shaped(outs, out_tuple), _shaped(result, out_tuple)


def jacobian(func: Callable, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode"):
    """d func / d inputs, shaped ``output.shape + input.shape`` per (output, input) pair.

    One backward pass per output element (``vectorize`` and ``strategy='forward-mode'`` are accepted; the
    result is the same reverse-mode computation)."""
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f"jacobian: strategy must be 'reverse-mode' or 'forward-mode', got {strategy!r}")
    xs, in_tuple = _tuple(inputs, "jacobian", "inputs")
    xs = _prepare(xs, create_graph)
    outs, out_tuple = _call(func, xs, "jacobian")
    per_output = []
    for o in outs:
        rows: list[list] = [[] for _ in xs]
        for k in range(o.data.size):
            basis = xp.zeros(o.data.size, dtype=o.data.dtype)
            basis[k] = 1
            row = _grads((o,), xs, (Tensor._make(basis.reshape(o.shape), None),), create_graph, strict, "jacobian")
            for i, g in enumerate(row):
                rows[i].append(g)
        blocks = tuple(_stacked(r, tuple(o.shape) + tuple(x.shape), x, create_graph) for r, x in zip(rows, xs))
        per_output.append(_shaped(blocks, in_tuple))
    return tuple(per_output) if out_tuple else per_output[0]


def _stacked(rows: list, shape: tuple, like: Tensor, create_graph: bool) -> Tensor:
    """The rows (one per output element) as one tensor of ``shape``; differentiable when ``create_graph``.

    NOTE: autograd sits below the ops, so the differentiable form is a sum of one-hot outer products (Tensor
    arithmetic) rather than ``stack``; it costs O(outputs^2 x inputs), paid only with create_graph=True."""
    if not rows:
        return Tensor._make(xp.zeros(shape, dtype=like.data.dtype), None)
    if not create_graph:
        return Tensor._make(xp.stack([r.data for r in rows]).reshape(shape), None)
    n = len(rows)
    total = None
    for k, r in enumerate(rows):
        onehot = xp.zeros((n,) + (1,) * r.data.ndim, dtype=r.data.dtype)
        onehot[k] = 1
        term = r.reshape((1,) + tuple(r.shape)) * Tensor._make(onehot, None)
        total = term if total is None else total + term
    return total.reshape(shape)


def hessian(func: Callable, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode"):
    """The second derivatives of a one-element ``func``: shaped ``input.shape + input.shape`` (a tuple of tuples
    for several inputs)."""
    xs, in_tuple = _tuple(inputs, "hessian", "inputs")

    def gradient(*ys):
        out = _one_element(_call(func, ys, "hessian")[0], "hessian")
        return _grads((out,), ys, (None,), True, strict, "hessian")

    result = jacobian(gradient, xs, create_graph, strict, vectorize, outer_jacobian_strategy)
    return result if in_tuple else result[0][0]


def vhp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False) -> tuple:
    """(func(inputs), v^T H) for a one-element ``func``."""
    xs, in_tuple = _tuple(inputs, "vhp", "inputs")
    vs = _check_v(v, xs, "vhp", "inputs") if v is not None else None
    xs = _prepare(xs, create_graph)
    out = _one_element(_call(func, xs, "vhp")[0], "vhp")
    with enable_grad():
        first = _grads((out,), xs, (None,), True, strict, "vhp")
        if vs is None:
            _one_element(xs, "vhp (without v)")
            vs = (Tensor._make(xp.ones_like(xs[0].data), None),)
        result = _grads(first, xs, vs, create_graph, strict, "vhp")
    return (out if create_graph else out.detach()), _shaped(result, in_tuple)


def hvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False) -> tuple:
    """(func(inputs), H v) for a one-element ``func``: equal to ``vhp`` since a Hessian of a twice
    differentiable function is symmetric (PyTorch notes the same)."""
    return vhp(func, inputs, v, create_graph, strict)
