"""Smoke test of examples/port_from_pytorch.py: a PyTorch-shaped script running on nerve, on a few images."""
from tests.test_scripts import data, number, run_script


def test_port_from_pytorch():
    out = run_script("examples/port_from_pytorch.py", "--data", data("fashion-mnist"), "--limit", 200,
                     "--num-workers", 2)
    assert "Train Epoch: 1 [0/200 (0%)]" in out
    number(r"^Test set: Average loss: (\S+),", out, 0.0, 10.0)
    number(r"^test accuracy (\S+) on (?:cpu|cuda)", out, 0.0, 1.0)
