"""Text for language models: a character vocabulary, a train/validation split, and next-character windows.

A long text becomes one int64 array of ids (``CharVocab.encode``); ``split_text`` cuts it into a leading
training part and a trailing validation part; ``TextDataset`` serves fixed windows of it for a
``DataLoader`` and ``random_windows`` draws a random batch of windows (the usual way to train on a corpus
too long to visit every window each epoch). Each window ``x`` comes with ``y``, the same window shifted one
character on: ``y[t]`` is the character that follows ``x[t]``.
"""
from __future__ import annotations

import numbers
from typing import Iterable

import numpy

from nerve import backend
from nerve.data.dataset import Dataset
from nerve.tensor import Tensor

__all__ = ["CharVocab", "split_text", "random_windows", "TextDataset"]


class CharVocab:
    """The sorted set of characters of a text, mapping each to an id (0..size-1) and back.

    ``CharVocab(text)`` builds it; ``CharVocab(vocab.chars)`` rebuilds the same vocabulary (save ``chars``
    with a model to decode its outputs later).
    """

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"CharVocab: expected a str, got {type(text).__name__}")
        if not text:
            raise ValueError("CharVocab: the text is empty, there are no characters to index")
        self.chars = "".join(sorted(set(text)))
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        # NOTE: a code-point lookup table turns encode into one vectorised gather instead of a Python loop.
        codes = numpy.frombuffer(self.chars.encode("utf-32-le"), dtype=numpy.uint32).astype(numpy.int64)
        self._table = numpy.full(int(codes.max()) + 1, -1, dtype=numpy.int64)
        self._table[codes] = numpy.arange(len(codes), dtype=numpy.int64)
        self._chars_array = numpy.array(list(self.chars))

    @property
    def size(self) -> int:
        """Number of distinct characters (the model's number of classes)."""
        return len(self.chars)

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> numpy.ndarray:
        """The ids of ``text``'s characters as an int64 array of length ``len(text)``."""
        if not text:
            return numpy.zeros(0, dtype=numpy.int64)
        codes = numpy.frombuffer(text.encode("utf-32-le"), dtype=numpy.uint32).astype(numpy.int64)
        ids = self._table[numpy.minimum(codes, len(self._table) - 1)]
        bad = (ids < 0) | (codes >= len(self._table))
        if bad.any():
            unknown = sorted({text[i] for i in numpy.flatnonzero(bad)[:20]})
            raise ValueError(f"CharVocab.encode: characters not in the vocabulary of {self.size}: {unknown!r}")
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """The text whose character ids are ``ids`` (a sequence, array or Tensor of ints)."""
        if isinstance(ids, Tensor):
            ids = ids.numpy()
        ids = numpy.asarray(ids, dtype=numpy.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"CharVocab.decode: ids must lie in [0, {self.size}), got range "
                             f"[{ids.min()}, {ids.max()}]")
        return "".join(self._chars_array[ids].tolist())

    def __repr__(self) -> str:
        return f"CharVocab(size={self.size}, chars={self.chars[:40]!r}{'...' if self.size > 40 else ''})"


def _as_ids(name: str, ids) -> numpy.ndarray:
    """A 1-D int64 NumPy array of ids from an array, list or Tensor."""
    if isinstance(ids, Tensor):
        ids = ids.numpy()
    ids = numpy.asarray(ids)
    if ids.ndim != 1 or not (ids.size == 0 or numpy.issubdtype(ids.dtype, numpy.integer)):
        raise ValueError(f"{name}: expected a 1-D array of integer ids, got shape {ids.shape} dtype {ids.dtype}")
    return ids.astype(numpy.int64, copy=False)


def split_text(ids, val_fraction: float = 0.1) -> tuple:
    """``(train_ids, val_ids)``: the first ``1 - val_fraction`` of the ids and the rest (views, no shuffle).

    A contiguous split keeps validation text unseen in training (random windows would overlap it).
    """
    ids = _as_ids("split_text", ids)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"split_text: val_fraction must lie in [0, 1), got {val_fraction}")
    n_train = int(len(ids) * (1.0 - val_fraction))
    return ids[:n_train], ids[n_train:]


def _generator(generator) -> numpy.random.Generator:
    if isinstance(generator, numbers.Integral):
        return numpy.random.default_rng(int(generator))
    return backend.default_generator() if generator is None else generator


def random_windows(ids, block_size: int, batch_size: int, generator=None) -> tuple:
    """A batch of ``batch_size`` windows starting at uniformly random offsets: ``(x, y)`` int64 (B, T).

    ``y`` is ``x`` shifted one step on. ``generator`` is a NumPy Generator or an int seed (default: nerve's
    seeded generator).
    """
    ids = _as_ids("random_windows", ids)
    if block_size < 1 or batch_size < 1:
        raise ValueError(f"random_windows: block_size and batch_size must be positive, got {block_size} "
                         f"and {batch_size}")
    if len(ids) < block_size + 1:
        raise ValueError(f"random_windows: a text of {len(ids)} ids is too short for windows of {block_size} "
                         f"plus the next id")
    starts = _generator(generator).integers(0, len(ids) - block_size, size=batch_size)
    index = starts[:, None] + numpy.arange(block_size + 1)
    windows = ids[index]
    return windows[:, :-1], windows[:, 1:]


class TextDataset(Dataset):
    """Windows of a long id sequence: sample ``i`` is ``(x, y)`` with ``x = ids[s:s+T]``, ``y = ids[s+1:s+T+1]``.

    ``s = i * stride``; ``stride`` defaults to ``block_size`` (non-overlapping windows covering the text).
    Batches are gathered with one fancy index, no per-sample loop.
    """

    def __init__(self, ids, block_size: int, stride: int | None = None) -> None:
        ids = _as_ids("TextDataset", ids)
        stride = block_size if stride is None else stride
        if block_size < 1 or stride < 1:
            raise ValueError(f"TextDataset: block_size and stride must be positive, got {block_size} and {stride}")
        if len(ids) < block_size + 1:
            raise ValueError(f"TextDataset: a text of {len(ids)} ids is too short for one window of "
                             f"{block_size} plus the next id")
        self.ids = ids
        self.block_size = int(block_size)
        self.stride = int(stride)
        self._offsets = numpy.arange(self.block_size + 1)

    @classmethod
    def splits(cls, ids, block_size: int, val_fraction: float = 0.1, stride: int | None = None) -> tuple:
        """``(train, val)`` datasets over the two parts of ``split_text(ids, val_fraction)``."""
        train_ids, val_ids = split_text(ids, val_fraction)
        return cls(train_ids, block_size, stride), cls(val_ids, block_size, stride)

    def __len__(self) -> int:
        return (len(self.ids) - self.block_size - 1) // self.stride + 1

    def __getitem__(self, index: int) -> tuple:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"TextDataset: index {index} out of range for {n} windows")
        s = (index % n) * self.stride
        return Tensor(self.ids[s:s + self.block_size]), Tensor(self.ids[s + 1:s + self.block_size + 1])

    def get_batch(self, indices) -> tuple:
        """The windows at ``indices`` (int array or slice) as two int64 arrays (B, T)."""
        if isinstance(indices, slice):
            indices = numpy.arange(*indices.indices(len(self)))
        windows = self.ids[numpy.asarray(indices, dtype=numpy.int64)[:, None] * self.stride + self._offsets]
        return windows[:, :-1], windows[:, 1:]

    def __repr__(self) -> str:
        return f"TextDataset({len(self)} windows of {self.block_size}, stride {self.stride}, {len(self.ids)} ids)"
