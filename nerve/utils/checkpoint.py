"""``nerve.utils.checkpoint``: gradient checkpointing, PyTorch's memory-for-compute trade.

``checkpoint(block, x)`` runs ``block`` without recording its graph, so none of its intermediate results are
kept, and runs it again during backward to get its gradients: activation memory of a deep stack drops to the
blocks' inputs, for about one more forward pass of compute. The random state is restored for the recomputation
(``preserve_rng_state``), so dropout masks match. Gradients reach the tensor arguments, the parameters of
``block`` when it is a Module (or a Module's method), and any other leaf it uses (summed into ``.grad``, as
PyTorch's reentrant checkpoint does). A plain function none of whose arguments requires grad runs as a plain
call (recomputing it could reach no leaf). Once differentiable: no ``create_graph`` through it.
"""
from __future__ import annotations

from typing import Any, Callable

from nerve import backend
from nerve.autograd.engine import grad as _grad
from nerve.autograd.function import Function
from nerve.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from nerve.ops import cat
from nerve.tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential"]


def _outputs(out: Any) -> tuple[list, bool]:
    if isinstance(out, Tensor):
        return [out], False
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, Tensor) for o in out):
        return list(out), True
    raise TypeError(f"checkpoint: the function must return a tensor or a tuple of tensors, got "
                    f"{type(out).__name__}")


def _leaves(root: Tensor) -> list:
    """The leaves requiring grad that ``root``'s graph reaches."""
    found, seen, stack = {}, set(), [root.grad_fn] if root.grad_fn is not None else []
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for t in node.inputs:
            if isinstance(t, Tensor) and t.requires_grad:
                if t.grad_fn is None:
                    found[id(t)] = t
                else:
                    stack.append(t.grad_fn)
    return list(found.values())


class _Checkpoint(Function):
    """One node for the whole block: its inputs are the block's tensor arguments and known parameters."""

    once_differentiable = True
    uses_inputs = False

    def forward(self, *arrays, run, n_args, rng_state):
        self.run, self.n_args, self.rng_state = run, n_args, rng_state
        with no_grad():
            outs, self.as_tuple = _outputs(run(*(Tensor._make(a, None) for a in arrays[:n_args])))
        self.shapes = [tuple(o.shape) for o in outs]
        if len({o.data.dtype for o in outs}) > 1:
            raise TypeError(f"checkpoint: the function's outputs must share one dtype, got "
                            f"{[str(o.data.dtype) for o in outs]}")
        return backend.xp.concatenate([o.data.reshape(-1) for o in outs]) if len(outs) > 1 else outs[0].data

    def backward(self, grad):
        args = [t.detach().requires_grad_(t.requires_grad) for t in self.inputs[:self.n_args]]
        params = list(self.inputs[self.n_args:])
        current = backend.get_rng_state() if self.rng_state is not None else None
        try:
            if self.rng_state is not None:
                backend.set_rng_state(self.rng_state)
            with enable_grad():
                outs, _ = _outputs(self.run(*args))
                flat = outs[0] if len(outs) == 1 else cat([o.reshape(-1) for o in outs])
        finally:
            if current is not None:
                backend.set_rng_state(current)
        if not flat.requires_grad:
            return tuple(None for _ in self.inputs)
        known = {id(t) for t in args + params}
        others = [t for t in _leaves(flat) if id(t) not in known]
        wanted = [t for t in args + params if t.requires_grad] + others
        found = dict(zip(map(id, wanted), _grad(flat, wanted, grad, allow_unused=True)))
        with no_grad():
            for t in others:
                g = found[id(t)]
                if g is not None:
                    t.grad = g if t.grad is None else t.grad + g
        return tuple(found.get(id(t)) for t in args + params)


def _parameters(function: Callable) -> list:
    owner = function if hasattr(function, "parameters") else getattr(function, "__self__", None)
    return [p for p in owner.parameters() if p.requires_grad] if hasattr(owner, "parameters") else []


def checkpoint(function: Callable, *args, use_reentrant: bool | None = None, context_fn: Any = None,
               determinism_check: str = "default", debug: bool = False, preserve_rng_state: bool = True,
               **kwargs) -> Any:
    """``function(*args, **kwargs)``, recomputed during backward instead of keeping its intermediate results.

    Non-tensor arguments and keywords are passed through; ``use_reentrant`` and PyTorch's other switches are
    accepted (the semantics are those described in the module's docstring)."""
    tensors = [(i, a) for i, a in enumerate(args) if isinstance(a, Tensor)]
    params = _parameters(function)
    recording = any(a.requires_grad for _, a in tensors) or bool(params)

    def run(*tensor_args):
        full = list(args)
        for (i, _), t in zip(tensors, tensor_args):
            full[i] = t
        return function(*full, **kwargs)

    if not recording or not is_grad_enabled():
        return function(*args, **kwargs)
    rng_state = backend.get_rng_state() if preserve_rng_state else None
    node_inputs = [a for _, a in tensors] + params
    flat = _Checkpoint.apply(*node_inputs, run=run, n_args=len(tensors), rng_state=rng_state)
    fn = flat.grad_fn
    if len(fn.shapes) == 1:
        return (flat,) if fn.as_tuple else flat
    outs, start = [], 0
    for shape in fn.shapes:
        size = 1
        for s in shape:
            size *= s
        outs.append(flat[start:start + size].reshape(shape))
        start += size
    return tuple(outs)


def checkpoint_sequential(functions, segments: int, input: Tensor, use_reentrant: bool | None = None,
                          **kwargs) -> Tensor:
    """Run a Sequential (or a list of modules) in ``segments`` checkpointed chunks; the last chunk is recorded
    normally, as in PyTorch."""
    modules = list(functions.children()) if hasattr(functions, "children") else list(functions)
    if not 1 <= segments <= len(modules):
        raise ValueError(f"checkpoint_sequential: segments must be between 1 and {len(modules)}, got {segments}")
    size = -(-len(modules) // segments)
    chunks = [modules[i:i + size] for i in range(0, len(modules), size)]

    def chained(block):
        class _Chunk:
            def parameters(self):
                return [p for m in block for p in m.parameters()]

            def __call__(self, x):
                for m in block:
                    x = m(x)
                return x
        return _Chunk()

    for block in chunks[:-1]:
        input = checkpoint(chained(block), input, **kwargs)
    for m in chunks[-1]:
        input = m(input)
    return input
