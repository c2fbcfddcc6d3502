"""Data loading the PyTorch way: any indexable dataset, collate, samplers, worker processes, nerve.utils.data."""
import os
from collections import namedtuple

import numpy as np
import pytest

import nerve
from nerve.utils.data import (
    BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler, SequentialSampler, Subset,
    SubsetRandomSampler, TensorDataset, WeightedRandomSampler, get_worker_info, random_split,
)


class Plain:
    """Not a nerve Dataset: only __getitem__ and __len__, as PyTorch accepts."""

    def __init__(self, n=10):
        self.x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(i) % 3


def _stack(samples):
    return np.stack([s[0] for s in samples]), np.array([s[1] for s in samples])


def test_loader_over_a_plain_object_fetches_samples_and_collates():
    data = Plain(10)
    batches = list(DataLoader(data, batch_size=4))
    assert len(batches) == 3 and isinstance(batches[0][0], nerve.Tensor)
    for b, (x, y) in enumerate(batches):
        want_x, want_y = _stack([data[i] for i in range(4 * b, min(4 * b + 4, 10))])
        np.testing.assert_array_equal(x.numpy(), want_x)
        np.testing.assert_array_equal(y.numpy(), want_y)
        assert x.dtype == np.float32 and y.dtype == np.int64
    order = np.random.default_rng(3).permutation(10)
    x, y = next(iter(DataLoader(data, batch_size=10, shuffle=True, generator=nerve.Generator().manual_seed(3))))
    np.testing.assert_array_equal(x.numpy(), data.x[order])


def test_default_collate_structures():
    Point = namedtuple("Point", "x label")
    points = [Point(np.ones(2) * i, i) for i in range(3)]
    batch = next(iter(DataLoader(points, batch_size=3)))
    assert isinstance(batch, Point) and batch.x.shape == (3, 2) and batch.label.tolist() == [0, 1, 2]
    floats = next(iter(DataLoader([0.5, 1.5], batch_size=2)))
    assert floats.dtype == nerve.get_default_dtype() and floats.tolist() == [0.5, 1.5]
    tensors = next(iter(DataLoader([nerve.ones(2), nerve.zeros(2)], batch_size=2)))
    assert tensors.tolist() == [[1.0, 1.0], [0.0, 0.0]]
    dicts = next(iter(DataLoader([{"a": 1, "s": "x"}, {"a": 2, "s": "y"}], batch_size=2)))
    assert dicts["a"].tolist() == [1, 2] and dicts["s"] == ["x", "y"]
    custom = list(DataLoader(Plain(4), batch_size=2, collate_fn=lambda s: [label for _, label in s]))
    assert custom == [[0, 1], [2, 0]]


def test_batch_size_none_yields_single_samples():
    samples = list(DataLoader(Plain(3), batch_size=None))
    assert len(samples) == 3 and samples[1][0].shape == (3,) and samples[1][1] == 1


def test_samplers_against_numpy_draws():
    data = list(range(7))
    assert list(SequentialSampler(data)) == data and len(SequentialSampler(data)) == 7
    assert list(RandomSampler(data, generator=5)) == np.random.default_rng(5).permutation(7).tolist()
    with_replacement = list(RandomSampler(data, replacement=True, num_samples=20, generator=5))
    assert with_replacement == np.random.default_rng(5).integers(0, 7, size=20).tolist()
    rng = np.random.default_rng(5)
    longer = list(RandomSampler(data, num_samples=10, generator=5))
    assert longer == np.concatenate([rng.permutation(7), rng.permutation(7)])[:10].tolist()
    subset = list(SubsetRandomSampler([10, 20, 30], generator=2))
    assert subset == [[10, 20, 30][i] for i in np.random.default_rng(2).permutation(3)]
    assert list(BatchSampler(range(7), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, True)) == [[0, 1, 2], [3, 4, 5]] and len(BatchSampler(range(7), 3, True)) == 2


