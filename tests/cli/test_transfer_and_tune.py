"""``nerve train --init/--freeze`` (fine-tuning from earlier weights) and ``nerve tune`` through the command."""
import numpy as np
import pytest

import nerve
from tests.cli.common import one_line_error, run


def _weights(run_dir):
    return {k: np.asarray(v) for k, v in nerve.load(str(run_dir / "model.safetensors")).items()}


def test_init_loads_a_run_and_freeze_features_keeps_those_layers_bit_identical(tmp_path, capsys):
    code, _, err = run(["train", "--epochs", "2", "--hidden", "32", "--out", tmp_path / "a"], capsys)
    assert code == 0, err
    code, out, err = run(["train", "--epochs", "2", "--hidden", "32", "--init", tmp_path / "a", "--freeze",
                          "features", "--lr", "0.01", "--out", tmp_path / "b"], capsys)
    assert code == 0, err
    assert "--init: 4 tensors" in out and "--freeze:" in out
    before, after = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    names = sorted(before)
    head = [k for k in names if k.endswith(("weight", "bias"))][-2:]  # the last Linear
    for k in names:
        if k in head:
            assert not np.array_equal(before[k], after[k]), k  # the head trained
        else:
            np.testing.assert_array_equal(before[k], after[k])  # the features did not move


def test_init_and_freeze_errors_are_one_line(tmp_path, capsys):
    code, _, err = run(["train", "--init", tmp_path / "missing", "--out", tmp_path / "x"], capsys)
    one_line_error(code, err, "--init")
    assert not (tmp_path / "x").exists()
    code, _, err = run(["train", "--epochs", "1", "--freeze", "nosuchlayer", "--out", tmp_path / "y"], capsys)
    one_line_error(code, err, "nosuchlayer")


def test_tune_runs_from_the_command_and_its_best_toml_trains(tmp_path, capsys):
    pytest.importorskip("optuna")
    code, out, err = run(["tune", "--trials", "2", "--epochs", "1", "--in-process", "--out", tmp_path / "t"],
                         capsys)
    assert code == 0, err
    assert "trial 1:" in out and (tmp_path / "t" / "best.toml").exists()
    code, out, err = run(["train", "--config", tmp_path / "t" / "best.toml", "--epochs", "1", "--out",
                          tmp_path / "best"], capsys)
    assert code == 0, err
    assert "test " in out
