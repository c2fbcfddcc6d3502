"""Attribution maps by method name (what ``nerve explain RUN_DIR INPUT --method ...`` and the fit callback use):
the target defaults to the model's predicted class, Grad-CAM takes the last convolution layer."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from nerve.autograd.grad_mode import no_grad
from nerve.explain._common import eval_mode, model_dtype
from nerve.explain.attribution import (
    GradientShap, InputXGradient, IntegratedGradients, NoiseTunnel, Occlusion, Saliency,
)
from nerve.explain.layer import GuidedGradCam, LayerAttribution, LayerGradCam
from nerve.nn.conv import _ConvNd
from nerve.nn.module import Module
from nerve.tensor import Tensor
from nerve.train.callbacks import Callback

__all__ = ["METHOD_NAMES", "AttributionLogger", "attribution_maps", "explain_to_png", "last_conv"]

METHOD_NAMES = ("saliency", "input-x-gradient", "integrated-gradients", "smoothgrad", "gradient-shap", "occlusion",
                "grad-cam", "guided-grad-cam")


def last_conv(model: Module) -> _ConvNd:
    """The last convolution layer of ``model`` (Grad-CAM's usual choice)."""
    convs = [m for m in model.modules() if isinstance(m, _ConvNd)]
    if not convs:
        raise ValueError(f"last_conv: {type(model).__name__} has no convolution layer for Grad-CAM")
    return convs[-1]


def predicted_class(model: Module, x: np.ndarray) -> np.ndarray:
    """The arg-max class of each example, in eval mode."""
    with eval_mode(model, "predicted_class"), no_grad():
        return np.asarray(model(Tensor(x)).numpy()).argmax(axis=1)


def attribution_maps(model: Module, inputs, method: str = "integrated-gradients", target=None,
                     **kwargs) -> np.ndarray:
    """Attributions of ``inputs`` (N, ...) by the method called ``method`` (one of METHOD_NAMES) for ``target``
    (default: each example's predicted class), as a NumPy array of the input's shape (Grad-CAM's maps upsampled
    to it). ``kwargs`` go to the method's ``attribute`` (e.g. n_steps)."""
    if method not in METHOD_NAMES:
        raise ValueError(f"attribution_maps: method must be one of {METHOD_NAMES}, got {method!r}")
    x = np.asarray(inputs.numpy() if isinstance(inputs, Tensor) else inputs).astype(model_dtype(model) or np.float32)
    if target is None:
        target = predicted_class(model, x).tolist()
    if method == "saliency":
        out = Saliency(model).attribute(x, target=target, **kwargs)
    elif method == "input-x-gradient":
        out = InputXGradient(model).attribute(x, target=target, **kwargs)
    elif method == "integrated-gradients":
        out = IntegratedGradients(model).attribute(x, target=target, **kwargs)
    elif method == "smoothgrad":
        kwargs.setdefault("stdevs", 0.15 * float(x.std()))
        kwargs.setdefault("nt_samples", 10)
        out = NoiseTunnel(Saliency(model)).attribute(x, target=target, **kwargs)
    elif method == "gradient-shap":
        kwargs.setdefault("baselines", np.stack([np.zeros_like(x[0]), np.full_like(x[0], x.min())]))
        kwargs.setdefault("n_samples", 20)
        out = GradientShap(model).attribute(x, target=target, **kwargs)
    elif method == "occlusion":
        if x.ndim < 3:
            kwargs.setdefault("sliding_window_shapes", (1,) * (x.ndim - 1))
        else:
            kwargs.setdefault("sliding_window_shapes", (x.shape[1],) + (max(1, x.shape[2] // 7),) * (x.ndim - 2))
            kwargs.setdefault("strides", (x.shape[1],) + (max(1, x.shape[2] // 14),) * (x.ndim - 2))
        kwargs.setdefault("perturbations_per_eval", 16)
        out = Occlusion(model).attribute(x, target=target, **kwargs)
    elif method == "grad-cam":
        cam = LayerGradCam(model, last_conv(model)).attribute(x, target=target, relu_attributions=True, **kwargs)
        out = LayerAttribution.interpolate(cam, x.shape[2:], "bilinear" if x.ndim == 4 else "nearest")
        out = Tensor(np.broadcast_to(out.numpy(), x.shape).copy())
    else:
        out = GuidedGradCam(model, last_conv(model)).attribute(x, target=target, **kwargs)
    return np.asarray(out.numpy())


def explain_to_png(model: Module, inputs, path, method: str = "integrated-gradients", target=None,
                   class_names: Sequence[str] | None = None, **kwargs) -> np.ndarray:
    """Write the overlay grid of ``inputs`` (images (N, C, H, W)) and their ``method`` maps to ``path``; tabular
    inputs (N, F) get one bar chart of the mean attribution. Returns the maps."""
    from nerve.explain.plots import attribution_grid, plot_feature_attr, pyplot
    x = np.asarray(inputs.numpy() if isinstance(inputs, Tensor) else inputs)
    maps = attribution_maps(model, x, method, target, **kwargs)
    pred = predicted_class(model, x.astype(model_dtype(model) or np.float32))
    names = [class_names[p] if class_names is not None else str(p) for p in pred]
    if x.ndim >= 3:
        fig = attribution_grid(x, {method: maps}, top_classes=names, path=path, sign="all"
                               if method in ("integrated-gradients", "input-x-gradient", "gradient-shap", "occlusion")
                               else "absolute_value")
    else:
        plt = pyplot("explain_to_png")
        ax = plot_feature_attr(maps, title=f"{method}: mean attribution over {len(x)} rows")
        fig = ax.figure
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return maps
    pyplot("explain_to_png").close(fig)
    return maps


class AttributionLogger(Callback):
    """Save the attribution maps of a fixed set of inputs every ``every`` epochs during ``fit``:
    ``directory/attributions_epoch{E:03d}.npy`` (N, ...) and, for images with matplotlib installed, a PNG
    overlay grid beside it; ``self.maps`` keeps {epoch: maps}. Shows what the network learns to look at."""

    def __init__(self, inputs, directory, method: str = "integrated-gradients", target=None, every: int = 1,
                 png: bool = True, **method_options) -> None:
        if method not in METHOD_NAMES:
            raise ValueError(f"AttributionLogger: method must be one of {METHOD_NAMES}, got {method!r}")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"AttributionLogger: every must be a positive int, got {every!r}")
        self.inputs = np.asarray(inputs.numpy() if isinstance(inputs, Tensor) else inputs)
        self.directory, self.method, self.target, self.every, self.png = directory, method, target, every, png
        self.options = method_options
        self.maps: dict = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every:
            return
        os.makedirs(self.directory, exist_ok=True)
        base = os.path.join(self.directory, f"attributions_epoch{epoch:03d}")
        if self.png and self.inputs.ndim >= 3:
            try:
                maps = explain_to_png(self.model, self.inputs, base + ".png", self.method, self.target,
                                      **self.options)
            except ImportError:
                self.png = False
        if not self.png or self.inputs.ndim < 3:
            maps = attribution_maps(self.model, self.inputs, self.method, self.target, **self.options)
        np.save(base + ".npy", maps)
        self.maps[epoch] = maps
