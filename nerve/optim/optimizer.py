"""``Optimizer``: parameter groups, per-parameter state, state dicts in PyTorch's layout.

Subclasses implement ``_update_group(group)``, which changes the parameters' arrays in place from
their ``.grad`` arrays. Updates work on raw arrays with ``out=`` ufuncs and per-parameter scratch
buffers, so a step allocates nothing once the state exists.
"""
from __future__ import annotations

import copy
import numbers
from collections import defaultdict
from typing import Any, Callable, Iterable

from nerve.autograd.grad_mode import enable_grad
from nerve.backend import xp
from nerve.tensor import Tensor


class _Required:
    """Marker for a hyperparameter without a default (each group must give it)."""

    def __repr__(self) -> str:
        return "<required parameter>"


#: the default of a hyperparameter that every parameter group must set (for custom optimizers)
required = _Required()


class Optimizer:
    """Base of all optimisers: ``param_groups`` (dicts of params and hyperparameters) and ``state``."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of Tensors or dicts, got a single Tensor "
                            f"of shape {tuple(params.shape)}; wrap it in a list")
        if isinstance(params, dict):
            raise TypeError(f"{name}: params must be an iterable of Tensors or of parameter-group dicts, "
                            "got a dict; pass [dict] or model.parameters()")
        self.defaults = dict(defaults)
        self.state: dict = defaultdict(dict)
        self.param_groups: list[dict] = []
        # NOTE: scratch arrays per parameter (not state: never saved), reused by every step.
        self._scratch: dict = {}
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list (an exhausted generator?)")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {group[k]}" for k in sorted(group) if k != "params")
        return "\n".join(lines + [")"])

    # --- groups ------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones take the defaults)."""
        name = type(self).__name__
        index = len(self.param_groups)
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: parameters must be an ordered collection (a set's order changes "
                            "between runs); use a list")
        elif params is None:
            raise ValueError(f"{name}: parameter group {index} has no 'params' entry")
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, but parameter {i} of group {index} "
                                f"is a {type(p).__name__}")
            if not p.requires_grad:
                raise ValueError(f"{name}: parameter {i} of group {index} (shape {tuple(p.shape)}) does not "
                                 "require grad; leave frozen parameters out of the optimizer")
            if p.grad_fn is not None:
                raise ValueError(f"{name}: parameter {i} of group {index} (shape {tuple(p.shape)}) is not a "
                                 "leaf tensor; optimize the leaves it was computed from")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: parameter group {index} lists the same parameter more than once")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{name}: some parameters of group {index} appear in another parameter group")
        group["params"] = params
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(f"{name}: parameter group {index} does not give the required "
                                 f"hyperparameter {key!r}")
            group.setdefault(key, default)
        self._validate(group, index)
        self.param_groups.append(group)

    def _validate(self, group: dict, index: int) -> None:
        """Check a group's hyperparameters; subclasses call ``_check`` for each rule."""

    def _check(self, ok: bool, name: str, value: Any, expected: str, index: int) -> None:
        if not ok:
            raise ValueError(f"{type(self).__name__}: invalid {name}={value!r} in parameter group {index}, "
                             f"expected {expected}")

    def _check_range(self, name: str, value: Any, index: int, low: float = 0.0, high: float | None = None,
                     high_open: bool = True) -> None:
        """``low <= value`` (and ``value < high``, or ``<=`` when not ``high_open``); NaN fails."""
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and value >= low
        expected = f"{name} >= {low:g}"
        if high is not None:
            ok = ok and (value < high if high_open else value <= high)
            expected = f"{low:g} <= {name} {'<' if high_open else '<='} {high:g}"
        self._check(ok, name, value, expected, index)

    def _check_betas(self, group: dict, index: int) -> None:
        """``group["betas"]`` is a pair of decay rates in [0, 1) (the Adam family's moments)."""
        betas = group["betas"]
        self._check(isinstance(betas, (tuple, list)) and len(betas) == 2, "betas", betas, "a pair (beta1, beta2)",
                    index)
        self._check_range("betas[0]", betas[0], index, high=1.0)
        self._check_range("betas[1]", betas[1], index, high=1.0)

    # --- gradients and steps ---------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: drop them (default, frees memory) or fill them with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:
                        p.grad = p.grad.detach()
                    p.grad.data[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; ``closure`` re-evaluates the loss first."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _update_group(self, group: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not define its update")

    def _buffers(self, p: Tensor, count: int) -> list:
        """``count`` scratch arrays shaped like ``p`` (allocated once, reused every step)."""
        bufs = self._scratch.get(p)
        w = p.data
        if bufs is None or len(bufs) < count or bufs[0].shape != w.shape or bufs[0].dtype != w.dtype:
            bufs = [xp.empty_like(w) for _ in range(count)]
            self._scratch[p] = bufs
        return bufs

    def _with_grads(self, group: dict, weight_decay: float, maximize: bool, extra: int = 0):
        """For each parameter of ``group`` that has a gradient: (p, its array, the direction PyTorch's rules
        step along (see ``direction``), a scratch array shaped like it).

        Scratch layout per parameter: [work, ``extra`` arrays for the optimiser (``_buffers(p, 1 + extra)[1:]``),
        the direction's array when weight decay or maximize needs one].
        """
        for p in group["params"]:
            if p.grad is None:
                continue
            bufs = self._buffers(p, 1 + extra + (1 if (weight_decay or maximize) else 0))
            yield p, p.data, direction(p.grad.data, p.data, weight_decay, maximize, bufs[-1]), bufs[0]

    # --- state dicts -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """A copy of the state: ``{'state': {index: {...}}, 'param_groups': [{..., 'params': [index]}]}``.

        Parameters are numbered in group order as in PyTorch; state arrays come as Tensors (copies, so
        later steps do not change a saved dict), ``step`` as an int, hyperparameters as given.
        """
        index: dict = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for p, values in self.state.items():
            if id(p) in index and values:
                state[index[id(p)]] = {k: _export(v) for k, v in values.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and state saved by ``state_dict`` (copied, cast to each parameter's dtype)."""
        name = type(self).__name__
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the saved state has {len(saved_groups)} parameter "
                             f"groups, this optimizer has {len(self.param_groups)}")
        by_index = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(f"{name}.load_state_dict: parameter group {i} has {len(group['params'])} "
                                 f"parameters, the saved one has {len(saved['params'])}")
            by_index.update(zip((int(k) for k in saved["params"]), group["params"]))
        state: dict = defaultdict(dict)
        for key, values in state_dict["state"].items():
            p = by_index.get(int(key))
            if p is None:
                raise KeyError(f"{name}.load_state_dict: state for parameter {key} that no group lists")
            state[p] = {k: _import(v, p, k, name) for k, v in values.items()}
        groups = []
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            restored = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            restored["params"] = group["params"]
            self._validate(restored, i)
            groups.append(restored)
        self.param_groups = groups
        self.state = state


