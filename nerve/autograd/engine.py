"""The backward engine: an iterative walk of the graph in reverse topological order.

Gradients of intermediate results are summed per node (one node makes one tensor); leaves
accumulate into ``.grad``. Without ``retain_graph`` each node drops what it saved once used.
"""
from __future__ import annotations

from typing import Sequence

from nerve.autograd.deferred import RowProduct
from nerve.autograd.grad_mode import set_grad_enabled
from nerve.autograd.rule_math import ARRAY, TENSOR
from nerve.backend import as_array, ndarray, xp
from nerve.tensor import Tensor


def _topological(roots) -> list:
    """Nodes reachable from ``roots`` in post-order (every node after the nodes of its inputs)."""
    order, visited = [], set()
    stack = [(node, False) for node in roots]
    pop, push, add = stack.pop, stack.append, visited.add
    while stack:
        node, expanded = pop()
        if expanded:
            order.append(node)
            continue
        if node in visited:
            continue
        add(node)
        inputs = node.inputs
        if inputs is None:
            raise RuntimeError(
                f"trying to backward through {node.name} a second time: its saved values were freed "
                "by the first backward; pass retain_graph=True to the first backward() to keep them")
        push((node, True))
        for t in inputs:
            if isinstance(t, Tensor):
                fn = t.grad_fn
                if fn is not None and fn not in visited:
                    push((fn, False))
    return order


def _check_versions(node) -> None:
    for i, t in enumerate(node.inputs):
        if isinstance(t, Tensor) and t._version != node._versions[i]:
            raise RuntimeError(
                f"{node.name}: input {i} (shape {tuple(t.shape)}) that backward needs was modified "
                f"in place (version {node._versions[i]} -> {t._version}); clone it before changing it")


def _wrap(g) -> Tensor:
    """A raw gradient as a Tensor (NumPy may hand back scalars for 0-d results)."""
    return Tensor._make(g if g.__class__ is ndarray else as_array(g), None)


def _run_hooks(hooks: dict, g, create_graph: bool):
    """Hooks see Tensors; a returned tensor replaces the gradient."""
    for hook in list(hooks.values()):
        replaced = hook(g if create_graph else _wrap(g))
        if replaced is not None:
            g = replaced if create_graph else (replaced.data if isinstance(replaced, Tensor) else replaced)
    return g


def run_backward(roots: Sequence[Tensor], grads: Sequence[Tensor], retain_graph: bool,
                 create_graph: bool, capture: Sequence[Tensor] | None = None,
                 accumulate: bool = True) -> list | None:
    """Backpropagate ``grads`` from ``roots``; return the gradients of ``capture`` if given.

    With ``accumulate`` the leaves (only those in ``capture``, when it is given) sum into ``.grad``: at the end,
    or, for a leaf with post-accumulate hooks, as soon as the last node that uses it has run.
    NOTE: without ``create_graph`` gradients travel as raw arrays and each rule runs on the array
    namespace (no Tensor wrapping at all); with it they travel as Tensors through the Tensor namespace.
    """
    node_grads: dict = {}
    captured: dict = {}
    capture_ids = None if capture is None else {id(t): i for i, t in enumerate(capture)}
    leaf_grads: dict = {}

    def deliver(t: Tensor, g) -> None:
        fn = t.grad_fn
        if fn is not None:
            prev = node_grads.get(fn)
            node_grads[fn] = g if prev is None else prev + g  # (a kept RowProduct adds as its values)
        elif capture_ids is None or id(t) in capture_ids:
            prev = leaf_grads.get(id(t))
            leaf_grads[id(t)] = (t, g if prev is None else prev[1] + g)

    def deliver_product(t: Tensor, g: RowProduct) -> None:
        """A ``RowProduct`` kept unevaluated only for a rule that takes it, seen by no hook, ``retain_grad`` or
        capture, as the input's only gradient so far; evaluated otherwise."""
        fn = t.grad_fn
        if fn is None or not fn.takes_products or fn._hooks or fn._retained is not None or fn in node_grads \
                or (capture_ids is not None and id(t) in capture_ids):
            g = g.compute()
        deliver(t, g)

    with set_grad_enabled(create_graph):
        for t, g in zip(roots, grads):
            deliver(t, g if create_graph else g.data)
        order = _topological([t.grad_fn for t in roots if t.grad_fn is not None])
        needed = None
        if capture is not None:
            needed = _needed_nodes(order, capture_ids)
            for t in capture:
                if t.grad_fn is not None:
                    needed.add(t.grad_fn)
        early = _leaf_uses(order) if accumulate and capture is None and Tensor._any_post_hooks else None
        taken: set = set()
        for node in reversed(order):
            g = node_grads.pop(node, None)
            if g is None or (needed is not None and node not in needed):
                if early:
                    _finish_early(node, early, leaf_grads, create_graph, taken)
                continue
            if node._hooks:
                g = _run_hooks(node._hooks, g, create_graph)
            if node._retained is not None:
                kept = node._retained()
                if kept is not None:
                    kept.grad = g if create_graph else _wrap(g)
            if needed is not None:
                for t in capture:
                    if t.grad_fn is node:
                        captured[id(t)] = g
            if node.uses_inputs:
                _check_versions(node)
            _propagate(node, g, deliver, deliver_product, create_graph)
            if early:
                _finish_early(node, early, leaf_grads, create_graph, taken)
            if not retain_graph:
                node.__dict__.clear()
                node.inputs = None

        for t, g in leaf_grads.values():
            if t._hooks:
                g = _run_hooks(t._hooks, g, create_graph)
            if capture_ids is not None:
                captured[id(t)] = g
            if accumulate:
                _accumulate_leaf(t, g, create_graph, taken)
    if capture is None:
        return None
    return [g if g is None or create_graph else _wrap(g)
            for g in (captured.get(id(t)) for t in capture)]


