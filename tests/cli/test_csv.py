"""CSV files by header names: reordered columns, missing/extra/duplicate names, header detection, --no-header,
a UTF-8 BOM, empty cells, text columns (issue 20)."""
import numpy as np
import pytest

from tests.cli.common import classification_table, one_line_error, run, write_csv


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A regression run on columns a, b, c (c is text) with target y, trained once for the module."""
    import contextlib
    import io

    from nerve import cli
    base = tmp_path_factory.mktemp("csv")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((150, 2)).round(3)
    colour = np.where(rng.random(150) > 0.5, "red", "blue")
    y = 3 * X[:, 0] - 2 * X[:, 1] + np.where(colour == "red", 4.0, -4.0)
    write_csv(base / "train.csv", ["a", "b", "c", "y"], [[*x, c, round(t, 3)] for x, c, t in zip(X, colour, y)])
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["train", "--data", f"csv:{base / 'train.csv'}", "--target", "y", "--epochs", "60",
                         "--out", str(base / "run"), "--verbose", "0"]) == 0
    return base


def predict(args, capsys):
    code, out, err = run(["predict", *args], capsys)
    assert code == 0, err
    return np.array([float(v) for v in out.split()])


def test_reordered_columns_give_the_same_predictions(trained, tmp_path, capsys):
    rows = [[0.5, -0.5, "red"], [0.0, 0.5, "blue"], [-0.5, 0.2, "red"]]
    write_csv(tmp_path / "abc.csv", ["a", "b", "c"], rows)
    write_csv(tmp_path / "cba.csv", ["c", "b", "a"], [r[::-1] for r in rows])
    write_csv(tmp_path / "with_y.csv", ["y", "b", "c", "a"], [[0, r[1], r[2], r[0]] for r in rows])
    first = predict([trained / "run", tmp_path / "abc.csv"], capsys)
    assert np.array_equal(first, predict([trained / "run", tmp_path / "cba.csv"], capsys))
    assert np.array_equal(first, predict([trained / "run", tmp_path / "with_y.csv"], capsys))  # target ignored
    expected = [1.5 + 1 + 4, -1 - 4, -1.5 - 0.4 + 4]
    assert np.abs(first - expected).max() < 1.0, first  # in the target's units: the scaling is undone


def test_missing_extra_and_duplicate_columns_are_named(trained, tmp_path, capsys):
    write_csv(tmp_path / "missing.csv", ["a", "c"], [[1, "red"]])
    one_line_error(*run(["predict", trained / "run", tmp_path / "missing.csv"], capsys)[::2], "missing ['b']")
    write_csv(tmp_path / "extra.csv", ["a", "b", "c", "d"], [[1, 2, "red", 5]])
    one_line_error(*run(["predict", trained / "run", tmp_path / "extra.csv"], capsys)[::2], "unknown ['d']")
    write_csv(tmp_path / "dup.csv", ["a", "a", "b", "y"], [[1, 2, 3, 0], [2, 3, 4, 1]] * 10)
    one_line_error(*run(["train", "--data", f"csv:{tmp_path / 'dup.csv'}", "--target", "y"], capsys)[::2],
                   "the header names ['a'] more than once")
    one_line_error(*run(["predict", trained / "run", tmp_path / "dup.csv"], capsys)[::2], "more than once")


def test_a_file_without_header_is_refused_or_read_by_position(trained, tmp_path, capsys):
    rows = [[1.0, -1.0, "red"], [0.0, 0.5, "blue"]]
    write_csv(tmp_path / "plain.csv", None, [[1.0, -1.0, 2.0], [0.5, 0.5, 1.0]])
    one_line_error(*run(["predict", trained / "run", tmp_path / "plain.csv"], capsys)[::2],
                   "has no header", "--no-header")
    write_csv(tmp_path / "noheader.csv", None, rows)
    write_csv(tmp_path / "header.csv", ["a", "b", "c"], rows)
    assert np.array_equal(predict([trained / "run", tmp_path / "noheader.csv", "--no-header"], capsys),
                          predict([trained / "run", tmp_path / "header.csv"], capsys))
    write_csv(tmp_path / "short.csv", None, [r[:2] for r in rows])
    one_line_error(*run(["predict", trained / "run", tmp_path / "short.csv", "--no-header"], capsys)[::2],
                   "has 2 columns and no header; the run takes 3, in this order: a, b, c")


def test_training_without_header_names_columns_by_position(tmp_path, capsys):
    header, rows = classification_table(100)
    write_csv(tmp_path / "plain.csv", None, rows)
    one_line_error(*run(["train", "--data", f"csv:{tmp_path / 'plain.csv'}", "--target", "label"], capsys)[::2],
                   "target column 'label' is not in")
    code, out, err = run(["train", "--data", f"csv:{tmp_path / 'plain.csv'}", "--no-header", "--target", "4",
                          "--epochs", "20", "--out", tmp_path / "r", "--verbose", "0"], capsys)
    assert code == 0, err
    write_csv(tmp_path / "new.csv", None, [[1.0, 1.0, 0.0], [-1.0, -1.0, 0.0]])
    code, out, err = run(["predict", tmp_path / "r", tmp_path / "new.csv", "--no-header"], capsys)
    assert out.split() == ["yes", "no"], err


def test_bom_is_dropped_from_the_first_name(tmp_path, capsys):
    header, rows = classification_table(100)
    write_csv(tmp_path / "bom.csv", ["label", *header[:3]], [[r[3], *r[:3]] for r in rows], bom=True)
    code, out, err = run(["train", "--data", f"csv:{tmp_path / 'bom.csv'}", "--target", "label", "--epochs", "20",
                          "--out", tmp_path / "r", "--verbose", "0"], capsys)
    assert code == 0, err
    write_csv(tmp_path / "new.csv", ["a", "b", "c"], [[1.0, 1.0, 0.0], [-1.0, -1.0, 0.0]], bom=True)
    assert run(["predict", tmp_path / "r", tmp_path / "new.csv"], capsys)[1].split() == ["yes", "no"]


def test_empty_cells_are_missing_values_with_imputation_advice(tmp_path, capsys):
    header, rows = classification_table(40)
    rows[5][1] = ""
    rows[9][3] = ""
    write_csv(tmp_path / "gaps.csv", header, rows)
    one_line_error(*run(["train", "--data", f"csv:{tmp_path / 'gaps.csv'}", "--target", "label"], capsys)[::2],
                   "2 missing values (empty cells: line 7 column 'b', line 11 column 'label')",
                   "SimpleImputer")
    rows[5][1] = 0.5
    write_csv(tmp_path / "gaps.csv", header, rows)
    one_line_error(*run(["train", "--data", f"csv:{tmp_path / 'gaps.csv'}", "--target", "label"], capsys)[::2],
                   "line 11 column 'label'", "SimpleImputer")
    assert "OneHotEncoder" not in run(["train", "--data", f"csv:{tmp_path / 'gaps.csv'}", "--target", "label"],
                                      capsys)[2]


def test_text_columns_are_one_hot_and_unknown_categories_named(trained, tmp_path, capsys):
    write_csv(tmp_path / "green.csv", ["a", "b", "c"], [[1, 1, "green"]])
    one_line_error(*run(["predict", trained / "run", tmp_path / "green.csv"], capsys)[::2],
                   "'green' is not a category seen in training (blue, red)")
    header, rows = classification_table(40)
    rows[3][0] = "1.2.3"
    write_csv(tmp_path / "typo.csv", header, rows)
    one_line_error(*run(["train", "--data", f"csv:{tmp_path / 'typo.csv'}", "--target", "label"], capsys)[::2],
                   "column 'a' mixes numbers and text (line 5: '1.2.3')")


def test_numbers_print_in_one_format(trained, capsys):
    code, out, err = run(["evaluate", trained / "run", trained / "train.csv"], capsys)
    assert code == 0, err
    for value in out.split()[4::2]:  # loss, mae, r2: four significant digits, never 29689811672.1778
        assert value == f"{float(value):.4g}", out
