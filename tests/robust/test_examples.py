"""Smoke runs of examples/adversarial_mnist.py and bench/robust.py with the smallest budget their flags allow."""
from __future__ import annotations

from tests.test_scripts import data, number, run_script, without_torch  # noqa: F401  (a fixture)


def test_adversarial_mnist(tmp_path):
    out = run_script("examples/adversarial_mnist.py", "--data", data("mnist"), "--limit", 64, "--test", 16,
                     "--epochs", 1, "--methods", "trades", "--train-steps", 2, "--steps", 2,
                     "--square-n", 8, "--square-queries", 3, "--out", tmp_path)
    number(r"^trades\s+clean (\S+)", out, 0.0, 1.0)
    number(r"^trades\s+clean \S+\s+PGD (\S+)", out, 0.0, 1.0)
    number(r"^trades\s+.*\s(\S+) s/epoch$", out, 0.0)
    assert "worst case (Linf)" in out
    assert (tmp_path / "adversarial_mnist_grid.png").stat().st_size > 1000
    assert (tmp_path / "adversarial_mnist_curve.png").stat().st_size > 1000


def test_adversarial_fashion(tmp_path):
    out = run_script("examples/adversarial_mnist.py", "--dataset", "fashion", "--data", data("fashion-mnist"),
                     "--train", 64, "--test", 16, "--epochs", 1, "--methods", "fast", "--steps", 2,
                     "--square-n", 8, "--square-queries", 2, "--out", tmp_path)
    number(r"^fast\s+clean \S+\s+PGD (\S+)", out, 0.0, 1.0)
    assert "eps=0.1" in out


def test_bench_robust(without_torch):  # noqa: F811
    out = run_script("bench/robust.py", "--data", "", "--n", 16, "--steps", 2, "--rounds", 1, "--batch", 8,
                     env=without_torch)
    number(r"^nerve\s+(\S+)", out, 0.0)
    assert "torch/torchattacks not installed" in out and "random images" in out
