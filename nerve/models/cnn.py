"""Convolutional reference models: ``SmallCNN`` (PyTorch's MNIST example), ``LeNet5`` and ``CNN1d`` for
sequences such as MNIST-1D."""
from __future__ import annotations

from nerve import nn
from nerve.models.head import replace_head

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
_POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


class SmallCNN(nn.Sequential):
    """conv3x3(32) - ReLU - conv3x3(64) - ReLU - maxpool 2 - fc(128) - ReLU - fc(classes) for 28x28 images:
    PyTorch's MNIST example without its dropout (1.2 M parameters)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> None:
        side = (image_size - 4) // 2
        if side < 1:
            raise ValueError(f"SmallCNN: image_size must be at least 6, got {image_size}")
        super().__init__(
            nn.Conv2d(in_channels, 32, 3), nn.ReLU(),
            nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(64 * side * side, 128), nn.ReLU(),
            nn.Linear(128, num_classes),
        )
        self.config = {"in_channels": in_channels, "num_classes": num_classes, "image_size": image_size}

    def get_config(self) -> dict:
        """Constructor arguments, saved with the weights."""
        return dict(self.config)

    def replace_head(self, num_classes: int) -> nn.Linear:
        """A new last layer with ``num_classes`` outputs (transfer learning); returns it."""
        return replace_head(self, num_classes, "num_classes")


class LeNet5(nn.Sequential):
    """LeNet-5 (LeCun et al. 1998) for 28x28 images: conv5x5(6, padding 2) - pool - conv5x5(16) - pool -
    fc 120 - fc 84 - fc classes.

    ``activation="tanh", pool="avg"`` is the original; the default ReLU with max pooling trains faster.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, activation: str = "relu",
                 pool: str = "max") -> None:
        if activation not in _ACTIVATIONS or pool not in _POOLS:
            raise ValueError(f"LeNet5: activation must be one of {sorted(_ACTIVATIONS)} and pool one of "
                             f"{sorted(_POOLS)}, got {activation!r} and {pool!r}")
        act, pooling = _ACTIVATIONS[activation], _POOLS[pool]
        super().__init__(
            nn.Conv2d(in_channels, 6, 5, padding=2), act(), pooling(2),
            nn.Conv2d(6, 16, 5), act(), pooling(2), nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), act(),
            nn.Linear(120, 84), act(),
            nn.Linear(84, num_classes),
        )
        self.config = {"in_channels": in_channels, "num_classes": num_classes, "activation": activation,
                       "pool": pool}

    def get_config(self) -> dict:
        """Constructor arguments, saved with the weights."""
        return dict(self.config)

    def replace_head(self, num_classes: int) -> nn.Linear:
        """A new last layer with ``num_classes`` outputs (transfer learning); returns it."""
        return replace_head(self, num_classes, "num_classes")


class CNN1d(nn.Sequential):
    """A 1-d CNN for (N, in_channels, length) sequences: ``depth`` conv layers (kernel 5 then 3, stride 2,
    padding 1, ``channels`` wide, ReLU), flattened into a linear classifier; the MNIST-1D paper's model
    for length 40."""

    def __init__(self, length: int = 40, num_classes: int = 10, in_channels: int = 1, channels: int = 25,
                 depth: int = 3) -> None:
        layers, width, size = [], in_channels, length
        for i in range(depth):
            kernel = 5 if i == 0 else 3
            size = (size + 2 - kernel) // 2 + 1
            if size < 1:
                raise ValueError(f"CNN1d: length {length} is too short for {depth} stride-2 layers")
            layers += [nn.Conv1d(width, channels, kernel, stride=2, padding=1), nn.ReLU()]
            width = channels
        super().__init__(*layers, nn.Flatten(), nn.Linear(channels * size, num_classes))
        self.config = {"length": length, "num_classes": num_classes, "in_channels": in_channels,
                       "channels": channels, "depth": depth}

    def get_config(self) -> dict:
        """Constructor arguments, saved with the weights."""
        return dict(self.config)

    def replace_head(self, num_classes: int) -> nn.Linear:
        """A new last layer with ``num_classes`` outputs (transfer learning); returns it."""
        return replace_head(self, num_classes, "num_classes")
