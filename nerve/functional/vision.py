"""PyTorch's vision functions: ``unfold``/``fold`` (sliding windows as columns and back, the primitives of
``nerve.ops.fold``), ``pixel_shuffle``/``pixel_unshuffle`` (reshapes and a permutation), ``affine_grid`` and
``grid_sample`` (2-d and 3-d; composed from gathers and arithmetic, so they are differentiable w.r.t. the input
and, for bilinear sampling, the grid, to every order)."""
from __future__ import annotations

import itertools

from nerve.autograd import ShapeError
from nerve.backend import xp
from nerve.ops import fold2d, gather, matmul, pad as constant_pad, unfold2d, where, window_params
from nerve.tensor import Tensor

__all__ = ["unfold", "fold", "pixel_shuffle", "pixel_unshuffle", "affine_grid", "grid_sample", "channel_shuffle",
           "local_response_norm"]


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Every sliding window of a (N, C, H, W) (or unbatched (C, H, W)) tensor as a column:
    (N, C * kh * kw, L), L the number of windows."""
    if input.ndim not in (3, 4):
        raise ShapeError(f"unfold: expected a 3-d (C, H, W) or 4-d (N, C, H, W) input, got shape {tuple(input.shape)}")
    params = window_params("unfold", kernel_size, dilation, padding, stride)
    if input.ndim == 3:
        return unfold2d(input.unsqueeze(0), *params).squeeze(0)
    return unfold2d(input, *params)


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Columns (N, C * kh * kw, L) summed back into a (N, C, *output_size) image, overlaps added: the adjoint
    of ``unfold`` (so ``fold(unfold(x))`` is x times how many windows cover each pixel)."""
    if input.ndim not in (2, 3):
        raise ShapeError(f"fold: expected a 2-d (C * kh * kw, L) or 3-d (N, C * kh * kw, L) input, got shape "
                         f"{tuple(input.shape)}")
    size = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
        raise ValueError(f"fold: output_size must be an int or a pair of positive ints, got {output_size!r}")
    params = window_params("fold", kernel_size, dilation, padding, stride)
    if input.ndim == 2:
        return fold2d(input.unsqueeze(0), size, *params).squeeze(0)
    return fold2d(input, size, *params)


