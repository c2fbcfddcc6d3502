import dataclasses
import gzip
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from nerve.data import datasets
from nerve.data.datasets import download, idx
from tests.helpers import offline_data

_REPO = Path(__file__).resolve().parents[2]
# the shared datasets sit beside the checkout (../shared/data) or inside it (shared/data)
SHARED = next((p for p in (_REPO.parent / "shared" / "data", _REPO / "shared" / "data") if p.is_dir()),
              _REPO.parent / "shared" / "data")


def write_idx(path, array, compress):
    """An IDX file: magic 00 00 <type> <ndim>, big-endian int32 dims, then the big-endian values."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}
    data = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(array.dtype.newbyteorder(">")).tobytes()
    Path(path).write_bytes(gzip.compress(data) if compress else data)
    return data


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No NERVE_DATA, an empty cache in tmp_path, no Debian directory, and no network."""
    monkeypatch.setattr(idx, "_FASHION", dataclasses.replace(idx._FASHION, system_dirs=()))
    return offline_data(monkeypatch, tmp_path)


def test_digits():
    pytest.importorskip("sklearn")
    x, y = datasets.load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0 and set(y.tolist()) == set(range(10))
    assert datasets.load_digits(flatten=False)[0].shape == (1797, 1, 8, 8)


@pytest.mark.parametrize("make, classes", [(datasets.make_moons, 2), (datasets.make_circles, 2),
                                           (datasets.make_xor, 2),
                                           (lambda n, **kw: datasets.make_spirals(n, 4, **kw), 4)])
def test_toy_sets(make, classes):
    x, y = make(202, generator=0)
    assert x.shape == (202, 2) and x.dtype == np.float32 and y.dtype == np.int64
    counts = np.bincount(y)
    assert len(counts) == classes and counts.max() - counts.min() <= 1
    x2, y2 = make(202, generator=np.random.default_rng(0))
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_toy_geometry_without_noise():
    x, y = datasets.make_circles(100, noise=0.0, factor=0.3, generator=0)
    np.testing.assert_allclose(np.hypot(*x.T), np.where(y == 0, 1.0, 0.3), rtol=1e-6)
    x, y = datasets.make_xor(100, noise=0.0, generator=0)
    np.testing.assert_array_equal(y, (np.sign(x[:, 0]) != np.sign(x[:, 1])).astype(np.int64))
    x, y = datasets.make_spirals(90, 3, noise=0.0, generator=0)
    assert np.hypot(*x.T).max() <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="make_moons: n_samples"):
        datasets.make_moons(1)
    with pytest.raises(ValueError, match="noise must be non-negative"):
        datasets.make_xor(10, noise=-1)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_read_idx_roundtrip(tmp_path, compress, dtype):
    array = (np.arange(2 * 3 * 4) * 7 % 251).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, array, compress)
    got = datasets.read_idx(path)
    assert got.dtype == dtype and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, array)


def test_read_idx_corrupt_files(tmp_path):
    data = write_idx(tmp_path / "ok", np.zeros((5, 4, 4), np.uint8), compress=False)
    (tmp_path / "short").write_bytes(data[:-3])
    with pytest.raises(ValueError, match=r"short: IDX file truncated: the header says shape \(5, 4, 4\)"):
        datasets.read_idx(tmp_path / "short")
    (tmp_path / "short.gz").write_bytes(gzip.compress(data)[:-10])
    with pytest.raises(ValueError, match="short.gz: corrupt or truncated gzip file"):
        datasets.read_idx(tmp_path / "short.gz")
    (tmp_path / "junk").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="junk: not an IDX file"):
        datasets.read_idx(tmp_path / "junk")


