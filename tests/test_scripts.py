"""Smoke tests of the scripts in examples/ and bench/: each runs as a subprocess with the smallest budget its
flags allow, must exit 0 and print its result line, whose numbers must be finite and in range (no learning
threshold: a few steps learn nothing). They catch an API change that breaks a script nobody imports.

Data: the shared data sets next to the repository (../shared/data); a test whose data is missing is skipped.
The benchmarks run with PyTorch hidden: they time nerve alone (a process importing torch costs ~2 s, and the
paired benchmarks start several), which also exercises their path for a machine without PyTorch.
bench/gpt_torch_reference.py, which is PyTorch itself, runs when torch is installed.
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TIMEOUT = 120


def run_script(script: str, *args: str, env: dict | None = None) -> str:
    """Run ``python script args`` from the repository root; assert it exits 0; return its stdout."""
    proc = subprocess.run([sys.executable, script, *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, (f"{script} exited with {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}"
                                  f"\n--- stderr\n{proc.stderr[-3000:]}")
    return proc.stdout


def number(pattern: str, text: str, low: float = -math.inf, high: float = math.inf) -> float:
    """The number captured by ``pattern`` in ``text`` (multiline), checked finite and within [low, high]."""
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"no line matches {pattern!r} in the output:\n{text[-3000:]}"
    value = float(match.group(1))
    assert math.isfinite(value) and low <= value <= high, f"{pattern!r}: {value} not in [{low}, {high}]"
    return value


def data(name: str) -> Path:
    """The shared data set ``name``, or skip the test."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"shared data set {path} is missing")
    return path


@pytest.fixture
def without_torch(tmp_path: Path) -> dict:
    """An environment in which ``import torch`` raises ImportError, in the script and in its worker processes."""
    shim = tmp_path / "hide_torch"
    shim.mkdir()
    (shim / "torch.py").write_text('raise ImportError("torch hidden by tests/test_scripts.py")\n')
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), env.get("PYTHONPATH")]))
    return env


# --- examples ----------------------------------------------------------------------------------------------
def test_char_lstm(tmp_path):
    out = run_script("examples/char_lstm.py", "--data", data("tinyshakespeare"), "--steps", 2, "--hidden", 16,
                     "--embedding", 8, "--seq", 16, "--batch", 4, "--eval-every", 0, "--sample", 20,
                     "--save", tmp_path / "char.nrv")
    assert re.search(r"step\s+2 ", out)  # --eval-every 0: a validation run after every step
    assert "final: 2 steps" in out
    number(r"^validation loss (\S+) nats/char", out, 0.0, 10.0)
    assert (tmp_path / "char.nrv").exists()
    assert "ROMEO:" in out.split("sample (temperature 0.8):")[1]


def test_fashion_cnn():
    out = run_script("examples/fashion_cnn.py", "--data", data("fashion-mnist"), "--epochs", 1, "--limit", 200)
    number(r"test accuracy (\S+)", out, 0.0, 1.0)
    number(r"test loss (\S+)", out, 0.0, 100.0)


def test_feedback_alignment():
    out = run_script("examples/feedback_alignment.py", "--data", data("fashion-mnist"), "--mnist", data("mnist"),
                     "--epochs", 1, "--limit", 128)
    for name in ("FA", "DFA"):
        number(rf"^fashion {name} gap to BP after 1 epochs: (\S+) points", out, -100.0, 100.0)
    number(r"^cnn DFA gap to BP after 1 epochs: (\S+) points", out, -100.0, 100.0)
    number(r"^FA angles at the end \(degrees\): align/0 (\S+),", out, 0.0, 180.0)
    assert "MNIST split" in out


def test_hebbian(tmp_path):
    out = run_script("examples/hebbian.py", "--data", data("fashion-mnist"), "--limit", 300, "--units", 20,
                     "--epochs", 1, "--pca-epochs", 1, "--readout-epochs", 1, "--png", tmp_path / "f.png")
    number(r"^Oja: \|cos\| with principal components 1..1: (\S+)", out, 0.0, 1.0)
    number(r"^Sanger: \|cos\| with principal components 1..5: (\S+)", out, 0.0, 1.0)
    number(r"Hebbian features (\S+)%", out, 0.0, 100.0)
    number(r"random features (\S+)%", out, 0.0, 100.0)
    assert (tmp_path / "f.png").read_bytes().startswith(b"\x89PNG")