def test_weighted_sampler_follows_the_weights():
    weights = [0.1, 0.0, 0.6, 0.3]
    draws = np.array(list(WeightedRandomSampler(weights, 20000, generator=0)))
    freq = np.bincount(draws, minlength=4) / draws.size
    np.testing.assert_allclose(freq, weights, atol=0.015)      # 3-sigma of a 20k-draw binomial is < 0.011
    distinct = list(WeightedRandomSampler(weights, 3, replacement=False, generator=0))
    assert sorted(distinct) == [0, 2, 3]
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler(weights, 4, replacement=False)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1.0, -1.0], 2)


def test_sampler_errors_name_the_argument():
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler([1, 2], num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler([1, 2], replacement=1)
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(TypeError, match="generator must be"):
        RandomSampler([1], generator="seed")


def test_sampler_and_batch_sampler_arguments():
    data = Plain(10)
    loader = DataLoader(data, batch_size=4, sampler=SubsetRandomSampler([1, 3, 5, 7, 9], generator=1))
    seen = [y for _, labels in loader for y in labels.tolist()]
    order = np.array([1, 3, 5, 7, 9])[np.random.default_rng(1).permutation(5)]
    assert len(loader) == 2 and seen == (order % 3).tolist()
    loader = DataLoader(data, batch_sampler=[[0, 1], [5, 6, 7]])
    assert [b[0].shape[0] for b in loader] == [2, 3] and len(loader) == 2
    assert loader.batch_size is None
    fast = DataLoader(TensorDataset(np.arange(10)), batch_size=3, sampler=RandomSampler(range(10), generator=4))
    assert np.concatenate([b[0].numpy() for b in fast]).tolist() == np.random.default_rng(4).permutation(10).tolist()


def test_a_practically_endless_sampler_is_drawn_lazily():
    """minGPT's trainer: RandomSampler(replacement=True, num_samples=int(1e10)) and a loop that stops itself."""
    def first_batches(num_workers):
        sampler = RandomSampler(Plain(10), replacement=True, num_samples=int(1e10), generator=8)
        loader = DataLoader(Plain(10), batch_size=4, sampler=sampler, num_workers=num_workers)
        assert len(loader) == 2_500_000_000
        batches = iter(loader)
        labels = [next(batches)[0].numpy()[:, 0].tolist() for _ in range(3)]
        batches.close()
        return labels
    serial = first_batches(0)
    assert serial == (3.0 * np.random.default_rng(8).integers(0, 10, size=12)).reshape(3, 4).tolist()
    assert first_batches(2) == serial


def test_mutually_exclusive_arguments_raise_pytorchs_errors():
    data = Plain(4)
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(data, sampler=SequentialSampler(data), shuffle=True)
    for kwargs in ({"batch_size": 2}, {"shuffle": True}, {"sampler": SequentialSampler(data)}, {"drop_last": True}):
        with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive with batch_size, shuffle"):
            DataLoader(data, batch_sampler=[[0]], **kwargs)
    with pytest.raises(ValueError, match="mutually exclusive with drop_last"):
        DataLoader(data, batch_size=None, drop_last=True)
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        DataLoader(data, num_workers=-1)
    with pytest.raises(ValueError, match="prefetch_factor"):
        DataLoader(data, prefetch_factor=2)
    with pytest.raises(ValueError, match="persistent_workers"):
        DataLoader(data, persistent_workers=True)
    with pytest.raises(TypeError, match=r"must define __getitem__ and __len__ \(or be an IterableDataset\), got int"):
        DataLoader(3)


def _labels(loader):
    return [[t.numpy().tolist() for t in batch] for batch in loader]


class WorkerTagged(Plain):
    def __getitem__(self, i):
        info = get_worker_info()
        return self.x[i], -1 if info is None else info.id


def test_workers_give_the_same_batches_in_the_same_order():
    for data, kwargs in ((Plain(23), {}), (TensorDataset(np.arange(46.0).reshape(23, 2), np.arange(23)), {}),
                         (Plain(23), {"drop_last": True})):
        serial = DataLoader(data, batch_size=4, shuffle=True, generator=9, **kwargs)
        parallel = DataLoader(data, batch_size=4, shuffle=True, generator=9, num_workers=2, pin_memory=True,
                              **kwargs)
        for _ in range(2):                                           # two epochs: new permutations, still equal
            assert _labels(serial) == _labels(parallel)
    nerve.manual_seed(2)
    DataLoader(Plain(5), num_workers=2)
    after_workers = _labels(DataLoader(Plain(9), batch_size=9, shuffle=True))
    nerve.manual_seed(2)
    DataLoader(Plain(5))
    assert _labels(DataLoader(Plain(9), batch_size=9, shuffle=True)) == after_workers   # later loaders unchanged
    tagged = list(DataLoader(WorkerTagged(12), batch_size=3, num_workers=2))
    assert [b[1].tolist() for b in tagged] == [[0] * 3, [1] * 3, [0] * 3, [1] * 3]   # batch b from worker b % 2
    assert get_worker_info() is None


def test_spawned_workers_and_resuming_a_worker_epoch():
    serial = _labels(DataLoader(Plain(11), batch_size=4, shuffle=True, generator=3))
    spawned = DataLoader(Plain(11), batch_size=4, shuffle=True, generator=3, num_workers=2,
                         multiprocessing_context="spawn")
    assert _labels(spawned) == serial
    nerve.manual_seed(5)
    stopped = DataLoader(Plain(11), batch_size=4, shuffle=True, num_workers=2)
    batches = iter(stopped)
    head = [[t.numpy().tolist() for t in next(batches)]]
    state = stopped.state_dict()
    batches.close()
    nerve.manual_seed(5)
    resumed = DataLoader(Plain(11), batch_size=4, shuffle=True)
    full = _labels(resumed)
    resumed.load_state_dict(state)
    assert state["batches_yielded"] == 1 and head + _labels(resumed) == full


def _init(worker_id):
    np.random.seed(1000 + worker_id)


class Noisy(Plain):
    def __getitem__(self, i):
        return np.random.randint(0, 10 ** 6)


def test_worker_init_fn_runs_in_each_worker_and_errors_reach_the_main_process():
    values = [b.tolist() for b in DataLoader(Noisy(4), batch_size=2, num_workers=2, worker_init_fn=_init)]
    np.random.seed(1000)
    first = [np.random.randint(0, 10 ** 6), np.random.randint(0, 10 ** 6)]
    assert values[0] == first                                  # worker 0 drew after _init(0)

    class Broken(Plain):
        def __getitem__(self, i):
            raise KeyError(f"sample {i} is broken")
    with pytest.raises(RuntimeError, match="(?s)DataLoader worker 0 failed on batch 0.*sample 0 is broken"):
        list(DataLoader(Broken(4), batch_size=2, num_workers=2))

    class Dying(Plain):
        def __getitem__(self, i):
            os._exit(3)
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid \d+\) exited unexpectedly with code 3"):
        list(DataLoader(Dying(4), batch_size=2, num_workers=1))


