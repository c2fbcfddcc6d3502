"""``nn.Transformer`` (the full encoder-decoder of "Attention Is All You Need" over nerve's layers) and the
lazy layers (``LazyLinear``, ``LazyConv*``, ``LazyConvTranspose*``, ``LazyBatchNorm*``, ``LazyInstanceNorm*``):
the input size is read at the first call, the parameters are made then and the module becomes the plain layer,
as in PyTorch."""
from __future__ import annotations

import math
from typing import Callable

from nerve import backend
from nerve.autograd import ShapeError
from nerve.backend import xp
from nerve.nn import init
from nerve.nn.conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from nerve.nn.linear import Linear
from nerve.nn.module import Module
from nerve.nn.normalization import (
    BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm,
)
from nerve.nn.transformer import (
    TransformerDecoder, TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer,
)
from nerve.tensor import Tensor


class Transformer(Module):
    """Encoder-decoder Transformer with PyTorch's arguments: ``num_encoder_layers`` encoder layers and
    ``num_decoder_layers`` decoder layers, each stack ending in a LayerNorm; matrices start Xavier-uniform."""

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                 dim_feedforward: int = 2048, dropout: float = 0.1, activation: str | Callable = "relu",
                 custom_encoder: Module | None = None, custom_decoder: Module | None = None,
                 layer_norm_eps: float = 1e-5, batch_first: bool = False, norm_first: bool = False,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        layer = dict(d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward, dropout=dropout,
                     activation=activation, layer_norm_eps=layer_norm_eps, batch_first=batch_first,
                     norm_first=norm_first, bias=bias, device=device, dtype=dtype)
        norm = dict(eps=layer_norm_eps, bias=bias, device=device, dtype=dtype)
        self.encoder = custom_encoder if custom_encoder is not None else TransformerEncoder(
            TransformerEncoderLayer(**layer), num_encoder_layers, LayerNorm(d_model, **norm))
        self.decoder = custom_decoder if custom_decoder is not None else TransformerDecoder(
            TransformerDecoderLayer(**layer), num_decoder_layers, LayerNorm(d_model, **norm))
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src: Tensor, tgt: Tensor, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None,
                src_is_causal: bool | None = None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        """Encode ``src``, then decode ``tgt`` attending to the encoding; (S, N, E) and (T, N, E), or batch first."""
        batch = 0 if self.batch_first else 1
        if src.ndim == 3 and tgt.ndim == 3 and src.shape[batch] != tgt.shape[batch]:
            raise ShapeError(f"Transformer: the batch number of src and tgt must be equal, got shapes "
                             f"{tuple(src.shape)} and {tuple(tgt.shape)} (batch_first={self.batch_first})")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ShapeError(f"Transformer: the feature number of src and tgt must be equal to d_model = "
                             f"{self.d_model}, got shapes {tuple(src.shape)} and {tuple(tgt.shape)}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
        """A (sz, sz) float mask: -inf above the diagonal (future positions), 0 elsewhere."""
        dt = xp.dtype(dtype) if dtype is not None else backend.get_default_dtype()
        mask = xp.triu(xp.full((sz, sz), -math.inf, dtype=dt), 1)
        return Tensor(backend.to_device(mask, device) if device is not None else mask)


class _LazyMixin:
    """Holds the constructor's arguments until the first call, which builds ``cls_to_become`` with the input
    size filled in, takes over its parameters and becomes that class (hooks registered before stay)."""

    cls_to_become: type = Module

    def _lazy_setup(self, *args, **kwargs) -> None:
        Module.__init__(self)
        self._lazy_args = (args, kwargs)

    def has_uninitialized_params(self) -> bool:
        """True until the first call has made the parameters."""
        return "_lazy_args" in self.__dict__

    def _size(self, input: Tensor) -> int:
        raise NotImplementedError

    def initialize_parameters(self, input: Tensor) -> None:
        """Make the parameters for an input like ``input`` and become the plain layer."""
        args, kwargs = self.__dict__.pop("_lazy_args")
        built = self.cls_to_become(self._size(input), *args, **kwargs)
        keep = {"_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "training"}
        for key, value in built.__dict__.items():
            if key not in keep:
                self.__dict__[key] = value
        self.__class__ = self.cls_to_become

    def forward(self, input: Tensor, *args, **kwargs) -> Tensor:
        self.initialize_parameters(input)
        return self.forward(input, *args, **kwargs)


class LazyLinear(_LazyMixin, Linear):
    """``Linear`` whose ``in_features`` is the last dim of the first input."""

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        self._lazy_setup(out_features, bias, device, dtype)
        self.in_features, self.out_features = 0, out_features

    def _size(self, input: Tensor) -> int:
        return input.shape[-1]


class _LazyChannels(_LazyMixin):
    """Lazy layers whose missing size is the channel dim of (N, C, *spatial) or unbatched (C, *spatial)."""

    _n = 2

    def _size(self, input: Tensor) -> int:
        if input.ndim not in (self._n + 1, self._n + 2):
            raise ShapeError(f"{type(self).__name__}: expected a {self._n + 1}-d or {self._n + 2}-d input, got shape "
                             f"{tuple(input.shape)}")
        return input.shape[-self._n - 1]


class _LazyConv(_LazyChannels):
    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        self._lazy_setup(out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         device, dtype)
        self.in_channels, self.out_channels = 0, out_channels


class _LazyConvTranspose(_LazyChannels):
    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0, groups: int = 1,
                 bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        self._lazy_setup(out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation,
                         padding_mode, device, dtype)
        self.in_channels, self.out_channels = 0, out_channels


class _LazyNorm(_LazyChannels):
    def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None) -> None:
        self._lazy_setup(eps, momentum, affine, track_running_stats, device, dtype)
        self.num_features = 0


class _LazyInstanceNorm(_LazyNorm):
    def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device=None, dtype=None) -> None:
        super().__init__(eps, momentum, affine, track_running_stats, device, dtype)


