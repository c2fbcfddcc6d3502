"""Training checkpoints: everything ``fit`` needs to continue exactly where it stopped.

A checkpoint file (safetensors, written atomically by ``nerve.io``) holds the model's and optimiser's
state, the callbacks' state (schedulers, early stopping, CSV position), the epoch and the batch within
it, the data loader's position in its shuffled order, nerve's random state and the history so far.
"""
from __future__ import annotations

import os
from typing import Any

from nerve import io

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint"]

_MARK = "nerve.checkpoint"


class Checkpoint:
    """Where and how often ``fit`` saves a training checkpoint (one file, replaced atomically each time).

    It saves every ``every_n_epochs`` epochs and, with ``every_n_batches``, every that many training
    batches; a Ctrl-C during ``fit`` also saves one at the end of the current batch. ``verbose`` prints a
    line per save.
    """

    def __init__(self, path: str | os.PathLike, every_n_batches: int | None = None, every_n_epochs: int = 1,
                 verbose: bool = False) -> None:
        for name, value in (("every_n_batches", every_n_batches), ("every_n_epochs", every_n_epochs)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"Checkpoint: {name} must be a positive int or None, got {value!r}")
        self.path = os.fspath(path)
        self.every_n_batches, self.every_n_epochs, self.verbose = every_n_batches, every_n_epochs, verbose

    def due_after_batch(self, global_step: int) -> bool:
        """Whether the batch that brought the count to ``global_step`` ends with a save."""
        return self.every_n_batches is not None and global_step % self.every_n_batches == 0

    def due_after_epoch(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (0-based) ends with a save."""
        return self.every_n_epochs is not None and (epoch + 1) % self.every_n_epochs == 0

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` to ``path`` (atomic)."""
        save_checkpoint(state, self.path)
        if self.verbose:
            print(f"checkpoint saved: {self.path} (epoch {state['epoch'] + 1}, batch {state['batch']})",
                  flush=True)

    def __repr__(self) -> str:
        return (f"Checkpoint({self.path!r}, every_n_batches={self.every_n_batches}, "
                f"every_n_epochs={self.every_n_epochs})")


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write a training state dict to ``path`` atomically, marked as a checkpoint."""
    io.save(state, path, metadata={_MARK: "1"})


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; a weights file gives a clear error."""
    if io.load_metadata(path).get(_MARK) != "1":
        raise ValueError(f"{os.fspath(path)} is not a training checkpoint (a weights file? load it with "
                         "nerve.load and model.load_state_dict)")
    return io.load(path)
