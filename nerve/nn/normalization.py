"""Normalisation layers: ``BatchNorm1d``/``BatchNorm2d`` (per channel, over the batch), ``LayerNorm`` (per
sample), ``GroupNorm`` (per sample and group of channels) and ``InstanceNorm1d``/``InstanceNorm2d`` (per sample
and channel)."""
from __future__ import annotations

from nerve import functional as F
from nerve.backend import xp
from nerve.nn import init
from nerve.nn.linear import _empty
from nerve.nn.module import Module
from nerve.tensor import Tensor


def _filled(n: int, value: float, device, dtype) -> Tensor:
    """A buffer of ``n`` copies of ``value``."""
    return init.constant_(_empty((n,), device, dtype).detach(), value)


def _affine(module: Module, shape: tuple, weight: bool, bias: bool, device, dtype) -> None:
    """``module.weight`` (ones) and ``module.bias`` (zeros) of ``shape`` where asked for, else registered as None."""
    if weight:
        module.weight = init.ones_(_empty(shape, device, dtype))
    else:
        module.register_parameter("weight", None)
    if bias:
        module.bias = init.zeros_(_empty(shape, device, dtype))
    else:
        module.register_parameter("bias", None)


class _NormBase(Module):
    """Per-channel state shared by batch and instance norm: optional weight/bias (ones/zeros) and optional
    running statistics with their batch counter, under PyTorch's names."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _affine(self, (num_features,), affine, affine, device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", _filled(num_features, 0.0, device, dtype))
            self.register_buffer("running_var", _filled(num_features, 1.0, device, dtype))
            self.register_buffer("num_batches_tracked", Tensor(xp.zeros((), dtype=xp.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, variance 1, no batches counted."""
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked.fill_(0)

    def _momentum_factor(self) -> float:
        """Count a training batch and return the weight of its statistics in the running averages
        (``momentum``, or 1 / batches seen for the cumulative average when momentum is None)."""
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / int(self.num_batches_tracked.item())
        return factor

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")

    def get_config(self) -> dict:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "track_running_stats": self.track_running_stats}


class BatchNorm1d(_NormBase):
    """Normalise each of ``num_features`` channels of (N, C) or (N, C, L) inputs over the batch.

    Training uses the batch's mean and variance and updates ``running_mean``/``running_var``
    (exponential average with ``momentum``, or the cumulative average when momentum is None);
    evaluation uses the running statistics. weight/bias start at ones/zeros.
    """

    def forward(self, input: Tensor) -> Tensor:
        """Batch statistics while training (updating the running ones), running statistics in eval."""
        if input.ndim not in (2, 3) or input.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d({self.num_features}): expected input (N, {self.num_features}) or "
                             f"(N, {self.num_features}, L), got {tuple(input.shape)}")
        return self._normalize(input)

    def _normalize(self, input: Tensor) -> Tensor:
        """F.batch_norm over (N, C) rows with this layer's statistics and update rule."""
        factor = self._momentum_factor()
        use_batch = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if track else None, self.running_var if track else None,
                            self.weight, self.bias, use_batch, factor, self.eps)


class BatchNorm2d(BatchNorm1d):
    """Normalise each of ``num_features`` channels of (N, C, H, W) feature maps over the batch and the
    positions (N * H * W values per channel); same statistics, momentum and parameters as ``BatchNorm1d``.

    Computed on channels-last rows (N * H * W, C): for the channels-last output of a convolution those are
    free views, and per-channel sums over rows vectorise across channels.
    """

    def forward(self, input: Tensor) -> Tensor:
        """Batch statistics while training (updating the running ones), running statistics in eval."""
        c = self.num_features
        if input.ndim != 4 or input.shape[1] != c:
            raise ValueError(f"BatchNorm2d({c}): expected input (N, {c}, H, W), got {tuple(input.shape)}")
        n, _, h, w = input.shape
        if self.training and n * h * w <= 1:
            raise ValueError(f"BatchNorm2d({c}): expected more than 1 value per channel when training, got "
                             f"input {tuple(input.shape)}")
        rows = input.permute(0, 2, 3, 1).reshape(n * h * w, c)
        return self._normalize(rows).reshape(n, h, w, c).permute(0, 3, 1, 2)


class BatchNorm3d(BatchNorm1d):
    """Normalise each of ``num_features`` channels of (N, C, D, H, W) volumes over the batch and the positions;
    same statistics, momentum and parameters as ``BatchNorm1d``."""

    def forward(self, input: Tensor) -> Tensor:
        """Batch statistics while training (updating the running ones), running statistics in eval."""
        c = self.num_features
        if input.ndim != 5 or input.shape[1] != c:
            raise ValueError(f"BatchNorm3d({c}): expected input (N, {c}, D, H, W), got {tuple(input.shape)}")
        return channels_last_norm(self, input)