def _leaf_uses(order) -> dict:
    """For each leaf with post-accumulate hooks: how many times the nodes in ``order`` take it as an input."""
    uses: dict = {}
    for node in order:
        for t in node.inputs:
            if isinstance(t, Tensor) and t.grad_fn is None and t._post_hooks:
                entry = uses.get(id(t))
                if entry is None:
                    uses[id(t)] = [t, 1]
                else:
                    entry[1] += 1
    return uses


def _finish_early(node, uses: dict, leaf_grads: dict, create_graph: bool, taken: set) -> None:
    """After ``node`` ran (or was skipped): accumulate the leaves it was the last user of, then run their
    post-accumulate hooks."""
    for t in node.inputs:
        entry = uses.get(id(t)) if isinstance(t, Tensor) else None
        if entry is None:
            continue
        entry[1] -= 1
        if entry[1] == 0:
            del uses[id(t)]
            done = leaf_grads.pop(id(t), None)
            if done is not None:
                g = _run_hooks(t._hooks, done[1], create_graph) if t._hooks else done[1]
                _accumulate_leaf(t, g, create_graph, taken)


def _needed_nodes(order, capture_ids) -> set:
    """Nodes from which some captured tensor can be reached (the rest need not run)."""
    needed = set()
    for node in order:
        for t in node.inputs:
            if isinstance(t, Tensor) and (id(t) in capture_ids or t.grad_fn in needed):
                needed.add(node)
                break
    return needed


def _call_backward(node, g, create_graph: bool) -> tuple:
    """Gradients for the node's inputs: the rule on arrays (first order) or on Tensors (with a graph)."""
    if create_graph:
        if node.once_differentiable:
            raise RuntimeError(f"{node.name} is differentiable once only: create_graph=True cannot "
                               "go through it")
        if node.reference is not None:
            return node.backward_reference(g)
        results = node.backward(g, TENSOR) if node.takes_math else node.backward(g)
        return results if results.__class__ is tuple else (results,)
    if node.takes_math:
        results = node.backward(g, ARRAY)
        return results if results.__class__ is tuple else (results,)
    results = node.backward(_wrap(g))
    if results.__class__ is not tuple:
        results = (results,)
    return tuple(r.data if isinstance(r, Tensor) else r for r in results)


