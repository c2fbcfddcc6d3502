"""Smoke tests of the explain examples and benchmark: each runs with its smallest budget, exits 0, prints its
result line with finite numbers in range, and writes its pictures."""
from tests.test_scripts import data, number, run_script, without_torch  # noqa: F401


def test_explain_fashion(tmp_path):
    out = run_script("examples/explain_fashion.py", "--data", data("fashion-mnist"), "--train", 128, "--epochs", 1,
                     "--test", 100, "--images", 1, "--steps", 4, "--samples", 2, "--deletion", 8,
                     "--randomize", "saliency", "--out", tmp_path)
    number(r"^result: test accuracy (\S+);", out, 0.0, 1.0)
    number(r"accuracy (\S+) \(integrated gradients first\)", out, 0.0, 1.0)
    number(r"^  gausslegendre\s+16 steps: median (\S+)", out, 0.0, 10.0)
    assert "cascading parameter randomisation" in out and out.count("(Conv2d)") == 2
    assert (tmp_path / "methods.png").stat().st_size > 2000 and (tmp_path / "deletion.png").exists()


def test_explain_vanishing_gradients(tmp_path):
    out = run_script("examples/explain_vanishing_gradients.py", "--data", data("fashion-mnist"), "--train", 256,
                     "--depth", 4, "--out", tmp_path / "flow.png")
    number(r"sigmoid loses (\S+) orders of magnitude", out, 0.0, 30.0)
    number(r"ReLU \+ He changes by a factor (\S+)", out, 1.0, 100.0)
    assert out.count("1 epoch") == 6 and (tmp_path / "flow.png").exists()


def test_explain_attention(tmp_path):
    out = run_script("examples/explain_attention.py", "--train", 128, "--epochs", 1, "--test", 32, "--length", 8,
                     "--out", tmp_path / "rollout.png")
    number(r"^result: test accuracy (\S+);", out, 0.0, 1.0)
    number(r"rollout share on the deciding positions ([0-9.]+)", out, 0.0, 1.0)
    number(r"integrated-gradients share ([0-9.]+)", out, 0.0, 1.0)
    assert (tmp_path / "rollout.png").exists()


def test_bench_explain(without_torch):  # noqa: F811
    out = run_script("bench/explain.py", "--quick", env=without_torch)
    number(r"^result: nerve (\S+) s per call", out, 0.0, 60.0)
