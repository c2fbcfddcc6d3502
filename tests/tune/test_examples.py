"""Smoke tests of the search and transfer examples: each runs with its tiny budget and prints its result lines."""
from tests.test_scripts import data, number, run_script


def test_tune_compare(tmp_path):
    root = data("fashion-mnist").parent
    out = run_script("examples/tune_compare.py", "--tiny", "--data", root, "--plot", tmp_path / "curves.png")
    for name in ("grid", "random", "tpe"):
        number(rf"tune_compare: .*{name} ([0-9.]+)", out, 0.0, 1.0)
    assert (tmp_path / "curves.png").stat().st_size > 5000


def test_transfer_fashion():
    root = data("fashion-mnist").parent
    data("mnist")
    out = run_script("examples/transfer_fashion.py", "--tiny", "--data", root)
    number(r"classes 0-4: train accuracy [0-9.]+, test accuracy ([0-9.]+)", out, 0.0, 1.0)
    number(r"^\s+10\s+([0-9.]+) \+-", out, 0.0, 1.0)
    assert "transfer_fashion: (a) and (b) beat (c) and (d)" in out and "transfer_mnist:" in out


def test_pretrain(tmp_path):
    root = data("fashion-mnist").parent
    data("tinyshakespeare")
    out = run_script("examples/pretrain.py", "--tiny", "--data", root, "--out", tmp_path)
    number(r"digits-mlp: test accuracy ([0-9.]+)", out, 0.0, 1.0)
    number(r"fashion-lenet: test accuracy ([0-9.]+)", out, 0.0, 1.0)
    number(r"shakespeare-gpt: validation loss ([0-9.]+)", out, 0.0, 10.0)
    assert (tmp_path / "fashion_lenet.safetensors").stat().st_size < 1_000_000
