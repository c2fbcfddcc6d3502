"""What every attribution method shares: inputs as a tuple of Tensors on the model's dtype, eval mode for the
call, Captum's target selection and baseline broadcasting, and one batched backward for the gradients."""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any, Sequence

from nerve.autograd.engine import grad as autograd_grad
from nerve.autograd.grad_mode import enable_grad, no_grad
from nerve.backend import as_array, xp
from nerve.nn.dropout import Dropout, Dropout1d, Dropout2d
from nerve.nn.module import Module
from nerve.tensor import Tensor


def model_dtype(model) -> Any:
    """The dtype of ``model``'s first floating parameter (None for a plain function or a model without any)."""
    for p in getattr(model, "parameters", lambda: [])():
        if p.data.dtype.kind == "f":
            return p.data.dtype
    return None


def as_inputs(inputs, dtype, who: str) -> tuple[tuple, bool]:
    """(inputs as a tuple of floating arrays, whether a tuple came in): Captum takes a tensor or a tuple."""
    is_tuple = isinstance(inputs, (tuple, list))
    arrays = []
    for i, x in enumerate(inputs if is_tuple else (inputs,)):
        a = x.data if isinstance(x, Tensor) else as_array(x)
        if a.dtype.kind not in "fc":
            if a.dtype.kind not in "iub":
                raise TypeError(f"{who}: input {i} has dtype {a.dtype}; expected numbers")
            raise TypeError(f"{who}: input {i} holds integers ({a.dtype}, shape {tuple(a.shape)}): gradients "
                            "need floating inputs; attribute token ids at the embedding layer instead "
                            "(LayerIntegratedGradients(model, model.embed))")
        if a.ndim == 0:
            raise ValueError(f"{who}: input {i} is a scalar; expected a batch (N, ...)")
        arrays.append(a.astype(dtype or a.dtype, copy=False))
    if len({a.shape[0] for a in arrays}) > 1:
        raise ValueError(f"{who}: inputs have different batch sizes {[tuple(a.shape) for a in arrays]}")
    return tuple(arrays), is_tuple


def as_output(attributions: Sequence, is_tuple: bool):
    """Attributions as Tensors, a tuple of them when the inputs came as a tuple."""
    out = tuple(Tensor(a) for a in attributions)
    return out if is_tuple else out[0]


def extra_args(additional_forward_args) -> tuple:
    """Captum's ``additional_forward_args`` as a tuple (None: none)."""
    if additional_forward_args is None:
        return ()
    return tuple(additional_forward_args) if isinstance(additional_forward_args, tuple) else (
        additional_forward_args,)


def repeat_args(args: tuple, times: int, interleave: bool = False) -> tuple:
    """Repeat the batch of every array argument ``times`` times (step-major, or example-major with
    ``interleave``), as Captum expands ``additional_forward_args`` for scaled or noisy copies."""
    out = []
    for a in args:
        data = a.data if isinstance(a, Tensor) else a
        if hasattr(data, "shape") and getattr(data, "ndim", 0) > 0:
            data = xp.repeat(data, times, axis=0) if interleave else xp.concatenate([data] * times)
            out.append(Tensor(data) if isinstance(a, Tensor) else data)
        else:
            out.append(a)
    return tuple(out)


def _has_dropout(model) -> bool:
    return any(isinstance(m, (Dropout, Dropout1d, Dropout2d)) and m.p > 0 for m in model.modules())


@contextmanager
def eval_mode(model, who: str):
    """Run the block with ``model`` in eval mode (warning if it was training with dropout); restore modes."""
    if not isinstance(model, Module):
        yield
        return
    modes = [(m, m.training) for m in model.modules()]
    if model.training and _has_dropout(model):
        warnings.warn(f"{who}: the model is in training mode and has dropout; attributing in eval mode (call "
                      "model.eval() first to silence this)", stacklevel=4)
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


@contextmanager
def frozen(model):
    """Parameters set not to require gradients for the block (restored afterwards): attribution needs only input
    or layer gradients, and the backward then skips every weight gradient (about half of a convolution's cost)."""
    params = [p for p in getattr(model, "parameters", lambda: [])() if p.requires_grad]
    for p in params:
        p.requires_grad = False
    try:
        yield
    finally:
        for p in params:
            p.requires_grad = True