def _fake_mnist(folder, split="t10k", n=6, compress=True):
    folder.mkdir(parents=True, exist_ok=True)
    images = (np.arange(n * 28 * 28) % 256).astype(np.uint8).reshape(n, 28, 28)
    write_idx(folder / f"{split}-images-idx3-ubyte{'.gz' if compress else ''}", images, compress)
    write_idx(folder / f"{split}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 10, False)
    return images


def test_checksum_mismatch_names_the_file(isolated):
    _fake_mnist(isolated / "root")
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz: checksum mismatch for the MNIST file"):
        datasets.load_mnist(isolated / "root", train=False)


def test_verify_false_reads_local_files(isolated):
    images = _fake_mnist(isolated / "root" / "mnist")   # the dataset subfolder of root is searched too
    x, y = datasets.load_mnist(isolated / "root", train=False, verify=False)
    assert x.shape == (6, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x[:, 0] * 255, images, atol=1e-4)
    assert datasets.load_mnist(isolated / "root", train=False, verify=False, flatten=True)[0].shape == (6, 784)


def test_nerve_data_environment_variable(isolated, monkeypatch):
    _fake_mnist(isolated / "env", split="train", compress=False)
    monkeypatch.setenv("NERVE_DATA", str(isolated / "env"))
    x, y = datasets.load_mnist(train=True, verify=False)
    assert x.shape == (6, 1, 28, 28)


def test_offline_error_says_which_files_go_where(isolated):
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_mnist(train=True)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz" in message
    assert str(isolated / "cache" / "mnist") in message
    assert "could not be downloaded" in message and "network is unreachable" in message
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in message
    with pytest.raises(FileNotFoundError, match=r"Fashion-MNIST test files .* \(download=False\)"):
        datasets.load_fashion_mnist(download=False, train=False)
    assert not (isolated / "cache" / "mnist").exists() or not os.listdir(isolated / "cache" / "mnist")


@pytest.mark.skipif(not (SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz").exists(),
                    reason="the shared MNIST test files are not in ../shared/data/mnist")
def test_download_verifies_and_writes_atomically(isolated, monkeypatch):
    served = []

    def from_disk(url, dest, timeout=60.0):
        served.append(url)
        shutil.copyfile(SHARED / "mnist" / url.rsplit("/", 1)[1], dest)
    monkeypatch.setattr(download, "fetch", from_disk)
    x, y = datasets.load_mnist(train=False)
    assert x.shape == (10000, 1, 28, 28) and np.bincount(y).sum() == 10000
    assert served[0].startswith("https://ossci-datasets.s3.amazonaws.com/mnist/")
    assert sorted(os.listdir(isolated / "cache" / "mnist")) == ["t10k-images-idx3-ubyte.gz",
                                                                "t10k-labels-idx1-ubyte.gz"]

    def corrupt(url, dest, timeout=60.0):
        Path(dest).write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02ab"))
    monkeypatch.setattr(download, "fetch", corrupt)
    with pytest.raises(FileNotFoundError, match="checksum mismatch"):
        datasets.load_mnist(train=True)
    assert sorted(os.listdir(isolated / "cache" / "mnist")) == ["t10k-images-idx3-ubyte.gz",
                                                                "t10k-labels-idx1-ubyte.gz"]


@pytest.mark.skipif(not (SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz").exists(),
                    reason="the shared MNIST test files are not in ../shared/data/mnist")
def test_wrong_dataset_is_named(isolated):
    root = isolated / "root"
    root.mkdir()
    shutil.copyfile(SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz", root / "t10k-labels-idx1-ubyte.gz")
    shutil.copyfile(SHARED / "fashion-mnist" / "t10k-images-idx3-ubyte.gz", root / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz: checksum mismatch .*it is the MNIST file"):
        datasets.load_fashion_mnist(root, train=False)


@pytest.mark.skipif(not (SHARED / "fashion-mnist").is_dir(),
                    reason="the shared Fashion-MNIST files are not in ../shared/data/fashion-mnist")
def test_real_fashion_mnist(isolated):
    x, y = datasets.load_fashion_mnist(SHARED, train=True, flatten=True)
    assert x.shape == (60000, 784) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y), [6000] * 10)
    x, y = datasets.load_fashion_mnist(SHARED / "fashion-mnist", train=False)
    assert x.shape == (10000, 1, 28, 28)
    np.testing.assert_array_equal(np.bincount(y), [1000] * 10)


@pytest.mark.skipif(not (SHARED / "mnist" / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="the shared MNIST files are not in ../shared/data/mnist")
def test_real_mnist_test_set(isolated):
    x, y = datasets.load_mnist(SHARED, train=False)
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)
    assert y[:5].tolist() == [7, 2, 1, 0, 4]
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz were not found"):
        datasets.load_mnist(SHARED, train=True)   # the training images are not kept offline