def test_resume_with_a_sampler_restores_its_generator():
    def run(state=None, stop=None):
        loader = DataLoader(Plain(10), batch_size=3, sampler=RandomSampler(range(10), generator=nerve.Generator()))
        if state is not None:
            loader.load_state_dict(state)
        seen = []
        for batch in loader:
            seen.append(batch[0].numpy()[:, 0].tolist())
            if stop is not None and len(seen) == stop:
                return seen, loader.state_dict()
        return seen, None
    head, state = run(stop=2)
    tail, _ = run(state=state)
    assert len(tail) == 2 and sorted(sum(head + tail, [])) == [3.0 * i for i in range(10)]


def test_utils_data_alias_concat_subset_and_split_over_plain_datasets():
    import nerve.utils.data as alias
    assert alias.DataLoader is nerve.data.DataLoader and nerve.utils.data.Dataset is Dataset
    both = ConcatDataset([Plain(3), Plain(2)])
    assert len(both) == 5 and both[3][0].tolist() == [0.0, 1.0, 2.0] and both[-1][0].tolist() == [3.0, 4.0, 5.0]
    with pytest.raises(IndexError, match="out of range"):
        both[5]
    x, _ = next(iter(DataLoader(both, batch_size=5)))
    assert x.numpy()[:, 0].tolist() == [0.0, 3.0, 6.0, 0.0, 3.0]
    joined = TensorDataset(np.arange(3)) + TensorDataset(np.arange(3, 5))
    assert [b[0].tolist() for b in DataLoader(joined, batch_size=2)] == [[0, 1], [2, 3], [4]]
    train, test = random_split(Plain(10), [0.8, 0.2], generator=nerve.Generator().manual_seed(0))
    assert isinstance(train, Subset) and len(train) == 8 and len(test) == 2
    assert sum(len(b[0]) for b in DataLoader(train, batch_size=3)) == 8


