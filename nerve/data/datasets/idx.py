"""MNIST and Fashion-MNIST: IDX files found locally or downloaded and checked against known checksums.

Search order for each file (gzip-compressed ``NAME.gz`` or uncompressed ``NAME``): the ``root`` argument
(its ``mnist``/``fashion-mnist`` subfolder first), ``$NERVE_DATA`` (likewise), Debian's
``/usr/share/datasets/fashion-mnist`` (Fashion-MNIST only), then the cache (``cache_dir()/mnist`` ...).
Missing files are downloaded into the cache. Checksums are SHA-256 of the decompressed bytes, because
repackaged ``.gz`` files (Debian's, for one) differ from the canonical ones while holding the same data.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy

from nerve.data.datasets import download as _download

__all__ = ["read_idx", "parse_idx", "load_mnist", "load_fashion_mnist"]

# IDX type codes (third byte of the magic number) -> big-endian NumPy dtypes
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its extension)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt or truncated gzip file ({exc}); delete it and get it again") from exc


def parse_idx(data: bytes, name: str = "IDX data") -> numpy.ndarray:
    """Decode IDX bytes (magic, big-endian int32 dimensions, then the values) into an array."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{name}: not an IDX file (bad magic number {data[:4].hex() or 'empty'}; expected "
                         "00 00 <type> <ndim>, for example 00000803 for images)")
    dtype, ndim = numpy.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX header ({len(data)} bytes, need {header})")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(numpy.prod(shape, dtype=numpy.int64)) * dtype.itemsize
    if len(data) - header != expected:
        state = "truncated" if len(data) - header < expected else "has trailing bytes"
        raise ValueError(f"{name}: IDX file {state}: the header says shape {shape} ({expected} bytes of data), "
                         f"the file holds {len(data) - header}")
    return numpy.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> numpy.ndarray:
    """Read one IDX file, gzip-compressed or not, into an array with the file's shape and dtype."""
    return parse_idx(_read_bytes(Path(path)), str(path))


@dataclass(frozen=True)
class _IdxDataset:
    name: str
    function: str
    folder: str
    mirrors: tuple
    sha256: dict
    system_dirs: tuple = ()


_MNIST = _IdxDataset(
    "MNIST", "load_mnist", "mnist",
    ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    {
        # NOTE: train-images is the value published by several independent projects (47,040,016 bytes
        # decompressed; the canonical .gz has SHA-256 440fcabf...3523609); the others were checked here.
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
)

_FASHION = _IdxDataset(
    "Fashion-MNIST", "load_fashion_mnist", "fashion-mnist",
    ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    ("/usr/share/datasets/fashion-mnist",),
)

_KNOWN = {digest: (spec.name, stem) for spec in (_MNIST, _FASHION) for stem, digest in spec.sha256.items()}


def _search_dirs(spec: _IdxDataset, root) -> list:
    dirs = []
    for base in (root, os.environ.get("NERVE_DATA") or None):
        if base is not None:
            base = Path(base).expanduser()
            dirs += [base / spec.folder, base]
    dirs += [Path(d) for d in spec.system_dirs]
    dirs.append(_download.cache_dir() / spec.folder)
    return dirs


def _find(stem: str, dirs: list) -> Path | None:
    for d in dirs:
        for name in (stem + ".gz", stem):
            if (d / name).is_file():
                return d / name
    return None


def _check(data: bytes, spec: _IdxDataset, stem: str, path: Path) -> numpy.ndarray:
    """Parse the decompressed bytes and compare their SHA-256 with the published one."""
    array = parse_idx(data, str(path))
    digest = _download.sha256_hex(data)
    if digest != spec.sha256[stem]:
        other = _KNOWN.get(digest)
        hint = f" (it is the {other[0]} file {other[1]})" if other else ""
        raise ValueError(f"{path}: checksum mismatch for the {spec.name} file {stem}{hint}: SHA-256 of the "
                         f"decompressed data is {digest}, expected {spec.sha256[stem]}. The file is corrupt "
                         f"or not the official one: replace it, or pass verify=False to use it anyway")
    return array


def _missing_message(spec: _IdxDataset, split: str, missing: list, dirs: list, failures: list | None) -> str:
    files = ", ".join(stem + ".gz" for stem in missing)
    lines = [f"{spec.function}: the {spec.name} {split} files {files} were not found"
             + (" and could not be downloaded." if failures else " (download=False).")]
    lines.append(f"Get them from {spec.mirrors[0]} (gzip-compressed .gz or uncompressed, both work) and put them "
                 f"in {dirs[-1]} (the cache), or in a directory you pass as {spec.function}(root=DIR) or name "
                 f"in the NERVE_DATA environment variable (DIR or DIR/{spec.folder}).")
    lines.append("Looked in: " + ", ".join(str(d) for d in dirs))
    if failures:
        lines.append("Download errors: " + " | ".join(failures))
    return "\n".join(lines)


def _load(spec: _IdxDataset, root, train: bool, download: bool, flatten: bool, verify: bool) -> tuple:
    split = "train" if train else "t10k"
    stems = (f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte")
    dirs = _search_dirs(spec, root)
    paths = {stem: _find(stem, dirs) for stem in stems}
    arrays = {}
    failures = []
    for stem in stems:
        if paths[stem] is None and download:
            dest = dirs[-1] / (stem + ".gz")

            def verify_download(tmp: Path, stem=stem) -> None:
                arrays[stem] = _check(_read_bytes(tmp), spec, stem, tmp)

            try:
                _download.download([url + stem + ".gz" for url in spec.mirrors], dest, verify_download)
                paths[stem] = dest
            except _download.DownloadError as exc:
                failures.append(str(exc))
    missing = [stem for stem in stems if paths[stem] is None]
    if missing:
        raise FileNotFoundError(_missing_message(spec, "training" if train else "test", missing, dirs,
                                                 failures or None))
    for stem in stems:
        if stem not in arrays:
            data = _read_bytes(paths[stem])
            arrays[stem] = _check(data, spec, stem, paths[stem]) if verify else parse_idx(data, str(paths[stem]))
    images, labels = arrays[stems[0]], arrays[stems[1]]
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{spec.function}: {paths[stems[0]]} holds shape {images.shape} and "
                         f"{paths[stems[1]]} holds shape {labels.shape}; expected (N, H, W) images and N labels")
    x = images.astype(numpy.float32)
    x /= 255.0
    x = x.reshape(len(x), -1) if flatten else x[:, None, :, :]
    return x, labels.astype(numpy.int64)


def load_mnist(root: str | os.PathLike | None = None, train: bool = True, download: bool = True,
               flatten: bool = False, verify: bool = True) -> tuple:
    """MNIST handwritten digits as NumPy arrays ``(X, y)``: X float32 in [0, 1], y int64 in 0..9.

    X is (N, 1, 28, 28), or (N, 784) with ``flatten=True``; N is 60,000 (``train``) or 10,000. Files are
    searched as the module describes and downloaded into the cache when missing (``download=True``).
    """
    return _load(_MNIST, root, train, download, flatten, verify)


def load_fashion_mnist(root: str | os.PathLike | None = None, train: bool = True, download: bool = True,
                       flatten: bool = False, verify: bool = True) -> tuple:
    """Fashion-MNIST (Zalando) as NumPy arrays ``(X, y)``, same layout and search order as ``load_mnist``."""
    return _load(_FASHION, root, train, download, flatten, verify)