def select_target(output: Tensor, target, who: str) -> Tensor:
    """One value per example from ``output`` (N, ...), as Captum's ``target``: None for a model with one output
    per example, an int (class), a tuple (index into each example's output), or a list/array of those per example.
    """
    n = output.shape[0]
    per_example = output.shape[1:]
    if target is None:
        size = int(xp.prod(xp.asarray(per_example)))
        if size != 1:
            raise ValueError(f"{who}: target is needed: the model gives {size} outputs per example (shape "
                             f"{tuple(per_example)}); pass target=class index (an int, or one per example)")
        return output.reshape(n)
    if isinstance(target, Tensor):
        target = target.numpy()
    if hasattr(target, "tolist") and not isinstance(target, (int, tuple)):
        target = target.tolist()
    if isinstance(target, list) and len(target) == 1 and n != 1:
        target = target[0]
    if isinstance(target, (int, tuple)):
        index = target if isinstance(target, tuple) else (int(target),)
        _check_index(index, per_example, who)
        picked = output[(slice(None),) + index]
        if picked.ndim != 1:
            raise ValueError(f"{who}: target {target!r} selects {tuple(picked.shape[1:])} values per example "
                             f"from output {tuple(output.shape)}; it must select one")
        return picked
    if not isinstance(target, list) or len(target) != n:
        raise ValueError(f"{who}: target must be an int, a tuple or one per example ({n}), got "
                         f"{type(target).__name__} of length {len(target) if hasattr(target, '__len__') else '?'}")
    rows = [t if isinstance(t, tuple) else (int(t),) for t in target]
    for index in rows:
        _check_index(index, per_example, who)
    if len(rows[0]) != len(per_example):
        raise ValueError(f"{who}: each target {rows[0]} must index all of the output's {len(per_example)} "
                         f"dimensions after the batch (output {tuple(output.shape)})")
    flat = output.reshape(n, -1)
    positions = [int(xp.ravel_multi_index(tuple(i % s for i, s in zip(index, per_example)), per_example))
                 for index in rows]
    return flat[xp.arange(n), xp.asarray(positions)]


def _check_index(index: tuple, shape: tuple, who: str) -> None:
    if len(index) > len(shape):
        raise ValueError(f"{who}: target {index} has more indices than the output's per-example shape {shape}")
    for i, s in zip(index, shape):
        if not -s <= i < s:
            raise IndexError(f"{who}: target {index} is out of range for outputs of shape "
                             f"(N, {', '.join(map(str, shape))})")


def expand_target(target, times: int, interleave: bool = False):
    """Repeat a per-example target for ``times`` copies of the batch (step-major, or example-major)."""
    if isinstance(target, Tensor):
        target = target.numpy()
    if hasattr(target, "tolist") and not isinstance(target, (int, tuple)):
        target = target.tolist()
    if not isinstance(target, list) or len(target) <= 1:
        return target
    return [t for t in target for _ in range(times)] if interleave else target * times


def forward_values(model, arrays: tuple, target, args: tuple, who: str):
    """The selected output per example (N,) as an array, without a graph."""
    with no_grad():
        out = model(*[Tensor(a) for a in arrays], *args)
        return select_target(out, target, who).data


def gradients(model, arrays: tuple, target, args: tuple, who: str) -> tuple[tuple, Any]:
    """(d selected output / d input for each input, the selected outputs (N,)): one backward for the batch."""
    leaves = tuple(Tensor(a, requires_grad=True) for a in arrays)
    with enable_grad(), frozen(model):
        out = model(*leaves, *args)
        if not isinstance(out, Tensor):
            raise TypeError(f"{who}: the model must return a Tensor, got {type(out).__name__}")
        picked = select_target(out, target, who)
        if not picked.requires_grad:
            raise ValueError(f"{who}: the model's output does not depend on its inputs through a graph")
        grads = autograd_grad(picked.sum(), leaves, allow_unused=True)
    return tuple(xp.zeros_like(a) if g is None else g.data for a, g in zip(arrays, grads)), picked.data


def baselines_for(arrays: tuple, baselines, who: str) -> tuple:
    """Captum's baselines, one per input: None (zeros), a number, or an array of the input's shape or of one
    example (1, ...) broadcast over the batch."""
    if baselines is None:
        return tuple(xp.zeros_like(a) for a in arrays)
    items = baselines if isinstance(baselines, (tuple, list)) and len(arrays) > 1 else (baselines,)
    if isinstance(baselines, tuple) and len(arrays) == 1 and len(baselines) == 1:
        items = baselines
    if len(items) != len(arrays):
        raise ValueError(f"{who}: {len(items)} baselines for {len(arrays)} inputs")
    out = []
    for i, (a, b) in enumerate(zip(arrays, items)):
        if isinstance(b, (int, float)):
            out.append(xp.full_like(a, b))
            continue
        b = (b.data if isinstance(b, Tensor) else as_array(b)).astype(a.dtype, copy=False)
        if b.shape != a.shape and not (b.ndim == a.ndim and b.shape[0] == 1 and b.shape[1:] == a.shape[1:]):
            raise ValueError(f"{who}: baseline {i} has shape {tuple(b.shape)}; expected the input's shape "
                             f"{tuple(a.shape)} or one example (1, {', '.join(map(str, a.shape[1:]))}), or a number")
        out.append(xp.broadcast_to(b, a.shape))
    return tuple(out)


def find_layer(model, layer, who: str) -> Module:
    """``layer`` as a submodule of ``model``: the module itself (checked to be part of it) or a dotted name."""
    if isinstance(layer, str):
        modules = dict(model.named_modules())
        if layer not in modules:
            raise ValueError(f"{who}: no layer named {layer!r} in {type(model).__name__}; names are "
                             f"{[n for n in modules if n][:20]}")
        return modules[layer]
    if not isinstance(layer, Module) or not any(m is layer for m in model.modules()):
        raise ValueError(f"{who}: layer {type(layer).__name__} is not part of {type(model).__name__}")
    return layer
