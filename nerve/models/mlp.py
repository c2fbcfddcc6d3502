"""A multi-layer perceptron: Linear layers with an activation (and optional dropout) between them."""
from __future__ import annotations

from typing import Sequence

from nerve import nn
from nerve.models.head import replace_head

ACTIVATIONS = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "silu": nn.SiLU,
    "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "softplus": nn.Softplus,
}


class MLP(nn.Sequential):
    """in_features -> hidden[0] -> ... -> out_features, with ``activation`` after each hidden layer."""

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int,
                 activation: str = "relu", dropout: float = 0.0) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"MLP: unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        layers = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)
        self.config = {"in_features": in_features, "hidden": list(hidden), "out_features": out_features,
                       "activation": activation, "dropout": dropout}

    def get_config(self) -> dict:
        """Constructor arguments, saved with the weights."""
        return dict(self.config)

    def replace_head(self, num_classes: int) -> nn.Linear:
        """A new last layer with ``num_classes`` outputs (transfer learning); returns it."""
        return replace_head(self, num_classes, "out_features")