def test_fashion_mlp():
    out = run_script("examples/fashion_mlp.py", "--data", data("fashion-mnist"), "--epochs", 1)
    number(r"test accuracy (\S+)", out, 0.0, 1.0)
    number(r"test loss (\S+)", out, 0.0, 100.0)


def test_mnist1d_cnn():
    pytest.importorskip("mnist1d")
    out = run_script("examples/mnist1d_cnn.py", "--epochs", 1, "--limit", 200)
    number(r"train accuracy (\S+)", out, 0.0, 1.0)
    number(r"test accuracy (\S+)", out, 0.0, 1.0)
    number(r"test loss (\S+)", out, 0.0, 100.0)


def test_mnist1d_gru():
    pytest.importorskip("mnist1d")
    out = run_script("examples/mnist1d_gru.py", "--epochs", 1, "--limit", 100, "--hidden", 8)
    number(r"train accuracy (\S+)", out, 0.0, 1.0)
    number(r"test accuracy (\S+)", out, 0.0, 1.0)
    number(r"test loss (\S+)", out, 0.0, 100.0)


def test_mnist_lenet():
    out = run_script("examples/mnist_lenet.py", "--data", data("mnist"), "--epochs", 1, "--limit", 200)
    number(r"held-out accuracy \(last 2,000 test images\) (\S+)", out, 0.0, 1.0)
    number(r"held-out accuracy .* loss (\S+)", out, 0.0, 100.0)


def test_shakespeare_gpt(tmp_path):
    out = run_script("examples/shakespeare_gpt.py", "--data", data("tinyshakespeare"), "--iters", 5,
                     "--eval-interval", 5, "--eval-iters", 2, "--final-eval-iters", 2, "--log-interval", 1,
                     "--n-layer", 1, "--n-head", 2, "--n-embd", 32, "--block-size", 16, "--batch-size", 4,
                     "--warmup-iters", 1, "--lr-decay-iters", 5, "--sample-tokens", 20,
                     "--save", tmp_path / "gpt.nrv")
    number(r"^iter 4: loss ([^,\s]+)", out, 0.0, 10.0)
    number(r"^final val loss (\S+)", out, 0.0, 10.0)
    number(r"^closer estimate \(2 batches\): train \S+, val (\S+)", out, 0.0, 10.0)
    assert (tmp_path / "gpt.nrv").exists()
    assert len(out.split("--- sample ---\n")[1]) >= 20


def test_text_classification():
    out = run_script("examples/text_classification.py", "--epochs", 1, "--train", 128, "--test", 64,
                     "--length", 8)
    number(r"^bag of words\s+test accuracy (\S+)", out, 0.0, 1.0)
    number(r"^transformer encoder\s+test accuracy (\S+)", out, 0.0, 1.0)
    assert re.search(r"the transformer (beats|does not beat) the bag of words", out)


def test_timeseries_lstm():
    out = run_script("examples/timeseries_lstm.py", "--length", 400, "--window", 16, "--horizon", 3,
                     "--hidden", 8, "--epochs", 1)
    number(r"^LSTM MSE(?:\s+\S+){3}\s+(\S+)$", out, 0.0, 100.0)  # 3 horizons, then the mean
    number(r"^last value MSE(?:\s+\S+){3}\s+(\S+)$", out, 0.0, 100.0)
    number(r"LSTM error / last-value error: (\S+)", out, 0.0, 1000.0)


# --- benchmarks --------------------------------------------------------------------------------------------
def test_bench_cnn(without_torch):
    out = run_script("bench/cnn.py", "--quick", "--convs", 1, env=without_torch)
    number(r"^nerve\s+(\S+)", out, 0.0)  # best ms of a training step
    number(r"^SmallCNN conv1\s+\S+\s+(\S+)", out, 0.0)  # forward ms
    assert "torch not installed" in out  # the without_torch fixture works


def test_bench_rules(without_torch):
    out = run_script("bench/rules.py", "--quick", env=without_torch)
    for rule in ("fa", "sign", "dfa"):
        number(rf"^{rule}\s+\S+\s+\S+\s+(\S+)$", out, 0.0, 100.0)


