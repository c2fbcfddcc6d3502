"""nerve's 3-d convolution, transposed convolution, pooling, unpooling, negative padding, nearest-exact resizing and
grouped-query attention with a learned mask against PyTorch: values and gradients on random configurations
(float64), then the time of a 3-d convolution's forward and backward (float32, paired: alternating runs).

Needs PyTorch (a reference script, like bench/gpt_torch_reference.py); nerve from this checkout.
Run: OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/torch_spatial.py --trials 60 --threads 1
Quick check: python bench/torch_spatial.py --trials 2 --no-speed
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as TF

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
import nerve.functional as F  # noqa: E402


class Comparison:
    """Largest |nerve - torch| per check, and which side refused a configuration."""

    def __init__(self, rng) -> None:
        self.rng, self.worst = rng, {}
        self.both_refused, self.nerve_only, self.torch_only = 0, [], []

    def record(self, name: str, a, b) -> None:
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, f"{name}: shape {a.shape} != torch's {b.shape}"
        gap = float(np.abs(a - b).max()) if a.size else 0.0
        self.worst[name] = max(self.worst.get(name, 0.0), gap)

    def check(self, name: str, fn_nerve, fn_torch, arrays: list) -> None:
        """Both functions on the same float64 arrays: the outputs, and the gradients for one random cotangent."""
        try:
            fn_torch(*[torch.tensor(a) for a in arrays])
        except Exception:  # torch refuses: nerve must refuse too
            try:
                fn_nerve(*[nerve.tensor(a) for a in arrays])
                self.torch_only.append(name)
            except Exception:
                self.both_refused += 1
            return
        tn = [nerve.tensor(a, requires_grad=True) for a in arrays]
        try:
            yn = fn_nerve(*tn)
        except Exception as exc:
            self.nerve_only.append(f"{name}: {exc}")
            return
        tt = [torch.tensor(a, requires_grad=True) for a in arrays]
        yt = fn_torch(*tt)
        g = self.rng.standard_normal(tuple(yt.shape))
        self.record(name, yn.numpy(), yt.detach().numpy())
        for a, b in zip(nerve.grad(yn, tn, nerve.tensor(g)), torch.autograd.grad(yt, tt, torch.tensor(g))):
            self.record(name + " (grad)", a.numpy(), b.numpy())


def _ints(rng, low: int, high: int, n: int = 3) -> tuple:
    return tuple(int(v) for v in rng.integers(low, high, n))


def trial(c: Comparison) -> None:
    """One random configuration of every check."""
    rng = c.rng
    g = int(rng.choice([1, 2]))
    cin, cout = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
    k, s, p, d = _ints(rng, 1, 4), _ints(rng, 1, 3), _ints(rng, 0, 2), _ints(rng, 1, 3)
    size, n = _ints(rng, 4, 8), int(rng.integers(1, 3))
    x = rng.standard_normal((n, cin) + size)
    c.check("conv3d", lambda x, w, b: F.conv3d(x, w, b, s, p, d, g), lambda x, w, b: TF.conv3d(x, w, b, s, p, d, g),
            [x, rng.standard_normal((cout, cin // g) + k), rng.standard_normal(cout)])
    extra = tuple(min(int(v), max(st, dl) - 1) for v, st, dl in zip(rng.integers(0, 2, 3), s, d))
    c.check("conv_transpose3d", lambda x, w, b: F.conv_transpose3d(x, w, b, s, p, extra, g, d),
            lambda x, w, b: TF.conv_transpose3d(x, w, b, s, p, extra, g, d),
            [rng.standard_normal((n, cin) + tuple(v - 2 for v in size)), rng.standard_normal((cin, cout // g) + k),
             rng.standard_normal(cout)])
    pk = tuple(max(2, v) for v in k)
    pp = tuple(min(v, kk // 2) for v, kk in zip(p, pk))
    ceil, include = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
    c.check("max_pool3d", lambda x: F.max_pool3d(x, pk, s, pp, d, ceil), lambda x: TF.max_pool3d(x, pk, s, pp, d, ceil),
            [x])
    c.check("avg_pool3d", lambda x: F.avg_pool3d(x, pk, s, pp, ceil, include),
            lambda x: TF.avg_pool3d(x, pk, s, pp, ceil, include), [x])
    out = _ints(rng, 1, 5)
    c.check("adaptive_avg_pool3d", lambda x: F.adaptive_avg_pool3d(x, out), lambda x: TF.adaptive_avg_pool3d(x, out),
            [x])
    c.check("adaptive_max_pool3d", lambda x: F.adaptive_max_pool3d(x, out), lambda x: TF.adaptive_max_pool3d(x, out),
            [x])
    x2 = rng.standard_normal((n, cin) + size[:2])
    pooled, idx = F.max_pool2d(nerve.tensor(x2), 2, return_indices=True)
    idx_t = TF.max_pool2d(torch.tensor(x2), 2, return_indices=True)[1]
    c.record("max_pool2d indices", idx.numpy(), idx_t.numpy())
    c.check("max_unpool2d", lambda v: F.max_unpool2d(v, idx, 2, output_size=size[:2]),
            lambda v: TF.max_unpool2d(v, idx_t, 2, output_size=size[:2]), [pooled.numpy()])
    for mode in ("constant", "reflect", "replicate", "circular"):
        widths = _ints(rng, -2, 3, 2) + _ints(rng, -1, 2, 2)
        c.check(f"pad {mode}, negative widths", lambda v: F.pad(v, widths, mode=mode),
                lambda v: TF.pad(v, widths, mode=mode), [x2])
    resized = _ints(rng, 1, 12)
    c.check("interpolate nearest-exact", lambda v: F.interpolate(v, size=resized, mode="nearest-exact"),
            lambda v: TF.interpolate(v, size=resized, mode="nearest-exact"), [x])
    factor = float(rng.choice([0.5, 0.7, 1.5, 2.0]))
    c.check("interpolate nearest-exact, scale", lambda v: F.interpolate(v, scale_factor=factor, mode="nearest-exact"),
            lambda v: TF.interpolate(v, scale_factor=factor, mode="nearest-exact"), [x])
    heads = int(rng.choice([1, 2, 4]))
    c.check("sdpa, enable_gqa, learned mask",
            lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m, scale=0.3, enable_gqa=True),
            lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, m, scale=0.3, enable_gqa=True),
            [rng.standard_normal((2, 4, 3, 5)), rng.standard_normal((2, heads, 6, 5)),
             rng.standard_normal((2, heads, 6, 4)), rng.standard_normal((3, 6))])
    c.check("Softmin", lambda v: nerve.nn.Softmin(1)(v), lambda v: torch.nn.Softmin(1)(v), [x2])


def _paired_ms(fn_a, fn_b, reps: int) -> tuple:
    """Median milliseconds of two functions run alternately (after one warm-up each)."""
    fn_a(), fn_b()
    a, b = [], []
    for _ in range(reps):
        for fn, times in ((fn_a, a), (fn_b, b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(a)), 1e3 * float(np.median(b))


def speed(reps: int) -> None:
    rng = np.random.default_rng(0)
    print(f"\n3-d convolution forward + backward, float32, median of {reps} paired runs")
    print(f"{'layer':36s} {'nerve ms':>9s} {'torch ms':>9s} {'ratio':>6s}")
    for n, cin, cout, s, k in [(8, 16, 32, 16, 3), (4, 32, 32, 12, 3), (8, 1, 8, 24, 5)]:
        x = rng.standard_normal((n, cin, s, s, s)).astype(np.float32)
        w = (0.1 * rng.standard_normal((cout, cin, k, k, k))).astype(np.float32)
        xn, wn = nerve.tensor(x, requires_grad=True), nerve.tensor(w, requires_grad=True)
        xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        a, b = _paired_ms(lambda: F.conv3d(xn, wn, padding=k // 2).sum().backward(),
                          lambda: TF.conv3d(xt, wt, padding=k // 2).sum().backward(), reps)
        print(f"{f'{n}x{cin}x{s}^3 -> {cout}, k={k}':36s} {a:9.1f} {b:9.1f} {a / b:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60, help="random configurations to compare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--reps", type=int, default=7, help="paired timing runs per layer")
    parser.add_argument("--no-speed", action="store_true", help="skip the timing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    c = Comparison(np.random.default_rng(args.seed))
    for _ in range(args.trials):
        trial(c)
    print(f"{args.trials} random configurations (float64): largest |nerve - torch|")
    for name, gap in c.worst.items():
        print(f"  {name:42s} {gap:.1e}")
    print(f"refused by both: {c.both_refused}; by nerve only: {c.nerve_only or 'none'}; by torch only: "
          f"{c.torch_only or 'none'}")
    worst = max(c.worst.values())
    print(f"largest difference: {worst:.1e}")
    if not args.no_speed:
        speed(args.reps)
    if worst > 1e-9 or c.nerve_only or c.torch_only:
        sys.exit(1)


if __name__ == "__main__":
    main()
