"""``DistributedSampler`` (PyTorch's semantics) and ``DistributedLoader``: each rank's disjoint shard.

The epoch's order is one permutation drawn from ``(seed, epoch)``, the same on every rank; rank ``r`` of
``W`` takes positions ``r, r + W, ...``, so step ``k`` of ``W`` ranks with ``b`` samples each covers exactly
the samples of step ``k`` of one process with ``W * b``: the global batch, split.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import numpy

from nerve.data import Dataset
from nerve.data.dataset import to_tensors
from nerve.distributed import comm

__all__ = ["DistributedSampler", "DistributedLoader"]


class DistributedSampler:
    """The indices of this rank's shard of ``dataset``, reshuffled each epoch (call ``set_epoch``).

    Without ``drop_last`` the order is padded with its own first indices to a multiple of
    ``num_replicas`` (every rank takes as many steps); with it the tail is dropped.
    """

    def __init__(self, dataset: Any, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        self.num_replicas = comm.world_size() if num_replicas is None else num_replicas
        self.rank = comm.rank() if rank is None else rank
        if not isinstance(self.num_replicas, int) or self.num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive int, got {self.num_replicas!r}")
        if not isinstance(self.rank, int) or not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {self.num_replicas}), got {self.rank!r}")
        self.dataset_size = len(dataset)
        if self.dataset_size == 0 or (drop_last and self.dataset_size < self.num_replicas):
            raise ValueError(f"DistributedSampler: {self.dataset_size} samples cannot be shared by "
                             f"{self.num_replicas} ranks (drop_last={drop_last})")
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0
        self.num_samples = (self.dataset_size // self.num_replicas if drop_last
                            else math.ceil(self.dataset_size / self.num_replicas))
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch's permutation (the same on every rank)."""
        self.epoch = int(epoch)

    def global_order(self) -> numpy.ndarray:
        """The epoch's order of all ranks' samples, padded or cut to ``total_size``."""
        n = self.dataset_size
        order = (numpy.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle
                 else numpy.arange(n))
        if self.total_size > n:
            order = numpy.resize(order, self.total_size)  # NOTE: numpy.resize repeats from the start
        return order[:self.total_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.global_order()[self.rank::self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples


class DistributedLoader:
    """Batches of this rank's shard (``batch_size`` per rank), resumable on any number of ranks.

    Each ``iter(loader)`` is one epoch and advances the sampler's epoch. ``state_dict`` counts the samples
    used by all ranks together, so a run saved by ``W`` ranks continues on ``W'`` ranks when the global
    batch (``batch_size * W``) is kept.
    """

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool = True, seed: int = 0,
                 num_replicas: int | None = None, rank: int | None = None) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DistributedLoader: batch_size must be a positive int, got {batch_size!r}")
        self.dataset, self.batch_size = dataset, batch_size
        self.sampler = DistributedSampler(dataset, num_replicas, rank, shuffle=shuffle, seed=seed)
        self._resume_at = 0
        self._yielded = 0

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        start, self._resume_at = self._resume_at, 0
        indices = numpy.fromiter(iter(self.sampler), dtype=numpy.int64)
        return self._epoch(indices, start)

    def _epoch(self, indices: numpy.ndarray, start: int) -> Iterator[Any]:
        bs = self.batch_size
        for b in range(start, len(self)):
            self._yielded = b + 1
            yield to_tensors(self.dataset.get_batch(indices[b * bs:(b + 1) * bs]))
        self._yielded = 0
        self.sampler.set_epoch(self.sampler.epoch + 1)

    def state_dict(self) -> dict:
        """The epoch, and the samples all ranks have taken in it."""
        global_batch = self.batch_size * self.sampler.num_replicas
        return {"kind": "DistributedLoader", "num_samples": self.sampler.dataset_size, "seed": self.sampler.seed,
                "shuffle": self.sampler.shuffle, "epoch": self.sampler.epoch,
                "samples_done": self._yielded * global_batch}

    def load_state_dict(self, state: dict) -> None:
        """Continue at a saved position (its seed and epoch); the global batch must divide the samples taken."""
        if not isinstance(state, dict) or state.get("kind") != "DistributedLoader":
            raise ValueError("DistributedLoader.load_state_dict: the checkpoint's loader state comes from a "
                             "non-distributed run; resume it with fit(distributed=False)")
        for key, mine in (("num_samples", self.sampler.dataset_size), ("shuffle", self.sampler.shuffle)):
            if state[key] != mine:
                raise ValueError(f"DistributedLoader.load_state_dict: saved with {key}={state[key]}, this "
                                 f"loader has {key}={mine}")
        global_batch = self.batch_size * self.sampler.num_replicas
        done = int(state["samples_done"])
        if done % global_batch:
            raise ValueError(f"DistributedLoader.load_state_dict: {done} samples of the epoch were used, not a "
                             f"multiple of this run's global batch {global_batch} ({self.batch_size} x "
                             f"{self.sampler.num_replicas} ranks); resume with the same global batch")
        self.sampler.seed = state["seed"]  # NOTE: the saved run's order continues, whatever seed this run drew
        self.sampler.set_epoch(int(state["epoch"]))
        self._resume_at = self._yielded = done // global_batch
