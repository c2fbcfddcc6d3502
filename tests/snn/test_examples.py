"""Smoke tests of the SNN and STDP examples and of bench/snn.py with the smallest budgets their flags allow."""
from __future__ import annotations

from tests.test_scripts import data, number, run_script, without_torch  # noqa: F401 - without_torch: a fixture


def test_snn_fashion(tmp_path):
    png = tmp_path / "raster.png"
    out = run_script("examples/snn_fashion.py", "--data", data("fashion-mnist"), "--limit", 256, "--seeds", "0",
                     "--steps", 4, "--raster", png)
    number(r"^seed 0: test accuracy (\S+)", out, 0.0, 1.0)
    number(r"ms/iteration  firing rate hidden (\S+)", out, 0.0, 1.0)
    number(r"mean test accuracy (\S+)", out, 0.0, 1.0)
    assert png.stat().st_size > 1000


def test_snn_fashion_better_recipe_on_mnist():
    out = run_script("examples/snn_fashion.py", "--dataset", "mnist", "--data", data("mnist"), "--recipe", "better",
                     "--epochs", 1, "--limit", 256, "--seeds", "0", "--steps", 3, "--raster", "")
    number(r"mnist better: mean test accuracy (\S+)", out, 0.0, 1.0)


def test_snn_conv():
    out = run_script("examples/snn_conv.py", "--data", data("fashion-mnist"), "--iters", 2, "--batch", 8,
                     "--steps", 3, "--test", 40)
    number(r"^iteration 2: loss (\S+)", out, 0.0, 100.0)
    number(r"^test accuracy (\S+) on 40 images", out, 0.0, 1.0)


def test_stdp_mnist(tmp_path):
    png = tmp_path / "fields.png"
    out = run_script("examples/stdp_mnist.py", "--data", data("mnist"), "--limit", 64, "--neurons", 10,
                     "--steps", 20, "--fields", png)
    number(r"^STDP 10 neurons: test accuracy (\S+)", out, 0.0, 1.0)
    number(r"frozen random weights (\S+)", out, 0.0, 1.0)
    assert png.stat().st_size > 1000


def test_bench_snn(without_torch):  # noqa: F811
    out = run_script("bench/snn.py", "--steps", 1, "--rounds", 1, "--batch", 8, "--num-steps", 3, env=without_torch)
    number(r"^nerve tutorial loop\s+(\S+)", out, 0.0)
    number(r"^nerve SpikingMLP\s+(\S+)", out, 0.0)
    assert "snntorch not installed" in out
