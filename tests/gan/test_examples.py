"""Smoke tests of the GAN scripts with tiny budgets: each exits 0 and prints its result lines with finite numbers
in range (a few steps learn nothing, so no learning threshold here; the figures are in the README)."""
import pytest

from tests.test_scripts import data, number, run_script, without_torch  # noqa: F401  (fixture)


def test_gan_ring(tmp_path):
    pytest.importorskip("matplotlib")
    out = run_script("examples/gan_ring.py", "--seeds", 1, "--steps", 20, "--wgan-steps", 4, "--batch", 32,
                     "--setting", "ns", "ns-pack2", "wgan-gp", "--out", tmp_path)
    for setting in ("ns", "ns-pack2", "wgan-gp"):
        number(rf"^{setting}\s+(\S+) \+-", out, 0, 8)
        number(rf"^{setting}\s+\S+ \+-\s+\S+\s+(\S+)%", out, 0, 100)
    assert (tmp_path / "ns-pack2_seed0.png").exists()


def test_dcgan_fashion(tmp_path):
    out = run_script("examples/dcgan_fashion.py", "--data", data("fashion-mnist"), "--minutes", 0.01, "--limit", 256,
                     "--eval", 500, "--classifier-epochs", 1, "--width", 8, "--out", tmp_path)
    number(r"^trained (\S+) steps", out, 1, 1000)  # a 0.6 s budget: how many steps fit depends on the machine
    for row in ("real \\(train\\) vs real \\(test\\)", "uniform noise vs real", "DCGAN G vs real"):
        number(rf"^\s+{row}\s+FD\s+(\S+)", out, 0, 1e6)
        number(rf"^\s+{row}\s+FD\s+\S+\s+score\s+(\S+)", out, 1, 10)
    assert (tmp_path / "samples.png").exists() and (tmp_path / "interpolation.png").exists()


def test_bench_gan(without_torch):  # noqa: F811
    out = run_script("bench/gan.py", "--quick", "--width", 4, env=without_torch)
    number(r"^nerve\s+(\S+)", out, 0, 1e6)
    assert "PyTorch is not installed" in out
