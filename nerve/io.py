"""Weights and checkpoint files in the safetensors format: no pickle, atomic writes, clear errors.

A file is an 8-byte little-endian header length, a JSON header ``{name: {dtype, shape, data_offsets},
"__metadata__": {str: str}}`` and the tensors' raw little-endian bytes. ``save`` flattens nested dicts
into '.'-joined tensor names (a model's ``state_dict`` gives the usual ``layer.0.weight`` names, readable
by any safetensors reader); the exact nesting, key types and every non-tensor leaf (numbers, strings,
lists, optimiser hyperparameters, random state) go into the metadata as JSON under ``nerve.tree``.
"""
from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zlib
from collections.abc import Mapping
from typing import Any, BinaryIO, Callable

import numpy as np

from nerve import backend
from nerve.tensor import Tensor
from nerve.version import __version__

__all__ = ["save", "load", "load_metadata", "atomic_write", "CorruptFileError"]

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
    "BOOL": np.bool_,
}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
_TREE_KEY = "nerve.tree"
_CRC_KEY = "nerve.data_crc32"
_HEADER_CRC_KEY = "nerve.header_crc32"


class CorruptFileError(ValueError):
    """A weights or checkpoint file that is truncated, corrupt or not a safetensors file."""


def _file_mode(path: str) -> int:
    """The permissions a new file at ``path`` gets: the old file's, else 0o666 less the umask (as ``open`` gives)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    """Write a file through ``write(binary_file)`` into a temporary file beside ``path``, fsync, then rename.

    A crash at any point leaves either the old file or the new one at ``path``, never a partial one. The file
    gets the permissions ``open`` would give it (not the temporary file's private 0600).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    mode = _file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # NOTE: make the rename itself durable; not every platform lets a directory be opened.
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# --- flattening --------------------------------------------------------------------------------------
def _host_array(value) -> np.ndarray:
    array = value.data if isinstance(value, Tensor) else value
    return np.asarray(backend.to_device(array, "cpu"))


def _flatten(obj, tensors: dict, path: str):
    """Encode ``obj`` as JSON, moving every tensor/array into ``tensors`` under its '.'-joined path."""
    if isinstance(obj, (Tensor, np.ndarray)) or hasattr(obj, "__cuda_array_interface__"):
        name = path or "tensor"
        if name in tensors:
            raise ValueError(f"nerve.save: two entries flatten to the same tensor name {name!r}; "
                             "rename one of the keys")
        array = _host_array(obj)
        if array.dtype not in _CODES:
            raise TypeError(f"nerve.save: tensor {name!r} has dtype {array.dtype}, which safetensors "
                            f"files cannot hold (supported: {', '.join(str(d) for d in _CODES)})")
        tensors[name] = array
        return {"t" if isinstance(obj, Tensor) else "a": name}
    if isinstance(obj, Mapping):
        items = []
        for key, value in obj.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"nerve.save: key {key!r} at {path or 'the top level'!r} is a "
                                f"{type(key).__name__}; only str and int keys can be stored")
            items.append([key, _flatten(value, tensors, f"{path}.{key}" if path else str(key))])
        return {"d": items}
    if isinstance(obj, (list, tuple)):
        tag = "l" if isinstance(obj, list) else "u"
        return {tag: [_flatten(v, tensors, f"{path}.{i}" if path else str(i)) for i, v in enumerate(obj)]}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"nerve.save: cannot store a {type(obj).__name__} at {path or 'the top level'!r}: "
                    "only tensors, arrays, dicts, lists, tuples, str, int, float, bool and None "
                    "(nerve never pickles)")


def _unflatten(node, tensors: dict, path: str):
    if isinstance(node, dict):
        if "t" in node or "a" in node:
            name = node.get("t", node.get("a"))
            if name not in tensors:
                raise CorruptFileError(f"{path}: the metadata refers to tensor {name!r}, which the file "
                                       "does not hold")
            array = tensors[name]
            return Tensor(array) if "t" in node else array
        if "d" in node:
            return {key: _unflatten(value, tensors, path) for key, value in node["d"]}
        if "l" in node:
            return [_unflatten(v, tensors, path) for v in node["l"]]
        if "u" in node:
            return tuple(_unflatten(v, tensors, path) for v in node["u"])
        raise CorruptFileError(f"{path}: unknown entry {node!r} in the metadata's {_TREE_KEY}")
    return node


