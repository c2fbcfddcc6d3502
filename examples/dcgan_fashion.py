"""DCGAN on Fashion-MNIST within a time budget, measured by a classifier trained on the real data.

Run: python examples/dcgan_fashion.py [--data DIR] [--minutes 20] [--out runs/dcgan_fashion]
DIR holds the Fashion-MNIST IDX files (default ../shared/data/fashion-mnist when it exists). Trains
DCGANGenerator/DCGANDiscriminator (width 32, latent 64, non-saturating loss, Adam 2e-4 betas (0.5, 0.999),
batch 64, EMA 0.999 of G) until --minutes of training have passed, saving a sample grid per epoch and at the end,
and a latent interpolation. Then it trains LeNet-5 on the real training images and reports, on its 84-d
penultimate features, the Fréchet distance of 10,000 samples to the real test set, beside real-vs-real (10,000
training images vs the test set) and noise-vs-real (uniform noise images), an Inception-Score-style score from
its class probabilities, and the generated samples' class distribution (mode coverage for images).
BLAS runs on one thread unless OPENBLAS_NUM_THREADS is set: on a loaded 2-core machine two threads fight
(0.2 s vs 2.4 s a step measured).
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
from nerve import nn  # noqa: E402
from nerve.data.datasets import load_fashion_mnist  # noqa: E402
from nerve.gan import GAN, SampleGrid, class_histogram, frechet_distance, inception_score, save_image  # noqa: E402
from nerve.gan.run import as_images  # noqa: E402
from nerve.models import LeNet5  # noqa: E402
from nerve.models.gan import DCGANDiscriminator, DCGANGenerator  # noqa: E402
from nerve.train import Callback  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fashion-mnist")
CLASSES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]


class TimeLimit(Callback):
    """Stop after the batch at which ``seconds`` of training have passed on ``clock`` (wall or this process's
    CPU time), or ``wall_cap`` seconds of wall time, whichever comes first."""

    def __init__(self, seconds: float, clock: str = "wall", wall_cap: float = float("inf")) -> None:
        self.seconds, self.wall_cap = seconds, wall_cap
        self.clock = time.perf_counter if clock == "wall" else time.process_time

    def on_train_begin(self, logs=None) -> None:
        self.start, self.wall_start = self.clock(), time.perf_counter()

    def on_batch_end(self, batch, logs=None) -> None:
        if self.clock() - self.start > self.seconds or time.perf_counter() - self.wall_start > self.wall_cap:
            self.trainer.stop("time limit")


def features_and_probs(classifier: nn.Module, x: np.ndarray, batch: int = 500) -> tuple:
    """The classifier's penultimate (84-d) features and class probabilities for images in [-1, 1]."""
    body, head = classifier[:-1], classifier[-1]
    feats, probs = [], []
    classifier.eval()
    with nerve.no_grad():
        for i in range(0, len(x), batch):
            f = body(nerve.tensor(x[i:i + batch]))
            feats.append(f.numpy())
            probs.append(nerve.softmax(head(f), -1).numpy())
    return np.concatenate(feats), np.concatenate(probs)


def train_classifier(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, epochs: int) -> nn.Module:
    classifier = LeNet5()
    nerve.train.fit(classifier, (x, y), loss="cross_entropy", optimizer=nerve.optim.Adam(classifier.parameters(), 1e-3),
                    epochs=epochs, batch_size=128, verbose=0)
    acc = nerve.train.evaluate(classifier, (x_test, y_test), metrics=["accuracy"], batch_size=1000)["accuracy"]
    print(f"classifier LeNet-5 ({epochs} epochs on the real training images): test accuracy {acc:.4f}")
    return classifier