def channels_last_norm(layer: BatchNorm1d, input: Tensor) -> Tensor:
    """Batch norm of (N, C, *) as rows (N * positions, C) through ``layer``'s statistics, then back."""
    c = layer.num_features
    moved = input.permute(0, *range(2, input.ndim), 1)
    rows = layer._normalize(moved.reshape(-1, c)).reshape(*moved.shape)
    return rows.permute(0, input.ndim - 1, *range(1, input.ndim - 1))


class LayerNorm(Module):
    """Normalise each sample over its trailing ``normalized_shape`` dims, then scale and shift per element.

    weight/bias (shape ``normalized_shape``) start at ones/zeros; one fused graph node.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape = shape
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine(self, shape, elementwise_affine, elementwise_affine and bias, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        """(x - mean) / sqrt(var + eps) * weight + bias over the trailing dims."""
        k = len(self.normalized_shape)
        if tuple(input.shape[input.ndim - k:]) != self.normalized_shape or input.ndim < k:
            raise ValueError(f"LayerNorm({self.normalized_shape}): expected input "
                             f"(..., {', '.join(map(str, self.normalized_shape))}), got {tuple(input.shape)}")
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"

    def get_config(self) -> dict:
        return {"normalized_shape": list(self.normalized_shape), "eps": self.eps,
                "elementwise_affine": self.elementwise_affine, "bias": self.bias is not None}


class GroupNorm(Module):
    """Normalise each sample of (N, C, *) inputs over groups of ``num_channels / num_groups`` channels and
    all positions, then scale and shift per channel; weight/bias start at ones/zeros. Independent of the
    batch, so the same in training and evaluation."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _affine(self, (num_channels,), affine, affine, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        """(x - mean) / sqrt(var + eps) per sample and group, then weight * . + bias per channel."""
        c = self.num_channels
        if input.ndim < 2 or input.shape[1] != c:
            raise ValueError(f"GroupNorm({self.num_groups}, {c}): expected input (N, {c}, *), got "
                             f"{tuple(input.shape)}")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"

    def get_config(self) -> dict:
        return {"num_groups": self.num_groups, "num_channels": self.num_channels, "eps": self.eps,
                "affine": self.affine}


class _InstanceNorm(_NormBase):
    """Instance norm over ``_spatial`` trailing dims; unbatched inputs (C, *) are accepted as in PyTorch."""

    _spatial: int

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None, dtype=None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        """Each sample's own statistics (updating the running ones if tracked) in training or when
        statistics are not tracked; the running statistics in eval."""
        c, k = self.num_features, self._spatial
        dims = {1: "L", 2: "H, W", 3: "D, H, W"}[k]
        if input.ndim not in (k + 1, k + 2) or input.shape[input.ndim - k - 1] != c:
            raise ValueError(f"{type(self).__name__}({c}): expected input (N, {c}, {dims}) or ({c}, {dims}), "
                             f"got {tuple(input.shape)}")
        if input.ndim == k + 1:
            return self.forward(input.unsqueeze(0)).squeeze(0)
        factor = self._momentum_factor()
        use_input_stats = self.training or not self.track_running_stats
        return F.instance_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                               use_input_stats, factor, self.eps)


class InstanceNorm1d(_InstanceNorm):
    """Normalise each channel of each sample of (N, C, L) inputs over its L positions (no learned affine
    and no running statistics by default, as in PyTorch)."""

    _spatial = 1


class InstanceNorm3d(_InstanceNorm):
    """Normalise each channel of each sample of (N, C, D, H, W) volumes over its D * H * W positions."""

    _spatial = 3


class InstanceNorm2d(_InstanceNorm):
    """Normalise each channel of each sample of (N, C, H, W) feature maps over its H * W positions (style
    transfer's normalisation; no learned affine and no running statistics by default)."""

    _spatial = 2


class RMSNorm(Module):
    """Root-mean-square normalisation over the trailing ``normalized_shape`` dims (Zhang & Sennrich 2019): x /
    sqrt(mean(x^2) + eps) * weight, no centring and no bias (PyTorch's ``nn.RMSNorm``)."""

    def __init__(self, normalized_shape, eps: float | None = None, elementwise_affine: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape = shape
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = init.ones_(_empty(shape, device, dtype))
        else:
            self.register_parameter("weight", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"

    def get_config(self) -> dict:
        return {"normalized_shape": list(self.normalized_shape), "eps": self.eps,
                "elementwise_affine": self.elementwise_affine}
