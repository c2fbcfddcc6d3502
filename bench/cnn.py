"""SmallCNN (conv32-conv64-maxpool-fc128-fc10) training step and single convolutions: nerve vs PyTorch.

Run: python bench/cnn.py [--steps 10] [--rounds 9] [--threads N] [--nerve-threads N] [--blas-timeout N] [--quick]
[--convs N] [--no-winograd]
Prints, in one run: ms per training step (forward, backward, Adam) of SmallCNN at batch 64 on 1x28x28
inputs and its GFLOP/s, the same in PyTorch on the CPU (default NCHW, and channels_last), each against the
machine's float32 GEMM rate timed in the same rounds (the limit of a GEMM-based convolution), then the
forward, input gradient and weight gradient of single convolutions of a few shapes (each library's activations
in its own layout: PyTorch's channels-first; nerve's channels-last memory for the output gradient and for the
input of inner layers, as its layers leave them). Each library runs in its own process and they take turns at
short bursts (bench/_paired.py), so every ratio compares the same machine conditions; ``--quick`` is a smoke
run. ``--threads N`` limits both libraries to N threads (OpenBLAS and OpenMP); ``--nerve-threads N`` runs nerve
with its own threads (``nerve.ops.streams.set_threads``); ``--no-winograd`` turns off nerve's Winograd path for
stride-1 3x3 convolutions (``nerve.ops.winograd.ENABLED``), so its im2col path is timed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from _paired import compare, cycling, per_call, streams_note  # noqa: E402

BATCH = 64
#: (name, input shape, out channels, kernel, stride, padding)
CONVS = [
    ("SmallCNN conv1", (64, 1, 28, 28), 32, 3, 1, 0),
    ("SmallCNN conv2", (64, 32, 26, 26), 64, 3, 1, 0),
    ("3x3 64->64 pad 1", (32, 64, 32, 32), 64, 3, 1, 1),
    ("3x3 64->128 stride 2", (32, 64, 32, 32), 128, 3, 2, 1),
    ("1x1 128->256", (32, 128, 16, 16), 256, 1, 1, 0),
    ("5x5 3->32 pad 2", (32, 3, 64, 64), 32, 5, 1, 2),
]


def _gemm_flops(m: int, k: int, n: int) -> float:
    return 2.0 * m * k * n


def step_flops() -> float:
    """Multiply-adds x 2 of one SmallCNN training step: forward, weight gradients, input gradients
    (none for the first layer, whose input needs no gradient)."""
    conv1 = _gemm_flops(BATCH * 26 * 26, 9, 32)
    conv2 = _gemm_flops(BATCH * 24 * 24, 9 * 32, 64)
    fc1 = _gemm_flops(BATCH, 9216, 128)
    fc2 = _gemm_flops(BATCH, 128, 10)
    return 2 * conv1 + 3 * (conv2 + fc1 + fc2)


def conv_flops(shape, out, k, stride, pad) -> float:
    n, c, h, w = shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    return _gemm_flops(n * oh * ow, c * k * k, out)


def _batches(steps: int):
    rng = np.random.default_rng(0)
    return [(rng.random((BATCH, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, BATCH))
            for _ in range(min(steps, 8))]


def _torch_threads(torch) -> None:
    """Apply --threads (passed through the environment) to PyTorch's intra-op pool."""
    if os.environ.get("NERVE_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["NERVE_BENCH_THREADS"]))


def _nerve_winograd() -> None:
    """Apply --no-winograd (passed through the environment) in nerve's process."""
    from nerve.ops import winograd
    winograd.ENABLED = os.environ.get("NERVE_BENCH_WINOGRAD", "1") != "0"


def setup_step(lib: str, channels_last: bool = False):
    """A burst runner of SmallCNN training steps in ``lib`` (built inside its own process)."""
    data = _batches(8)
    if lib == "nerve":
        _nerve_winograd()
        import nerve
        from nerve import nn
        from nerve.models import SmallCNN
        nerve.manual_seed(0)
        model = SmallCNN()
        opt = nerve.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        batches = [(nerve.tensor(x), nerve.tensor(y)) for x, y in data]
    else:
        import torch
        _torch_threads(torch)
        torch.manual_seed(0)
        tnn = torch.nn
        model = tnn.Sequential(tnn.Conv2d(1, 32, 3), tnn.ReLU(), tnn.Conv2d(32, 64, 3), tnn.ReLU(),
                               tnn.MaxPool2d(2), tnn.Flatten(), tnn.Linear(9216, 128), tnn.ReLU(),
                               tnn.Linear(128, 10))
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        model = model.to(memory_format=fmt)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = tnn.CrossEntropyLoss()
        batches = [(torch.from_numpy(x).contiguous(memory_format=fmt), torch.from_numpy(y)) for x, y in data]

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return cycling(step, batches)


def setup_gemm(n: int = 1024):
    """A burst runner of one float32 n x n x n GEMM through NumPy (the machine's own rate, BLAS's threads)."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    out = np.empty((n, n), dtype=np.float32)
    return per_call(np.matmul, a, b, out)


#: what a per-layer burst times: the forward alone, or one gradient (the forward building its graph untimed)
FACES = ("forward", "input", "weight")
LABELS = {"forward": "fwd", "input": "dx", "weight": "dw"}


def setup_conv(lib: str, spec: tuple, face: str):
    """A burst runner of one face of one convolution with bias in ``lib``: its forward, or the input gradient,
    or the weight and bias gradients (then the forward that builds the graph is not timed)."""
    _, shape, out, k, stride, pad = spec
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    w = (rng.standard_normal((out, shape[1], k, k), dtype=np.float32) * 0.1)
    b = np.zeros(out, dtype=np.float32)
    # only what the face differentiates requires grad, so neither library computes the other gradients
    needs = (face != "weight", face != "input", face != "input")
    if lib == "nerve":
        _nerve_winograd()
        import nerve
        import nerve.functional as F
        conv, no_grad, grad = F.conv2d, nerve.no_grad, nerve.grad
        xt, wt, bt = (nerve.tensor(a, requires_grad=r) for a, r in zip((x, w, b), needs))
        with no_grad():
            g = nerve.tensor(rng.standard_normal(conv(xt, wt, bt, stride, pad).shape, dtype=np.float32))
        # in a network the gradient reaches a convolution in the layout of its output (channels-last memory,
        # as ReLU's or pooling's backward leaves it), and so does the input of an inner layer (more than 4
        # channels: another layer's output); PyTorch's default layout is channels-first
        g.data = np.ascontiguousarray(g.data.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        if shape[1] > 4:
            xt.data = np.ascontiguousarray(xt.data.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    else:
        import torch
        _torch_threads(torch)
        conv, no_grad, grad = torch.nn.functional.conv2d, torch.no_grad, torch.autograd.grad
        xt, wt, bt = (torch.tensor(a, requires_grad=r) for a, r in zip((x, w, b), needs))
        with no_grad():
            g = torch.from_numpy(rng.standard_normal(conv(xt, wt, bt, stride, pad).shape, dtype=np.float32))
    if face == "forward":
        def forward():
            with no_grad():
                conv(xt, wt, bt, stride, pad)
        return per_call(forward)
    wrt = (xt,) if face == "input" else (wt, bt)

    def run(n: int) -> float:
        total = 0.0
        for _ in range(n):
            y = conv(xt, wt, bt, stride, pad)
            t0 = time.perf_counter()
            grad(y, wrt, g)
            total += time.perf_counter() - t0
        return total
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="training steps per burst")
    parser.add_argument("--rounds", type=int, default=9, help="bursts per library, taken in turn")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 steps, 2 rounds")
    parser.add_argument("--blas-timeout", type=int, default=None,
                        help="OPENBLAS_THREAD_TIMEOUT for both libraries' processes (4-30: BLAS's idle threads spin "
                             "2^N cycles before sleeping; OpenBLAS's default is 28)")
    parser.add_argument("--threads", type=int, default=None, help="threads for both libraries (default: theirs)")
    parser.add_argument("--nerve-threads", type=int, default=None,
                        help="nerve's own threads (NERVE_NUM_THREADS: BLAS single-threaded, nerve cuts each kernel "
                             "in N parts; 0: BLAS's threads with per-call-site streams); default: nerve's default")
    parser.add_argument("--no-winograd", action="store_true",
                        help="nerve's im2col path for stride-1 3x3 convolutions (default: Winograd F(2x2, 3x3))")
    parser.add_argument("--convs", type=int, default=len(CONVS), help="time only the first N convolution shapes")
    args = parser.parse_args()
    if args.blas_timeout is not None:  # read by OpenBLAS when the fresh processes load NumPy
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(args.blas_timeout)
    if args.nerve_threads is not None:  # read by nerve when the fresh processes import it
        os.environ["NERVE_NUM_THREADS"] = str(args.nerve_threads)
    os.environ["NERVE_BENCH_WINOGRAD"] = "0" if args.no_winograd else "1"
    if args.threads:  # read by the fresh processes at start-up
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NERVE_BENCH_THREADS"):
            os.environ[name] = str(args.threads)
    steps, rounds = (2, 2) if args.quick else (args.steps, args.rounds)
    try:
        import torch
        torch_text = f"torch {torch.__version__} ({args.threads or torch.get_num_threads()} threads)"
    except ImportError:
        torch = None
        torch_text = "torch not installed"
    print(f"SmallCNN training step, batch {BATCH}, 1x28x28, Adam; numpy {np.__version__}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}, {torch_text}; "
          f"{rounds} rounds of {steps} steps, libraries in turn; {streams_note()}; nerve's Winograd F(2x2, 3x3): "
          f"{'off' if args.no_winograd else 'on'}")
    flops = step_flops()
    setups = {"nerve": (setup_step, "nerve")}
    if torch is not None:
        setups["PyTorch (NCHW, default)"] = (setup_step, "torch")
        setups["PyTorch (channels_last)"] = (setup_step, "torch", True)
    setups["float32 GEMM"] = (setup_gemm,)
    result = compare(setups, steps, rounds)
    gemm = result.pop("float32 GEMM")
    peak = _gemm_flops(1024, 1024, 1024) / gemm["best"] / 1e6
    print(f"{'':<26}{'best ms':>9}{'median ms':>11}{'GFLOP/s':>9}{'of GEMM':>9}{'nerve / this':>14}{'best / best':>13}")
    for name, r in result.items():
        rate = flops / r["best"] / 1e6
        print(f"{name:<26}{r['best']:>9.2f}{r['median']:>11.2f}{rate:>9.1f}{rate / peak:>9.0%}{r['ratio']:>14.2f}"
              f"{r['best_ratio']:>13.2f}")
    print(f"({flops / 1e9:.2f} GFLOP per step: forward, weight and input gradients of the convolutions and "
          "linear layers; GFLOP/s from the best burst; 'nerve / this' is the median of the per-round ratios)")
    print(f"machine: float32 GEMM 1024^3 through NumPy's BLAS, timed in the same rounds: {peak:.1f} GFLOP/s "
          f"(best burst; median {_gemm_flops(1024, 1024, 1024) / gemm['median'] / 1e6:.1f})")

    print("\nsingle conv2d with bias: median ms per call of each face (input: dx; weight: dw and db), "
          "ratios nerve/PyTorch (median of per-round ratios)")
    header = f"{'layer':<22}{'input':>14}" + "".join(
        f"{'nerve ' + LABELS[f]:>11}{'torch ' + LABELS[f]:>11}{'ratio':>7}" for f in FACES) + f"{'nerve GF/s':>12}"
    print(header)
    print("-" * len(header))
    conv_steps = max(2, steps // 2)
    for spec in CONVS[:args.convs]:
        cells, total = "", 0.0
        for face in FACES:
            setups = {"nerve": (setup_conv, "nerve", spec, face)}
            if torch is not None:
                setups["torch"] = (setup_conv, "torch", spec, face)
            r = compare(setups, conv_steps, max(3, rounds // 2))
            tn, tt = r["nerve"]["median"], r["torch"]["median"] if torch else float("nan")
            cells += f"{tn:>11.2f}{tt:>11.2f}{r['torch']['ratio'] if torch else float('nan'):>7.2f}"
            total += tn
        print(f"{spec[0]:<22}{'x'.join(map(str, spec[1])):>14}{cells}{3 * conv_flops(*spec[1:]) / total / 1e6:>12.1f}")


if __name__ == "__main__":
    main()
