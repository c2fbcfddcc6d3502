"""Every failure of the command ends in one clear line on standard error and exit status 2 (issue 20)."""
import numpy as np
import pytest

from tests.cli.common import classification_table, nerve, one_line_error, run, write_csv


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished one-epoch digits run and a few input files, shared by the cases."""
    import contextlib
    import io

    from nerve import cli
    base = tmp_path_factory.mktemp("errors")
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["train", "--epochs", "1", "--out", str(base / "run"), "--verbose", "0"]) == 0
    np.save(base / "x.npy", np.zeros((2, 64), np.float32))
    np.save(base / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    (base / "bad.toml").write_text("[train]\nepochs = = 3\n")
    (base / "three.toml").write_text('[train]\nepochs = "three"\n')
    (base / "hidden.toml").write_text("[train]\nhidden = [16, true]\n")
    return base


CASES = {  # name: (arguments, what the line must say); {d} is the shared directory
    "epochs 0": (["train", "--epochs", "0"], "--epochs must be at least 1, got 0"),
    "hidden 0": (["train", "--hidden", "0"], "--hidden takes comma-separated layer widths of at least 1"),
    "negative lr": (["train", "--lr", "-0.1"], "--lr must be a finite number > 0"),
    "nan lr": (["train", "--lr", "nan"], "--lr must be a finite number > 0"),
    "batch size 0": (["train", "--batch-size", "0"], "--batch-size must be at least 1"),
    "dropout 1": (["train", "--dropout", "1"], "--dropout must be below 1"),
    "patience -1": (["train", "--patience", "-1"], "--patience must be at least 0"),
    "epochs not a number": (["train", "--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
    "unknown option": (["train", "--epochz", "3"], "unrecognized arguments: --epochz"),
    "bad TOML": (["train", "--config", "{d}/bad.toml"], "bad.toml is not valid TOML"),
    "TOML string for int": (["train", "--config", "{d}/three.toml"], "epochs must be a whole number, got 'three'"),
    "TOML bool in hidden": (["train", "--config", "{d}/hidden.toml"], "hidden must be a list of whole numbers"),
    "missing config": (["train", "--config", "{d}/none.toml"], "--config: no file"),
    "missing csv": (["train", "--data", "csv:{d}/none.csv", "--target", "y"], "no file"),
    "missing text": (["train", "--model", "gpt", "--data", "text:{d}/none.txt"], "no file"),
    "missing predict input": (["predict", "{d}/run", "{d}/none.csv"], "no file"),
    "missing npy": (["predict", "{d}/run", "{d}/none.npy"], "no file"),
    "output folder missing": (["predict", "{d}/run", "{d}/x.npy", "--output", "{d}/no/such/p.txt"],
                              "the folder {d}/no/such does not exist"),
    "object npy": (["predict", "{d}/run", "{d}/objects.npy"], "cannot be read as a NumPy array file"),
    "not a run": (["evaluate", "{d}"], "config.json: no such file"),
    "resume not a run": (["train", "--resume", "{d}/none"], "--resume: no run directory"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_line_and_status_2(finished, name):
    args, fragment = CASES[name]
    result = nerve(*[a.format(d=finished) for a in args], cwd=finished)
    one_line_error(result.returncode, result.stderr, fragment.format(d=finished))
    assert result.stdout == ""  # nothing was trained or written before the check


def test_corrupt_checkpoint_and_config_on_resume_and_evaluate(tmp_path, capsys):
    assert run(["train", "--epochs", "1", "--out", tmp_path / "r", "--verbose", "0"], capsys)[0] == 0
    ckpt = tmp_path / "r" / "checkpoint.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:500])
    one_line_error(*run(["train", "--resume", tmp_path / "r"], capsys)[::2], "--resume: the checkpoint cannot be used")
    config = tmp_path / "r" / "config.json"
    config.write_text(config.read_text()[:40])
    one_line_error(*run(["evaluate", tmp_path / "r"], capsys)[::2], "config.json is damaged (not valid JSON")
    one_line_error(*run(["train", "--resume", tmp_path / "r"], capsys)[::2], "config.json is damaged")


def test_debug_shows_the_traceback_and_unexpected_errors_stay_one_line(tmp_path, monkeypatch, capsys):
    result = nerve("train", "--epochs", "0", "--debug")
    assert result.returncode == 2 and "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "nerve train: --epochs must be at least 1, got 0"
    from nerve.cli import data

    def broken(*args, **kwargs):
        raise RuntimeError("something inside\nbroke")

    monkeypatch.setattr(data.Data, "__init__", broken)
    code, _, err = run(["train", "--out", tmp_path / "r"], capsys)
    one_line_error(code, err, "RuntimeError: something inside broke (--debug shows the traceback)")
    assert not (tmp_path / "r").exists()


def test_version():
    result = nerve("--version")
    assert result.returncode == 0 and result.stdout.strip().startswith("nerve 0.")


def test_a_run_that_fails_before_training_leaves_no_directory(tmp_path, capsys, monkeypatch):
    header, rows = classification_table(40)
    write_csv(tmp_path / "t.csv", header, rows)
    import nerve.train as train

    def failing_fit(*args, **kwargs):
        raise MemoryError("no room")

    monkeypatch.setattr(train, "fit", failing_fit)
    code, _, err = run(["train", "--data", f"csv:{tmp_path / 't.csv'}", "--target", "label", "--out",
                        tmp_path / "r"], capsys)
    one_line_error(code, err, "MemoryError: no room")
    assert not (tmp_path / "r").exists()


def test_a_missing_dataset_is_one_line(monkeypatch, capsys):
    from nerve.data import datasets

    def missing(*args, **kwargs):
        raise FileNotFoundError("MNIST training files not found in:\n  /a\n  /b\nPut them in NERVE_DATA.")

    monkeypatch.setattr(datasets, "load_mnist", missing)
    one_line_error(*run(["train", "--data", "mnist"], capsys)[::2],
                   "--data mnist: MNIST training files not found in: /a /b Put them in NERVE_DATA.")


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "attack", "explain", "pinn"])
def test_every_command_has_help(command, capsys):
    code, out, _ = run([command, "--help"], capsys)
    assert code == 0 and "--debug" in out


def test_no_command_is_one_line(capsys):
    one_line_error(*run([], capsys)[::2], "the following arguments are required")
