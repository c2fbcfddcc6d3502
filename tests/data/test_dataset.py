import numpy as np
import pytest

import nerve
from nerve.data import Dataset, Subset, TensorDataset, collate_arrays, default_collate, random_split


def test_tensor_dataset_items_and_len():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = nerve.arange(6)
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    xi, yi = ds[4]
    assert isinstance(xi, nerve.Tensor) and isinstance(yi, nerve.Tensor)
    np.testing.assert_array_equal(xi.numpy(), [8, 9])
    assert yi.item() == 4
    bx, by = ds.get_batch(np.array([5, 0]))
    np.testing.assert_array_equal(bx, [[10, 11], [0, 1]])
    np.testing.assert_array_equal(by, [5, 0])
    assert ds.tensors[0].shape == (6, 2)


def test_tensor_dataset_errors():
    with pytest.raises(ValueError, match="TensorDataset: tensors have different lengths: 100 and 99"):
        TensorDataset(np.zeros((100, 3)), np.zeros(99))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(np.float32(3.0))


def test_subset_maps_indices():
    ds = TensorDataset(np.arange(10))
    sub = Subset(ds, [7, 2, 9])
    assert len(sub) == 3
    assert sub[1][0].item() == 2
    np.testing.assert_array_equal(sub.get_batch(np.array([2, 0]))[0], [9, 7])
    np.testing.assert_array_equal(sub.get_batch(slice(0, 2))[0], [7, 2])
    with pytest.raises(IndexError, match="Subset"):
        Subset(ds, [3, 10])


def test_random_split_lengths_and_fractions():
    ds = TensorDataset(np.arange(10))
    a, b = random_split(ds, [7, 3], generator=np.random.default_rng(1))
    got = np.concatenate([a.indices, b.indices])
    assert (len(a), len(b)) == (7, 3)
    np.testing.assert_array_equal(np.sort(got), np.arange(10))
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=3)
    assert [len(p) for p in parts] == [5, 3, 2]
    parts = random_split(TensorDataset(np.arange(11)), [0.5, 0.5], generator=3)
    assert [len(p) for p in parts] == [6, 5]   # the leftover sample goes to the first split


def test_random_split_determinism():
    ds = TensorDataset(np.arange(50))
    s1 = random_split(ds, [0.8, 0.2], generator=np.random.default_rng(5))
    s2 = random_split(ds, [0.8, 0.2], generator=np.random.default_rng(5))
    np.testing.assert_array_equal(s1[0].indices, s2[0].indices)
    nerve.manual_seed(9)
    d1 = random_split(ds, [40, 10])
    nerve.manual_seed(9)
    d2 = random_split(ds, [40, 10])
    np.testing.assert_array_equal(d1[1].indices, d2[1].indices)


def test_random_split_errors():
    ds = TensorDataset(np.arange(10))
    with pytest.raises(ValueError, match="sum to 9 but the dataset has 10"):
        random_split(ds, [5, 4])
    with pytest.raises(ValueError, match="fractions must sum to 1"):
        random_split(ds, [0.5, 0.4])


def test_collate_structures():
    samples = [({"a": np.ones(2), "b": 3}, 1.5, "s", True), ({"a": np.zeros(2), "b": 4}, 2.5, "t", False)]
    d, f, s, b = collate_arrays(samples)
    assert d["a"].shape == (2, 2) and d["b"].dtype == np.int64
    assert f.dtype == nerve.get_default_dtype()
    assert s == ["s", "t"] and b.dtype == bool
    t = default_collate([(nerve.ones(3), 1), (nerve.zeros(3), 2)])
    assert isinstance(t, tuple) and t[0].shape == (2, 3) and isinstance(t[1], nerve.Tensor)


def test_collate_errors():
    with pytest.raises(ValueError, match="different shapes"):
        collate_arrays([np.zeros(2), np.zeros(3)])
    with pytest.raises(ValueError, match="different numbers of fields"):
        collate_arrays([(1, 2), (1,)])
    with pytest.raises(TypeError, match="collate_fn"):
        collate_arrays([object(), object()])


def test_abstract_dataset():
    class Bare(Dataset):
        pass
    with pytest.raises(NotImplementedError, match="Bare must define __getitem__"):
        Bare()[0]
