"""PyTorch's ``nn.utils.fusion``: fold an eval-mode BatchNorm into the convolution or linear layer before it
(one layer computing both, for inference)."""
from __future__ import annotations

import copy

from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.nn.parameter import Parameter
from nerve.tensor import Tensor

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights"]


def _arrays(*tensors):
    return [None if t is None else (t.data if isinstance(t, Tensor) else xp.asarray(t)) for t in tensors]


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps: float, bn_w, bn_b,
                         transpose: bool = False) -> tuple:
    """Weight and bias of one convolution equal to conv then batch norm with running statistics:
    w * s and (b - mean) * s + beta, s = gamma / sqrt(var + eps) per output channel."""
    w, b, rm, rv, gamma, beta = _arrays(conv_w, conv_b, bn_rm, bn_rv, bn_w, bn_b)
    b = xp.zeros_like(rm) if b is None else b
    gamma = xp.ones_like(rm) if gamma is None else gamma
    beta = xp.zeros_like(rm) if beta is None else beta
    scale = gamma / xp.sqrt(rv + bn_eps)
    shape = (1, -1) + (1,) * (w.ndim - 2) if transpose else (-1,) + (1,) * (w.ndim - 1)
    fused_w = (w * scale.reshape(shape)).astype(w.dtype)
    fused_b = ((b - rm) * scale + beta).astype(w.dtype)
    grad = getattr(conv_w, "requires_grad", True)
    return Parameter(fused_w, requires_grad=grad), Parameter(fused_b, requires_grad=grad)


def fuse_conv_bn_eval(conv, bn, transpose: bool = False):
    """A copy of ``conv`` computing ``bn(conv(x))`` with ``bn``'s running statistics (both in eval mode)."""
    if conv.training or bn.training:
        raise RuntimeError("fuse_conv_bn_eval: fusing is only for eval mode; call .eval() on both layers first")
    fused = copy.deepcopy(conv)
    with no_grad():
        fused.weight, fused.bias = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                        bn.eps, bn.weight, bn.bias, transpose)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps: float, bn_w, bn_b) -> tuple:
    """Weight and bias of one linear layer equal to linear then batch norm with running statistics."""
    return fuse_conv_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b)


def fuse_linear_bn_eval(linear, bn):
    """A copy of ``linear`` computing ``bn(linear(x))`` with ``bn``'s running statistics (both in eval mode)."""
    if linear.training or bn.training:
        raise RuntimeError("fuse_linear_bn_eval: fusing is only for eval mode; call .eval() on both layers first")
    if linear.out_features != bn.num_features:
        raise ValueError(f"fuse_linear_bn_eval: the linear layer has {linear.out_features} outputs but the batch "
                         f"norm {bn.num_features} features")
    fused = copy.deepcopy(linear)
    with no_grad():
        fused.weight, fused.bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                          bn.eps, bn.weight, bn.bias)
    return fused