def _export(value: Any) -> Any:
    if isinstance(value, Tensor):
        value = value.data
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return Tensor(value.copy())
    return copy.deepcopy(value)


def _import(value: Any, p: Tensor, key: str, name: str) -> Any:
    """A saved state entry as this optimizer keeps it: ``step`` an int, 0-d arrays of a non-scalar parameter
    Python floats (PyTorch saves scalar state as 0-d tensors), other arrays copied like ``p``."""
    if key == "step":
        return int(value.item() if hasattr(value, "item") else value)
    if isinstance(value, Tensor):
        value = value.data
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        if tuple(value.shape) == () != tuple(p.shape):  # a scalar state (NAdam's mu_product) saved as a 0-d array
            return float(value.item())
        if tuple(value.shape) != tuple(p.shape):
            raise ValueError(f"{name}.load_state_dict: state {key!r} has shape {tuple(value.shape)}, its "
                             f"parameter has shape {tuple(p.shape)}")
        out = xp.empty_like(p.data)
        out[...] = value
        return out
    return copy.deepcopy(value)


def direction(g, w, weight_decay: float, maximize: bool, out):
    """The gradient PyTorch's rules step along: ``(-g if maximize else g) + weight_decay * w``.

    Returns ``g`` itself when there is nothing to add (never written to), else ``out``.
    """
    if weight_decay:
        xp.multiply(w, weight_decay, out=out)
        if maximize:
            xp.subtract(out, g, out=out)
        else:
            xp.add(out, g, out=out)
        return out
    if maximize:
        return xp.negative(g, out=out)
    return g
