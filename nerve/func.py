"""``nerve.func``: PyTorch's function transforms (``torch.func``) over nerve's reverse-mode engine.

``grad(f)`` is a function returning ``f``'s gradient; transforms nest (``grad(grad(f))``) because each one keeps
the graph when its inputs require grad. ``vmap`` maps a function over a batch dimension by calling it once per
sample (a loop, not a vectorising compiler: correct, not faster than a batch). ``functional_call`` runs a module
with other parameters, which with ``vmap`` and ``grad`` gives per-sample gradients.
"""
from __future__ import annotations

from typing import Any, Callable

from nerve.autograd import functional as _functional
from nerve.autograd.engine import grad as _grad
from nerve.autograd.grad_mode import enable_grad
from nerve.ops import stack
from nerve.tensor import Tensor

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "vmap", "functional_call"]


def _argnums(argnums: int | tuple, n: int, who: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not isinstance(a, int) or not -n <= a < n:
            raise ValueError(f"{who}: argnums {argnums!r} does not name one of the {n} positional arguments")
    return tuple(a % n for a in nums)


def _flatten(tree: Any, who: str) -> tuple[list, Callable]:
    """The tensors of a tree (a tensor, or dicts/lists/tuples of them: PyTorch's pytrees) and a function that
    rebuilds the same tree from new leaves."""
    if isinstance(tree, Tensor):
        return [tree], lambda leaves: leaves[0]
    if isinstance(tree, (dict, list, tuple)):
        keys = list(tree) if isinstance(tree, dict) else range(len(tree))
        parts = [_flatten(tree[k], who) for k in keys]
        sizes = [len(leaves) for leaves, _ in parts]

        def rebuild(leaves):
            out, start = [], 0
            for (_, build), n in zip(parts, sizes):
                out.append(build(leaves[start:start + n]))
                start += n
            return dict(zip(keys, out)) if isinstance(tree, dict) else type(tree)(out)
        return [leaf for leaves, _ in parts for leaf in leaves], rebuild
    raise TypeError(f"{who}: expected tensors, or dicts/lists/tuples of tensors, got {type(tree).__name__}")


def _leaf(t: Tensor) -> Tensor:
    """A differentiable stand-in for an argument: joined to an outer transform's graph when it requires grad."""
    return t.view_as(t) if t.requires_grad else t.detach().requires_grad_(True)


def grad_and_value(func: Callable, argnums: int | tuple = 0, has_aux: bool = False) -> Callable:
    """A function returning (gradient of ``func``'s one-element output at ``argnums``, the output); with
    ``has_aux``, ``func`` returns (output, aux) and the result is ((gradient), (output, aux))."""

    def wrapper(*args, **kwargs):
        nums = _argnums(argnums, len(args), "grad")
        args = list(args)
        trees = [_flatten(args[i], "grad") for i in nums]
        leaves = [leaf for tree, _ in trees for leaf in tree]
        outer = any(t.requires_grad for t in leaves)
        with enable_grad():
            leaves = [_leaf(t) for t in leaves]
            start = 0
            for i, (tree, rebuild) in zip(nums, trees):
                args[i] = rebuild(leaves[start:start + len(tree)])
                start += len(tree)
            result = func(*args, **kwargs)
            out, aux = result if has_aux else (result, None)
            if not isinstance(out, Tensor) or out.data.size != 1:
                raise RuntimeError(f"grad: func must return a one-element tensor, got "
                                   f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}")
            found = _grad(out, leaves, create_graph=outer, allow_unused=True) if out.requires_grad \
                else [None] * len(leaves)
        found = [g if g is not None else Tensor._make(t.data * 0, None) for g, t in zip(found, leaves)]
        found = found if outer else [g.detach() for g in found]
        grads, start = [], 0
        for tree, rebuild in trees:
            grads.append(rebuild(found[start:start + len(tree)]))
            start += len(tree)
        value = out if outer else out.detach()
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        return (g, (value, aux)) if has_aux else (g, value)

    return wrapper


def grad(func: Callable, argnums: int | tuple = 0, has_aux: bool = False) -> Callable:
    """A function returning the gradient of ``func`` (one-element output) with respect to ``argnums``."""
    both = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        g, value = both(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def vjp(func: Callable, *primals, has_aux: bool = False) -> tuple:
    """(func(*primals), vjp_fn[, aux]): ``vjp_fn(cotangents)`` returns the tuple of v^T J per primal."""
    for p in primals:
        _flatten(p, "vjp")
        if not isinstance(p, Tensor):
            raise TypeError(f"vjp: primals must be tensors, got {type(p).__name__}")
    xs = tuple(_leaf(p) for p in primals)
    with enable_grad():
        result = func(*xs)
    out, aux = result if has_aux else (result, None)
    outs = out if isinstance(out, (tuple, list)) else (out,)

    def vjp_fn(cotangents):
        cots = cotangents if isinstance(cotangents, (tuple, list)) else (cotangents,)
        found = _grad(list(outs), list(xs), list(cots), retain_graph=True, allow_unused=True)
        return tuple(g.detach() if g is not None else Tensor._make(x.data * 0, None) for g, x in zip(found, xs))

    detached = type(outs)(o.detach() for o in outs) if isinstance(out, (tuple, list)) else out.detach()
    return (detached, vjp_fn, aux) if has_aux else (detached, vjp_fn)


def jvp(func: Callable, primals: tuple, tangents: tuple) -> tuple:
    """(func(*primals), J tangents)."""
    if not isinstance(primals, tuple) or not isinstance(tangents, tuple):
        raise TypeError("jvp: primals and tangents must be tuples (as in torch.func.jvp)")
    return _functional.jvp(func, primals, tangents)


def _jac(func: Callable, argnums: int | tuple, who: str) -> Callable:
    def wrapper(*args):
        nums = _argnums(argnums, len(args), who)

        def partial(*chosen):
            full = list(args)
            for i, c in zip(nums, chosen):
                full[i] = c
            return func(*full)

        chosen = tuple(args[i] for i in nums)
        result = _functional.jacobian(partial, chosen, create_graph=any(c.requires_grad for c in chosen))
        if isinstance(argnums, int):
            return tuple(r[0] for r in result) if isinstance(result, tuple) and isinstance(result[0], tuple) \
                else result[0]
        return result

    return wrapper


def jacrev(func: Callable, argnums: int | tuple = 0) -> Callable:
    """A function returning the Jacobian of ``func`` at ``argnums`` (output.shape + input.shape)."""
    return _jac(func, argnums, "jacrev")


def jacfwd(func: Callable, argnums: int | tuple = 0) -> Callable:
    """``jacrev``'s result (nerve's engine is reverse mode; the Jacobian is the same)."""
    return _jac(func, argnums, "jacfwd")


def hessian(func: Callable, argnums: int | tuple = 0) -> Callable:
    """A function returning the Hessian of a one-element ``func`` at ``argnums``."""
    return jacrev(jacrev(func, argnums), argnums)


def _dims(dims: Any, n: int, who: str, what: str) -> tuple:
    dims = (dims,) * n if dims is None or isinstance(dims, int) else tuple(dims)
    if len(dims) != n:
        raise ValueError(f"{who}: {what} has {len(dims)} entries for {n} values")
    return dims


def _stack_trees(results: list, dim: int) -> Any:
    """Per-sample results (tensors or trees of them) stacked leaf by leaf along ``dim``."""
    flat = [_flatten(r, "vmap") for r in results]
    rebuild = flat[0][1]
    return rebuild([stack([leaves[i] for leaves, _ in flat], dim=dim) for i in range(len(flat[0][0]))])


def vmap(func: Callable, in_dims: Any = 0, out_dims: Any = 0, randomness: str = "error",
         chunk_size: int | None = None) -> Callable:
    """``func`` mapped over dimension ``in_dims`` of its arguments (None: not mapped), results stacked along
    ``out_dims``. One call per sample, so random ops draw differently per sample (``randomness`` is accepted)."""

    def wrapper(*args):
        dims = _dims(in_dims, len(args), "vmap", "in_dims")
        for a, d in zip(args, dims):
            if d is not None and not isinstance(a, Tensor):
                raise TypeError(f"vmap: a mapped argument must be a tensor, got {type(a).__name__} (in_dims None "
                                "passes it unmapped)")
        sizes = {a.shape[d] for a, d in zip(args, dims) if d is not None}
        if len(sizes) != 1:
            raise ValueError(f"vmap: the mapped dimensions must have one size, got {sorted(sizes)} "
                             f"(in_dims={in_dims!r})" if sizes else "vmap: no argument is mapped (all in_dims None)")
        n = sizes.pop()
        results = [func(*(a.select(d, k) if d is not None else a for a, d in zip(args, dims))) for k in range(n)]
        if isinstance(results[0], tuple):
            outs = _dims(out_dims, len(results[0]), "vmap", "out_dims")
            return tuple(_stack_trees([r[i] for r in results], d) for i, d in enumerate(outs))
        return _stack_trees(results, _dims(out_dims, 1, "vmap", "out_dims")[0])

    return wrapper


def functional_call(module, parameters_and_buffers: dict | tuple, args: Any = (), kwargs: dict | None = None,
                    *, tie_weights: bool = True, strict: bool = False) -> Any:
    """``module(*args, **kwargs)`` with the named parameters and buffers replaced by the given tensors (the
    module's own are restored afterwards)."""
    dicts = parameters_and_buffers if isinstance(parameters_and_buffers, tuple) else (parameters_and_buffers,)
    given = {k: v for d in dicts for k, v in d.items()}
    known = {n for n, _ in module.named_parameters()} | {n for n, _ in module.named_buffers()}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"functional_call: {type(module).__name__} has no parameter or buffer {unknown}")
    if strict and set(given) != known:
        raise ValueError(f"functional_call: strict=True, but {sorted(known - set(given))} are not given")
    saved = []
    try:
        for name, value in given.items():
            path, _, attr = name.rpartition(".")
            owner = module.get_submodule(path)
            saved.append((owner, attr, owner.__dict__.get(attr)))
            owner.__dict__[attr] = value
        return module(*(args if isinstance(args, tuple) else (args,)), **(kwargs or {}))
    finally:
        for owner, attr, old in reversed(saved):
            owner.__dict__[attr] = old
