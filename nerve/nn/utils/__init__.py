"""Utilities on parameters, PyTorch's ``nn.utils``: gradient clipping in place (by the joint norm of all
gradients, or elementwise by value; ``nerve.optim`` re-exports it), flattening parameters to one vector, and
spectral normalisation of a layer's weight (GAN discriminators); ``rnn``: padding and packing sequences."""
from __future__ import annotations

import math
from typing import Iterable

from nerve import backend, ops
from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.nn.utils import rnn  # noqa: F401  (nn.utils.rnn: pad_sequence, pack_padded_sequence, ...)
from nerve.nn.utils import fusion, parametrizations, parametrize  # noqa: F401  (PyTorch's module paths)
from nerve.nn.utils.fusion import (  # noqa: F401
    fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights,
)
from nerve.nn.utils.norms import _matrix, _power_iteration, _sigma, _start_vectors, norm_except_dim
from nerve.tensor import Tensor


def _grads(parameters: Tensor | Iterable[Tensor]) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad.data for p in parameters if p.grad is not None]


def _norm(a, norm_type: float):
    """The ``norm_type``-norm of an array's elements (as a 0-d array of its dtype)."""
    if norm_type == math.inf:
        return xp.abs(a).max() if a.size else xp.zeros((), a.dtype)
    if norm_type == 2.0:
        flat = a.ravel()
        return xp.sqrt(xp.dot(flat, flat))
    if norm_type == 1.0:
        return xp.abs(a).sum()
    if norm_type == 0.0:
        return xp.asarray(xp.count_nonzero(a), dtype=a.dtype)
    return (xp.abs(a) ** norm_type).sum() ** (1.0 / norm_type)


def _total_norm(arrays: list, norm_type, error_if_nonfinite: bool, op: str) -> Tensor:
    norm_type = float(norm_type)
    if not norm_type >= 0:
        raise ValueError(f"{op}: norm_type must be >= 0 or inf, got {norm_type}")
    if not arrays:
        return Tensor(xp.zeros((), backend.get_default_dtype()))
    total = _norm(xp.stack([_norm(a, norm_type) for a in arrays]), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"{op}: the total norm of order {norm_type} of the gradients is {float(total)}, so "
                           "they cannot be clipped; pass error_if_nonfinite=False to scale them by it anyway")
    return Tensor(xp.asarray(total))


