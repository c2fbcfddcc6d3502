"""TensorBoard event files, decoded by an independent minimal reader (and TensorBoard's own, if installed)."""
import glob
import os

import pytest

import nerve
from nerve.train.tensorboard import SummaryWriter, crc32c, masked_crc32c
from tests.helpers import crc32c_bitwise, masked_crc32c_bitwise, read_events


def test_crc32c_known_values():
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value
    assert crc32c(b"") == 0
    data = bytes(range(256)) * 3
    assert crc32c(data) == crc32c_bitwise(data)
    assert masked_crc32c(data) == masked_crc32c_bitwise(data)


def test_event_file_decodes(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("loss", 0.5, 1, walltime=123.25)
        w.write_scalars({"acc": 0.75, "lr": nerve.tensor(1e-3)}, 300)
        w.add_scalar("big_step", -2.0, 2 ** 40)
        w.add_scalars("loss", {"train": 0.5, "val": 0.625}, 3)  # PyTorch's layout: one run per curve
    (path,) = glob.glob(os.path.join(tmp_path, "events.out.tfevents.*"))
    for curve, value in (("train", 0.5), ("val", 0.625)):
        (child,) = glob.glob(os.path.join(tmp_path, f"loss_{curve}", "events.out.tfevents.*"))
        assert read_events(child)[1]["step"] == 3 and read_events(child)[1]["scalars"] == {"loss": value}
    events = read_events(path)
    assert events[0]["file_version"] == "brain.Event:2"
    assert events[1] == {"wall_time": 123.25, "step": 1, "scalars": {"loss": 0.5}}
    assert events[2]["step"] == 300 and events[2]["scalars"] == pytest.approx({"acc": 0.75, "lr": 1e-3})
    assert events[3]["step"] == 2 ** 40 and events[3]["scalars"] == {"big_step": -2.0}


def test_torch_path_and_default_log_dir(tmp_path, monkeypatch):
    from nerve.utils.tensorboard import SummaryWriter as TorchPathWriter

    monkeypatch.chdir(tmp_path)
    with TorchPathWriter(comment="_lr0.1") as w:
        w.add_scalar("x", 1.0)
    assert TorchPathWriter is SummaryWriter and w.log_dir.startswith("runs") and w.log_dir.endswith("_lr0.1")


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
