"""What a Fashion-MNIST CNN looks at, and whether the maps can be trusted.

Trains the small CNN (conv32-conv64-maxpool-fc128-fc10) on Fashion-MNIST, then for 8 test images:
- one PNG grid of every method's map (saliency, input x gradient, integrated gradients, SmoothGrad, GradientShap,
  occlusion, Grad-CAM, guided Grad-CAM);
- the completeness gaps of integrated gradients (|sum of attributions - (F(x) - F(0))| / |F(x) - F(0)|) at
  16 / 64 / 256 Gauss-Legendre steps and 64 trapezoid steps;
- the cascading parameter-randomisation table (Adebayo et al. 2018): Spearman rho between the trained model's maps
  and those with the top layers re-initialised, layer by layer;
- a deletion curve: test accuracy as the most-attributed pixels are set to 0, against random pixels.

Run:  python examples/explain_fashion.py [--data DIR] [--train 12000] [--epochs 2] [--out runs/explain_fashion]
Quick check:  python examples/explain_fashion.py --train 128 --epochs 1 --test 100 --images 1 --steps 4 --samples 2
              --deletion 8 --randomize saliency
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nerve  # noqa: E402
from nerve import explain  # noqa: E402
from nerve.data.datasets import load_fashion_mnist  # noqa: E402
from nerve.models import SmallCNN  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fashion-mnist")
CLASSES = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def grid_maps(model, x: np.ndarray, target: list, steps: int, samples: int) -> dict:
    """Every method's maps of ``x`` for ``target`` (Grad-CAM upsampled to the image)."""
    cam_layer = model[2]  # the second convolution (12x12 after pooling would be coarser)
    zeros = np.zeros_like(x[:1])
    maps = {
        "saliency": explain.Saliency(model).attribute(x, target=target),
        "input x grad": explain.InputXGradient(model).attribute(x, target=target),
        "integrated grad": explain.IntegratedGradients(model).attribute(x, target=target, n_steps=steps),
        "SmoothGrad": explain.NoiseTunnel(explain.Saliency(model)).attribute(
            x, nt_samples=samples, stdevs=0.15, target=target),
        "GradientShap": explain.GradientShap(model).attribute(
            x, baselines=np.concatenate([zeros, np.full_like(zeros, x.mean())]), n_samples=samples, target=target),
        "occlusion": explain.Occlusion(model).attribute(
            x, sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2), target=target, perturbations_per_eval=32),
        "Grad-CAM": explain.LayerAttribution.interpolate(
            explain.LayerGradCam(model, cam_layer).attribute(x, target=target, relu_attributions=True),
            x.shape[2:], "bilinear"),
        "guided Grad-CAM": explain.GuidedGradCam(model, cam_layer).attribute(x, target=target),
    }
    return {k: v.numpy() for k, v in maps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SHARED if os.path.isdir(SHARED) else None)
    parser.add_argument("--train", type=int, default=12000, help="training images (the first N)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--images", type=int, default=8, help="test images in the grid (one per class)")
    parser.add_argument("--steps", type=int, default=64, help="integrated-gradients steps for the grid")
    parser.add_argument("--samples", type=int, default=16, help="noisy samples of SmoothGrad and GradientShap")
    parser.add_argument("--test", type=int, default=10000, help="test images for the accuracy (the first N)")
    parser.add_argument("--randomize", default="saliency,input x gradient,integrated gradients,Grad-CAM",
                        help="comma-separated methods of the randomisation table")
    parser.add_argument("--deletion", type=int, default=300, help="test images for the deletion curve")
    parser.add_argument("--out", default=os.path.join("runs", "explain_fashion"), help="folder for the PNGs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    nerve.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    X, y = load_fashion_mnist(root=args.data, train=True)
    Xt, yt = load_fashion_mnist(root=args.data, train=False)
    X, y = X[:args.train], y[:args.train]
    Xt_acc, yt_acc = Xt[:args.test], yt[:args.test]
    model = SmallCNN()
    t0 = time.perf_counter()
    nerve.train.fit(model, (X, y), loss="cross_entropy", optimizer=nerve.optim.Adam(model.parameters(), lr=1e-3),
                    epochs=args.epochs, batch_size=64, verbose=0)
    acc = nerve.train.evaluate(model, (Xt_acc, yt_acc), loss="cross_entropy", metrics=["accuracy"], batch_size=1000)
    print(f"SmallCNN on {len(X)} Fashion-MNIST images, {args.epochs} epochs ({time.perf_counter() - t0:.0f} s): "
          f"accuracy on {len(Xt_acc)} test images {acc['accuracy']:.4f}")
    model.eval()

    # one image per class, in class order
    idx = [int(np.flatnonzero(yt == c % 10)[c // 10]) for c in range(args.images)]
    x = Xt[idx]
    pred = nerve.train.predict(model, x).numpy().argmax(1).tolist()
    t0 = time.perf_counter()
    maps = grid_maps(model, x, pred, args.steps, args.samples)
    path = os.path.join(args.out, "methods.png")
    explain.attribution_grid(x, maps, labels=[CLASSES[c] for c in yt[idx]], top_classes=[CLASSES[p] for p in pred],
                             path=path, title="attributions of the predicted class (|map|, blended)")
    print(f"wrote {path} ({len(maps)} methods, {time.perf_counter() - t0:.1f} s)")

    # completeness of integrated gradients
    print(f"integrated gradients, completeness gap |sum attr - (F(x) - F(0))| / |F(x) - F(0)| over the {len(x)} "
          "images:")
    model.double()
    x64 = x.astype(np.float64)
    for method, steps in (("gausslegendre", max(args.steps // 4, 1)), ("gausslegendre", args.steps),
                          ("gausslegendre", 4 * args.steps),
                          ("riemann_trapezoid", args.steps)):
        attr = explain.IntegratedGradients(model).attribute(x64, target=pred, n_steps=steps, method=method)
        gap = explain.completeness_gap(model, attr, x64, target=pred)
        print(f"  {method:<18} {steps:>4} steps: median {np.median(gap):.2e}  max {gap.max():.2e}")
    model.float()

    # cascading randomisation
    print("cascading parameter randomisation: Spearman rho (signed / of |map|) with the trained model's maps")
    methods = {
        "saliency": lambda inp: explain.Saliency(model).attribute(inp, target=pred, abs=False),
        "input x gradient": lambda inp: explain.InputXGradient(model).attribute(inp, target=pred),
        "integrated gradients": lambda inp: explain.IntegratedGradients(model).attribute(
            inp, target=pred, n_steps=min(args.steps, 32)),
        "Grad-CAM": lambda inp: explain.LayerAttribution.interpolate(
            explain.LayerGradCam(model, model[2]).attribute(inp, target=pred), inp.shape[2:]),
    }
    chosen = [m.strip() for m in args.randomize.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in methods]
    if unknown or not chosen:
        raise SystemExit(f"--randomize: unknown methods {unknown}; choose from {list(methods)}")
    methods = {name: methods[name] for name in chosen}
    tables = {name: explain.parameter_randomization(model, fn, x) for name, fn in methods.items()}
    layers = [r["layer"] for r in next(iter(tables.values()))["rows"]]
    print(f"  {'randomised down to layer':<28}" + "".join(f"{n:>24}" for n in methods))
    for i, layer in enumerate(layers):
        cells = "".join(f"{t['rows'][i]['spearman']:>+12.2f} / {t['rows'][i]['spearman_abs']:<+9.2f}"
                        for t in tables.values())
        print(f"  {layer + ' (' + type(dict(model.named_modules())[layer]).__name__ + ')':<28}{cells}")
    for name, t in tables.items():
        print(f"  {name}: {'FLAGGED: ' if t['flagged'] else ''}{t['message']}")

    # deletion curve
    n = min(args.deletion, len(Xt))
    xd, yd = Xt[-n:], yt[-n:]
    pd = nerve.train.predict(model, xd).numpy().argmax(1).tolist()
    fractions = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
    curves = {}
    for name, fn in (("saliency", lambda: explain.Saliency(model).attribute(xd, target=pd)),
                     ("integrated gradients", lambda: explain.IntegratedGradients(model).attribute(
                         xd, target=pd, n_steps=min(args.steps, 32), internal_batch_size=2048))):
        curves[name] = explain.deletion_curve(model, xd, fn(), yd, fractions)
    print(f"deletion curve: accuracy on {n} test images as the top fraction of pixels is set to 0")
    print(f"  {'fraction removed':<22}" + "".join(f"{f:>7.2f}" for f in fractions))
    for name, c in curves.items():
        print(f"  {name:<22}" + "".join(f"{v:>7.3f}" for v in c["attributed"]))
    print(f"  {'random pixels':<22}" + "".join(f"{v:>7.3f}" for v in next(iter(curves.values()))["random"]))
    _plot_deletion(curves, os.path.join(args.out, "deletion.png"))
    ig = curves["integrated gradients"]
    k = fractions.index(0.1)
    print(f"result: test accuracy {acc['accuracy']:.4f}; at 10% of the pixels removed, accuracy "
          f"{ig['attributed'][k]:.3f} (integrated gradients first) vs {ig['random'][k]:.3f} (random)")


def _plot_deletion(curves: dict, path: str) -> None:
    from nerve.explain.plots import pyplot
    plt = pyplot("explain_fashion")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, c in curves.items():
        ax.plot(c["fractions"], c["attributed"], marker="o", label=f"{name} (most attributed first)")
    c = next(iter(curves.values()))
    ax.plot(c["fractions"], c["random"], marker="s", ls="--", color="gray", label="random pixels")
    ax.set_xlabel("fraction of pixels set to 0")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
