"""``DataLoader``: batches of any dataset, in a sampler's order, in this process or in worker processes.

It takes PyTorch's arguments. A nerve ``Dataset`` (one with ``get_batch``) is fetched a batch at a time (one
fancy index per array: no per-sample Python loop); any other object with ``__getitem__`` and ``__len__`` is
fetched sample by sample and combined by ``collate_fn``. An epoch's order is drawn when it starts, so
``num_workers`` changes who fetches, never the order; ``state_dict`` resumes an epoch where it stopped.
"""
from __future__ import annotations

import collections
import itertools
import multiprocessing
import numbers
import queue
import random
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy

from nerve import backend
from nerve.data.dataset import IterableDataset, default_collate, to_tensors
from nerve.data.sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader", "get_worker_info", "WorkerInfo"]


@dataclass(frozen=True)
class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker process."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """In a loader's worker process its ``WorkerInfo``; None in the main process (as PyTorch)."""
    return _worker_info


def _apply_transform(transform: Callable, batch: Any) -> Any:
    """Apply the input transform: to field 0 of a tuple batch, to the whole of any other batch."""
    if isinstance(batch, tuple):
        return (transform(batch[0]),) + batch[1:]
    return transform(batch)


def _convert(sample: Any) -> Any:
    """Arrays inside a sample become Tensors; numbers and strings stay (``batch_size=None``)."""
    if isinstance(sample, (tuple, list)):
        items = [_convert(s) for s in sample]
        return type(sample)(*items) if hasattr(sample, "_fields") else type(sample)(items)
    if isinstance(sample, dict):
        return {k: _convert(v) for k, v in sample.items()}
    if isinstance(sample, backend.ndarray):
        return to_tensors(sample)
    return sample


