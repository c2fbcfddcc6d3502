"""Datasets: the indexable collections a ``DataLoader`` draws batches from.

A dataset maps an index to a sample (``dataset[i]``) and knows its length. ``get_batch`` fetches many
samples at once; array-backed datasets override it with one fancy index per array, which is what keeps
the loader free of per-sample Python loops.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy

from nerve import backend
from nerve.tensor import Tensor

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "random_split",
           "collate_arrays", "default_collate", "to_tensors"]


def _stack(name: str, items: list) -> Any:
    """Stack same-shaped arrays (or numbers) into one array with a new leading axis."""
    first = items[0]
    if isinstance(first, Tensor):
        items = [t.data for t in items]
        first = items[0]
    if isinstance(first, bool):
        return numpy.asarray(items, dtype=bool)
    if isinstance(first, numbers.Integral) and not hasattr(first, "dtype"):
        return numpy.asarray(items, dtype=numpy.int64)
    if isinstance(first, numbers.Real) and not hasattr(first, "dtype"):
        return numpy.asarray(items, dtype=backend.get_default_dtype())
    shapes = {getattr(item, "shape", ()) for item in items}
    if len(shapes) > 1:
        raise ValueError(f"collate: samples of {name} have different shapes: "
                         f"{', '.join(str(s) for s in sorted(shapes))}")
    module = backend.array_module(backend.device_of(first)) if hasattr(first, "shape") else numpy
    return module.stack(items)


def collate_arrays(samples: Sequence[Any], _name: str = "the batch") -> Any:
    """Combine a list of samples into one batch of arrays with the same structure as a sample.

    Tuples/lists give tuples (named tuples keep their type), dicts give dicts (per key), arrays/Tensors are
    stacked, ints become int64,
    floats the default dtype, bools bool; strings stay a list.
    """
    if len(samples) == 0:
        raise ValueError("collate: got an empty list of samples")
    first = samples[0]
    if isinstance(first, (tuple, list)):
        lengths = {len(s) for s in samples}
        if len(lengths) > 1:
            raise ValueError(f"collate: samples have different numbers of fields: {sorted(lengths)}")
        fields = [collate_arrays([s[i] for s in samples], f"field {i}") for i in range(len(first))]
        return type(first)(*fields) if hasattr(first, "_fields") else tuple(fields)
    if isinstance(first, dict):
        keys = list(first)
        for s in samples:
            if list(s) != keys:
                raise ValueError(f"collate: samples have different keys: {keys} and {list(s)}")
        return {k: collate_arrays([s[k] for s in samples], f"key {k!r}") for k in keys}
    if isinstance(first, str):
        return list(samples)
    if isinstance(first, (Tensor, numbers.Number)) or hasattr(first, "shape"):
        return _stack(_name, list(samples))
    raise TypeError(f"collate: cannot batch samples of type {type(first).__name__} ({_name}); "
                    "pass collate_fn= to the DataLoader")


def to_tensors(batch: Any) -> Any:
    """Wrap the arrays of a (nested) batch as Tensors without copying; Tensors and strings pass through."""
    if isinstance(batch, Tensor) or isinstance(batch, str):
        return batch
    if isinstance(batch, (tuple, list)):
        items = [to_tensors(b) for b in batch]
        return type(batch)(*items) if hasattr(batch, "_fields") else type(batch)(items)
    if isinstance(batch, dict):
        return {k: to_tensors(v) for k, v in batch.items()}
    if isinstance(batch, backend.ndarray) or hasattr(batch, "__cuda_array_interface__"):
        return Tensor._make(batch, None)
    return Tensor(batch)


def default_collate(samples: Sequence[Any]) -> Any:
    """The loader's default ``collate_fn``: ``collate_arrays`` followed by ``to_tensors``."""
    return to_tensors(collate_arrays(samples))


