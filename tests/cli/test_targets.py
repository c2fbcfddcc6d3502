"""Targets: regression scaled for training and reported in its own units; classification needs two classes
and enough rows per class; tiny files get a clear message (issue 20)."""
import re

import numpy as np

from tests.cli.common import classification_table, one_line_error, run, write_csv


def test_large_regression_targets_learn_and_report_in_their_units(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3)).round(4)
    price = 1e5 * (X @ np.array([1.5, -2.0, 0.5])) + 3e5  # prices around 1e5, as in the issue
    write_csv(tmp_path / "houses.csv", ["a", "b", "c", "price"], [[*x, round(p, 2)] for x, p in zip(X, price)])
    code, out, err = run(["train", "--data", f"csv:{tmp_path / 'houses.csv'}", "--target", "price", "--epochs", "30",
                          "--out", tmp_path / "r", "--verbose", "0"], capsys)
    assert code == 0, err
    assert "target 'price' standardised for training (mean" in " ".join(out.split())
    r2 = float(re.search(r"test .* r2 (\S+)", out).group(1))
    mae = float(re.search(r"test .* mae (\S+)", out).group(1))
    assert r2 > 0.95 and mae < 0.3 * price.std(), out  # r2 was -7.2 with the raw target
    write_csv(tmp_path / "new.csv", ["a", "b", "c"], X[:20].tolist())
    predicted = np.array(run(["predict", tmp_path / "r", tmp_path / "new.csv"], capsys)[1].split(), float)
    assert np.abs(predicted - price[:20]).mean() < 0.3 * price.std()  # un-scaled: in dollars


def test_a_single_class_target_is_refused(tmp_path, capsys):
    header, rows = classification_table(40)
    write_csv(tmp_path / "one.csv", header, [[*r[:3], "yes"] for r in rows])
    one_line_error(*run(["train", "--data", f"csv:{tmp_path / 'one.csv'}", "--target", "label"], capsys)[::2],
                   "the target has one class ('yes'); a classifier needs at least two")


def test_tiny_files_and_rare_classes_get_a_message(tmp_path, capsys):
    header, rows = classification_table(40)
    for n in (1, 4):
        write_csv(tmp_path / f"n{n}.csv", header, rows[:n])
        one_line_error(*run(["train", "--data", f"csv:{tmp_path / f'n{n}.csv'}", "--target", "label"], capsys)[::2],
                       f"has {n} data row", "at least 10")
    rows[7][3] = "maybe"
    write_csv(tmp_path / "rare.csv", header, rows)
    one_line_error(*run(["train", "--data", f"csv:{tmp_path / 'rare.csv'}", "--target", "label"], capsys)[::2],
                   "the classes ['maybe'] have a single row", "merge rare classes")
    labels = [str(k) for k in range(6)] * 2
    write_csv(tmp_path / "many.csv", header, [[*r[:3], c] for r, c in zip(rows, labels)])
    one_line_error(*run(["train", "--data", f"csv:{tmp_path / 'many.csv'}", "--target", "label"], capsys)[::2],
                   "12 rows are too few for 6 classes")
