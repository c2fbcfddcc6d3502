"""``nerve tune``: a search over nerve train's options writes best.toml (nerve train's --config input),
trials.csv and the plots; bad input is a CLIError."""
import argparse
import csv

import pytest

from nerve.tune.command import add_parser, run


def _args(*argv):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["tune", *argv])


def test_tune_writes_best_toml_trials_and_plots(tmp_path, capsys):
    from nerve.cli.common import DEFAULTS, load_toml

    space = tmp_path / "space.toml"
    space.write_text('lr = {loguniform = [1e-3, 3e-2]}\nhidden = {choice = [16, 32]}\nlayers = {intrange = [1, 2]}\n')
    out = tmp_path / "run"
    code = run(_args("--data", "digits", "--epochs", "1", "--trials", "3", "--sampler", "random", "--space",
                     str(space), "--out", str(out), "--in-process", "--pruner", "none"))
    text = capsys.readouterr().out
    assert code == 0, text
    assert text.count("\ntrial ") + text.startswith("trial ") == 3 and "best val_accuracy" in text
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert [r["state"] for r in rows] == ["COMPLETE"] * 3
    best = max(rows, key=lambda r: float(r["value"]))
    cfg = load_toml(str(out / "best.toml"))
    assert set(cfg) <= set(DEFAULTS)
    assert cfg["lr"] == pytest.approx(float(best["params_lr"]))
    assert cfg["hidden"] == ",".join([best["params_hidden"]] * int(best["params_layers"]))
    assert cfg["epochs"] == 1 and cfg["data"] == "digits"
    for name in ("history", "importances", "parallel_coordinates"):
        assert (out / f"{name}.png").stat().st_size > 5000


@pytest.mark.parametrize("argv, message", [
    (["--storage", "sqlite:///x.db"], "--storage needs --study"),
    (["--space", "missing.toml"], "no file"),
    (["--model", "gpt"], "searches mlp, cnn, lenet models, not --model gpt"),
    (["--epochs", "0"], "--epochs must be at least 1"),
])
def test_bad_input(argv, message):
    from nerve.cli.common import CLIError

    with pytest.raises(CLIError, match=message):
        run(_args(*argv))


def test_unknown_space_name(tmp_path):
    from nerve.cli.common import CLIError

    space = tmp_path / "space.toml"
    space.write_text("depth = {intrange = [1, 3]}\n")
    with pytest.raises(CLIError, match="not options of nerve train"):
        run(_args("--space", str(space)))
