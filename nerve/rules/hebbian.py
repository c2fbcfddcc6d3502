"""Local, unsupervised Hebbian rules on bias-free Linear layers: Hebb, Oja, Sanger (GHA), Krotov–Hopfield.

``rule.step(x)`` runs the model on the batch, takes each chosen layer's input v and output y = W v, and
writes −ΔW averaged over the batch into ``weight.grad``, where ΔW is the published per-sample update at
learning rate 1: ``SGD(lr=η)`` then applies exactly the published rule with rate η.
"""
from __future__ import annotations

from nerve.backend import xp
from nerve.nn import Linear, Module
from nerve.rules.base import Rule, named_layers
from nerve.tensor import Tensor

__all__ = ["Hebbian", "Oja", "Sanger", "KrotovHopfield"]


class _LocalRule(Rule):
    """Shared machinery: the bias-free Linear layers, their inputs captured by hooks, .grad written."""

    supervised = False

    def __init__(self, model: Module, layers=None) -> None:
        super().__init__(model)
        who = type(self).__name__
        chosen = named_layers(model, (Linear,), layers, who)
        with_bias = [n for n, layer in chosen if layer.bias is not None]
        if layers is None:
            chosen = [(n, layer) for n, layer in chosen if layer.bias is None]
        elif with_bias:
            raise ValueError(f"{who}: layers {with_bias} have a bias; Hebbian rules train bias-free Linear layers "
                             "(nn.Linear(..., bias=False))")
        if not chosen:
            raise ValueError(f"{who}: the model has no bias-free Linear layer to train (Linear(..., bias=False)); "
                             f"its Linear layers with a bias: {with_bias}")
        self.layers = chosen

    def step(self, *inputs) -> dict:
        """Run the model on the batch and write −mean ΔW into each layer's ``weight.grad``; logs 'update'."""
        if len(inputs) != 1:
            raise ValueError(f"{type(self).__name__}.step: expected one input batch, got {len(inputs)} arrays "
                             "(unsupervised rules take no targets)")
        seen: dict[int, tuple] = {}

        def keep(module, args, out):
            seen[id(module)] = (args[0].data, out.data)

        handles = [layer.register_forward_hook(keep) for _, layer in self.layers]
        self._run(inputs[0], handles)
        total = 0.0
        for name, layer in self.layers:
            v, y = seen[id(layer)]
            v, y = v.reshape(-1, v.shape[-1]), y.reshape(-1, y.shape[-1])
            delta = self.delta(layer.weight.data, v, y) / v.shape[0]
            g = layer.weight.grad
            if g is None:
                layer.weight.grad = Tensor._make(-delta.astype(layer.weight.dtype, copy=False), None)
            else:
                g.data -= delta
            total += float(xp.sqrt((delta * delta).sum()))
        self._check_finite(self.layers)
        return {"update": total}

    def delta(self, w, v, y):
        """The batch's summed update ΣΔW for weight w (out, in), inputs v (batch, in), outputs y = v wᵀ."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layers={[n for n, _ in self.layers]})"


class Hebbian(_LocalRule):
    """Plain Hebb: ΔW = y vᵀ (units that fire together wire together; unbounded without normalisation)."""

    def delta(self, w, v, y):
        return y.T @ v


class Oja(_LocalRule):
    """Oja's rule (1982): ΔW_ij = y_i (v_j − y_i W_ij); each unit converges to the first principal component."""

    def delta(self, w, v, y):
        return y.T @ v - (y * y).sum(0)[:, None] * w


class Sanger(_LocalRule):
    """Sanger's generalised Hebbian algorithm (1989): ΔW = y vᵀ − LT(y yᵀ) W; units find the principal
    components in order (LT keeps the lower triangle with the diagonal)."""

    def delta(self, w, v, y):
        return y.T @ v - xp.tril(y.T @ y) @ w


class KrotovHopfield(_LocalRule):
    """Krotov & Hopfield (2019), competing hidden units: ΔW_μ = g(Q_μ) (R^p v − ⟨W_μ, v⟩ W_μ).

    ⟨W_μ, v⟩ = Σ_i sign(W_μi)|W_μi|^(p−1) v_i is the unit's input current in the Lp geometry; g = 1 for the
    unit with the largest current, −``delta`` for the one ranked ``k``-th (anti-Hebbian), 0 for the rest.
    Each unit's weight vector tends to the Lp sphere of radius R. ``normalize=True`` divides each batch's
    update by its largest magnitude, as the authors' own code does (a departure from the formula that
    makes the rate a step size; off by default).
    """

    def __init__(self, model: Module, p: float = 3.0, k: int = 2, delta: float = 0.4, R: float = 1.0,
                 normalize: bool = False, layers=None) -> None:
        super().__init__(model, layers)
        if p < 2:
            raise ValueError(f"KrotovHopfield: p must be >= 2, got {p}")
        for name, layer in self.layers:
            if not 2 <= k <= layer.out_features:
                raise ValueError(f"KrotovHopfield: rank k must be in [2, {layer.out_features}] for layer {name!r} "
                                 f"({layer.out_features} hidden units), got {k}")
        self.p, self.k, self.anti, self.R, self.normalize = p, k, delta, R, normalize

    def delta(self, w, v, y):
        wp = xp.sign(w) * xp.abs(w) ** (self.p - 1)
        current = v @ wp.T                                       # (batch, hidden): ⟨W_μ, v⟩
        top = xp.argpartition(current, -self.k, axis=1)[:, -self.k:]  # the k strongest units, unordered
        ranked = xp.argsort(xp.take_along_axis(current, top, axis=1), axis=1)
        rows = xp.arange(current.shape[0])
        g = xp.zeros_like(current)
        g[rows, top[rows, ranked[:, -1]]] = 1.0
        g[rows, top[rows, ranked[:, 0]]] = -self.anti
        update = g.T @ v * self.R ** self.p - (g * current).sum(0)[:, None] * w
        if self.normalize:
            peak = xp.abs(update).max()
            if peak > 0:
                update = update * (v.shape[0] / peak)  # NOTE: step() divides by the batch size again
        return update

    def __repr__(self) -> str:
        return f"KrotovHopfield(p={self.p}, k={self.k}, delta={self.anti}, R={self.R})"
