"""Run directories: self-contained (predict and evaluate with the training data gone, every model kind),
--resume with changed options, --out onto a run, Ctrl-C for every model kind (issue 20)."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.cli.common import ENV, classification_table, nerve, one_line_error, run, write_csv

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 30


def image_table(n, side, seed=0):
    """Images of side x side pixels, class 1 when the left half is brighter than the right."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, side, side))
    y = (X[:, :, : side // 2].mean(axis=(1, 2)) > X[:, :, side // 2:].mean(axis=(1, 2))).astype(int)
    X[:, :, : side // 2] += 0.3 * (2 * y[:, None, None] - 1)
    return [f"p{i}" for i in range(side * side)] + ["label"], [[*x.reshape(-1).round(3), c] for x, c in zip(X, y)]


@pytest.mark.parametrize("model, side, n, epochs", [("mlp", 3, 80, 30), ("cnn", 6, 80, 20), ("lenet", 28, 40, 1)])
def test_predict_and_evaluate_without_the_training_data(tmp_path, capsys, model, side, n, epochs):
    header, rows = image_table(n, side)
    write_csv(tmp_path / "train.csv", header, rows)
    code, out, err = run(["train", "--model", model, "--data", f"csv:{tmp_path / 'train.csv'}", "--target", "label",
                          "--epochs", epochs, "--out", tmp_path / "run", "--verbose", "0"], capsys)
    assert code == 0, err
    os.makedirs(tmp_path / "elsewhere")
    os.replace(tmp_path / "run", tmp_path / "elsewhere" / "run")
    (tmp_path / "train.csv").rename(tmp_path / "labelled.csv")
    os.chdir(tmp_path / "elsewhere")
    write_csv(tmp_path / "new.csv", header[-2::-1], [r[-2::-1] for r in rows[:8]])  # columns reversed, no label
    code, out, err = run(["predict", "run", tmp_path / "new.csv"], capsys)
    assert code == 0, err
    predicted = [int(v) for v in out.split()]
    assert len(predicted) == 8
    if model != "lenet":  # one epoch on 32 images: only that it answers
        assert np.mean(np.array(predicted) == [r[-1] for r in rows[:8]]) >= 0.75, out
    code, out, err = run(["evaluate", "run", tmp_path / "labelled.csv"], capsys)
    assert code == 0 and f"({n} rows) loss" in out and "accuracy" in out, err
    np.savez(tmp_path / "labelled.npz", x=np.array([r[:-1] for r in rows], np.float32), y=[r[-1] for r in rows])
    code, out_npz, err = run(["evaluate", "run", tmp_path / "labelled.npz"], capsys)
    assert code == 0 and out_npz.split()[1:] == out.split()[1:], err  # the same rows, the same figures
    one_line_error(*run(["evaluate", "run"], capsys)[::2], "the run's test split needs its data",
                   "nerve evaluate RUN_DIR FILE")


@pytest.mark.parametrize("model", ["char-lstm", "gpt"])
def test_language_model_runs_predict_and_evaluate_without_the_text(tmp_path, capsys, model):
    (tmp_path / "t.txt").write_text(TEXT)
    code, out, err = run(["train", "--model", model, "--data", f"text:{tmp_path / 't.txt'}", "--iters", "40",
                          "--block-size", "16", "--batch-size", "8", "--lr", "0.01", "--eval-iters", "5",
                          "--out", tmp_path / "lm", "--verbose", "0"], capsys)
    assert code == 0, err
    (tmp_path / "t.txt").rename(tmp_path / "moved.txt")
    code, out, err = run(["predict", tmp_path / "lm", "--prompt", "To be", "--length", "30", "--seed", "3"], capsys)
    assert code == 0 and out.startswith("To be") and len(out.rstrip("\n")) == 35, err
    assert run(["predict", tmp_path / "lm", "--prompt", "To be", "--length", "30", "--seed", "3"], capsys)[1] == out
    (tmp_path / "prompt.txt").write_text("Whether")
    assert run(["predict", tmp_path / "lm", tmp_path / "prompt.txt", "--length", "5"], capsys)[1].startswith("Whether")
    code, out, err = run(["evaluate", tmp_path / "lm", tmp_path / "moved.txt"], capsys)
    assert code == 0, err
    loss = float(out.split()[2])
    assert 0 < loss < np.log(len(set(TEXT))), out  # better than a uniform guess over the vocabulary
    one_line_error(*run(["predict", tmp_path / "lm", "--prompt", "XYZ"], capsys)[::2], "never saw: ['X', 'Y', 'Z']")
    one_line_error(*run(["evaluate", tmp_path / "lm"], capsys)[::2], "no file")


def test_resume_applies_safe_changes_and_refuses_the_rest(tmp_path, capsys):
    header, rows = classification_table(60)
    write_csv(tmp_path / "t.csv", header, rows)
    base = ["train", "--data", f"csv:{tmp_path / 't.csv'}", "--target", "label", "--verbose", "0", "--patience", "0"]
    assert run([*base, "--epochs", "2", "--out", tmp_path / "r"], capsys)[0] == 0
    one_line_error(*run(["train", "--resume", tmp_path / "r", "--epochs", "4", "--lr", "0.5"], capsys)[::2],
                   "these options differ: --lr 0.5 (the run has 0.001)", "Only --epochs")
    one_line_error(*run(["train", "--resume", tmp_path / "r", "--hidden", "8"], capsys)[::2], "--hidden 8")
    one_line_error(*run(["train", "--resume", tmp_path / "r", "--epochs", "1"], capsys)[::2],
                   "already did 2 epochs; --epochs 1 is fewer")
    code, out, err = run(["train", "--resume", tmp_path / "r", "--epochs", "4"], capsys)
    assert code == 0 and "--resume applies --epochs 4 (was 2)" in " ".join(out.split()), err
    assert len((tmp_path / "r" / "history.csv").read_text().splitlines()) == 5
    assert '"epochs": 4' in (tmp_path / "r" / "config.json").read_text()  # in force for the next --resume
    write_csv(tmp_path / "t.csv", header, rows[::-1])
    one_line_error(*run(["train", "--resume", tmp_path / "r", "--epochs", "5"], capsys)[::2],
                   "changed since the run started")


def test_out_onto_an_existing_run_needs_overwrite(tmp_path, capsys):
    args = ["train", "--epochs", "1", "--verbose", "0", "--hidden", "8", "--out", tmp_path / "r"]
    assert run(args, capsys)[0] == 0
    before = (tmp_path / "r" / "model.safetensors").read_bytes()
    one_line_error(*run(args, capsys)[::2], "already holds a run; pass --overwrite")
    assert (tmp_path / "r" / "model.safetensors").read_bytes() == before
    code, _, err = run([*args[:-2], "--seed", "1", "--out", tmp_path / "r", "--overwrite"], capsys)
    assert code == 0 and (tmp_path / "r" / "model.safetensors").read_bytes() != before, err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    one_line_error(*run([*args[:-1], tmp_path / "mine", "--overwrite"], capsys)[::2], "not a run directory")
    assert (tmp_path / "mine" / "notes.txt").exists()


def _interrupt(args, ready, cwd):
    """Start ``nerve ARGS``, send SIGINT once a line starts with ``ready``; (status, stderr)."""
    proc = subprocess.Popen([sys.executable, "-u", "-m", "nerve.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=cwd)
    for line in proc.stdout:
        if line.startswith(ready):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("model", ["gpt", "char-gru"])
def test_ctrl_c_on_a_language_model_saves_a_checkpoint_and_resume_finishes(tmp_path, model):
    import nerve as nv
    (tmp_path / "t.txt").write_text(TEXT)
    code, err = _interrupt(["train", "--model", model, "--data", "text:t.txt", "--iters", "100000", "--block-size",
                            "16", "--batch-size", "4", "--eval-iters", "2", "--out", "lm"], "iter 0:", tmp_path)
    assert code == 130, err
    assert "nerve train --resume lm" in err
    done = nv.load(tmp_path / "lm" / "checkpoint.safetensors")["iter"]
    assert 1 <= done < 100000
    result = nerve("train", "--resume", "lm", "--iters", done + 3, "--verbose", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert f"--resume applies --iters {done + 3} (was 100000)" in said
    assert f"from iteration {done}" in said and (tmp_path / "lm" / "model.safetensors").exists()


def test_ctrl_c_on_a_cnn_saves_a_checkpoint_and_resume_finishes(tmp_path):
    import nerve as nv
    header, rows = image_table(200, 6)
    write_csv(tmp_path / "img.csv", header, rows)
    code, err = _interrupt(["train", "--model", "cnn", "--data", "csv:img.csv", "--target", "label", "--epochs",
                            "1000", "--patience", "0", "--verbose", "2", "--out", "c"], "Epoch 2/", tmp_path)
    assert code == 130 and "nerve train --resume c" in err, err
    done = nv.load(tmp_path / "c" / "checkpoint.safetensors")["epoch"]
    assert 2 <= done < 1000
    result = nerve("train", "--resume", "c", "--epochs", done + 1, "--verbose", "0", cwd=tmp_path)
    assert result.returncode == 0 and "accuracy" in result.stdout, result.stderr
    assert len((tmp_path / "c" / "history.csv").read_text().splitlines()) == done + 2


def test_resume_of_a_run_that_stopped_early_says_so(tmp_path, capsys):
    header, rows = classification_table(60)
    write_csv(tmp_path / "t.csv", header, rows)
    code, out, err = run(["train", "--data", f"csv:{tmp_path / 't.csv'}", "--target", "label", "--verbose", "0",
                          "--patience", "1", "--lr", "0.1", "--epochs", "200", "--out", tmp_path / "r"], capsys)
    assert code == 0 and "stopped after epoch" in out, err
    one_line_error(*run(["train", "--resume", tmp_path / "r", "--epochs", "300"], capsys)[::2],
                   "the run already stopped (EarlyStopping", "--patience")


def test_a_builtin_data_run_reads_csv_files_by_its_feature_names(tmp_path, capsys):
    from nerve.data.datasets import load_digits
    assert run(["train", "--epochs", "3", "--out", tmp_path / "r", "--verbose", "0"], capsys)[0] == 0
    X, y = load_digits()
    names = [f"x{j}" for j in range(64)]
    write_csv(tmp_path / "d.csv", ["label", *names[::-1]], [[c, *x[::-1]] for x, c in zip(X[:50], y[:50])])
    code, out, err = run(["evaluate", tmp_path / "r", tmp_path / "d.csv"], capsys)
    assert code == 0 and float(out.split()[-1]) > 0.8, err
    write_csv(tmp_path / "plain.csv", None, [[*x, c] for x, c in zip(X[:50], y[:50])])
    code, out_plain, err = run(["evaluate", tmp_path / "r", tmp_path / "plain.csv", "--no-header"], capsys)
    assert code == 0 and out_plain.split()[1:] == out.split()[1:], err
    np.save(tmp_path / "x.npy", X[:50])
    predicted = run(["predict", tmp_path / "r", tmp_path / "x.npy"], capsys)[1].split()
    assert predicted == run(["predict", tmp_path / "r", tmp_path / "d.csv"], capsys)[1].split()
