"""Helpers of the CLI tests: the command in-process and as a subprocess, and small CSV files."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from nerve import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), OPENBLAS_NUM_THREADS="1",
           OMP_NUM_THREADS="1")


def run(args, capsys):
    """``nerve ARGS`` in this process: (exit status, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own errors and --version
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def nerve(*args, cwd=None, env=None, timeout=120):
    """``python -m nerve.cli ARGS`` as a subprocess."""
    return subprocess.run([sys.executable, "-m", "nerve.cli", *[str(a) for a in args]], capture_output=True,
                          text=True, cwd=cwd, env=env or ENV, timeout=timeout)


def one_line_error(code, err, *fragments):
    """Exit status 2, one line on standard error, no traceback, holding each fragment."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def write_csv(path, header, rows, bom=False):
    text = (",".join(header) + "\n" if header is not None else "") + "".join(
        ",".join(str(v) for v in row) + "\n" for row in rows)
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")
    return path


def classification_table(n=120, seed=0):
    """Three numeric features and a text label that depends on the first two."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)).round(4)
    labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    return ["a", "b", "c", "label"], [[*x, c] for x, c in zip(X, labels)]