def _propagate(node, g, deliver, deliver_product, create_graph: bool) -> None:
    """Run the node's backward, check each gradient against its input, hand it on.

    NOTE: a ``RowProduct``'s dtype equals no array's, so it goes the way of a gradient whose dtype differs from its
    input's: the common path has no test of its own for it."""
    results = _call_backward(node, g, create_graph)
    inputs = node.inputs
    if len(results) != len(inputs):
        raise RuntimeError(f"{node.name} returned {len(results)} gradients for {len(inputs)} inputs")
    for t, gi, need in zip(inputs, results, node.needs_input_grad):
        if not need or gi is None:
            continue
        if create_graph and not isinstance(gi, Tensor):
            gi = Tensor._make(as_array(gi), None)
        if gi.shape != t.data.shape:
            raise RuntimeError(f"{node.name} returned a gradient of shape {tuple(gi.shape)} for an input "
                               f"of shape {tuple(t.shape)}")
        if gi.dtype != t.data.dtype:
            if gi.__class__ is RowProduct:
                deliver_product(t, gi)
                continue
            # NOTE: a complex gradient for a real input keeps its real part (PyTorch's convention)
            gi = (gi.real if gi.dtype.kind == "c" and t.data.dtype.kind != "c" else gi).astype(t.dtype)
        deliver(t, gi)


def _accumulate_leaf(t: Tensor, g, create_graph: bool, taken: set) -> None:
    if create_graph:
        t.grad = g if t.grad is None else t.grad + g
    elif t.grad is None:
        # NOTE: a fresh array that owns its memory becomes .grad as it is; views, broadcasts and an array
        # already given to another leaf (x + y hands both the same one) are copied, since optimisers and
        # clipping change .grad in place.
        if g.__class__ is ndarray and g.flags.owndata and id(g) not in taken:
            taken.add(id(g))
        else:
            g = g.copy() if hasattr(g, "__cuda_array_interface__") else xp.array(g, copy=True)
        t.grad = Tensor._make(g, None)
    elif t.grad.requires_grad or t.grad.data.shape != g.shape:
        t.grad = Tensor._make(t.grad.data + g, None)
    else:
        t.grad.data += g
    if t._post_hooks:
        for hook in list(t._post_hooks.values()):
            hook(t)


def _root_grad(t: Tensor, g, what: str) -> Tensor:
    if g is None:
        if t.data.size != 1:
            raise RuntimeError(f"{what}: the output has shape {tuple(t.shape)}, not a single value; pass "
                               "a gradient of that shape, or reduce it first (for example .sum())")
        return Tensor._make(xp.ones_like(t.data), None)
    g = g if isinstance(g, Tensor) else Tensor(g, dtype=t.dtype)
    if g.shape != t.shape:
        raise RuntimeError(f"{what}: gradient of shape {tuple(g.shape)} for an output of shape "
                           f"{tuple(t.shape)}")
    return g


def backward(tensor: Tensor, gradient=None, retain_graph: bool | None = None,
             create_graph: bool = False, inputs=None) -> None:
    """Compute the gradient of ``tensor`` and sum it into the ``.grad`` of the leaves it depends on."""
    if not tensor.requires_grad:
        raise RuntimeError("backward(): the tensor does not require grad and has no grad_fn; did you "
                           "create the inputs with requires_grad=True, or run under no_grad()?")
    g = _root_grad(tensor, gradient, "backward()")
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    run_backward([tensor], [g], retain_graph, create_graph, capture=inputs)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple:
    """Return the gradients of ``outputs`` with respect to ``inputs`` without touching ``.grad``."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs)
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad(): input {i} (shape {tuple(t.shape)}) does not require grad")
    roots, gs = [], []
    for t, g in zip(outputs, grad_outputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad(): an output (shape {tuple(t.shape)}) does not require grad")
        roots.append(t)
        gs.append(_root_grad(t, g, "grad()"))
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(roots, gs, retain_graph, create_graph, capture=inputs, accumulate=False)
    for i, (t, g) in enumerate(zip(inputs, result)):
        if g is None and not allow_unused:
            raise RuntimeError(f"grad(): input {i} (shape {tuple(t.shape)}) was not used to compute the "
                               "outputs; pass allow_unused=True to get None for it")
        if g is not None and not create_graph:
            result[i] = g.detach()
    return tuple(result)


Tensor.backward = backward
