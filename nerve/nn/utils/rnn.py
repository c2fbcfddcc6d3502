"""PyTorch's ``nn.utils.rnn``: padding variable-length sequences into one tensor and packing them.

A ``PackedSequence`` holds the steps of sequences sorted by length, time-major: ``data`` is (sum of lengths, *)
and ``batch_sizes[t]`` says how many sequences are still running at step t. nerve's recurrent layers take it
as PyTorch's do (they run it as a padded batch with ``lengths``, which gives the same results) and return one.
Packing and padding are differentiable.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy

from nerve.backend import xp
from nerve.ops import cat, index_select, stack
from nerve.tensor import Tensor

__all__ = ["PackedSequence", "pad_sequence", "pack_padded_sequence", "pad_packed_sequence", "pack_sequence",
           "unpad_sequence", "unpack_sequence"]


class PackedSequence(NamedTuple):
    """Sequences packed time-major after sorting by length (see the module's docstring)."""

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None


def _int64(values) -> Tensor:
    return Tensor._make(xp.asarray(numpy.asarray(values, dtype=numpy.int64)), None)


def _lengths(lengths, batch: int, who: str) -> numpy.ndarray:
    values = numpy.asarray(lengths.numpy() if isinstance(lengths, Tensor) else lengths).reshape(-1)
    if values.shape != (batch,) or values.dtype.kind not in "iu":
        raise ValueError(f"{who}: expected {batch} integer lengths (one per sequence), got {values!r}")
    if values.size and values.min() < 1:
        raise ValueError(f"{who}: every length must be at least 1, got {values.tolist()}")
    return values.astype(numpy.int64)


def pad_sequence(sequences: Sequence[Tensor], batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Tensors of shapes (L_i, *) as one (max L, B, *) tensor ((B, max L, *) with ``batch_first``), padded."""
    if not sequences:
        raise ValueError("pad_sequence: got no sequences")
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'right' or 'left', got {padding_side!r}")
    trailing = {tuple(s.shape[1:]) for s in sequences}
    if len(trailing) != 1 or any(s.ndim == 0 for s in sequences):
        raise ValueError(f"pad_sequence: sequences must share their trailing shape, got "
                         f"{[tuple(s.shape) for s in sequences]}")
    longest = max(s.shape[0] for s in sequences)
    rows = []
    for s in sequences:
        gap = longest - s.shape[0]
        if gap:
            filler = Tensor._make(xp.full((gap,) + tuple(s.shape[1:]), padding_value, dtype=s.data.dtype), None)
            s = cat([s, filler] if padding_side == "right" else [filler, s], 0)
        rows.append(s)
    return stack(rows, 0 if batch_first else 1)


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) ((B, T, *) with ``batch_first``) given each sequence's length."""
    batch_dim = 0 if batch_first else 1
    if input.ndim < 2:
        raise ValueError(f"pack_padded_sequence: input must have time and batch dims, got {tuple(input.shape)}")
    n = _lengths(lengths, input.shape[batch_dim], "pack_padded_sequence")
    if n.max() > input.shape[1 - batch_dim]:
        raise ValueError(f"pack_padded_sequence: a length of {n.max()} exceeds the input's "
                         f"{input.shape[1 - batch_dim]} steps")
    if enforce_sorted:
        if (numpy.diff(n) > 0).any():
            raise ValueError(f"pack_padded_sequence: lengths {n.tolist()} are not in decreasing order; sort the "
                             "batch or pass enforce_sorted=False")
        order, sorted_indices, unsorted_indices = numpy.arange(n.size), None, None
    else:
        order = numpy.argsort(-n, kind="stable")
        sorted_indices, unsorted_indices = _int64(order), _int64(numpy.argsort(order))
    steps = input if not batch_first else input.transpose(0, 1)
    steps = index_select(steps, 1, _int64(order)) if sorted_indices is not None else steps
    counts = [(n > t).sum() for t in range(int(n.max()))]
    data = cat([steps[t, :int(c)] for t, c in enumerate(counts)], 0)
    return PackedSequence(data, _int64(counts), sorted_indices, unsorted_indices)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[Tensor, Tensor]:
    """(padded batch, lengths) from a ``PackedSequence``, in the batch's original order."""
    data, sizes = sequence.data, sequence.batch_sizes.numpy()
    steps = len(sizes)
    if total_length is not None and total_length < steps:
        raise ValueError(f"pad_packed_sequence: total_length {total_length} is shorter than the longest "
                         f"sequence ({steps} steps)")
    batch = int(sizes[0])
    rows, offset = [], 0
    for size in sizes:
        row = data[offset:offset + int(size)]
        offset += int(size)
        if size < batch:
            filler = xp.full((batch - int(size),) + tuple(data.shape[1:]), padding_value, dtype=data.data.dtype)
            row = cat([row, Tensor._make(filler, None)], 0)
        rows.append(row)
    for _ in range((total_length or steps) - steps):
        rows.append(Tensor._make(xp.full((batch,) + tuple(data.shape[1:]), padding_value, dtype=data.data.dtype),
                                 None))
    padded = stack(rows, 0)
    lengths = (sizes[None, :] > numpy.arange(batch)[:, None]).sum(axis=1)
    if sequence.unsorted_indices is not None:
        padded = index_select(padded, 1, sequence.unsorted_indices)
        lengths = lengths[sequence.unsorted_indices.numpy()]
    return (padded.transpose(0, 1) if batch_first else padded), _int64(lengths)


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of (L_i, *) tensors."""
    return pack_padded_sequence(pad_sequence(sequences), [s.shape[0] for s in sequences],
                                enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list[Tensor]:
    """The list of (L_i, *) tensors that ``pad_sequence`` made a batch of."""
    batch = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    n = _lengths(lengths, batch.shape[0], "unpad_sequence")
    return [batch[i, :int(k)] for i, k in enumerate(n)]


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The list of (L_i, *) tensors that ``pack_sequence`` packed."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
