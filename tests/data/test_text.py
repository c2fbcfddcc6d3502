"""Character vocabulary, text split and windows, and the tiny shakespeare loader."""
from pathlib import Path

import numpy as np
import pytest

import nerve
from nerve.data import DataLoader
from nerve.data.datasets import download, load_shakespeare, shakespeare
from nerve.data.text import CharVocab, TextDataset, random_windows, split_text
from tests.helpers import offline_data

_REPO = Path(__file__).resolve().parents[2]
SHARED = next((p for p in (_REPO.parent / "shared" / "data", _REPO / "shared" / "data") if p.is_dir()),
              _REPO.parent / "shared" / "data")
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


def test_vocab_roundtrip():
    vocab = CharVocab(TEXT)
    assert vocab.chars == "".join(sorted(set(TEXT))) and vocab.size == len(vocab) == len(set(TEXT))
    ids = vocab.encode(TEXT)
    assert ids.dtype == np.int64 and ids.shape == (len(TEXT),)
    assert vocab.decode(ids) == TEXT and vocab.decode(nerve.tensor(ids)) == TEXT
    assert vocab.decode(ids.tolist()) == TEXT
    assert CharVocab(vocab.chars).chars == vocab.chars  # rebuilt from the saved characters
    np.testing.assert_array_equal(vocab.encode("\n"), [0])  # sorted: newline first
    assert vocab.encode("").shape == (0,)


def test_vocab_errors():
    vocab = CharVocab("abc")
    with pytest.raises(ValueError, match=r"not in the vocabulary of 3: \['d', 'é'\]"):
        vocab.encode("abdé")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 3\)"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError, match="empty"):
        CharVocab("")
    with pytest.raises(TypeError, match="expected a str"):
        CharVocab(["a"])


def test_split_and_random_windows():
    ids = np.arange(100)
    train, val = split_text(ids)
    np.testing.assert_array_equal(train, np.arange(90))
    np.testing.assert_array_equal(val, np.arange(90, 100))
    assert len(split_text(ids, 0.25)[1]) == 25
    x, y = random_windows(ids, 8, 5, generator=0)
    assert x.shape == y.shape == (5, 8) and x.dtype == y.dtype == np.int64
    np.testing.assert_array_equal(y, x + 1)  # y is x shifted one step on
    np.testing.assert_array_equal(x[:, 1:] - x[:, :-1], 1)
    assert x.min() >= 0 and y.max() <= 99
    x2, _ = random_windows(ids, 8, 5, generator=np.random.default_rng(0))
    np.testing.assert_array_equal(x, x2)
    with pytest.raises(ValueError, match="too short"):
        random_windows(np.arange(8), 8, 2)
    with pytest.raises(ValueError, match="val_fraction"):
        split_text(ids, 1.0)
    with pytest.raises(ValueError, match="1-D array of integer ids"):
        split_text(np.zeros((2, 3), dtype=np.int64))


def test_text_dataset_windows_and_loader():
    ids = np.arange(50)
    ds = TextDataset(ids, block_size=10)
    assert len(ds) == 4  # starts 0, 10, 20, 30: each window needs its next id
    x, y = ds[3]
    np.testing.assert_array_equal(x.numpy(), np.arange(30, 40))
    np.testing.assert_array_equal(y.numpy(), np.arange(31, 41))
    overlapping = TextDataset(ids, block_size=10, stride=1)
    assert len(overlapping) == 40
    xb, yb = overlapping.get_batch(np.array([0, 39]))
    np.testing.assert_array_equal(xb[1], np.arange(39, 49))
    np.testing.assert_array_equal(yb[1], np.arange(40, 50))
    batches = list(DataLoader(ds, batch_size=3))
    assert [tuple(b[0].shape) for b in batches] == [(3, 10), (1, 10)]
    np.testing.assert_array_equal(batches[0][1].numpy(), np.arange(1, 31).reshape(3, 10))
    train, val = TextDataset.splits(np.arange(200), block_size=10)
    assert len(train) == 17 and len(val) == 1 and val[0][0].numpy()[0] == 180
    with pytest.raises(IndexError, match="out of range for 4 windows"):
        ds[4]
    with pytest.raises(ValueError, match="too short"):
        TextDataset(np.arange(5), block_size=5)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No NERVE_DATA, an empty cache in tmp_path, and no network."""
    return offline_data(monkeypatch, tmp_path)


def test_shakespeare_from_shared_copy():
    path = SHARED / "tinyshakespeare" / "input.txt"
    if not path.is_file():
        pytest.skip(f"shared copy {path} is missing (the loader is also tested on small files the tests write)")
    text = load_shakespeare(SHARED, download=False)
    assert len(text) == 1115394 and text.startswith("First Citizen:")
    vocab = CharVocab(text)
    assert vocab.size == 65
    train, val = split_text(vocab.encode(text))
    assert len(train) == 1003854 and len(val) == 111540
    assert load_shakespeare(path, download=False) == text  # the file itself works too


def test_shakespeare_local_file_and_nerve_data(offline, monkeypatch):
    folder = offline / "data" / "tinyshakespeare"
    folder.mkdir(parents=True)
    (folder / "input.txt").write_text(TEXT, encoding="utf-8")
    assert load_shakespeare(folder / "input.txt", verify=False) == TEXT
    assert load_shakespeare(offline / "data", verify=False) == TEXT
    monkeypatch.setenv("NERVE_DATA", str(offline / "data"))
    assert load_shakespeare(verify=False) == TEXT
    with pytest.raises(ValueError, match="checksum mismatch for tiny shakespeare"):
        load_shakespeare()


def test_shakespeare_download_into_cache(offline, monkeypatch):
    body = TEXT.encode()
    monkeypatch.setattr(shakespeare, "SHAKESPEARE_SHA256", download.sha256_hex(body))
    calls = []

    def serve(url, dest, timeout=60.0):
        calls.append(url)
        Path(dest).write_bytes(body)
    monkeypatch.setattr(download, "fetch", serve)
    assert load_shakespeare() == TEXT
    assert calls == [shakespeare.SHAKESPEARE_URL]
    assert (offline / "cache" / "tinyshakespeare" / "input.txt").read_bytes() == body
    assert load_shakespeare() == TEXT and len(calls) == 1  # the second call reads the cache


def test_shakespeare_bad_download_and_offline(offline, monkeypatch):
    with pytest.raises(FileNotFoundError, match="could not be downloaded") as info:
        load_shakespeare()
    assert "network is unreachable" in str(info.value) and shakespeare.SHAKESPEARE_URL in str(info.value)
    with pytest.raises(FileNotFoundError, match=r"\(download=False\)"):
        load_shakespeare(download=False)

    def corrupt(url, dest, timeout=60.0):
        Path(dest).write_bytes(b"not shakespeare")
    monkeypatch.setattr(download, "fetch", corrupt)
    with pytest.raises(FileNotFoundError, match="checksum mismatch"):
        load_shakespeare()
    assert not (offline / "cache" / "tinyshakespeare" / "input.txt").exists()  # nothing bad left behind
