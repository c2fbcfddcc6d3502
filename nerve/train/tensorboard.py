"""TensorBoard scalar logs written by hand: no TensorFlow, torch or protobuf package needed.

An event file is a sequence of records: the data's length (uint64, little-endian), the masked CRC-32C of
those 8 bytes, the data, the masked CRC-32C of the data. Each record's data is an ``Event`` protocol
buffer: wall_time (double, field 1), step (int64, field 2), then either file_version (string, field 3;
the first record, "brain.Event:2") or summary (field 5) holding ``Summary.Value`` entries with tag
(string, field 1) and simple_value (float, field 2).
"""
from __future__ import annotations

import os
import socket
import struct
import time

from nerve.train.callbacks import Callback

__all__ = ["SummaryWriter", "TensorBoard", "crc32c", "masked_crc32c"]


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # reflected Castagnoli polynomial
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum TFRecord files use."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The CRC rotated and offset, as TFRecord stores it (a CRC of data holding CRCs stays useful)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 values take ten bytes, as protobuf encodes them
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, file_version: str | None = None, scalars=()) -> bytes:
    data = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3 | 0) + _varint(step)
    if file_version is not None:
        data += _field_bytes(3, file_version.encode("utf-8"))
    if scalars:
        summary = b"".join(
            _field_bytes(1, _field_bytes(1, tag.encode("utf-8")) + _varint(2 << 3 | 5) + struct.pack("<f", value))
            for tag, value in scalars)
        data += _field_bytes(5, summary)
    return data


def _record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


class SummaryWriter:
    """Write scalars to a new TensorBoard event file in ``log_dir``, with ``torch.utils.tensorboard``'s names
    (``log_dir`` defaults to ``runs/<date>_<time>_<host><comment>``, as there)."""

    def __init__(self, log_dir: str | os.PathLike | None = None, comment: str = "", purge_step: int | None = None,
                 max_queue: int = 10, flush_secs: int = 120, filename_suffix: str = "") -> None:
        if log_dir is None:
            log_dir = os.path.join("runs", time.strftime("%b%d_%H-%M-%S") + "_" + socket.gethostname() + comment)
        self.log_dir = os.fspath(log_dir)
        os.makedirs(self.log_dir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.{id(self)}"
        self.path = os.path.join(self.log_dir, name + filename_suffix)
        self._file = open(self.path, "wb")
        self._file.write(_record(_event(time.time(), 0, file_version="brain.Event:2")))
        self._file.flush()
        self._children: dict = {}

    def add_scalar(self, tag: str, scalar_value, global_step: int | None = None, walltime: float | None = None,
                   new_style: bool = False, double_precision: bool = False) -> None:
        """Record ``tag = scalar_value`` (a number or a one-element tensor) at ``global_step``."""
        self.write_scalars({tag: scalar_value}, global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict, global_step: int | None = None,
                    walltime: float | None = None) -> None:
        """PyTorch's layout for several curves on one chart: each ``tag`` goes to the run
        ``log_dir/<main_tag>_<tag>`` under the tag ``main_tag``."""
        for tag, value in tag_scalar_dict.items():
            run = os.path.join(self.log_dir, f"{main_tag.replace('/', '_')}_{tag}")
            if run not in self._children:
                self._children[run] = SummaryWriter(run)
            self._children[run].write_scalars({main_tag: value}, global_step, walltime)

    def write_scalars(self, values: dict, global_step: int | None = None, walltime: float | None = None) -> None:
        """Record several scalars at one step in one event (nerve's own: the fit callback's epoch logs)."""
        scalars = [(tag, float(v.item() if hasattr(v, "item") else v)) for tag, v in values.items()]
        wall = time.time() if walltime is None else walltime
        self._file.write(_record(_event(wall, int(global_step or 0), scalars=scalars)))

    def flush(self) -> None:
        """Push what is written to disk, so a running TensorBoard sees it."""
        self._file.flush()
        for child in self._children.values():
            child.flush()

    def close(self) -> None:
        """Flush and close the file (and those ``add_scalars`` opened)."""
        if not self._file.closed:
            self._file.close()
        for child in self._children.values():
            child.close()

    def __enter__(self) -> "SummaryWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TensorBoard(Callback):
    """Log the epoch's metrics for TensorBoard, Keras' layout: ``log_dir/train`` and ``log_dir/validation``.

    Tags are ``epoch_<name>`` (``val_`` dropped in the validation run, so curves overlay); with
    ``update_freq='batch'`` or an int N, running training values are also written every N batches as
    ``batch_<name>`` against the global batch count.
    """

    def __init__(self, log_dir: str | os.PathLike = "logs", update_freq: str | int = "epoch") -> None:
        if update_freq not in ("epoch", "batch") and not (isinstance(update_freq, int) and update_freq > 0):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive int, got "
                             f"{update_freq!r}")
        self.log_dir = os.fspath(log_dir)
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self._train = self._val = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._train = SummaryWriter(os.path.join(self.log_dir, "train"))

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.update_freq == "epoch":
            return
        step = self.trainer.global_step
        if step % self.update_freq == 0:
            self._train.write_scalars({f"batch_{k}": v for k, v in (logs or {}).items()}, step)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        train = {f"epoch_{k}": v for k, v in logs.items() if not k.startswith("val_")}
        val = {f"epoch_{k[4:]}": v for k, v in logs.items() if k.startswith("val_")}
        self._train.write_scalars(train, epoch)
        self._train.flush()
        if val:
            if self._val is None:
                self._val = SummaryWriter(os.path.join(self.log_dir, "validation"))
            self._val.write_scalars(val, epoch)
            self._val.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        for writer in (self._train, self._val):
            if writer is not None:
                writer.close()
        self._train = self._val = None
