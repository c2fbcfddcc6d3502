"""Samplers: the order in which a ``DataLoader`` visits a dataset's indices, with PyTorch's names and arguments.

A sampler is an iterable of indices with a length; a batch sampler yields lists of indices. Random samplers
draw from their own ``generator`` (a ``nerve.Generator``, any NumPy Generator, or an int seed) or, by
default, from a child of nerve's seeded generator made when the sampler is.
"""
from __future__ import annotations

import itertools
import numbers
from typing import Iterable, Iterator, Sequence

import numpy

from nerve import backend
from nerve.tensor import Tensor

#: indices drawn per call by the samplers that draw with replacement
_CHUNK = 1 << 16

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler"]


def _generator(generator, owner: str):
    if generator is None:
        return backend.default_generator().spawn(1)[0]
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return numpy.random.default_rng(int(generator))
    if not isinstance(generator, numpy.random.Generator):
        raise TypeError(f"{owner}: generator must be a nerve.Generator, a NumPy Generator or an int seed, "
                        f"got {type(generator).__name__}")
    return generator


def _positive_int(value, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: {name} should be a positive integer, got {value!r}")
    return int(value)


class Sampler:
    """Base class: subclasses define ``__iter__`` (indices) and, usually, ``__len__``."""

    def __init__(self, data_source=None) -> None:
        pass

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation of the indices, or with ``replacement`` ``num_samples`` independent draws.

    Without replacement, ``num_samples`` larger than the dataset concatenates permutations (PyTorch's rule).
    """

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator=None) -> None:
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement should be a boolean, got {replacement!r}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        if num_samples is not None:
            _positive_int(num_samples, "num_samples", "RandomSampler")
        self.generator = _generator(generator, "RandomSampler")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else int(self._num_samples)

    def __iter__(self) -> Iterator[int]:
        # NOTE: drawn a chunk at a time, so a practically endless sampler (num_samples=10**10) costs no memory.
        n, count = len(self.data_source), self.num_samples
        for lo in range(0, count, _CHUNK if self.replacement else n):
            if self.replacement:
                yield from self.generator.integers(0, n, size=min(_CHUNK, count - lo)).tolist()
            else:
                yield from self.generator.permutation(n)[:count - lo].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order (a new permutation each epoch)."""

    def __init__(self, indices: Sequence[int], generator=None) -> None:
        self.indices = indices
        self.generator = _generator(generator, "SubsetRandomSampler")

    def __iter__(self) -> Iterator[int]:
        order = self.generator.permutation(len(self.indices))
        return (self.indices[int(i)] for i in order)

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights`` (with or without replacement)."""

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True, generator=None) -> None:
        if not isinstance(replacement, bool):
            raise TypeError(f"WeightedRandomSampler: replacement should be a boolean, got {replacement!r}")
        weights = numpy.asarray(weights.numpy() if isinstance(weights, Tensor) else weights, dtype=numpy.float64)
        if weights.ndim != 1:
            raise ValueError(f"WeightedRandomSampler: weights should be a 1-d sequence, got shape {weights.shape}")
        if (weights < 0).any() or not numpy.isfinite(weights).all() or weights.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights must be finite, non-negative and not all zero")
        self.num_samples = _positive_int(num_samples, "num_samples", "WeightedRandomSampler")
        if not replacement and self.num_samples > int((weights > 0).sum()):
            raise ValueError(f"WeightedRandomSampler: cannot draw {self.num_samples} samples without replacement "
                             f"from {int((weights > 0).sum())} nonzero weights")
        self.weights = weights
        self.replacement = replacement
        self.generator = _generator(generator, "WeightedRandomSampler")

    def __iter__(self) -> Iterator[int]:
        p = self.weights / self.weights.sum()
        if not self.replacement:
            yield from self.generator.choice(len(p), size=self.num_samples, replace=False, p=p).tolist()
            return
        for lo in range(0, self.num_samples, _CHUNK):
            yield from self.generator.choice(len(p), size=min(_CHUNK, self.num_samples - lo), p=p).tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of ``batch_size`` indices from ``sampler``; the last, shorter one is dropped with ``drop_last``."""

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        self.batch_size = _positive_int(batch_size, "batch_size", "BatchSampler")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last should be a boolean, got {drop_last!r}")
        self.sampler = sampler
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list]:
        indices = iter(self.sampler)
        while batch := list(itertools.islice(indices, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