def _header_crc(header: Mapping[str, Any]) -> str:
    """A checksum of the tensors' entries (dtype, shape, offsets) and the metadata but its own key: an edit of
    the header (say F32 to I32) changes it although the data bytes stay the same."""
    meta = {k: v for k, v in (header.get("__metadata__") or {}).items() if k != _HEADER_CRC_KEY}
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    canon = json.dumps({"m": meta, "t": entries}, sort_keys=True, separators=(",", ":"))
    return str(zlib.crc32(canon.encode("utf-8")))


# --- writing -----------------------------------------------------------------------------------------
def save(obj: Any, f: str | os.PathLike | BinaryIO, metadata: Mapping[str, Any] | None = None) -> None:
    """Save a (nested) dict of tensors, arrays and JSON-able values, or a model's weights, to a safetensors file.

    ``f`` is a path (written atomically) or a binary file object such as ``io.BytesIO`` (as ``torch.save``
    takes). A ``Module`` is saved as its ``state_dict`` with its class and ``get_config()`` in the metadata.
    ``metadata`` values that are not strings are stored as JSON.
    """
    meta = {"format": "pt", "nerve.version": __version__}
    if not isinstance(obj, Mapping) and callable(getattr(obj, "state_dict", None)):
        config = obj.get_config() if callable(getattr(obj, "get_config", None)) else {}
        meta["nerve.config"] = json.dumps({"class": type(obj).__name__, "config": config})
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise TypeError(f"nerve.save: expected a dict or a Module, got {type(obj).__name__}")
    for key, value in (metadata or {}).items():
        if not isinstance(key, str):
            raise TypeError(f"nerve.save: metadata keys must be str, got {key!r}")
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    tensors: dict[str, np.ndarray] = {}
    meta[_TREE_KEY] = json.dumps(_flatten(obj, tensors, ""))

    # NOTE: widest dtypes first, after an 8-byte-aligned header, keeps every tensor naturally aligned.
    order = sorted(tensors, key=lambda n: -tensors[n].dtype.itemsize)
    blobs, header, offset, crc = {}, {}, 0, 0
    for name in order:
        array = tensors[name]
        blob = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).reshape(-1).view(np.uint8)
        blobs[name] = blob
        crc = zlib.crc32(blob, crc)
        header[name] = {"dtype": _CODES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + blob.size]}
        offset += blob.size
    meta[_CRC_KEY] = str(crc)
    header = {"__metadata__": meta, **{name: header[name] for name in tensors}}
    meta[_HEADER_CRC_KEY] = _header_crc(header)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)

    def write(f) -> None:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for name in order:
            f.write(blobs[name])

    if hasattr(f, "write"):
        write(f)
    else:
        atomic_write(f, write)


# --- reading -----------------------------------------------------------------------------------------
def _read_header(path: str, f, size: int) -> tuple[dict, int]:
    if size < 8:
        raise CorruptFileError(f"{path}: not a safetensors file: {size} bytes, shorter than the 8-byte "
                               "header length (truncated?)")
    n = int.from_bytes(f.read(8), "little")
    if n > size - 8:
        raise CorruptFileError(f"{path}: the header length field says {n} bytes but only {size - 8} follow "
                               "(truncated, or not a safetensors file)")
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptFileError(f"{path}: the header is not valid JSON ({exc}); the file is corrupt or not a "
                               "safetensors file") from None
    if not isinstance(header, dict):
        raise CorruptFileError(f"{path}: the header is JSON but not an object")
    meta = header.get("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CorruptFileError(f"{path}: __metadata__ must map strings to strings")
    return header, 8 + n


def load_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The file's ``__metadata__`` (string to string): nerve version, model config, user metadata."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        header, _ = _read_header(path, f, os.fstat(f.fileno()).st_size)
    return dict(header.get("__metadata__", {}) or {})


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)


