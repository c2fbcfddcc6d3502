"""Data: datasets, samplers, the batching ``DataLoader``, per-batch augmentation (``transforms``), and ``datasets``."""
from nerve.data import datasets, transforms
from nerve.data.dataloader import DataLoader, WorkerInfo, get_worker_info
from nerve.data.dataset import (
    ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, collate_arrays, default_collate, random_split,
    to_tensors,
)
from nerve.data.sampler import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler, WeightedRandomSampler,
)

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "random_split", "DataLoader",
           "get_worker_info", "WorkerInfo", "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler", "default_collate", "collate_arrays", "to_tensors", "datasets",
           "transforms"]