def _factor(name: str, op: str, r) -> int:
    if not isinstance(r, int) or r < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {r!r}")
    return r


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r): each group of r^2 channels becomes an r x r block (sub-pixel
    convolution, Shi et al. 2016)."""
    r = _factor("upscale_factor", "pixel_shuffle", upscale_factor)
    if input.ndim < 3 or input.shape[-3] % (r * r):
        raise ShapeError(f"pixel_shuffle: expected (*, C * {r * r}, H, W) with channels divisible by "
                         f"upscale_factor^2 = {r * r}, got shape {tuple(input.shape)}")
    *lead, c, h, w = input.shape
    k = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W): the inverse of ``pixel_shuffle``."""
    r = _factor("downscale_factor", "pixel_unshuffle", downscale_factor)
    if input.ndim < 3 or input.shape[-1] % r or input.shape[-2] % r:
        raise ShapeError(f"pixel_unshuffle: expected (*, C, H, W) with H and W divisible by downscale_factor = {r}, "
                         f"got shape {tuple(input.shape)}")
    *lead, c, h, w = input.shape
    k = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """(N, C, *) with its channels regrouped: channel i of group g moves to position i * groups + g (ShuffleNet)."""
    if not isinstance(groups, int) or groups < 1 or input.ndim < 3 or input.shape[1] % groups:
        raise ValueError(f"channel_shuffle: expected (N, C, *) with C divisible by groups, got shape "
                         f"{tuple(input.shape)} and groups={groups!r}")
    n, c, *rest = input.shape
    return input.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(n, c, *rest)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """x / (k + alpha * mean of x^2 over ``size`` neighbouring channels) ** beta (AlexNet), the mean over a window
    of ``size`` channels padded with zeros (size // 2 before, (size - 1) // 2 after)."""
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: expected (N, C, *) with at least 3 dims, got {tuple(input.shape)}")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive int, got {size!r}")
    c = input.shape[1]
    square = (input * input).transpose(1, -1)  # channels last, so pad's (left, right) pads them
    padded = constant_pad(square, (size // 2, (size - 1) // 2))
    total = padded[..., 0:c]
    for j in range(1, size):
        total = total + padded[..., j:j + c]
    return input / (k + alpha / size * total.transpose(1, -1)) ** beta


def _base(n: int, align_corners: bool, dtype):
    """The normalised coordinates of n pixel centres (-1 and 1 at the corner pixels' centres or edges)."""
    line = xp.linspace(-1.0, 1.0, n, dtype=dtype) if n > 1 else xp.zeros(1, dtype=dtype)
    return line if align_corners else line * (n - 1) / n


def affine_grid(theta: Tensor, size, align_corners: bool = False) -> Tensor:
    """Sampling grid of the affine maps ``theta`` (N, 2, 3) for a (N, C, H, W) output, (N, H, W, 2) as (x, y);
    or (N, 3, 4) for (N, C, D, H, W), (N, D, H, W, 3) as (x, y, z)."""
    size = tuple(int(s) for s in size)
    if not xp.issubdtype(theta.dtype, xp.floating):
        raise TypeError(f"affine_grid: expected theta of a floating dtype, got {theta.dtype}")
    dims = len(size) - 2
    if dims not in (2, 3) or tuple(theta.shape) != (size[0], dims, dims + 1):
        raise ShapeError(f"affine_grid: expected theta of shape (N, 2, 3) for a 4-d size or (N, 3, 4) for a 5-d "
                         f"size with N = size[0]; got theta {tuple(theta.shape)} and size {size}")
    spatial = size[2:]
    axes = [_base(n, align_corners, theta.dtype) for n in reversed(spatial)]  # x varies along the last dim
    mesh = xp.meshgrid(*reversed(axes), indexing="ij")  # (D,) H, W grids of z.., y, x
    coords = [mesh[len(mesh) - 1 - i] for i in range(dims)] + [xp.ones(spatial, dtype=theta.dtype)]
    base = Tensor(xp.stack(coords, axis=-1).reshape(1, -1, dims + 1))
    grid = matmul(base, theta.transpose(1, 2))
    return grid.reshape(size[0], *spatial, dims)


def _unnormalize(coord: Tensor, n: int, align_corners: bool) -> Tensor:
    """Grid coordinates in [-1, 1] to pixel positions along a dim of n pixels."""
    return (coord + 1) * ((n - 1) / 2) if align_corners else ((coord + 1) * n - 1) / 2


def _reflect(x: Tensor, twice_low: int, twice_high: int) -> Tensor:
    """Reflect positions into [twice_low / 2, twice_high / 2] (PyTorch's reflect_coordinates)."""
    if twice_low == twice_high:
        return x * 0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    x = (x - low).abs()
    flips = xp.floor(x.data / span)
    extra = x - Tensor(flips * span, dtype=x.dtype)
    return where(flips % 2 == 0, extra + low, span - extra + low)


def _padded(x: Tensor, n: int, padding_mode: str, align_corners: bool) -> Tensor:
    """Pixel positions after the padding mode's reflection or clipping into the image."""
    if padding_mode == "reflection":
        x = _reflect(x, 0, 2 * (n - 1)) if align_corners else _reflect(x, -1, 2 * n - 1)
    if padding_mode in ("border", "reflection"):
        x = x.clamp(0, n - 1)
    return x


def cubic_weights(t) -> list:
    """Keys' cubic convolution weights (A = -0.75, as PyTorch) of the taps at -1, 0, 1, 2 for offset t in [0, 1)
    (Tensors or arrays)."""
    a = -0.75

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _tap(flat: Tensor, spatial: tuple, corners: list):
    """Values of ``flat`` (N, C, prod(spatial)) at integer positions ``corners`` (one (N, P) array per dim),
    zero where a position falls outside."""
    inside = xp.ones(corners[0].shape, dtype=bool)
    linear = xp.zeros(corners[0].shape, dtype=xp.int64)
    for pos, n in zip(corners, spatial):
        inside &= (pos >= 0) & (pos < n)
        linear = linear * n + xp.clip(pos, 0, n - 1).astype(xp.int64)
    n_batch, channels = flat.shape[:2]
    values = gather(flat, 2, xp.broadcast_to(linear[:, None, :], (n_batch, channels, linear.shape[1])))
    return values, inside[:, None, :]


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool | None = None) -> Tensor:
    """Sample ``input`` (N, C, H, W) at the normalised (x, y) positions of ``grid`` (N, Ho, Wo, 2): output
    (N, C, Ho, Wo); or (N, C, D, H, W) at (x, y, z) of (N, Do, Ho, Wo, 3). ``mode``: 'bilinear' (trilinear in
    3-d), 'nearest' or 'bicubic' (2-d); ``padding_mode``: 'zeros', 'border' or 'reflection';
    ``align_corners`` defaults to False."""
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"grid_sample: mode must be 'bilinear', 'nearest' or 'bicubic', got {mode!r}")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"grid_sample: padding_mode must be 'zeros', 'border' or 'reflection', got {padding_mode!r}")
    dims = input.ndim - 2
    if dims not in (2, 3) or grid.ndim != input.ndim or grid.shape[-1] != dims or grid.shape[0] != input.shape[0]:
        raise ShapeError(f"grid_sample: expected input (N, C, H, W) with grid (N, Ho, Wo, 2), or input "
                         f"(N, C, D, H, W) with grid (N, Do, Ho, Wo, 3); got input {tuple(input.shape)} and grid "
                         f"{tuple(grid.shape)}")
    align = bool(align_corners)
    n_batch, channels, *spatial = input.shape
    out_spatial = tuple(grid.shape[1:-1])
    points = grid.reshape(n_batch, -1, dims)
    if mode == "bicubic" and dims != 2:
        raise ValueError(f"grid_sample: bicubic mode needs a 4-d input, got {tuple(input.shape)}")
    # grid's last dim is (x, y[, z]): x indexes the last spatial dim
    raw = [_unnormalize(points[..., dims - 1 - d], spatial[d], align) for d in range(dims)]
    flat = input.reshape(n_batch, channels, -1)
    if mode == "bicubic":  # the padding mode applies to each of the 4 x 4 taps, as in PyTorch
        low = [xp.floor(p.data) for p in raw]
        weights = [cubic_weights(p - Tensor(lo, dtype=p.dtype)) for p, lo in zip(raw, low)]
        taps = [[_padded(Tensor(lo + k - 1), n, padding_mode, align).data for k in range(4)]
                for lo, n in zip(low, spatial)]
        out = None
        for i, j in itertools.product(range(4), repeat=2):
            values, inside = _tap(flat, tuple(spatial), [xp.trunc(taps[0][i]).astype(xp.int64),
                                                         xp.trunc(taps[1][j]).astype(xp.int64)])
            term = where(inside, values, 0.0) * (weights[0][i] * weights[1][j]).unsqueeze(1)
            out = term if out is None else out + term
        return out.reshape(n_batch, channels, *out_spatial)
    pos = [_padded(x, spatial[d], padding_mode, align) for d, x in enumerate(raw)]
    if mode == "nearest":
        values, inside = _tap(flat, tuple(spatial), [xp.rint(p.data).astype(xp.int64) for p in pos])
        out = where(inside, values, 0.0)
    else:
        low = [xp.floor(p.data) for p in pos]
        frac = [p - Tensor(lo, dtype=p.dtype) for p, lo in zip(pos, low)]
        out = None
        for corner in itertools.product((0, 1), repeat=dims):
            weight = None
            for d, c in enumerate(corner):
                w = frac[d] if c else 1 - frac[d]
                weight = w if weight is None else weight * w
            values, inside = _tap(flat, tuple(spatial), [(lo + c).astype(xp.int64) for lo, c in zip(low, corner)])
            term = where(inside, values, 0.0) * weight.unsqueeze(1)
            out = term if out is None else out + term
    return out.reshape(n_batch, channels, *out_spatial)