class Dataset:
    """Abstract dataset: subclasses define ``__getitem__(i)`` (one sample) and ``__len__``."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def get_batch(self, indices) -> Any:
        """The samples at ``indices`` (an int array or a slice) collated into arrays.

        Override it for a vectorised fetch; this default loops over the samples.
        """
        if isinstance(indices, slice):
            indices = range(*indices.indices(len(self)))
        return collate_arrays([self[int(i)] for i in indices])

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream of samples: subclasses define ``__iter__`` (and may define ``__len__``). The ``DataLoader``
    batches the stream as it comes; with workers each process iterates its own copy, so shard it with
    ``get_worker_info()`` as in PyTorch."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __getitem__(self, index: int) -> Any:
        raise TypeError(f"{type(self).__name__} is an IterableDataset: iterate over it, it has no indices")


def _raw(data: Any):
    """The array behind a Tensor or array-like (Tensors are detached, nothing is copied)."""
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, backend.ndarray) or hasattr(data, "__cuda_array_interface__"):
        return data
    return Tensor(data).data


class TensorDataset(Dataset):
    """Samples are the i-th rows of equally long arrays or Tensors (dtypes kept as given).

    ``dataset[i]`` is a tuple of Tensors; batches are fetched with one fancy index per array.
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor or array")
        arrays = tuple(_raw(t) for t in tensors)
        for a in arrays:
            if a.ndim == 0:
                raise ValueError("TensorDataset: got a 0-d tensor; every tensor needs a first (sample) dimension")
        lengths = [a.shape[0] for a in arrays]
        for n in lengths[1:]:
            if n != lengths[0]:
                raise ValueError(f"TensorDataset: tensors have different lengths: {lengths[0]} and {n}")
        self.arrays = arrays
        # NOTE: arrays on a GPU are indexed with index arrays moved there first (one move per batch).
        self._on_gpu = tuple(backend.device_of(a) != "cpu" for a in arrays)

    @property
    def tensors(self) -> tuple:
        """The stored arrays as Tensors (sharing memory)."""
        return tuple(Tensor._make(a, None) for a in self.arrays)

    def __len__(self) -> int:
        return int(self.arrays[0].shape[0])

    def __getitem__(self, index: int) -> tuple:
        return tuple(Tensor(a[index]) for a in self.arrays)

    def get_batch(self, indices) -> tuple:
        """One fancy index (or slice, a view) per array: no per-sample loop."""
        if isinstance(indices, slice) or not any(self._on_gpu):
            return tuple(a[indices] for a in self.arrays)
        on_gpu = backend.array_module("cuda").asarray(indices)
        return tuple(a[on_gpu if gpu else indices] for a, gpu in zip(self.arrays, self._on_gpu))


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        indices = numpy.asarray(indices, dtype=numpy.int64).reshape(-1)
        n = len(dataset)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"Subset: indices must lie in [0, {n}) for a dataset of {n} samples, "
                             f"got range [{indices.min()}, {indices.max()}]")
        self.dataset = dataset
        self.indices = indices

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[index])]

    def get_batch(self, indices) -> Any:
        if hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(self.indices[indices])
        return collate_arrays([self.dataset[int(i)] for i in self.indices[indices]])


class ConcatDataset(Dataset):
    """The samples of several datasets one after another (PyTorch's ``ConcatDataset``; also ``a + b``)."""

    def __init__(self, datasets) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = numpy.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return int(self.cumulative_sizes[-1])

    def _locate(self, index: int) -> tuple:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"ConcatDataset: index {index} is out of range for {n} samples")
        index %= n
        part = int(numpy.searchsorted(self.cumulative_sizes, index, side="right"))
        return part, index - (self.cumulative_sizes[part - 1] if part else 0)

    def __getitem__(self, index: int) -> Any:
        part, local = self._locate(int(index))
        return self.datasets[part][local]

    def get_batch(self, indices) -> Any:
        """One part's own batched fetch when every index falls in that part; else sample by sample."""
        if isinstance(indices, slice):
            indices = numpy.arange(*indices.indices(len(self)))
        places = [self._locate(int(i)) for i in indices]
        parts = {p for p, _ in places}
        if len(parts) == 1 and hasattr(self.datasets[places[0][0]], "get_batch"):
            return self.datasets[places[0][0]].get_batch(numpy.asarray([i for _, i in places], dtype=numpy.int64))
        return collate_arrays([self.datasets[p][i] for p, i in places])


def _split_lengths(n: int, lengths: Sequence[float]) -> list:
    """Integer lengths from integers summing to n, or from fractions summing to 1."""
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths is empty")
    if any(x < 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative, got {lengths}")
    if all(isinstance(x, numbers.Integral) for x in lengths):
        if sum(lengths) != n:
            raise ValueError(f"random_split: lengths sum to {sum(lengths)} but the dataset has {n} samples")
        return [int(x) for x in lengths]
    if not math.isclose(sum(lengths), 1.0, abs_tol=1e-6):
        raise ValueError(f"random_split: fractions must sum to 1, got {lengths} (sum {sum(lengths)})")
    counts = [int(math.floor(n * f)) for f in lengths]
    # NOTE: PyTorch's rule: the samples left by flooring go one each to the splits in order.
    for i in range(n - sum(counts)):
        counts[i % len(counts)] += 1
    return counts


def random_split(dataset: Dataset, lengths: Sequence[float], generator=None) -> list:
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths or fractions.

    ``generator`` (a NumPy Generator or an int seed) defaults to nerve's seeded generator.
    """
    if isinstance(generator, numbers.Integral):
        generator = numpy.random.default_rng(int(generator))
    elif generator is None:
        generator = backend.default_generator()
    counts = _split_lengths(len(dataset), lengths)
    order = generator.permutation(len(dataset))
    bounds = numpy.cumsum([0] + counts)
    return [Subset(dataset, order[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]
