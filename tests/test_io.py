"""nerve.save / nerve.load: safetensors layout, nesting round trip, atomic writes, clear errors."""
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import nerve
from nerve.io import CorruptFileError, load, load_metadata, save


def _nested():
    rng = np.random.default_rng(0)
    return {
        "model": {"layer.0.weight": nerve.tensor(rng.standard_normal((3, 4)).astype(np.float32)),
                  "layer.0.bias": nerve.zeros(3)},
        "optimizer": {"state": {0: {"step": 7, "exp_avg": nerve.tensor(rng.standard_normal(4))}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1],
                                        "amsgrad": False, "foreach": None}]},
        "arrays": {"i64": np.arange(5, dtype=np.int64), "i32": np.arange(3, dtype=np.int32),
                   "i8": np.array([-1, 2], dtype=np.int8), "u8": np.array([255], dtype=np.uint8),
                   "f16": np.array([1.5, -2.0], dtype=np.float16), "bool": np.array([True, False]),
                   "scalar": np.array(3.25), "empty": np.zeros((0, 5), dtype=np.float32),
                   "strided": np.arange(12.0).reshape(3, 4)[:, ::2]},
        "rng": nerve.get_rng_state(),
        "epoch": 3, "name": "run", "loss": float("nan"), "best": float("inf"), "list": [1, [2.5, "x"]],
    }


def _assert_same(a, b, where="top"):
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}.{i}")
    elif isinstance(a, nerve.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.numpy(), b.numpy()), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), where
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def test_round_trip_keeps_nesting_types_and_values(tmp_path):
    obj = _nested()
    save(obj, tmp_path / "x.safetensors")
    back = load(tmp_path / "x.safetensors")
    _assert_same(obj, back)
    assert 0 in back["optimizer"]["state"]  # int keys stay ints
    nerve.set_rng_state(back["rng"])  # the 128-bit generator state survives JSON


def test_round_trip_through_file_objects(tmp_path):
    """As torch.save/torch.load: a BytesIO or an open binary file instead of a path."""
    import io

    obj = _nested()
    buffer = io.BytesIO()
    save(obj, buffer)
    with open(tmp_path / "x.safetensors", "wb") as f:
        save(obj, f)
    assert buffer.getvalue() == (tmp_path / "x.safetensors").read_bytes()
    buffer.seek(0)
    _assert_same(obj, load(buffer))
    with open(tmp_path / "x.safetensors", "rb") as f:
        _assert_same(obj, load(f))
    with pytest.raises(CorruptFileError, match="<file object>: .*truncated"):
        load(io.BytesIO(buffer.getvalue()[:-3]))
    # torch.load's keywords, so ported code runs
    buffer.seek(0)
    back = load(buffer, map_location="cpu", weights_only=True)
    _assert_same(obj, back)
    assert back["model"]["layer.0.weight"].device == "cpu"
    with pytest.raises(TypeError, match="map_location must be a device or its name"):
        load(tmp_path / "x.safetensors", map_location={"cuda:0": "cpu"})


def test_top_level_via_package_and_module_config(tmp_path):
    class Tiny:
        """Duck-typed module: state_dict and get_config are all save needs."""

        def state_dict(self):
            return {"w": nerve.ones(2, 2)}

        def get_config(self):
            return {"in_features": 2, "out_features": 2}

    nerve.save(Tiny(), tmp_path / "m.safetensors", metadata={"epoch": 4, "note": "hi"})
    meta = load_metadata(tmp_path / "m.safetensors")
    assert meta["nerve.version"] == nerve.__version__
    assert json.loads(meta["nerve.config"]) == {"class": "Tiny", "config": {"in_features": 2, "out_features": 2}}
    assert meta["epoch"] == "4" and meta["note"] == "hi"
    assert np.array_equal(nerve.load(tmp_path / "m.safetensors")["w"].numpy(), np.ones((2, 2), np.float32))


def test_file_layout_is_plain_safetensors(tmp_path):
    path = tmp_path / "sd.safetensors"
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    save({"enc": {"w": w}, "b": np.array([1, 2], dtype=np.int64)}, path)
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    assert n % 8 == 0
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    entry = header["enc.w"]
    assert entry["dtype"] == "F32" and entry["shape"] == [2, 3]
    lo, hi = entry["data_offsets"]
    assert np.array_equal(np.frombuffer(data[lo:hi], "<f4").reshape(2, 3), w)
    assert all(isinstance(v, str) for v in header["__metadata__"].values())


def test_interoperates_with_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    ours = tmp_path / "ours.safetensors"
    save({"a": {"b": np.arange(4.0)}, "c": np.ones(3, np.int32)}, ours)
    theirs = st.load_file(str(ours))
    assert np.array_equal(theirs["a.b"], np.arange(4.0)) and theirs["c"].dtype == np.int32
    foreign = tmp_path / "foreign.safetensors"
    st.save_file({"x.y": np.eye(2, dtype=np.float16)}, str(foreign), metadata={"k": "v"})
    back = load(foreign)
    assert list(back) == ["x.y"] and back["x.y"].dtype == np.float16
    assert load_metadata(foreign) == {"k": "v"}


