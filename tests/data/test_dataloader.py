import json

import numpy as np
import pytest

import nerve
from nerve.data import DataLoader, Dataset, TensorDataset


def _data(n=10):
    return TensorDataset(np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n))


def _labels(loader):
    return [b[1].numpy().tolist() for b in loader]


def test_batches_in_order():
    loader = DataLoader(_data(), batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)]
    assert _labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64


def test_drop_last():
    loader = DataLoader(_data(), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert _labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    loader = DataLoader(_data(), batch_size=4, shuffle=True, drop_last=True, generator=0)
    labels = _labels(loader)
    assert [len(b) for b in labels] == [4, 4] and len(set(sum(labels, []))) == 8


def test_shuffle_is_a_seeded_permutation():
    a = _labels(DataLoader(_data(), batch_size=3, shuffle=True, generator=7))
    b = _labels(DataLoader(_data(), batch_size=3, shuffle=True, generator=np.random.default_rng(7)))
    assert a == b
    assert sorted(sum(a, [])) == list(range(10)) and sum(a, []) != list(range(10))
    loader = DataLoader(_data(), batch_size=3, shuffle=True, generator=7)
    assert _labels(loader) != _labels(loader)   # a new permutation each epoch


def test_default_generator_follows_manual_seed():
    nerve.manual_seed(3)
    first = DataLoader(_data(), batch_size=10, shuffle=True)
    nerve.manual_seed(3)
    again = DataLoader(_data(), batch_size=10, shuffle=True)
    assert _labels(first) == _labels(again)
    nerve.manual_seed(4)
    other = DataLoader(_data(), batch_size=10, shuffle=True)
    assert _labels(other) != _labels(DataLoader(_data(), batch_size=10, shuffle=True))


def test_fast_path_avoids_per_sample_access(monkeypatch):
    def fail(self, index):
        raise AssertionError("per-sample access")
    monkeypatch.setattr(TensorDataset, "__getitem__", fail)
    loader = DataLoader(_data(1000), batch_size=100, shuffle=True, generator=0)
    assert sum(len(b[1]) for b in loader) == 1000


def test_transform_applies_to_inputs_only():
    loader = DataLoader(_data(), batch_size=5, transform=lambda x: x * 10)
    x, y = next(iter(loader))
    np.testing.assert_array_equal(x.numpy()[1], [20, 30])
    np.testing.assert_array_equal(y.numpy(), [0, 1, 2, 3, 4])


class _DictData(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"x": np.full(3, i, dtype=np.float32), "label": i, "name": f"s{i}"}


def test_dict_samples_and_custom_collate():
    batch = next(iter(DataLoader(_DictData(), batch_size=2)))
    assert batch["x"].shape == (2, 3) and batch["label"].numpy().tolist() == [0, 1]
    assert batch["name"] == ["s0", "s1"]
    loader = DataLoader(_DictData(), batch_size=3, collate_fn=lambda samples: [s["label"] for s in samples])
    assert list(loader) == [[0, 1, 2], [3, 4]]


def test_loader_errors():
    with pytest.raises(ValueError, match="dataset is empty"):
        DataLoader(TensorDataset(np.zeros((0, 3))))
    with pytest.raises(ValueError, match="batch_size must be a positive integer or None, got 0"):
        DataLoader(_data(), batch_size=0)
    with pytest.raises(ValueError, match="no batches"):
        DataLoader(_data(), batch_size=20, drop_last=True)


@pytest.mark.parametrize("shuffle", [True, False])
def test_resume_mid_epoch(shuffle):
    def run(stop_after=None, state=None):
        nerve.manual_seed(11)
        loader = DataLoader(_data(23), batch_size=4, shuffle=shuffle)
        if state is not None:
            loader.load_state_dict(state)
        seen = []
        for epoch in range(3):
            for i, batch in enumerate(loader):
                seen.append(batch[1].numpy().tolist())
                if stop_after is not None and len(seen) == stop_after:
                    return seen, loader.state_dict()
        return seen, None

    full, _ = run()
    head, state = run(stop_after=9)       # two batches into the second epoch
    assert state["batches_yielded"] == 3 and state["num_samples"] == 23
    state = json.loads(json.dumps(state))   # plain Python values: checkpoints can store it as JSON
    tail, _ = run(state=state)
    assert head + tail[:len(full) - 9] == full


def test_resume_at_epoch_boundary_starts_next_epoch():
    loader = DataLoader(_data(8), batch_size=4, shuffle=True, generator=1)
    list(loader)
    state = loader.state_dict()
    assert state["batches_yielded"] == 0
    expected = _labels(loader)
    other = DataLoader(_data(8), batch_size=4, shuffle=True, generator=99)
    other.load_state_dict(state)
    assert _labels(other) == expected


def test_load_state_dict_mismatch():
    state = DataLoader(_data(10), batch_size=4).state_dict()
    with pytest.raises(ValueError, match="num_samples=10, this loader has num_samples=9"):
        DataLoader(_data(9), batch_size=4).load_state_dict(state)
