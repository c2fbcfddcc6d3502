"""``Linear`` (fully connected) and the reshaping layers that sit around it, ``Flatten`` and ``Unflatten``."""
from __future__ import annotations


from nerve import backend
from nerve.autograd import ShapeError
from nerve.backend import xp
from nerve.nn import init
from nerve.nn.module import Module
from nerve.nn.parameter import Parameter
from nerve.ops import bilinear, linear
from nerve.tensor import Tensor


def _empty(shape: tuple, device, dtype) -> Parameter:
    """An uninitialised parameter (the layer's reset_parameters fills it)."""
    array = xp.empty(shape, dtype=xp.dtype(dtype) if dtype is not None else backend.get_default_dtype())
    if device is not None:
        array = backend.to_device(array, device)
    return Parameter(array)


class Linear(Module):
    """y = x W^T + b, with W of shape (out_features, in_features); inputs have shape (..., in_features).

    Initialised as in PyTorch: W and b from U(-1/sqrt(in_features), 1/sqrt(in_features)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = _empty((out_features, in_features), device, dtype)
        if bias:
            self.bias = _empty((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) for W, U(+-1/sqrt(fan_in)) for b."""
        init.default_(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        """x W^T + b over the last dimension."""
        if input.shape[-1:] != (self.in_features,):
            raise ShapeError(f"Linear({self.in_features} -> {self.out_features}): expected input "
                             f"(..., {self.in_features}), got {tuple(input.shape)}")
        if input.dtype != self.weight.dtype:
            raise TypeError(f"Linear({self.in_features} -> {self.out_features}): input has dtype "
                            f"{input.dtype} but the weights are {self.weight.dtype}; convert the input "
                            "(x.astype(...)) or the model (model.to(dtype))")
        return linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")

    def get_config(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None}


class Flatten(Module):
    """Merge dims ``start_dim``..``end_dim`` into one (by default everything but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        """The input with the chosen dims merged."""
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def get_config(self) -> dict:
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size`` (the inverse of Flatten)."""

    def __init__(self, dim: int, unflattened_size) -> None:
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        """The input with dim ``dim`` reshaped to ``unflattened_size``."""
        shape = tuple(input.shape)
        if not -len(shape) <= self.dim < len(shape):
            raise ValueError(f"{self!r}: dim {self.dim} is out of range for input {shape}")
        d = self.dim % len(shape)
        known = 1
        for s in self.unflattened_size:
            known *= s if s != -1 else 1
        if (-1 not in self.unflattened_size and known != shape[d]) or (known and shape[d] % known):
            raise ValueError(f"{self!r}: dimension {self.dim} of input {shape} has size {shape[d]}, "
                             f"which does not split into {self.unflattened_size}")
        return input.reshape(shape[:d] + self.unflattened_size + shape[d + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"

    def get_config(self) -> dict:
        return {"dim": self.dim, "unflattened_size": list(self.unflattened_size)}


class Bilinear(Module):
    """y_k = x1 W_k x2^T + b_k: a weight of shape (out_features, in1_features, in2_features), initialised from
    U(+-1/sqrt(in1_features)) as in PyTorch."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        self.weight = _empty((out_features, in1_features, in2_features), device, dtype)
        if bias:
            self.bias = _empty((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / self.in1_features ** 0.5
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")

    def get_config(self) -> dict:
        return {"in1_features": self.in1_features, "in2_features": self.in2_features,
                "out_features": self.out_features, "bias": self.bias is not None}
