"""TensorBoard event files, decoded by an independent minimal reader (and TensorBoard's own, if installed)."""
import glob
import os
import struct

import pytest

from nerve.train.tensorboard import SummaryWriter, crc32c, masked_crc32c


def _crc32c_bitwise(data: bytes) -> int:
    """CRC-32C one bit at a time, independent of the table the writer uses."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    crc = _crc32c_bitwise(data)
    return ((crc >> 15 | crc << 17) + 0xA282EAD8) % 2 ** 32


def _varint(buf: bytes, i: int):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message; length-delimited values stay bytes."""
    i, out = 0, []
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.append((number, wire, value))
    return out


def _read_events(path):
    raw = open(path, "rb").read()
    i, events = 0, []
    while i < len(raw):
        header = raw[i:i + 8]
        (n,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", raw[i + 8:i + 12])[0] == _masked(header)
        data = raw[i + 12:i + 12 + n]
        assert struct.unpack("<I", raw[i + 12 + n:i + 16 + n])[0] == _masked(data)
        i += 16 + n
        event = {"scalars": {}}
        for number, wire, value in _fields(data):
            if number == 1:
                assert wire == 1
                event["wall_time"] = struct.unpack("<d", value)[0]
            elif number == 2:
                event["step"] = value
            elif number == 3:
                event["file_version"] = value.decode()
            elif number == 5:
                for n5, _, v in _fields(value):
                    assert n5 == 1
                    entry = dict((num, val) for num, _, val in _fields(v))
                    event["scalars"][entry[1].decode()] = struct.unpack("<f", entry[2])[0]
        events.append(event)
    return events


def test_crc32c_known_values():
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value
    assert crc32c(b"") == 0
    data = bytes(range(256)) * 3
    assert crc32c(data) == _crc32c_bitwise(data)
    assert masked_crc32c(data) == _masked(data)


def test_event_file_decodes(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("loss", 0.5, 1, walltime=123.25)
        w.add_scalars({"acc": 0.75, "lr": 1e-3}, 300)
        w.add_scalar("big_step", -2.0, 2 ** 40)
    (path,) = glob.glob(os.path.join(tmp_path, "events.out.tfevents.*"))
    events = _read_events(path)
    assert events[0]["file_version"] == "brain.Event:2"
    assert events[1] == {"wall_time": 123.25, "step": 1, "scalars": {"loss": 0.5}}
    assert events[2]["step"] == 300 and events[2]["scalars"] == pytest.approx({"acc": 0.75, "lr": 1e-3})
    assert events[3]["step"] == 2 ** 40 and events[3]["scalars"] == {"big_step": -2.0}


def test_tensorboard_reads_it(tmp_path):
    loader_mod = pytest.importorskip("tensorboard.backend.event_processing.event_file_loader")
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("loss", 0.25, 7)
    (path,) = glob.glob(os.path.join(tmp_path, "events.out.tfevents.*"))
    events = list(loader_mod.EventFileLoader(path).Load())
    assert events[0].file_version == "brain.Event:2"
    assert events[1].step == 7
    value = events[1].summary.value[0]
    assert value.tag == "loss"
    assert (value.simple_value if value.HasField("simple_value") else value.tensor.float_val[0]) == 0.25
