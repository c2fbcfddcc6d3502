"""Reference architectures."""
from nerve.models.mlp import MLP

__all__ = ["MLP"]