def get_total_norm(tensors: Tensor | Iterable[Tensor], norm_type: float | str = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` as if concatenated (``foreach``: no effect)."""
    tensors = [tensors] if isinstance(tensors, Tensor) else tensors
    return _total_norm([t.data for t in tensors if t is not None], norm_type, error_if_nonfinite, "get_total_norm")


def clip_grads_with_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, total_norm,
                          foreach: bool | None = None) -> None:
    """Scale every gradient by ``max_norm / (total_norm + 1e-6)`` when that is below 1, in place."""
    total = float(total_norm.item() if isinstance(total_norm, Tensor) else total_norm)
    coef = float(max_norm) / (total + 1e-6)
    # NOTE: `not coef >= 1` also scales by a NaN coefficient, as PyTorch does, so NaN stays visible.
    if not coef >= 1.0:
        for g in _grads(parameters):
            g *= coef


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float | str = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Scale all gradients together so that their joint norm is at most ``max_norm``; return that norm.

    The norm is taken over all gradients as if concatenated (``norm_type`` may be ``inf``); when it
    exceeds ``max_norm`` every gradient is multiplied by ``max_norm / (norm + 1e-6)``, in place.
    ``foreach`` (PyTorch's choice of fused kernels) is accepted and has no effect.
    """
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    total = _total_norm(_grads(parameters), norm_type, error_if_nonfinite, "clip_grad_norm_")
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_norm(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float | str = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """The deprecated name of ``clip_grad_norm_``."""
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def skip_init(module_cls: type, *args, **kwargs):
    """``module_cls(*args, **kwargs)``. PyTorch skips the initialisation here; nerve initialises as usual (the
    values are overwritten by whatever the caller loads next, so the result is the same)."""
    if not isinstance(module_cls, type):
        raise TypeError(f"skip_init: expected a Module class, got {type(module_cls).__name__}")
    return module_cls(*args, **kwargs)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``, in place (``foreach``: no effect)."""
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        xp.clip(g, -clip_value, clip_value, out=g)



def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters' values concatenated into one 1-D tensor (a copy, outside the graph)."""
    return Tensor._make(xp.concatenate([p.data.reshape(-1) for p in parameters]), None)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of ``vec`` into the parameters, in place (inverse of parameters_to_vector)."""
    params = list(parameters)
    needed = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.shape[0] != needed:
        raise ValueError(f"vector_to_parameters: expected a 1-D vector of {needed} values, got shape "
                         f"{tuple(vec.shape)}")
    offset = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.copy_(vec.data[offset:offset + n].reshape(p.shape))
            offset += n


class _SpectralNorm:
    """The forward pre-hook ``spectral_norm`` installs: weight = weight_orig / sigma, sigma estimated by power
    iteration on the buffers ``<name>_u``, ``<name>_v`` (advanced once per forward in training mode)."""

    def __init__(self, name: str, n_power_iterations: int, dim: int, eps: float) -> None:
        self.name, self.n_power_iterations, self.dim, self.eps = name, n_power_iterations, dim, eps

    def power_iteration(self, module, iterations: int) -> None:
        """Advance the module's u, v buffers by ``iterations`` steps."""
        mat = _matrix(getattr(module, self.name + "_orig").data, self.dim)
        _power_iteration(mat, module._buffers[self.name + "_u"].data, module._buffers[self.name + "_v"].data,
                         iterations, self.eps)

    def weight(self, module) -> Tensor:
        """weight_orig / (u^T W v)."""
        w = getattr(module, self.name + "_orig")
        return w / _sigma(w, module._buffers[self.name + "_u"].data, module._buffers[self.name + "_v"].data, self.dim)

    def __call__(self, module, args) -> None:
        if module.training:
            self.power_iteration(module, self.n_power_iterations)
        object.__setattr__(module, self.name, self.weight(module))


def spectral_norm(module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None):
    """Divide ``module.<name>`` by its largest singular value before every forward (Miyato et al. 2018), as
    PyTorch's ``nn.utils.spectral_norm``: the parameter becomes ``<name>_orig``, the power-iteration vectors
    the buffers ``<name>_u`` and ``<name>_v``; ``dim`` is the output dimension (1 for transposed convolutions).

    Returns the module. The vectors start random and take 15 power iterations at once (as PyTorch's
    parametrization does), so sigma is close to the largest singular value from the first forward.
    """
    from nerve.nn.parameter import Parameter

    if any(isinstance(h, _SpectralNorm) and h.name == name for h in getattr(module, "_forward_pre_hooks", {}).values()):
        raise RuntimeError(f"spectral_norm: {type(module).__name__}.{name} is already spectrally normalised")
    weight = module._parameters.get(name) if hasattr(module, "_parameters") else None
    if not isinstance(weight, Parameter):
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter {name!r} "
                         f"(its parameters: {sorted(getattr(module, '_parameters', {}))})")
    if weight.ndim < 2:
        raise ValueError(f"spectral_norm: {type(module).__name__}.{name} has shape {tuple(weight.shape)}; it "
                         "needs at least 2 dimensions")
    if n_power_iterations < 1:
        raise ValueError(f"spectral_norm: n_power_iterations must be >= 1, got {n_power_iterations}")
    if dim is None:
        dim = 1 if getattr(module, "_transposed", False) else 0
    hook = _SpectralNorm(name, n_power_iterations, dim, eps)
    u, v = _start_vectors(weight, dim, eps)
    del module._parameters[name]
    module.__dict__.pop(name, None)
    module.register_parameter(name + "_orig", weight)
    module.register_buffer(name + "_u", Tensor(u))
    module.register_buffer(name + "_v", Tensor(v))
    hook.power_iteration(module, 15)
    object.__setattr__(module, name, hook.weight(module))
    module.register_forward_pre_hook(hook)
    return module


def _remove_hook(module, name: str, kind: type, suffixes: tuple, op: str):
    """Undo a weight hook of class ``kind`` on ``name``: drop the hook and the ``<name><suffix>`` tensors, and
    register ``<name>`` as a plain parameter holding the weight the hook computed."""
    from nerve.nn.parameter import Parameter

    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, kind) and hook.name == name:
            with no_grad():
                value = hook.weight(module).data
            del module._forward_pre_hooks[key]
            for suffix in suffixes:
                delattr(module, name + suffix)
            module.__dict__.pop(name, None)
            module.register_parameter(name, Parameter(value))
            return module
    raise ValueError(f"{op}: {op.removeprefix('remove_')} of {name!r} not found in {type(module).__name__}")


def remove_spectral_norm(module, name: str = "weight"):
    """Undo ``spectral_norm``: ``<name>`` becomes a plain parameter again holding weight_orig / sigma."""
    return _remove_hook(module, name, _SpectralNorm, ("_orig", "_u", "_v"), "remove_spectral_norm")


class _WeightNorm:
    """The forward pre-hook ``weight_norm`` installs: weight = g * v / |v| (Salimans & Kingma 2016)."""

    def __init__(self, name: str, dim: int | None) -> None:
        self.name, self.dim = name, dim

    def weight(self, module) -> Tensor:
        v = getattr(module, self.name + "_v")
        return v * (getattr(module, self.name + "_g") / norm_except_dim(v, self.dim))

    def __call__(self, module, args) -> None:
        object.__setattr__(module, self.name, self.weight(module))


def weight_norm(module, name: str = "weight", dim: int | None = 0):
    """Reparametrise ``module.<name>`` as g * v / |v| (norm over every dim but ``dim``; whole tensor when None),
    as PyTorch's ``nn.utils.weight_norm``: parameters ``<name>_g`` and ``<name>_v``, recomputed before every
    forward. Returns the module."""
    from nerve.nn.parameter import Parameter

    if any(isinstance(h, _WeightNorm) and h.name == name for h in module._forward_pre_hooks.values()):
        raise RuntimeError(f"weight_norm: {type(module).__name__}.{name} already has weight norm")
    weight = module._parameters.get(name)
    if not isinstance(weight, Parameter):
        raise ValueError(f"weight_norm: {type(module).__name__} has no parameter {name!r}")
    hook = _WeightNorm(name, dim)
    with no_grad():
        g = norm_except_dim(weight, dim)
    del module._parameters[name]
    module.__dict__.pop(name, None)
    module.register_parameter(name + "_g", Parameter(g.data.copy()))
    module.register_parameter(name + "_v", Parameter(weight.data.copy()))
    object.__setattr__(module, name, hook.weight(module))
    module.register_forward_pre_hook(hook)
    return module


def remove_weight_norm(module, name: str = "weight"):
    """Undo ``weight_norm``: ``<name>`` becomes a plain parameter holding g * v / |v|."""
    return _remove_hook(module, name, _WeightNorm, ("_g", "_v"), "remove_weight_norm")


__all__ = ["clip_grad_norm", "clip_grad_norm_", "clip_grad_value_", "skip_init", "clip_grads_with_norm_",
           "get_total_norm", "fusion",
           "fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights",
           "parameters_to_vector", "remove_spectral_norm", "spectral_norm", "vector_to_parameters", "weight_norm",
           "remove_weight_norm", "parametrize", "parametrizations"]