class LazyConv1d(_LazyConv, Conv1d):
    """``Conv1d`` whose ``in_channels`` is read from the first input."""

    cls_to_become, _n = Conv1d, 1


class LazyConv2d(_LazyConv, Conv2d):
    """``Conv2d`` whose ``in_channels`` is read from the first input."""

    cls_to_become, _n = Conv2d, 2


class LazyConv3d(_LazyConv, Conv3d):
    """``Conv3d`` whose ``in_channels`` is read from the first input."""

    cls_to_become, _n = Conv3d, 3


class LazyConvTranspose1d(_LazyConvTranspose, ConvTranspose1d):
    """``ConvTranspose1d`` whose ``in_channels`` is read from the first input."""

    cls_to_become, _n = ConvTranspose1d, 1


class LazyConvTranspose2d(_LazyConvTranspose, ConvTranspose2d):
    """``ConvTranspose2d`` whose ``in_channels`` is read from the first input."""

    cls_to_become, _n = ConvTranspose2d, 2


class LazyConvTranspose3d(_LazyConvTranspose, ConvTranspose3d):
    """``ConvTranspose3d`` whose ``in_channels`` is read from the first input."""

    cls_to_become, _n = ConvTranspose3d, 3


class LazyBatchNorm1d(_LazyNorm, BatchNorm1d):
    """``BatchNorm1d`` whose ``num_features`` is read from the first (N, C) or (N, C, L) input."""

    cls_to_become, _n = BatchNorm1d, 1

    def _size(self, input: Tensor) -> int:
        return input.shape[1]


class LazyBatchNorm2d(_LazyNorm, BatchNorm2d):
    """``BatchNorm2d`` whose ``num_features`` is read from the first input."""

    cls_to_become, _n = BatchNorm2d, 2


class LazyBatchNorm3d(_LazyNorm, BatchNorm3d):
    """``BatchNorm3d`` whose ``num_features`` is read from the first input."""

    cls_to_become, _n = BatchNorm3d, 3


class LazyInstanceNorm1d(_LazyInstanceNorm, InstanceNorm1d):
    """``InstanceNorm1d`` whose ``num_features`` is read from the first input."""

    cls_to_become, _n = InstanceNorm1d, 1


class LazyInstanceNorm2d(_LazyInstanceNorm, InstanceNorm2d):
    """``InstanceNorm2d`` whose ``num_features`` is read from the first input."""

    cls_to_become, _n = InstanceNorm2d, 2


class LazyInstanceNorm3d(_LazyInstanceNorm, InstanceNorm3d):
    """``InstanceNorm3d`` whose ``num_features`` is read from the first input."""

    cls_to_become, _n = InstanceNorm3d, 3