class DataLoader:
    """Iterate over a dataset in batches, with PyTorch's arguments.

    ``shuffle`` draws a permutation per epoch from ``generator`` (a ``nerve.Generator``, NumPy Generator or int
    seed; by default a child of nerve's seeded generator, made when the loader is); ``sampler`` or
    ``batch_sampler`` set the order instead. ``num_workers`` > 0 fetches batches in that many processes, in
    the same order as 0 workers. ``pin_memory`` is accepted and does nothing (there is no pinned memory).
    ``transform`` (nerve's) is applied to each batch's inputs (field 0 of tuple batches).
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn: Callable | None = None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False, pin_memory_device: str = "",
                 transform: Callable | None = None) -> None:
        iterable = isinstance(dataset, IterableDataset)
        if not iterable and not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(f"DataLoader: the dataset must define __getitem__ and __len__ (or be an "
                            f"IterableDataset), got {type(dataset).__name__}")
        for name, value in (("shuffle", shuffle), ("sampler", sampler), ("batch_sampler", batch_sampler)):
            if iterable and value:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified {name} option, but got "
                                 f"{name}={value!r}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral)
                                       or batch_size < 1):
            raise ValueError(f"DataLoader: batch_size must be a positive integer or None, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers option should be non-negative, got {num_workers!r}; "
                             "use num_workers=0 to disable multiprocessing")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout option should be non-negative, got {timeout}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("DataLoader: prefetch_factor option could only be specified with num_workers > 0")
        if num_workers == 0 and persistent_workers:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                             "sampler, and drop_last")
        if batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        n = len(dataset) if not iterable else None
        if n == 0:
            raise ValueError("DataLoader: the dataset is empty (0 samples)")
        if not iterable and drop_last and batch_size is not None and n < batch_size and sampler is None:
            raise ValueError(f"DataLoader: drop_last=True with batch_size {batch_size} larger than the "
                             f"dataset ({n} samples) would give no batches")
        self.dataset = dataset
        self.batch_size = None if batch_size is None or batch_sampler is not None else int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.transform = transform
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.prefetch_factor = 2 if prefetch_factor is None and num_workers else prefetch_factor
        self.persistent_workers = bool(persistent_workers)
        if isinstance(generator, numbers.Integral):
            generator = numpy.random.default_rng(int(generator))
        elif generator is None:
            generator = backend.default_generator().spawn(1)[0]
        self.generator = generator
        self._iterable = iterable
        if sampler is None and batch_sampler is None and not iterable:
            sampler = RandomSampler(dataset, generator=generator) if self.shuffle else SequentialSampler(dataset)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        if batch_sampler is None and batch_size is not None and not iterable:
            self.batch_sampler = BatchSampler(sampler, int(batch_size), self.drop_last)
        self._auto_batch = batch_sampler is None and batch_size is not None
        # NOTE: nerve's own datasets are fetched a batch at a time (a slice when the order is sequential).
        self._batched = collate_fn is None and hasattr(dataset, "get_batch") and self.batch_size is not None
        # NOTE: worker seeds come from a child of the loader's generator (spawning changes no one's draws), so
        # the number of workers changes neither this loader's order nor any later loader's.
        self._worker_seeds = generator.spawn(1)[0] if num_workers else None
        self._epoch_start_state = None
        self._batches_yielded = 0
        self._resume_at = 0

    def __len__(self) -> int:
        if self._iterable:   # as PyTorch: from the dataset's own __len__ (a TypeError without one)
            n = self._num_samples()
            if n is None:
                raise TypeError(f"DataLoader: {type(self.dataset).__name__} (an IterableDataset) has no __len__")
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    # --- fetching ---------------------------------------------------------------------------
    def _fetch(self, indices) -> Any:
        if self.batch_size is None and self.batch_sampler is None:
            sample = self.dataset[indices]
            return self.collate_fn(sample) if self.collate_fn is not None else _convert(sample)
        if self._batched:
            batch = self.dataset.get_batch(indices)
            if self.transform is not None:
                batch = _apply_transform(self.transform, batch)
            return to_tensors(batch)
        if isinstance(indices, slice):
            indices = range(*indices.indices(len(self.dataset)))
        batch = (self.collate_fn or default_collate)([self.dataset[int(i)] for i in indices])
        if self.transform is not None:
            batch = _apply_transform(self.transform, batch)
        return batch

    def _rng(self):
        """The generator whose state fixes an epoch's order (None for a deterministic order)."""
        source = self.batch_sampler.sampler if isinstance(self.batch_sampler, BatchSampler) else self.sampler
        rng = getattr(source, "generator", None)
        return rng if isinstance(rng, numpy.random.Generator) else None

    def _batches(self) -> Iterator[Any]:
        """This epoch's batches of indices, drawn lazily (a sampler may be practically endless, as minGPT's
        ``RandomSampler(replacement=True, num_samples=10**10)``); slices for a sequential pass over a nerve Dataset."""
        if not self._auto_batch:
            if self.batch_sampler is None:
                return iter(self.sampler)
            return (numpy.asarray(b, dtype=numpy.int64) for b in self.batch_sampler)
        if isinstance(self.sampler, SequentialSampler) and self.sampler.data_source is self.dataset:
            # NOTE: without shuffling a slice gives views of array-backed data (no copy).
            bs, n = self.batch_size, len(self.dataset)
            return (slice(lo, min(lo + bs, n)) for lo in range(0, len(self) * bs, bs))
        return (numpy.asarray(b, dtype=numpy.int64) for b in self.batch_sampler)

    def __iter__(self) -> Iterator[Any]:
        start = self._resume_at
        self._resume_at = 0
        rng = self._rng()
        self._epoch_start_state = rng.bit_generator.state if rng is not None else None
        self._batches_yielded = start
        if self._iterable:
            stream = self._epoch_stream_workers() if self.num_workers else self._group(iter(self.dataset))
            return self._count(itertools.islice(stream, start, None), start)
        batches = enumerate(self._batches())
        # a resumed epoch redraws the same order from the saved state and skips the batches already used
        batches = itertools.islice(batches, start, None)
        if self.num_workers:
            return self._epoch_workers(batches)
        return self._epoch(batches)

    def _epoch(self, batches: Iterator[tuple]) -> Iterator[Any]:
        for b, indices in batches:
            batch = self._fetch(indices)
            # counted before the yield: a checkpoint taken after using this batch resumes at the next one
            self._batches_yielded = b + 1
            yield batch

    def _context(self):
        method = self.multiprocessing_context or ("fork" if sys.platform.startswith("linux") else "spawn")
        return multiprocessing.get_context(method) if isinstance(method, str) else method

    def _epoch_workers(self, batches: Iterator[tuple]) -> Iterator[Any]:
        """Batch b goes to worker b % num_workers; results are yielded in order, a few batches ahead."""
        context, base_seed = self._context(), int(self._worker_seeds.integers(1 << 62))
        results = context.Queue()
        tasks = [context.Queue() for _ in range(self.num_workers)]
        workers = [context.Process(target=_worker_loop, daemon=True,
                                   args=(self, tasks[w], results, w, base_seed + w)) for w in range(self.num_workers)]
        for w in workers:
            w.start()
        ahead = self.prefetch_factor * self.num_workers
        pending, done = collections.deque(), {}
        try:
            while True:
                for b, indices in itertools.islice(batches, ahead - len(pending)):
                    tasks[b % self.num_workers].put((b, indices))
                    pending.append(b)
                if not pending:
                    return
                b = pending.popleft()
                while b not in done:
                    index, batch, error = self._receive(results, workers)
                    done[index] = batch, error
                batch, error = done.pop(b)
                if error is not None:   # raised in the batches' order, whichever worker failed first
                    raise RuntimeError(f"DataLoader worker {b % self.num_workers} failed on batch {b}:\n{error}")
                self._batches_yielded = b + 1
                yield batch
        finally:
            for t in tasks:
                t.put(None)
            for w in workers:
                w.join(timeout=5)
                if w.is_alive():
                    w.terminate()

    # --- iterable datasets ------------------------------------------------------------------
    def _group(self, samples: Iterator[Any]) -> Iterator[Any]:
        """Batches collated from a stream of samples, ``batch_size`` at a time."""
        if self.batch_size is None:
            for sample in samples:
                yield self.collate_fn(sample) if self.collate_fn is not None else _convert(sample)
            return
        collate = self.collate_fn or default_collate
        while chunk := list(itertools.islice(samples, self.batch_size)):
            if len(chunk) < self.batch_size and self.drop_last:
                return
            batch = collate(chunk)
            yield _apply_transform(self.transform, batch) if self.transform is not None else batch

    def _count(self, stream: Iterator[Any], start: int) -> Iterator[Any]:
        for b, batch in enumerate(stream, start):
            self._batches_yielded = b + 1
            yield batch
        self._batches_yielded = 0   # the stream ended: the next state starts a new epoch

    def _epoch_stream_workers(self) -> Iterator[Any]:
        """Each worker batches its own copy of the stream; batches come round-robin from the workers (PyTorch's
        order). A bounded queue per worker keeps an endless stream from filling memory."""
        context, base_seed = self._context(), int(self._worker_seeds.integers(1 << 62))
        queues = [context.Queue(maxsize=self.prefetch_factor) for _ in range(self.num_workers)]
        workers = [context.Process(target=_stream_worker_loop, daemon=True, args=(self, queues[w], w, base_seed + w))
                   for w in range(self.num_workers)]
        for w in workers:
            w.start()
        try:
            active = list(range(self.num_workers))
            while active:
                for w in list(active):
                    kind, payload = self._receive(queues[w], workers)
                    if kind == "end":
                        active.remove(w)
                    elif kind == "error":
                        raise RuntimeError(f"DataLoader worker {w} failed:\n{payload}")
                    else:
                        yield payload
        finally:
            for w in workers:
                if w.is_alive():
                    w.terminate()
                w.join()

    def _receive(self, results, workers) -> tuple:
        waited = 0.0
        while True:
            try:
                return results.get(timeout=1.0)
            except queue.Empty:
                waited += 1.0
                dead = [w for w in workers if not w.is_alive() and w.exitcode != 0]   # 0: a stream that ended
                if dead:
                    raise RuntimeError(f"DataLoader worker (pid {dead[0].pid}) exited unexpectedly with code "
                                       f"{dead[0].exitcode}") from None
                if self.timeout and waited >= self.timeout:
                    raise RuntimeError(f"DataLoader timed out after {self.timeout} s waiting for a batch") from None

    # --- resuming ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Plain-Python state: the order's generator at the start of the current epoch and the batches used.

        Between epochs (or after the last batch) it holds the generator's current state and 0 batches. For an
        IterableDataset, resuming re-reads the stream and skips the batches used (exact for a repeatable stream).
        """
        in_epoch = 0 < self._batches_yielded and (self._iterable or self._batches_yielded < len(self))
        rng = self._rng()
        if in_epoch and rng is not None:
            state = self._epoch_start_state
        else:
            state = rng.bit_generator.state if rng is not None else None
        return {"num_samples": self._num_samples(), "batch_size": self.batch_size, "shuffle": self.shuffle,
                "generator": state, "batches_yielded": self._batches_yielded if in_epoch else 0}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()``: the next ``iter(loader)`` yields exactly the remaining batches."""
        for key in ("num_samples", "batch_size", "shuffle"):
            mine = getattr(self, key) if key != "num_samples" else self._num_samples()
            if state[key] != mine:
                raise ValueError(f"DataLoader.load_state_dict: the state was saved with {key}={state[key]}, "
                                 f"this loader has {key}={mine}")
        rng = self._rng()
        if rng is not None and state["generator"] is not None:
            rng.bit_generator.state = state["generator"]
        self._resume_at = int(state["batches_yielded"])
        self._batches_yielded = self._resume_at
        self._epoch_start_state = state["generator"]

    def _num_samples(self) -> int | None:
        """The dataset's length (None for a stream without one)."""
        try:
            return len(self.dataset)
        except (TypeError, NotImplementedError):
            return None

    def __repr__(self) -> str:
        n = self._num_samples()
        batches = "?" if n is None else len(self)
        return (f"DataLoader({type(self.dataset).__name__} of {'?' if n is None else n} samples, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last}, "
                f"batches={batches})")


