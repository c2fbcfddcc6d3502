"""What the command prints and writes: lines that fit 80 columns, early stopping said and done, a one-line
model summary, run files with one set of permissions, an edited weights header caught (issue 20)."""
import io
import json
import os
import re
import struct

from nerve.train import ProgressBar
from nerve.train.progress import _fit_line
from tests.cli.common import ENV, nerve, one_line_error, run


def test_every_line_fits_80_columns(tmp_path):
    env = dict(ENV, COLUMNS="80")
    result = nerve("train", "--epochs", "3", "--dropout", "0.1", "--out", "r", "--verbose", "2",
                   cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.startswith("Epoch ") for line in lines) == 3
    assert all(len(line) <= 79 for line in lines), [line for line in lines if len(line) > 79]
    assert "{" not in result.stdout  # no raw dict: "model: MLP(in_features=64, hidden=128-64, ...), 17,226 parameters"
    assert re.search(r"model: MLP\(in_features=64, hidden=128-64, out_features=10, activation=relu,\s+dropout=0.1\), "
                     r"17,226 parameters", result.stdout), result.stdout


def test_the_live_bar_fits_and_never_cuts_a_number(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    logs = {"loss": 0.123456, "accuracy": 0.97, "lr": 1e-3, "val_loss": 0.13, "val_accuracy": 0.965,
            "adv_accuracy": 0.5}
    line = _fit_line("Epoch 30/30  13/13 [=========================] ETA 0:00", logs, 80)
    assert len(line) <= 79 and re.fullmatch(r".*\d\.\d{4}", line), line  # ends on a whole number
    assert "loss 0.1235 acc 0.9700" in line

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    import numpy as np

    import nerve
    from nerve import nn, optim
    from nerve.train import fit
    X = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    out = Terminal()
    nerve.manual_seed(0)
    fit(model, (X, y), loss="cross_entropy", optimizer=optim.Adam(model.parameters()), epochs=2, batch_size=8,
        metrics=["accuracy", "precision"], validation_split=0.25, callbacks=[ProgressBar(file=out, interval=0.0)])
    segments = re.split(r"[\r\n]", out.getvalue().replace("\x1b[K", ""))
    assert segments and all(len(s) <= 79 for s in segments), max(segments, key=len)


def test_patience_0_turns_early_stopping_off(tmp_path, capsys):
    code, out, _ = run(["train", "--epochs", "12", "--patience", "0", "--out", tmp_path / "r", "--verbose", "0"],
                       capsys)
    assert code == 0 and "no early stopping" in out and "keeps the weights" not in out
    assert len((tmp_path / "r" / "history.csv").read_text().splitlines()) == 13


def test_run_files_share_one_mode_and_an_edited_header_is_one_line(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert run(["train", "--epochs", "1", "--out", tmp_path / "r", "--verbose", "0"], capsys)[0] == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "r").iterdir()}
    assert set(modes.values()) == {0o644}, modes
    path = tmp_path / "r" / "model.safetensors"
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    name = next(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")
    header[name]["dtype"] = "I32"  # same size: the data checksum alone did not notice, evaluate said accuracy 1.0
    new = json.dumps(header, separators=(",", ":")).encode()
    path.write_bytes(raw[:8] + new + b" " * (n - len(new)) + raw[8 + n:])
    one_line_error(*run(["evaluate", tmp_path / "r"], capsys)[::2], "header's checksum does not match")