def test_bench_gpt(without_torch):
    out = run_script("bench/gpt.py", "--steps", 2, "--rounds", 2, env=without_torch)
    number(r"^train iteration, best \(ms\)\s+(\S+)$", out, 0.0)
    number(r"^eval forward, no grad, best \(ms\)\s+(\S+)$", out, 0.0)


def test_bench_mlp(without_torch):
    pytest.importorskip("sklearn")
    out = run_script("bench/mlp.py", "--data", "", "--steps", 2, "--rounds", 2, "--epoch-samples", 256,
                     env=without_torch)
    number(r"^step, batch 128 \(ms\)\s+(\S+)", out, 0.0)
    number(r"^step, batch 32 \(ms\)\s+(\S+)", out, 0.0)
    number(r"^epoch 0.256k, batch 128 \(s\)\s+(\S+)", out, 0.0)  # nerve
    number(r"^epoch 0.256k, batch 128 \(s\)\s+\S+\s+\S+\s+(\S+)", out, 0.0)  # scikit-learn


def test_bench_rnn(without_torch):
    out = run_script("bench/rnn.py", "--steps", 2, "--rounds", 2, "--repeats", 1, env=without_torch)
    number(r"^LSTM\s+(\S+)", out, 0.0)
    number(r"^LSTM, products per position\s+(\S+)", out, 0.0)  # the embedding lookup turned off
    number(r"^LSTM, whole step GEMMs\s+(\S+)", out, 0.0)  # nerve.ops.step_gemm turned off
    number(r"^GRU\s+(\S+)", out, 0.0)
    number(r"^fused node\s+\S+\s+(\S+)$", out, 0.0)
    number(r"^composed ops\s+\S+\s+(\S+)$", out, 0.0)


def test_bench_overhead(without_torch):
    out = run_script("bench/overhead.py", env=without_torch)
    for op in ("add", "mul", "tanh", "exp", "relu"):
        number(rf"^{op} \(8 elems\) per op\s+\S+\s+(\S+)", out, 0.0)  # nerve us
    number(r"^matmul 64x64 per op\s+\S+\s+(\S+)", out, 0.0)


def test_bench_optim(without_torch):
    out = run_script("bench/optim.py", "--steps", 5, "--repeats", 1, env=without_torch)
    for name in ("nerve SGD momentum 0.9", "nerve Adam", "nerve AdamW", "nerve RMSprop", "flat-buffer Adam"):
        number(rf"^{re.escape(name)}\s.*?(\S+)$", out, 0.0)


def test_bench_gpt_torch_reference():
    pytest.importorskip("torch")
    out = run_script("bench/gpt_torch_reference.py", "--data", data("tinyshakespeare"), "--init", "nerve",
                     "--batches", "numpy", "--iters", 5, "--eval-interval", 5, "--eval-iters", 2,
                     "--final-eval-iters", 2, "--log-interval", 1, "--n-layer", 1, "--n-head", 2, "--n-embd", 32,
                     "--block-size", 16, "--batch-size", 4, "--warmup-iters", 1, "--lr-decay-iters", 5)
    number(r"^iter 4: loss ([^,\s]+)", out, 0.0, 10.0)
    number(r"^final val loss (\S+)", out, 0.0, 10.0)
    number(r"^closer estimate \(2 batches\): train \S+, val (\S+)", out, 0.0, 10.0)


def test_bench_commits(without_torch):
    out = run_script("bench/commits.py", ".", "--steps", 1, "--rounds", 1, "--only", "add chain,matmul",
                     env=without_torch)
    number(r"^add chain \(8 elems\)\s+\S+\s+\S+\s+(\S+)", out, 0.0, 100.0)
    number(r"^matmul chain 64x64\s+\S+\s+\S+\s+(\S+)", out, 0.0, 100.0)


def test_bench_threads(without_torch):
    out = run_script("bench/threads.py", "--threads", 2, "--steps", 1, "--rounds", 1, "--only", "matmul",
                     env=without_torch)
    number(r"^matmul chain 64x64\s+\S+\s+\S+\s+(\S+)", out, 0.0, 100.0)
