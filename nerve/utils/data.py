"""``nerve.utils.data``: ``nerve.data`` under PyTorch's module path, so ``from torch.utils.data import ...``
lines port by changing ``torch`` to ``nerve``."""
from nerve.data import (  # noqa: F401
    BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler, Sampler, SequentialSampler,
    Subset, SubsetRandomSampler, TensorDataset, WeightedRandomSampler, WorkerInfo, default_collate, get_worker_info,
    random_split,
)

__all__ = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "IterableDataset", "RandomSampler", "Sampler",
           "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler",
           "WorkerInfo", "default_collate", "get_worker_info", "random_split"]
