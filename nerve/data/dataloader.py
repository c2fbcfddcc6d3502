"""``DataLoader``: batches of a dataset, shuffled by its own seeded generator, resumable mid-epoch."""
from __future__ import annotations

import numbers
from typing import Any, Callable, Iterator

import numpy

from nerve import backend
from nerve.data.dataset import Dataset, to_tensors

__all__ = ["DataLoader"]


def _apply_transform(transform: Callable, batch: Any) -> Any:
    """Apply the input transform: to field 0 of a tuple batch, to the whole of any other batch."""
    if isinstance(batch, tuple):
        return (transform(batch[0]),) + batch[1:]
    return transform(batch)


class DataLoader:
    """Iterate over a dataset in batches (tuples of Tensors for tuple samples).

    Each ``iter(loader)`` is one epoch. With ``shuffle`` the order is a permutation drawn from
    ``generator`` (a NumPy Generator or an int seed; by default a child of nerve's seeded generator, made
    when the loader is). ``transform`` is applied to each batch's inputs (field 0 of tuple batches) as an
    array, before wrapping in Tensors. ``state_dict``/``load_state_dict`` resume an epoch exactly where it
    stopped.
    """

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 collate_fn: Callable | None = None, transform: Callable | None = None,
                 generator=None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        n = len(dataset)
        if n == 0:
            raise ValueError("DataLoader: the dataset is empty (0 samples)")
        if drop_last and n < batch_size:
            raise ValueError(f"DataLoader: drop_last=True with batch_size {batch_size} larger than the "
                             f"dataset ({n} samples) would give no batches")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.transform = transform
        if isinstance(generator, numbers.Integral):
            generator = numpy.random.default_rng(int(generator))
        elif generator is None:
            generator = backend.default_generator().spawn(1)[0]
        self.generator = generator
        self._epoch_start_state = None
        self._batches_yielded = 0
        self._resume_at = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _fetch(self, indices) -> Any:
        if self.collate_fn is None:
            batch = self.dataset.get_batch(indices)
            if self.transform is not None:
                batch = _apply_transform(self.transform, batch)
            return to_tensors(batch)
        if isinstance(indices, slice):
            indices = range(*indices.indices(len(self.dataset)))
        batch = self.collate_fn([self.dataset[int(i)] for i in indices])
        if self.transform is not None:
            batch = _apply_transform(self.transform, batch)
        return batch

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        num_batches = len(self)
        start = self._resume_at
        self._resume_at = 0
        if self.shuffle:
            self._epoch_start_state = self.generator.bit_generator.state
            order = self.generator.permutation(n)
        else:
            self._epoch_start_state = None
            order = None
        self._batches_yielded = start
        return self._epoch(order, start, num_batches, n)

    def _epoch(self, order, start: int, num_batches: int, n: int) -> Iterator[Any]:
        bs = self.batch_size
        for b in range(start, num_batches):
            lo, hi = b * bs, min((b + 1) * bs, n)
            # NOTE: without shuffling a slice gives views of array-backed data (no copy).
            indices = order[lo:hi] if order is not None else slice(lo, hi)
            batch = self._fetch(indices)
            # counted before the yield: a checkpoint taken after using this batch resumes at the next one
            self._batches_yielded = b + 1
            yield batch

    def state_dict(self) -> dict:
        """Plain-Python state: the generator at the start of the current epoch and the batches used.

        Between epochs (or after the last batch) it holds the generator's current state and 0 batches.
        """
        in_epoch = 0 < self._batches_yielded < len(self)
        if in_epoch and self.shuffle:
            state = self._epoch_start_state
        else:
            state = self.generator.bit_generator.state if self.shuffle else None
        return {"num_samples": len(self.dataset), "batch_size": self.batch_size, "shuffle": self.shuffle,
                "generator": state, "batches_yielded": self._batches_yielded if in_epoch else 0}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()``: the next ``iter(loader)`` yields exactly the remaining batches."""
        for key in ("num_samples", "batch_size", "shuffle"):
            mine = getattr(self, key) if key != "num_samples" else len(self.dataset)
            if state[key] != mine:
                raise ValueError(f"DataLoader.load_state_dict: the state was saved with {key}={state[key]}, "
                                 f"this loader has {key}={mine}")
        if self.shuffle:
            self.generator.bit_generator.state = state["generator"]
        self._resume_at = int(state["batches_yielded"])
        self._batches_yielded = self._resume_at
        self._epoch_start_state = state["generator"]

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)} samples, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last}, "
                f"batches={len(self)})")

