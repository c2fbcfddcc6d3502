"""The learning-rule contract: a rule turns a batch into update directions in each parameter's ``.grad``.

The ordinary optimisers then apply them, so schedulers, clipping, weight decay, checkpoints and callbacks
work for every rule. Supervised rules change what ``loss.backward()`` delivers while they are active
(``with rule: loss = loss_fn(model(x), y)``); unsupervised rules compute their update in ``rule.step(x)``.
"""
from __future__ import annotations

from typing import Any, Iterable

from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.nn import Module
from nerve.tensor import Tensor

__all__ = ["Rule", "Backprop", "named_layers"]


def named_layers(model: Module, kinds: tuple, layers: Iterable | None = None, who: str = "rule") -> list:
    """[(name, module)] of ``model``'s submodules of the types ``kinds`` in forward-definition order.

    ``layers`` restricts them: names (as in ``named_modules``) or the modules themselves.
    """
    found = [(name or type(mod).__name__, mod) for name, mod in model.named_modules() if isinstance(mod, kinds)]
    if layers is None:
        return found
    chosen = []
    for item in layers:
        match = [(n, m) for n, m in found if m is item or n == item]
        if not match:
            known = [n for n, _ in found]
            raise ValueError(f"{who}: layer {item!r} is not one of the model's {'/'.join(k.__name__ for k in kinds)} "
                             f"layers {known}")
        chosen.append(match[0])
    return chosen


class Rule:
    """Base of the learning rules: the model, the rule's fixed buffers (``state_dict``), and how ``fit`` uses it.

    ``supervised`` rules are active inside ``with rule:`` (what ``backward`` delivers); unsupervised ones
    define ``step(x)``, which writes −ΔW (the published per-sample update at learning rate 1, averaged over
    the batch) into each weight's ``.grad``, so ``SGD(lr=η)`` applies the rule with rate η.
    """

    supervised = True

    def __init__(self, model: Module) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"{type(self).__name__}: expected an nn.Module, got {type(model).__name__}")
        self.model = model
        self.buffers: dict[str, Tensor] = {}
        self._handles: list = []

    # --- the two ways to use a rule ----------------------------------------------------------------
    def __enter__(self) -> "Rule":
        if self._handles:
            raise RuntimeError(f"{type(self).__name__}: already active (nested 'with rule:')")
        self._handles = self._install()
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _install(self) -> list:
        """Register the forward hooks that make ``backward`` deliver this rule's updates; their handles."""
        return []

    def step(self, *inputs) -> dict:
        """Unsupervised rules: run the model on ``inputs`` and write the updates into ``.grad``; logs."""
        raise TypeError(f"{type(self).__name__} is a supervised rule: use 'with rule:' around the forward pass "
                        "and loss.backward(), or fit(..., rule=rule)")

    def train_step(self, model: Module, inputs: tuple, target: Any, optimizer, loss_fn) -> tuple[dict, Any]:
        """One ``fit`` step with this rule on a batch's inputs and target (None without one): (logs, output)."""
        name = type(self).__name__
        if self.supervised:
            if target is None:
                raise ValueError(f"fit: {name} is a supervised rule but the batches have no targets")
            optimizer.zero_grad()
            with self:
                output = model(*inputs)
                loss = loss_fn(output, target)
            loss.backward()
            self._check_finite(getattr(self, "layers", ()))
            optimizer.step()
            return {"loss": loss}, output
        if target is not None:
            raise ValueError(f"fit: {name} is an unsupervised rule but the batches have targets; pass the inputs "
                             "alone (fit(model, X, ...))")
        optimizer.zero_grad()
        logs = self.step(*inputs)
        optimizer.step()
        return logs, None

    # --- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The rule's buffers (feedback matrices, traces), saved in ``fit`` checkpoints."""
        return dict(self.buffers)

    def load_state_dict(self, state: dict) -> None:
        """Restore buffers saved by ``state_dict`` (shapes must match)."""
        name = type(self).__name__
        missing = sorted(set(self.buffers) - set(state))
        if missing and self.buffers:
            raise KeyError(f"{name}.load_state_dict: missing {missing}")
        for key, value in state.items():
            array = value.data if isinstance(value, Tensor) else xp.asarray(value)
            old = self.buffers.get(key)
            if old is not None and tuple(old.shape) != tuple(array.shape):
                raise ValueError(f"{name}.load_state_dict: {key!r} has shape {tuple(array.shape)}, expected "
                                 f"{tuple(old.shape)}")
            self.buffers[key] = Tensor._make(xp.array(array, dtype=array.dtype), None)

    def _run(self, x, handles: list) -> None:
        """Run the model on one batch without a graph, with the forward hooks (``handles``) that record what a
        local rule needs; the hooks are removed afterwards, whatever happens."""
        try:
            with no_grad():
                self.model(x if isinstance(x, Tensor) else Tensor._make(xp.asarray(x), None))
        finally:
            for h in handles:
                h.remove()

    def _check_finite(self, layers: list) -> None:
        """Raise naming the first layer whose update holds NaN or infinity (training cannot go on from it)."""
        with no_grad():
            for name, layer in layers:
                g = layer.weight.grad
                if g is not None and not bool(xp.isfinite(g.data.sum())):
                    raise FloatingPointError(f"{type(self).__name__}: the update of layer {name!r} ({layer!r}) "
                                             "is not finite (NaN or overflow); lower the learning rate")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Backprop(Rule):
    """Plain backpropagation: exactly what ``fit`` does without a rule (``backward`` is left alone)."""

