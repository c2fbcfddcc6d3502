"""GANs on 8 Gaussians on a circle (radius 2, std 0.02): modes captured and high-quality fraction over seeds.

Run: python examples/gan_ring.py [--setting ns ns-pack2 wgan-gp] [--seeds 5] [--steps 6000] [--out runs/gan_ring]
Each setting trains MLP G (latent 16, 3 x 128 ReLU) and MLP D (3 x 128 LeakyReLU) from the seeds 0..S-1, then
measures mode_coverage on 2,500 samples (a sample is high quality within 3 std of its nearest mode) and saves
each run's samples over the mixture's density as <out>/<setting>_seed<k>.png. Published for a vanilla GAN: 1
mode, 99.3% high quality (VEEGAN), 6.3 +- 0.5 modes, 98.2% (PacGAN); PacGAN2: 7.9 modes, 95.6%. BLAS runs on one
thread unless OPENBLAS_NUM_THREADS says otherwise (these layers are too small to split; under load the threads
fight: 6 ms vs 70 ms a step measured on a busy 2-core machine).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import numpy as np  # noqa: E402

import nerve  # noqa: E402
from nerve.gan import GAN, mode_coverage, plot_samples_2d  # noqa: E402
from nerve.models.gan import MLPDiscriminator, MLPGenerator  # noqa: E402

RADIUS, STD, MODES = 2.0, 0.02, 8
CENTERS = RADIUS * np.stack([np.cos(2 * np.pi * np.arange(MODES) / MODES),
                             np.sin(2 * np.pi * np.arange(MODES) / MODES)], 1)

# name: GAN keyword arguments (pack m: D takes m samples at once, so its input is 2 m wide)
SETTINGS = {
    "ns": dict(loss="non_saturating", g_lr=1e-3, d_lr=1e-3),
    "ns-pack2": dict(loss="non_saturating", g_lr=1e-3, d_lr=1e-3, pack=2),
    "wgan-gp": dict(loss="wgan-gp", n_critic=5, g_lr=1e-4, d_lr=1e-4, betas=(0.5, 0.9)),
    "ns-pack2-ema": dict(loss="non_saturating", g_lr=1e-3, d_lr=1e-3, pack=2, ema_decay=0.999),
}


def ring(n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of the mixture."""
    return (CENTERS[rng.integers(0, MODES, n)] + STD * rng.standard_normal((n, 2))).astype(np.float32)


def run(setting: str, seed: int, steps: int, batch: int, latent: int, out: str | None) -> dict:
    nerve.manual_seed(seed)
    kwargs = SETTINGS[setting]
    gan = GAN(MLPGenerator(latent, 2), MLPDiscriminator(2 * kwargs.get("pack", 1)), latent_dim=latent, **kwargs)
    n_critic = kwargs.get("n_critic", 1)
    data = ring(steps * n_critic * batch, np.random.default_rng(1000 + seed))
    gan.fit(data, epochs=1, batch_size=batch, verbose=0)
    samples = gan.sample(2500, generator=seed)
    result = mode_coverage(samples, CENTERS, STD)
    if out:
        plot_samples_2d(samples, CENTERS, STD, os.path.join(out, f"{setting}_seed{seed}.png"),
                        title=f"{setting}, seed {seed}: {result['modes']} modes, "
                              f"{100 * result['high_quality']:.1f}% high quality")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", nargs="+", default=["ns", "ns-pack2", "wgan-gp"], choices=sorted(SETTINGS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--steps", type=int, default=6000, help="generator steps per run")
    parser.add_argument("--wgan-steps", type=int, default=1500,
                        help="generator steps for wgan-gp (each after 5 critic steps, about 5x the cost of one)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--out", default="runs/gan_ring", help="folder for the sample plots ('' for none)")
    args = parser.parse_args()
    print(f"8 Gaussians, radius {RADIUS}, std {STD}; {args.steps} generator steps of batch {args.batch} "
          f"({args.wgan_steps} for wgan-gp), {args.seeds} seeds; mode_coverage of 2,500 samples")
    print(f"{'setting':<14} {'modes (mean +- sd)':>20} {'high quality':>14} {'reverse KL':>11}   per seed")
    for setting in args.setting:
        start = time.perf_counter()
        steps = args.wgan_steps if setting == "wgan-gp" else args.steps
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        results = [run(setting, s, steps, args.batch, args.latent, args.out) for s in seeds]
        modes = np.array([r["modes"] for r in results], dtype=float)
        hq = np.array([r["high_quality"] for r in results])
        kl = np.array([r["reverse_kl"] for r in results])
        per_seed = " ".join(f"{int(m)}/{100 * q:.0f}%" for m, q in zip(modes, hq))
        kl_text = f"{kl.mean():11.3f}" if np.isfinite(kl).all() else f"{'inf':>11}"
        print(f"{setting:<14} {modes.mean():11.1f} +- {modes.std():4.1f}   {100 * hq.mean():12.1f}% {kl_text}   "
              f"{per_seed}  ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