def test_save_rejects_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="cannot store a set at 'a.b'"):
        save({"a": {"b": {1, 2}}}, tmp_path / "x")
    with pytest.raises(ValueError, match="same tensor name 'a.b'"):
        save({"a.b": np.zeros(1), "a": {"b": np.zeros(1)}}, tmp_path / "x")
    with pytest.raises(TypeError, match="complex"):
        save({"z": np.zeros(2, np.complex64)}, tmp_path / "x")
    assert not os.listdir(tmp_path)


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "w.safetensors"
    save({"w": np.arange(100, dtype=np.float32), "b": np.ones(4, np.int64)}, path)
    return path


@pytest.mark.parametrize("keep, message", [
    (3, "shorter than the 8-byte header length"),
    (20, "header length field says"),
    (-10, "truncated"),
])
def test_truncated_file_names_path_and_problem(good_file, keep, message):
    raw = good_file.read_bytes()
    good_file.write_bytes(raw[:keep])
    with pytest.raises(CorruptFileError, match=message) as info:
        load(good_file)
    assert str(good_file) in str(info.value)


def test_corrupt_bytes_are_detected(good_file):
    raw = bytearray(good_file.read_bytes())
    raw[-5] ^= 0xFF
    good_file.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="checksum"):
        load(good_file)


def test_garbage_header_and_bad_entries(tmp_path):
    path = tmp_path / "bad.safetensors"
    header = b'{"w": [1, 2'
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(CorruptFileError, match="not valid JSON"):
        load(path)
    header = json.dumps({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    with pytest.raises(CorruptFileError, match="does not fit its data offsets"):
        load(path)
    header = json.dumps({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    with pytest.raises(CorruptFileError, match="unsupported dtype 'C64'"):
        load(path)


def test_failed_write_leaves_the_old_file_and_no_temporary(good_file, monkeypatch):
    before = good_file.read_bytes()
    real_fdopen = os.fdopen

    class Failing:
        """A file that dies half-way through the data, like a full disk or a crash."""

        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, b):
            if self.written > 40:
                raise OSError("No space left on device")
            self.written += len(b)
            return self.f.write(b)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Failing(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space"):
        save({"w": np.zeros(1000, np.float32)}, good_file)
    monkeypatch.undo()
    assert good_file.read_bytes() == before
    assert os.listdir(good_file.parent) == [good_file.name]


def test_sigkill_while_saving_never_leaves_a_partial_file(tmp_path):
    path = tmp_path / "big.safetensors"
    script = textwrap.dedent(f"""
        import numpy as np, nerve
        i = 0
        while True:
            nerve.save({{"w": np.full(2_000_000, i, np.float32), "i": i}}, {str(path)!r})
            i += 1
            if i == 2:
                print("ready", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    back = load(path)
    assert back["w"].min() == back["w"].max() == back["i"]


def _edit_header(path, edit):
    """Rewrite a file's JSON header through ``edit(header)``, keeping its length (the data stays put)."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    edit(header)
    new = json.dumps(header, separators=(",", ":")).encode()
    assert len(new) <= n
    path.write_bytes(raw[:8] + new + b" " * (n - len(new)) + raw[8 + n:])


def test_an_edited_header_is_caught(tmp_path):
    """A dtype changed from F32 to I32 keeps every byte of the data; the header's checksum still catches it."""
    path = tmp_path / "w.safetensors"
    save({"w": nerve.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))}, path, metadata={"classes": ["a", "b"]})
    _edit_header(path, lambda h: h["w"].update(dtype="I32"))
    with pytest.raises(CorruptFileError, match="header's checksum does not match"):
        load(path)
    save({"w": nerve.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))}, path, metadata={"classes": ["a", "b"]})
    _edit_header(path, lambda h: h["w"].update(shape=[3, 2]))
    with pytest.raises(CorruptFileError, match="header's checksum"):
        load(path)
    save({"w": nerve.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))}, path, metadata={"classes": ["a", "b"]})
    _edit_header(path, lambda h: h["__metadata__"].update(classes='["b","a"]'))
    with pytest.raises(CorruptFileError, match="header's checksum"):
        load(path)


def test_files_get_the_umask_permissions_and_keep_an_existing_mode(tmp_path):
    old = os.umask(0o022)
    try:
        save({"w": nerve.zeros(2)}, tmp_path / "a.safetensors")
        assert (tmp_path / "a.safetensors").stat().st_mode & 0o777 == 0o644  # as open() gives, not mkstemp's 0600
        os.umask(0o027)
        save({"w": nerve.zeros(2)}, tmp_path / "b.safetensors")
        assert (tmp_path / "b.safetensors").stat().st_mode & 0o777 == 0o640
        os.chmod(tmp_path / "a.safetensors", 0o600)
        save({"w": nerve.ones(2)}, tmp_path / "a.safetensors")  # replacing a file keeps its mode
        assert (tmp_path / "a.safetensors").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