def generate(gan: GAN, n: int, ema: bool, seed: int) -> np.ndarray:
    return np.concatenate([gan.sample(500, generator=seed + i, ema=ema).numpy() for i in range(n // 500)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SHARED if os.path.isdir(SHARED) else None)
    parser.add_argument("--minutes", type=float, default=20.0, help="training time budget")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="what --minutes counts: wall time, or this process's CPU time (a shared machine)")
    parser.add_argument("--wall-cap", type=float, default=float("inf"), help="stop after this many wall minutes anyway")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N training images (0: all)")
    parser.add_argument("--eval", type=int, default=10000, help="generated/real images for the measurements")
    parser.add_argument("--classifier-epochs", type=int, default=3)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/dcgan_fashion", help="folder for the PNGs")
    args = parser.parse_args()
    nerve.manual_seed(args.seed)
    x_raw, y = load_fashion_mnist(root=args.data, train=True, flatten=True)
    xt_raw, y_test = load_fashion_mnist(root=args.data, train=False, flatten=True)
    if args.limit:
        x_raw, y = x_raw[:args.limit], y[:args.limit]
    x, x_test = as_images(x_raw), as_images(xt_raw)  # [0, 1] -> [-1, 1], the generator's tanh range

    gan = GAN(DCGANGenerator(64, width=args.width), DCGANDiscriminator(width=args.width), "non_saturating",
              ema_decay=0.999)
    grid = SampleGrid(os.path.join(args.out, "epoch_{epoch:02d}.png"), n=64, ema=False)
    start, cpu_start = time.perf_counter(), time.process_time()
    limit = TimeLimit(60 * args.minutes, args.clock, 60 * args.wall_cap)
    history = gan.fit(x, epochs=1000, batch_size=64, callbacks=[limit, grid], verbose=2)
    minutes, cpu = (time.perf_counter() - start) / 60, (time.process_time() - cpu_start) / 60
    steps = int(gan.model.steps.item())
    print(f"trained {steps} steps ({steps * 64 / len(x):.2f} epochs of {len(x)} images) in {minutes:.1f} min "
          f"({cpu:.1f} min of CPU time); "
          f"last epoch d_loss {history.history['d_loss'][-1]:.3f} g_loss {history.history['g_loss'][-1]:.3f}")
    save_image(gan.sample(64, generator=1, ema=False), os.path.join(args.out, "samples.png"))
    save_image(gan.sample(64, generator=1, ema=True), os.path.join(args.out, "samples_ema.png"))
    save_image(gan.interpolate(steps=10, pairs=6, generator=2, ema=False), os.path.join(args.out, "interpolation.png"),
               nrow=10)
    print(f"sample grids: {args.out}/samples.png (G), samples_ema.png (EMA of G), interpolation.png, epoch_*.png")

    classifier = train_classifier(x, y, x_test, y_test, args.classifier_epochs)
    n = min(args.eval, len(x_test)) // 500 * 500
    f_test, p_test = features_and_probs(classifier, x_test[:n])
    f_train, p_train = features_and_probs(classifier, x[:n])
    rng = np.random.default_rng(args.seed)
    f_noise, p_noise = features_and_probs(classifier, rng.uniform(-1, 1, (n, 1, 28, 28)).astype(np.float32))
    rows = [("real (train) vs real (test)", f_train, p_train), ("uniform noise vs real", f_noise, p_noise)]
    for ema in (False, True):
        f_gen, p_gen = features_and_probs(classifier, generate(gan, n, ema, 100))
        rows.append((f"DCGAN {'EMA of G' if ema else 'G'} vs real", f_gen, p_gen))
    print(f"\nclassifier-feature Fréchet distance (LeNet-5 penultimate, 84-d) against {n} test images; "
          "IS-style score exp E KL(p(y|x) || p(y)) (max 10)")
    for name, f, p in rows:
        print(f"  {name:<28} FD {frechet_distance(f, f_test):9.3f}   score {inception_score(p):6.3f}")
    print("class distribution of the generated samples (argmax of the classifier; real test set: 10% each):")
    for name, _, p in rows[2:]:
        hist = class_histogram(p)
        print(f"  {name:<28} " + " ".join(f"{c} {100 * h:.1f}%" for c, h in zip(CLASSES, hist)))
    print("  real test set (classifier)   " + " ".join(f"{c} {100 * h:.1f}%"
                                                        for c, h in zip(CLASSES, class_histogram(p_test))))


if __name__ == "__main__":
    main()