def _start_worker(loader: DataLoader, worker_id: int, seed: int) -> None:
    """Seed every generator of a worker process from ``seed`` and run ``worker_init_fn``."""
    global _worker_info
    _worker_info = WorkerInfo(worker_id, loader.num_workers, seed, loader.dataset)
    backend.manual_seed(seed)
    numpy.random.seed(seed % (1 << 32))
    random.seed(seed)
    if loader.worker_init_fn is not None:
        loader.worker_init_fn(worker_id)


def _stream_worker_loop(loader: DataLoader, results, worker_id: int, seed: int) -> None:
    """A worker process for an IterableDataset: batch its own copy of the stream, then say "end"."""
    try:
        _start_worker(loader, worker_id, seed)
        for batch in loader._group(iter(loader.dataset)):
            results.put(("batch", batch))
        results.put(("end", None))
    except Exception:  # noqa: BLE001 - the main process re-raises it with the worker's traceback
        results.put(("error", traceback.format_exc()))


def _worker_loop(loader: DataLoader, tasks, results, worker_id: int, seed: int) -> None:
    """A worker process: seed, run ``worker_init_fn``, fetch the batches it is sent until None."""
    _start_worker(loader, worker_id, seed)
    while True:
        task = tasks.get()
        if task is None:
            return
        index, indices = task
        try:
            results.put((index, loader._fetch(indices), None))
        except Exception:  # noqa: BLE001 - the main process re-raises it with the worker's traceback
            results.put((index, None, traceback.format_exc()))

