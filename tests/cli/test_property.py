"""Property-based tests of the CSV path (hypothesis): random tables (column order, names, text and number
columns, BOM, header or not) predict the same with their columns shuffled, and every malformed table ends in
one line with exit status 2, never a traceback and never output (issue 20)."""
import contextlib
import csv
import io
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nerve import cli
from tests.cli.common import nerve, one_line_error

NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyzé_ -0123456789", min_size=0, max_size=7).map(
    lambda s: ("c" + s).strip())
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def call(*args):
    """``nerve ARGS`` in this process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def write(path, header, rows, bom=False):
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        writer = csv.writer(f)
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)


@st.composite
def tables(draw):
    """(names, columns, target index): 1-3 number columns, 0-2 text columns and a text or number target."""
    n_num, n_cat = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    names = draw(st.lists(NAME, min_size=n_num + n_cat + 1, max_size=n_num + n_cat + 1, unique=True))
    n = draw(st.integers(30, 45))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    columns = [[f"{v:.4g}" for v in rng.standard_normal(n) * 10.0 ** rng.integers(-2, 4)] for _ in range(n_num)]
    columns += [list(rng.choice(["red", "blue", "dark green"], n)) for _ in range(n_cat)]
    if draw(st.booleans()):  # classification: every class at least 5 times
        target = list(rng.permutation(["yes", "no"] * (n // 2) + ["yes"] * (n % 2)))
    else:
        target = [f"{v:.5g}" for v in rng.standard_normal(n) * 1e4 + 3e4]
    order = draw(st.permutations(range(len(names))))
    columns = [(columns + [target])[k] for k in order]
    return names, columns, order.index(len(names) - 1)


@SETTINGS
@given(table=tables(), header=st.booleans(), bom=st.booleans(), shuffle=st.randoms(use_true_random=False))
def test_shuffled_columns_predict_the_same(table, header, bom, shuffle):
    names, columns, t = table
    rows = [list(r) for r in zip(*columns)]
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        write("train.csv", names if header else None, rows, bom)
        target = names[t] if header else str(t + 1)
        code, out, err = call("train", "--data", "csv:train.csv", "--target", target, "--epochs", 2, "--hidden", 8,
                              "--verbose", 0, "--out", "run", *([] if header else ["--no-header"]))
        assert code == 0, err
        features = [k for k in range(len(names)) if k != t]
        write("same.csv", [names[k] for k in features] if header else None, [[r[k] for k in features] for r in rows],
              bom)
        code, same, err = call("predict", "run", "same.csv", *([] if header else ["--no-header"]))
        assert code == 0, err
        order = list(range(len(names)))
        shuffle.shuffle(order)  # every column, the target too (predict ignores it)
        write("shuffled.csv", [names[k] for k in order], [[r[k] for k in order] for r in rows])
        code, shuffled, err = call("predict", "run", "shuffled.csv")
        if header:
            assert code == 0, err
            assert shuffled == same and len(same.splitlines()) == len(rows)
        else:  # the run's columns are named by position; a named file does not match them
            one_line_error(code, err, "do not match the run's")


DEFECTS = ("empty cell", "duplicate name", "ragged row", "not utf-8", "no header", "header only", "one class",
           "mixed column", "few rows", "no target", "nan", "unnamed column")


def damage(defect, names, rows, t, rng):
    """A copy of the table with ``defect``: (header, rows, target name, raw bytes or None)."""
    names, rows = list(names), [list(r) for r in rows]
    i, j = rng.integers(len(rows)), rng.integers(len(names))
    numeric = [k for k in range(len(names)) if k != t and _number(rows[0][k])]
    if defect == "empty cell":
        rows[i][j] = ""
    elif defect == "duplicate name":
        names[(t + 1) % len(names)] = names[t - 1] if t else names[-1]
        if len(set(names)) == len(names):
            names[0] = names[1]
    elif defect == "ragged row":
        rows[i] = rows[i] + ["1"]
    elif defect == "no header":
        return None, [[str(k) for k in range(len(names))]] + rows, names[t], None
    elif defect == "header only":
        rows = []
    elif defect == "one class":
        for r in rows:
            r[t] = "yes"
    elif defect == "mixed column":
        k = numeric[0] if numeric else j
        rows[i][k] = "1.2.3" if numeric else "oops"
        if not numeric:
            rows[(i + 1) % len(rows)][k] = "7"
            rows[(i + 2) % len(rows)][k] = "8"
    elif defect == "few rows":
        rows = rows[:rng.integers(1, 9)]
    elif defect == "no target":
        return names, rows, "price?", None
    elif defect == "nan":
        rows[i][numeric[0] if numeric else t] = "nan"
        if not numeric:
            for r in rows:
                r[t] = "1.5"
            rows[i][t] = "nan"
    elif defect == "unnamed column":
        names[j] = ""
    raw = None
    if defect == "not utf-8":
        buffer = io.StringIO()
        csv.writer(buffer).writerows([names] + rows)
        raw = buffer.getvalue().encode("utf-8").replace(b"red", b"r\xe9d").replace(b"yes", b"y\xe9s")
    return names, rows, names[t], raw


def _number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


@SETTINGS
@given(table=tables(), defect=st.sampled_from(DEFECTS), seed=st.integers(0, 1000))
def test_every_malformed_table_is_one_line_and_status_2(table, defect, seed):
    names, columns, t = table
    rows = [list(r) for r in zip(*columns)]
    header, rows, target, raw = damage(defect, names, rows, t, np.random.default_rng(seed))
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        if raw is not None:
            with open("bad.csv", "wb") as f:
                f.write(raw if b"\xe9" in raw else raw + b"\xff\xfe\n")
        else:
            write("bad.csv", header, rows)
        code, out, err = call("train", "--data", "csv:bad.csv", "--target", target, "--epochs", 1, "--verbose", 0,
                              "--out", "run")
        one_line_error(code, err)
        assert out == "" and not os.path.exists("run"), (defect, out)


@pytest.mark.parametrize("text", ["a,a,y\n1,2,3\n", "\ufeffa,b,y\n1,,3\n" + "1,2,3\n" * 20])
def test_malformed_table_through_the_real_command(tmp_path, text):
    (tmp_path / "bad.csv").write_text(text, encoding="utf-8")
    result = nerve("train", "--data", "csv:bad.csv", "--target", "y", cwd=tmp_path)
    one_line_error(result.returncode, result.stderr, "bad.csv")
    assert result.stdout == "" and not (tmp_path / "runs").exists()