class Squares(IterableDataset):
    """0, 1, 4, ... (n - 1)**2; with workers each one takes every num_workers-th value (PyTorch's sharding idiom)."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        first, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter([(float(i * i), i) for i in range(first, self.n, step)])


class Endless(IterableDataset):
    def __iter__(self):
        i = 0
        while True:
            yield i
            i += 1


def test_iterable_dataset_batches_the_stream():
    batches = [(x.tolist(), y.tolist()) for x, y in DataLoader(Squares(7), batch_size=3)]
    assert batches == [([0.0, 1.0, 4.0], [0, 1, 2]), ([9.0, 16.0, 25.0], [3, 4, 5]), ([36.0], [6])]
    assert [y.tolist() for _, y in DataLoader(Squares(7), batch_size=3, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]
    assert [s[1] for s in DataLoader(Squares(3), batch_size=None)] == [0, 1, 2]
    with pytest.raises(TypeError, match="has no __len__"):
        len(DataLoader(Squares(3)))                       # no __len__ on the dataset: none on the loader

    class Sized(Squares):
        def __len__(self):
            return self.n
    assert len(DataLoader(Sized(7), batch_size=3)) == 3 and len(DataLoader(Sized(7), batch_size=3, drop_last=True)) == 2
    for name, value in (("shuffle", True), ("sampler", [0]), ("batch_sampler", [[0]])):
        with pytest.raises(ValueError, match=f"IterableDataset: expected unspecified {name} option"):
            DataLoader(Squares(3), **{name: value})
    with pytest.raises(TypeError, match="has no indices"):
        Squares(3)[0]


def test_iterable_dataset_with_workers_comes_round_robin():
    labels = [y.tolist() for _, y in DataLoader(Squares(10), batch_size=2, num_workers=2)]
    # worker 0 streams 0, 2, 4, 6, 8 and worker 1 streams 1, 3, 5, 7, 9; batches alternate between them
    assert labels == [[0, 2], [1, 3], [4, 6], [5, 7], [8], [9]]
    stream = iter(DataLoader(Endless(), batch_size=4, num_workers=2))
    first = [next(stream).tolist() for _ in range(3)]
    stream.close()                                        # the workers stop; their queues stay bounded
    assert first == [[0, 1, 2, 3], [0, 1, 2, 3], [4, 5, 6, 7]]


def test_iterable_dataset_resumes_by_skipping_used_batches():
    loader = DataLoader(Squares(9), batch_size=2)
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    assert state["batches_yielded"] == 1 and state["num_samples"] is None
    again = DataLoader(Squares(9), batch_size=2)
    again.load_state_dict(state)
    assert [y.tolist() for _, y in again] == [[2, 3], [4, 5], [6, 7], [8]]
    assert again.state_dict()["batches_yielded"] == 0