def load(f: str | os.PathLike | BinaryIO, map_location: Any = None, weights_only: bool | None = None) -> Any:
    """Read a file written by ``save`` (the same nesting, tensors as Tensors, arrays as arrays).

    ``f`` is a path or a binary file object read from its position to its end. A safetensors file from
    elsewhere gives a flat ``{name: Tensor}`` dict (BF16 is widened to float32). Truncated or corrupt files
    raise ``CorruptFileError`` naming the path and what is wrong. As in ``torch.load``, ``map_location`` (a
    device or its name) moves the tensors; ``weights_only`` is accepted and always holds (no code is loaded).
    """
    obj = _read(f)
    if map_location is None:
        return obj
    if callable(map_location) or isinstance(map_location, Mapping):
        raise TypeError("nerve.load: map_location must be a device or its name ('cpu', 'cuda:0'), got a "
                        f"{type(map_location).__name__}")
    return _moved(obj, map_location)


def _moved(obj: Any, device) -> Any:
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _moved(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_moved(v, device) for v in obj)
    return obj


def _read(f: str | os.PathLike | BinaryIO) -> Any:
    if hasattr(f, "read"):
        path, content = getattr(f, "name", "<file object>"), f.read()
        header, start = _read_header(path, io.BytesIO(content), len(content))
        data = memoryview(content)[start:]  # NOTE: no copy of the payload
    else:
        path = os.fspath(f)
        with open(path, "rb") as fh:
            header, _ = _read_header(path, fh, os.fstat(fh.fileno()).st_size)
            data = fh.read()
    if _HEADER_CRC_KEY in (header.get("__metadata__") or {}) and \
            header["__metadata__"][_HEADER_CRC_KEY] != _header_crc(header):
        raise CorruptFileError(f"{path}: the header's checksum does not match the one saved (a tensor's dtype, "
                               "shape or offsets, or the metadata, were edited)")
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    end = 0
    for name, entry in header.items():
        try:
            code, shape = entry["dtype"], [int(s) for s in entry["shape"]]
            lo, hi = (int(x) for x in entry["data_offsets"])
        except (TypeError, KeyError, ValueError) as exc:
            raise CorruptFileError(f"{path}: tensor {name!r} has a malformed header entry {entry!r}") from exc
        if code != "BF16" and code not in _DTYPES:
            raise CorruptFileError(f"{path}: tensor {name!r} has unsupported dtype {code!r}")
        itemsize = 2 if code == "BF16" else np.dtype(_DTYPES[code]).itemsize
        if not 0 <= lo <= hi or hi - lo != math.prod(shape) * itemsize:
            raise CorruptFileError(f"{path}: tensor {name!r} of shape {tuple(shape)} and dtype {code} "
                                   f"does not fit its data offsets [{lo}, {hi}]")
        if hi > len(data):
            raise CorruptFileError(f"{path}: tensor {name!r} needs bytes {lo}..{hi} of the data section, "
                                   f"which has only {len(data)} (truncated?)")
        end = max(end, hi)
        raw = np.frombuffer(data, dtype=np.uint8, count=hi - lo, offset=lo)
        if code == "BF16":
            array = _bf16_to_f32(raw.copy()).reshape(shape)
        else:
            array = raw.view(np.dtype(_DTYPES[code]).newbyteorder("<")).astype(_DTYPES[code]).reshape(shape)
        tensors[name] = array
    if end != len(data):
        raise CorruptFileError(f"{path}: {len(data) - end} bytes after the last tensor's data; the file is "
                               "corrupt")
    if _CRC_KEY in meta and str(zlib.crc32(data)) != meta[_CRC_KEY]:
        raise CorruptFileError(f"{path}: the data's checksum does not match the one saved (corrupt bytes)")
    if _TREE_KEY not in meta:
        return {name: Tensor(array) for name, array in tensors.items()}
    try:
        tree = json.loads(meta[_TREE_KEY])
    except ValueError as exc:
        raise CorruptFileError(f"{path}: the metadata's {_TREE_KEY} is not valid JSON ({exc})") from None
    return _unflatten(tree, tensors, path)
