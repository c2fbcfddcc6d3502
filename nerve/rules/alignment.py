"""How far a rule's updates are from backprop's: the angle between them per layer, and between B and W."""
from __future__ import annotations

import math

from nerve.backend import xp
from nerve.rules.base import Rule
from nerve.tensor import Tensor

__all__ = ["alignment", "angle"]


def angle(a, b) -> float:
    """The angle in degrees between two arrays taken as flat vectors (90 when either is zero)."""
    a = (a.data if isinstance(a, Tensor) else a).ravel().astype(xp.float64)
    b = (b.data if isinstance(b, Tensor) else b).ravel().astype(xp.float64)
    norm = float(xp.linalg.norm(a) * xp.linalg.norm(b))
    if norm == 0.0:
        return 90.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a @ b) / norm))))


def alignment(model, rule: Rule, x, y, loss) -> dict[str, dict[str, float]]:
    """Per layer of ``rule``: {'update': angle between the rule's weight update and backprop's gradient,
    and for feedback alignment 'feedback': angle between B and W}, in degrees, on the batch (x, y).

    Runs in eval mode (dropout off) and leaves the parameters' ``.grad`` as they were.
    """
    if not rule.supervised:
        raise ValueError(f"alignment: {type(rule).__name__} is unsupervised; it has no backprop counterpart "
                         "on the same loss")
    if isinstance(loss, str):
        import nerve.functional as F
        loss = getattr(F, loss)
    x = x if isinstance(x, Tensor) else Tensor._make(xp.asarray(x), None)
    y = y if isinstance(y, Tensor) else Tensor._make(xp.asarray(y), None)
    params = list(model.parameters())
    saved = [p.grad for p in params]
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        grads = []
        for active in (None, rule):
            model.zero_grad()
            if active is None:
                value = loss(model(x), y)
            else:
                with active:
                    value = loss(model(x), y)
            value.backward()
            grads.append({name: layer.weight.grad.data.copy() for name, layer in rule.layers
                          if layer.weight.grad is not None})
    finally:
        for p, g in zip(params, saved):
            p.grad = g
        for m, training in modes:
            m.training = training
    result = {}
    feedback = getattr(rule, "feedback_matrix", None)
    for name, layer in rule.layers:
        if name not in grads[0]:
            continue
        entry = {"update": angle(grads[1][name], grads[0][name])}
        if feedback is not None:
            entry["feedback"] = angle(feedback(name), layer.weight)
        result[name] = entry
    return result
