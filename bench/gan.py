"""One DCGAN training iteration (D step on real and fake, G step), nerve against PyTorch, paired.

Run: python bench/gan.py [--steps 5] [--rounds 7] [--threads N] [--quick]
The same networks in both libraries: nerve.models.gan.DCGANGenerator/DCGANDiscriminator (width 32, latent 64)
and their PyTorch twins, batch 64, non-saturating loss, Adam(2e-4, betas (0.5, 0.999)); an iteration is
PyTorch's DCGAN example: fake = G(z); D on real and on fake.detach(), backward, D step; D on fake, backward,
G step. Each library runs in its own process, taking turns (bench/_paired.py). PyTorch is timed only where it
is installed; the target is nerve <= 1.2x PyTorch.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
import numpy as np  # noqa: E402

from _paired import compare, cycling  # noqa: E402

BATCH, LATENT = 64, 64


def _batches(n: int = 4) -> list:
    rng = np.random.default_rng(0)
    return [(rng.uniform(-1, 1, (BATCH, 1, 28, 28)).astype(np.float32),
             rng.standard_normal((BATCH, LATENT)).astype(np.float32)) for _ in range(n)]


def _nerve_step(width: int):
    import nerve
    from nerve.gan import GANModel, gan_step
    from nerve.models.gan import DCGANDiscriminator, DCGANGenerator

    nerve.manual_seed(0)
    G, D = DCGANGenerator(LATENT, width=width), DCGANDiscriminator(width=width)
    model = GANModel(G, D, LATENT)
    opt = {"generator": nerve.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999)),
           "discriminator": nerve.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))}
    step = gan_step("non_saturating")

    def run(x, z):  # gan_step draws its own z; the batch's z is PyTorch's
        step(model, (x,), opt)
    return run, [(nerve.tensor(x), z) for x, z in _batches()]


def _torch_step(width: int):
    import torch
    from torch import nn
    import torch.nn.functional as F

    if os.environ.get("NERVE_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["NERVE_BENCH_THREADS"]))
    torch.manual_seed(0)
    w = width

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.project = nn.Sequential(nn.Linear(LATENT, 2 * w * 49, bias=False), nn.BatchNorm1d(2 * w * 49),
                                         nn.ReLU())
            self.net = nn.Sequential(nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                                     nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh())

        def forward(self, z):
            return self.net(self.project(z).view(-1, 2 * w, 7, 7))

    G = Generator()
    D = nn.Sequential(nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False),
                      nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(2 * w * 49, 1))
    g_opt = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))

    def run(x, z):
        fake = G(z)
        d_opt.zero_grad()
        d_loss = F.softplus(-D(x)).mean() + F.softplus(D(fake.detach())).mean()
        d_loss.backward()
        d_opt.step()
        g_opt.zero_grad()
        F.softplus(-D(fake)).mean().backward()
        g_opt.step()
    return run, [(torch.from_numpy(x), torch.from_numpy(z)) for x, z in _batches()]


def setup(lib: str, width: int):
    """The burst runner for ``lib`` ('nerve' or 'torch')."""
    run, batches = _nerve_step(width) if lib == "nerve" else _torch_step(width)
    return cycling(run, batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="iterations per burst")
    parser.add_argument("--rounds", type=int, default=7, help="bursts per library, taken in turn")
    parser.add_argument("--threads", type=int, default=None, help="threads for both libraries (default: theirs)")
    parser.add_argument("--width", type=int, default=32, help="channels of the first conv layer (DCGAN's 64 halved)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 iteration, 2 rounds")
    args = parser.parse_args()
    if args.threads:  # read by the fresh processes at start-up
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NERVE_BENCH_THREADS"):
            os.environ[name] = str(args.threads)
    steps, rounds = (1, 2) if args.quick else (args.steps, args.rounds)
    try:
        import torch
        torch_text = f"torch {torch.__version__}"
    except ImportError:
        torch = None
        torch_text = "torch not installed: nerve alone"
    print(f"DCGAN iteration (width {args.width}, latent {LATENT}, batch {BATCH}, 1x28x28); numpy {np.__version__}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}, {torch_text}; "
          f"{rounds} rounds of {steps} iterations, libraries in turn")
    setups = {"nerve": (setup, "nerve", args.width)}
    if torch is not None:
        setups["PyTorch"] = (setup, "torch", args.width)
    result = compare(setups, steps, rounds)
    print(f"{'':<10}{'best ms':>9}{'median ms':>11}{'nerve / this':>14}{'best / best':>13}")
    for name, r in result.items():
        print(f"{name:<10}{r['best']:>9.1f}{r['median']:>11.1f}{r['ratio']:>14.2f}{r['best_ratio']:>13.2f}")
    if torch is None:
        print("nerve / PyTorch: not measured here (PyTorch is not installed)")


if __name__ == "__main__":
    main()
