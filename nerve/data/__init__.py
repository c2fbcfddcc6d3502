"""Data: datasets, the batching ``DataLoader``, per-batch augmentation (``transforms``), and ``datasets``."""
from nerve.data import datasets, transforms
from nerve.data.dataloader import DataLoader
from nerve.data.dataset import (
    Dataset, Subset, TensorDataset, collate_arrays, default_collate, random_split, to_tensors,
)

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split", "DataLoader", "default_collate",
           "collate_arrays", "to_tensors", "datasets", "transforms"]
