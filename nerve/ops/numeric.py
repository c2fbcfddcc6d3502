"""Numerical routines composed from other ops (their rules give the gradients): differences and integrals (diff,
trapezoid, cumulative_trapezoid), statistics (cov, corrcoef, nanquantile, histogram), products (vander, inner,
vdot, addr, chain_matmul, dist), Cholesky solves, norms by name, float helpers (float_power, ldexp, frexp,
logaddexp2, nextafter, gcd, lcm), window functions and the short-time Fourier transform (stft, istft).
"""
from __future__ import annotations

import builtins
import math
from collections import namedtuple

from nerve import backend
from nerve.autograd.function import ShapeError
from nerve.backend import xp
from nerve.ops.decomp import linalg_solve, linalg_svdvals
from nerve.ops.dtypes import floating
from nerve.ops.elementwise import where
from nerve.ops.elementwise_math import logaddexp
from nerve.ops.index import index_add, sort
from nerve.ops.layout import narrow, take_along_dim
from nerve.ops.linalg import outer
from nerve.ops.reduce import norm
from nerve.ops.shape import _as_tensor, cat, movedim, normalize_dim
from nerve.ops.spectral import conj, fft_c2c, fft_c2r, fft_r2c, real, view_as_real
from nerve.tensor import Tensor

HistogramResult = namedtuple("histogram", ["hist", "bin_edges"])
FrexpResult = namedtuple("frexp", ["mantissa", "exponent"])


def _const(array) -> Tensor:
    return Tensor._make(array, None)


# --- differences and integrals -------------------------------------------------------------------------------------
def diff(input, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:
    """The n-th forward difference along ``dim``, after ``prepend``/``append`` are joined on (``!=`` for bool)."""
    x = _as_tensor(input)
    if x.ndim == 0:
        raise RuntimeError("diff expects a tensor of at least one dimension, got a 0-d tensor")
    d = normalize_dim(dim, x.ndim, "diff")
    parts = []
    for extra, name in ((prepend, "prepend"), (x, None), (append, "append")):
        if extra is None:
            continue
        t = _as_tensor(extra)
        if t.ndim == 0 and name is not None:  # a number: one slice along dim
            shape = list(x.shape)
            shape[d] = 1
            t = _const(xp.full(tuple(shape), t.data, dtype=x.dtype))
        if name is not None and (t.ndim != x.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, x.shape))
                                                          if i != d)):
            raise ShapeError(f"diff: {name} of shape {tuple(t.shape)} must match input of shape {tuple(x.shape)} "
                             f"in every dimension but {d}")
        parts.append(t)
    x = cat(parts, d) if len(parts) > 1 else x
    if n < 0:
        raise ValueError(f"diff: order n must be non-negative, got {n}")
    for _ in range(n):
        length = x.shape[d]
        if length <= 1:
            return narrow(x, d, 0, 0)
        hi, lo = narrow(x, d, 1, length - 1), narrow(x, d, 0, length - 1)
        x = _const(hi.data != lo.data) if x.dtype == xp.bool_ else hi - lo
    return x


def _spacing(y: Tensor, x, dx, d: int, name: str):
    if x is None:
        return 1.0 if dx is None else dx
    x = _as_tensor(x)
    if x.ndim == 1:
        if x.shape[0] != y.shape[d]:
            raise ShapeError(f"{name}: x of shape {tuple(x.shape)} must have as many points as y has along dim {d} "
                             f"({y.shape[d]})")
        shape = [1] * y.ndim
        shape[d] = x.shape[0] - 1
        return diff(x).reshape(tuple(shape))
    return diff(x, dim=d)


def trapezoid(y, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """The trapezoid rule along ``dim``, with sample points ``x`` or a constant spacing ``dx`` (default 1)."""
    y = floating(_as_tensor(y))
    d = normalize_dim(dim, y.ndim, "trapezoid")
    n = y.shape[d]
    if n == 0:
        return y.sum(d) * 0
    mid = narrow(y, d, 1, n - 1) + narrow(y, d, 0, n - 1)
    return (mid * _spacing(y, x, dx, d, "trapezoid")).sum(d) / 2


def trapz(y, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """``trapezoid``'s older name."""
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """The running trapezoid rule along ``dim`` (one element fewer than y there)."""
    y = floating(_as_tensor(y))
    d = normalize_dim(dim, y.ndim, "cumulative_trapezoid")
    n = y.shape[d]
    mid = narrow(y, d, 1, builtins.max(n - 1, 0)) + narrow(y, d, 0, builtins.max(n - 1, 0))
    return (mid * _spacing(y, x, dx, d, "cumulative_trapezoid") / 2).cumsum(d)


# --- statistics ----------------------------------------------------------------------------------------------------
def cov(input, *, correction: int = 1, fweights=None, aweights=None) -> Tensor:
    """The covariance of the variables in the rows of ``input`` (observations in columns), NumPy's formula with
    frequency and importance weights; ``correction`` 1 is Bessel's."""
    x = floating(_as_tensor(input))
    if x.ndim > 2:
        raise ShapeError(f"cov: expected input to have two or fewer dimensions, got shape {tuple(x.shape)}")
    x2 = x.reshape(1, -1) if x.ndim < 2 else x
    n = x2.shape[1]
    w = None
    for weights, name in ((fweights, "fweights"), (aweights, "aweights")):
        if weights is None:
            continue
        t = _as_tensor(weights)
        if t.ndim != 1 or t.shape[0] != n:
            raise ShapeError(f"cov: {name} must be 1-D with {n} entries (one per observation), got shape "
                             f"{tuple(t.shape)}")
        if bool((t.data < 0).any()):
            raise ValueError(f"cov: {name} cannot be negative")
        t = t.to(x2.dtype)
        w = t if w is None else w * t
    if w is None:
        total, avg = float(n), x2.mean(1, keepdim=True)
        fact = total - correction
        centred = x2 - avg
        c = centred @ centred.mT / fact
    else:
        total = w.sum()
        avg = (x2 * w).sum(1, keepdim=True) / total
        fact = total - (correction * (w * _as_tensor(aweights).to(x2.dtype)).sum() / total if aweights is not None
                        else correction)
        centred = x2 - avg
        c = (centred * w) @ centred.mT / fact
    return c.reshape(()) if x2.shape[0] == 1 else c  # one variable: a 0-d result, as PyTorch


def corrcoef(input) -> Tensor:
    """Pearson correlation coefficients of the rows of ``input``, clipped to [-1, 1]."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = c.diagonal()
    out = c / (d.unsqueeze(1) * d.unsqueeze(0)).sqrt()
    return out.clamp(-1, 1)


def nanquantile(input, q, dim: int | None = None, keepdim: bool = False, *, interpolation: str = "linear") -> Tensor:
    """``quantile`` ignoring NaN (a slice of NaN only gives NaN); q's dimension first when q is a tensor."""
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise ValueError(f"nanquantile: unknown interpolation {interpolation!r}")
    x = floating(_as_tensor(input))
    qs = q.data if isinstance(q, Tensor) else xp.asarray(q, dtype=xp.float64)
    if qs.ndim > 1 or bool((qs < 0).any()) or bool((qs > 1).any()):
        raise ValueError(f"nanquantile: q must be a number or a 1-D tensor with values in [0, 1], got {q!r}")
    d = None if dim is None else normalize_dim(dim, x.ndim, "nanquantile")
    xm = x.reshape(-1) if d is None else movedim(x, d, -1)
    if xm.shape[-1] == 0:
        raise RuntimeError("nanquantile: cannot take quantiles of an empty dimension")
    valid = (~xp.isnan(xm.data)).sum(-1, keepdims=True)  # (..., 1)
    ordered = sort(xm, -1).values  # NaN last
    pos = qs.reshape(-1).astype(xp.float64) * xp.maximum(valid - 1, 0)  # (..., Q)
    lo, hi = xp.floor(pos).astype(xp.int64), xp.ceil(pos).astype(xp.int64)
    if interpolation == "nearest":
        lo = hi = xp.round(pos).astype(xp.int64)
    elif interpolation == "lower":
        hi = lo
    elif interpolation == "higher":
        lo = hi
    frac = xp.where(hi > lo, 0.5, 0.0) if interpolation == "midpoint" else pos - lo
    below, above = take_along_dim(ordered, _const(lo), -1), take_along_dim(ordered, _const(hi), -1)
    out = below + (above - below) * _const(frac.astype(x.dtype))
    out = where(_const(xp.broadcast_to(valid == 0, out.shape)), xp.nan, out)
    if keepdim:
        out = out.unsqueeze(-2) if d is not None else out.reshape((1,) * x.ndim + (out.shape[-1],))
        if d is not None:
            out = movedim(out, -2, d)
    out = movedim(out, -1, 0)
    return out.squeeze(0) if qs.ndim == 0 else out


def histogram(input, bins=100, *, range=None, weight=None, density: bool = False) -> HistogramResult:
    """(hist, bin_edges): counts (or weights, or a density) in ``bins`` equal bins over ``range`` or given edges."""
    x = floating(_as_tensor(input))
    edges = bins.data if isinstance(bins, Tensor) else int(bins)
    w = None if weight is None else _as_tensor(weight).data
    hist, e = xp.histogram(x.data, bins=edges, range=range, weights=w, density=density)
    return HistogramResult(_const(hist.astype(x.dtype)), _const(e.astype(x.dtype)))


# --- products ------------------------------------------------------------------------------------------------------
def vander(x, N: int | None = None, increasing: bool = False) -> Tensor:
    """Columns of powers of the 1-D ``x``: x^(N-1), ..., x^0 (reversed with ``increasing``)."""
    x = _as_tensor(x)
    if x.ndim != 1:
        raise ShapeError(f"vander: x must be a one-dimensional tensor, got shape {tuple(x.shape)}")
    return linalg_vander(x, N) if increasing else linalg_vander(x, N).flip(-1)


def linalg_vander(x, N: int | None = None) -> Tensor:
    """``torch.linalg.vander``: increasing powers x^0 ... x^(N-1) along a new last dim (batched)."""
    x = _as_tensor(x)
    n = x.shape[-1] if N is None else int(N)
    if n < 0:
        raise ValueError(f"vander: N must be non-negative, got {N}")
    col = x.unsqueeze(-1)
    cols = [col * 0 + 1]
    for _ in builtins.range(1, n):
        cols.append(cols[-1] * col)
    return cat(cols, -1) if cols and n else _const(xp.zeros(tuple(x.shape) + (0,), dtype=x.dtype))


def inner(input, other) -> Tensor:
    """Sums of products over the last dimension of both: shape input.shape[:-1] + other.shape[:-1]."""
    a, b = _as_tensor(input), _as_tensor(other)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"inner: the last dimensions of {tuple(a.shape)} and {tuple(b.shape)} differ")
    k = a.shape[-1]
    return (a.reshape(-1, k) @ b.reshape(-1, k).mT).reshape(tuple(a.shape[:-1]) + tuple(b.shape[:-1]))


def vdot(input, other) -> Tensor:
    """The dot product of two 1-D tensors, the first conjugated."""
    a, b = _as_tensor(input), _as_tensor(other)
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ShapeError(f"vdot: expected two 1-D tensors of the same size, got {tuple(a.shape)} and {tuple(b.shape)}")
    return (conj(a) * b).sum()


def addr(input, vec1, vec2, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * outer(vec1, vec2)."""
    o = outer(vec1, vec2)
    return (o if alpha == 1 else o * alpha) + (_as_tensor(input) if beta == 1 else _as_tensor(input) * beta)


def ger(input, vec2) -> Tensor:
    """``outer``'s older name."""
    return outer(input, vec2)


def chain_matmul(*matrices) -> Tensor:
    """The product of the matrices, left to right (``linalg.multi_dot`` picks the cheapest order)."""
    if not matrices:
        raise ValueError("chain_matmul: expected at least one matrix")
    out = _as_tensor(matrices[0])
    for m in matrices[1:]:
        out = out @ m
    return out


def dist(input, other, p: float = 2) -> Tensor:
    """The p-norm of input - other (broadcast, flattened); p = 0 counts the differing entries."""
    d = floating(_as_tensor(input)) - _as_tensor(other)
    if p == 0:
        return _const(xp.asarray((d.data != 0).sum(), dtype=d.dtype))
    return norm(d, p)


def cholesky_solve(B, L, upper: bool = False) -> Tensor:
    """X with (L L^T) X = B given the Cholesky factor L (U^T U with ``upper``)."""
    low = _as_tensor(L).mT if upper else _as_tensor(L)
    return linalg_solve(low.mT, linalg_solve(low, B))


def cholesky_inverse(L, upper: bool = False) -> Tensor:
    """(L L^T)^-1 from the Cholesky factor L."""
    low = _as_tensor(L)
    eye = _const(xp.broadcast_to(xp.eye(low.shape[-1], dtype=low.dtype), low.shape).copy())
    return cholesky_solve(eye, low, upper)


def nuclear_norm(input, dim=None, keepdim: bool = False) -> Tensor:
    """The sum of singular values of the matrices in ``dim`` (the last two when None)."""
    x = _as_tensor(input)
    dims = (-2, -1) if dim is None else tuple(dim)
    out = linalg_svdvals(movedim(x, dims, (-2, -1))).sum(-1)
    if keepdim:
        for d in sorted(normalize_dim(k, x.ndim, "nuclear_norm") for k in dims):
            out = out.unsqueeze(d)
    return out


def frobenius_norm(input, dim=(-2, -1), keepdim: bool = False) -> Tensor:
    """The square root of the sum of squares over ``dim``."""
    return norm(_as_tensor(input), 2, dim, keepdim)


def adjoint(input) -> Tensor:
    """The conjugate transpose of the last two dims."""
    return conj(_as_tensor(input).mT)


# --- float helpers -------------------------------------------------------------------------------------------------
def float_power(input, exponent) -> Tensor:
    """input ** exponent in double precision (complex128 for complex operands)."""
    a, b = _as_tensor(input), exponent
    complex_ = a.dtype.kind == "c" or (isinstance(b, Tensor) and b.dtype.kind == "c") or isinstance(b, complex)
    dtype = xp.complex128 if complex_ else xp.float64
    return a.to(dtype) ** (b.to(dtype) if isinstance(b, Tensor) else b)


def ldexp(input, other) -> Tensor:
    """input * 2 ** other."""
    x = floating(_as_tensor(input))
    e = _as_tensor(other)
    return x * _const(xp.exp2(e.data.astype(x.dtype)))


def frexp(input) -> FrexpResult:
    """(mantissa, exponent) with input = mantissa * 2 ** exponent, |mantissa| in [0.5, 1) (no gradient)."""
    x = _as_tensor(input)
    if x.dtype.kind != "f":
        raise TypeError(f"frexp: expected a floating point tensor, got {x.dtype}")
    mant, expo = xp.frexp(x.data)
    return FrexpResult(_const(mant), _const(expo.astype(xp.int32)))


def logaddexp2(input, other) -> Tensor:
    """log2(2 ** input + 2 ** other), without overflow."""
    ln2 = math.log(2.0)
    return logaddexp(floating(_as_tensor(input)) * ln2, floating(_as_tensor(other)) * ln2) / ln2


def _no_grad(fn, name: str, a, b, kinds: str) -> Tensor:
    x, y = _as_tensor(a), _as_tensor(b)
    if x.dtype.kind not in kinds or y.dtype.kind not in kinds:
        raise TypeError(f"{name}: not implemented for dtypes {x.dtype} and {y.dtype}")
    return _const(xp.asarray(fn(x.data, y.data)))


def nextafter(input, other) -> Tensor:
    """The next floating value after input towards other."""
    return _no_grad(xp.nextafter, "nextafter", input, other, "f")


def gcd(input, other) -> Tensor:
    """The elementwise greatest common divisor of integer tensors."""
    return _no_grad(xp.gcd, "gcd", input, other, "iub")


def lcm(input, other) -> Tensor:
    """The elementwise least common multiple of integer tensors."""
    return _no_grad(xp.lcm, "lcm", input, other, "iub")


def isreal(input) -> Tensor:
    """True where the imaginary part is 0 (everywhere for real tensors)."""
    x = _as_tensor(input)
    return _const(x.data.imag == 0 if x.dtype.kind == "c" else xp.ones(x.shape, dtype=bool))


def is_complex(input) -> bool:
    """Whether ``input`` has a complex dtype."""
    return _as_tensor(input).dtype.kind == "c"


def unravel_index(indices, shape) -> tuple:
    """The coordinates of flat ``indices`` in a tensor of ``shape``, one int64 tensor per dimension."""
    idx = _as_tensor(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"unravel_index: expected an integer tensor of indices, got {idx.dtype}")
    shape = (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)
    size = math.prod(shape)
    if bool(((idx.data < -size) | (idx.data >= size)).any()):
        raise RuntimeError(f"unravel_index: index out of bounds for a tensor of shape {shape}")
    return tuple(_const(c.astype(xp.int64)) for c in xp.unravel_index(idx.data % builtins.max(size, 1), shape))


# --- windows and the short-time Fourier transform ------------------------------------------------------------------
def _window(name: str, length: int, periodic: bool, fn, dtype, device, requires_grad: bool) -> Tensor:
    if length < 0:
        raise ValueError(f"{name}: window_length must be non-negative, got {length}")
    dtype = backend.get_default_dtype() if dtype is None else backend.dtype(dtype)
    if length <= 1:
        values = xp.ones(length, dtype=xp.float64)
    else:
        n = length + 1 if periodic else length
        values = fn(xp.arange(n, dtype=xp.float64), n)[:length]
    out = Tensor(values.astype(dtype), requires_grad=requires_grad)
    return out if device is None else out.to(device)


def hann_window(window_length: int, periodic: bool = True, *, dtype=None, device=None, layout=None,
                requires_grad: bool = False) -> Tensor:
    """0.5 - 0.5 cos(2 pi k / (N - 1)); ``periodic`` drops the last point of an (N+1)-point window."""
    return _window("hann_window", window_length, periodic, lambda k, n: 0.5 - 0.5 * xp.cos(2 * xp.pi * k / (n - 1)),
                   dtype, device, requires_grad)


def hamming_window(window_length: int, periodic: bool = True, alpha: float = 0.54, beta: float = 0.46, *, dtype=None,
                   device=None, layout=None, requires_grad: bool = False) -> Tensor:
    """alpha - beta cos(2 pi k / (N - 1))."""
    return _window("hamming_window", window_length, periodic,
                   lambda k, n: alpha - beta * xp.cos(2 * xp.pi * k / (n - 1)), dtype, device, requires_grad)


def blackman_window(window_length: int, periodic: bool = True, *, dtype=None, device=None, layout=None,
                    requires_grad: bool = False) -> Tensor:
    """0.42 - 0.5 cos(2 pi k / (N - 1)) + 0.08 cos(4 pi k / (N - 1))."""
    return _window("blackman_window", window_length, periodic,
                   lambda k, n: 0.42 - 0.5 * xp.cos(2 * xp.pi * k / (n - 1)) + 0.08 * xp.cos(4 * xp.pi * k / (n - 1)),
                   dtype, device, requires_grad)


def bartlett_window(window_length: int, periodic: bool = True, *, dtype=None, device=None, layout=None,
                    requires_grad: bool = False) -> Tensor:
    """1 - |2k / (N - 1) - 1|: the triangle."""
    return _window("bartlett_window", window_length, periodic, lambda k, n: 1 - xp.abs(2 * k / (n - 1) - 1),
                   dtype, device, requires_grad)


def kaiser_window(window_length: int, periodic: bool = True, beta: float = 12.0, *, dtype=None, device=None,
                  layout=None, requires_grad: bool = False) -> Tensor:
    """I0(beta sqrt(1 - (2k / (N - 1) - 1)^2)) / I0(beta)."""
    return _window("kaiser_window", window_length, periodic,
                   lambda k, n: xp.i0(beta * xp.sqrt(1 - (2 * k / (n - 1) - 1) ** 2)) / xp.i0(beta),
                   dtype, device, requires_grad)


def _reflect(x: Tensor, p: int) -> Tensor:
    n = x.shape[-1]
    if p >= n:
        raise RuntimeError(f"stft: reflect padding {p} must be smaller than the signal length {n}")
    return cat([narrow(x, -1, 1, p).flip(-1), x, narrow(x, -1, n - 1 - p, p).flip(-1)], -1)


def _full_window(window, n_fft: int, win_length: int, dtype) -> Tensor:
    w = _const(xp.ones(win_length, dtype=dtype)) if window is None else _as_tensor(window)
    if w.ndim != 1 or w.shape[0] != win_length:
        raise ShapeError(f"stft: window must be 1-D of size win_length {win_length}, got shape {tuple(w.shape)}")
    left = (n_fft - win_length) // 2
    return cat([_const(xp.zeros(left, dtype=w.dtype)), w, _const(xp.zeros(n_fft - win_length - left, dtype=w.dtype))])


def stft(input, n_fft: int, hop_length: int | None = None, win_length: int | None = None, window=None,
         center: bool = True, pad_mode: str = "reflect", normalized: bool = False, onesided: bool | None = None,
         return_complex: bool | None = None) -> Tensor:
    """Short-time Fourier transform: frames of n_fft samples every hop_length, windowed, transformed; shape
    (batch?, freq, frames), complex (``return_complex=False``: a last dim of 2, real and imaginary)."""
    x = floating(_as_tensor(input))
    if return_complex is None:
        raise RuntimeError("stft requires the return_complex parameter be given for real inputs, and will further "
                           "require that return_complex=True in a future PyTorch release")
    if x.ndim not in (1, 2):
        raise ShapeError(f"stft: expected a 1-D or 2-D tensor, got shape {tuple(x.shape)}")
    hop = n_fft // 4 if hop_length is None else int(hop_length)
    win_length = n_fft if win_length is None else int(win_length)
    if not 0 < win_length <= n_fft or hop <= 0:
        raise ValueError(f"stft: expected 0 < win_length <= n_fft and hop_length > 0, got win_length {win_length}, "
                         f"n_fft {n_fft}, hop_length {hop}")
    if center:
        p = n_fft // 2
        if pad_mode == "reflect":
            x = _reflect(x, p)
        elif pad_mode == "constant":
            x = cat([_const(xp.zeros(x.shape[:-1] + (p,), dtype=x.dtype)), x,
                     _const(xp.zeros(x.shape[:-1] + (p,), dtype=x.dtype))], -1)
        else:
            raise ValueError(f"stft: pad_mode {pad_mode!r} is not supported (use 'reflect' or 'constant')")
    if x.shape[-1] < n_fft:
        raise RuntimeError(f"stft: the signal of length {x.shape[-1]} is shorter than n_fft {n_fft}")
    frames = x.unfold(-1, n_fft, hop) * _full_window(window, n_fft, win_length, x.dtype)
    norm = "ortho" if normalized else "backward"
    two_sided = x.dtype.kind == "c" or onesided is False
    spec = (fft_c2c(frames, None, (-1,), norm, "stft", False) if two_sided
            else fft_r2c(frames, None, (-1,), norm, "stft"))
    spec = spec.mT
    if not return_complex:
        return view_as_real(spec)
    return spec


def istft(input, n_fft: int, hop_length: int | None = None, win_length: int | None = None, window=None,
          center: bool = True, normalized: bool = False, onesided: bool | None = None, length: int | None = None,
          return_complex: bool = False) -> Tensor:
    """The inverse of ``stft`` by windowed overlap-add, divided by the summed squared window."""
    spec = _as_tensor(input)
    if spec.ndim not in (2, 3) or spec.dtype.kind != "c":
        raise ShapeError(f"istft: expected a complex tensor of shape (freq, frames) or (batch, freq, frames), got "
                         f"dtype {spec.dtype} and shape {tuple(spec.shape)}")
    hop = n_fft // 4 if hop_length is None else int(hop_length)
    win_length = n_fft if win_length is None else int(win_length)
    onesided = spec.shape[-2] != n_fft if onesided is None else onesided
    norm = "ortho" if normalized else "backward"
    cols = spec.mT
    frames = (fft_c2r(cols, (n_fft,), (-1,), norm, "istft") if onesided and not return_complex
              else fft_c2c(cols, None, (-1,), norm, "istft", True))
    if not return_complex and frames.dtype.kind == "c":
        frames = real(frames)
    w = _full_window(window, n_fft, win_length, xp.float64 if frames.dtype in (xp.float64, xp.complex128)
                     else xp.float32)
    frames = frames * w
    count = frames.shape[-2]
    total = n_fft + hop * (count - 1)
    positions = (xp.arange(count)[:, None] * hop + xp.arange(n_fft)[None, :]).reshape(-1)
    flat = frames.reshape(tuple(frames.shape[:-2]) + (-1,))
    signal = index_add(_const(xp.zeros(tuple(flat.shape[:-1]) + (total,), dtype=flat.dtype)), -1, positions, flat)
    envelope = xp.zeros(total, dtype=w.dtype)
    xp.add.at(envelope, positions, xp.tile(w.data ** 2, count))
    start = n_fft // 2 if center else 0
    end = total - (n_fft // 2 if center else 0) if length is None else start + int(length)
    env = envelope[start:end]
    if bool((xp.abs(env) < 1e-11).any()):
        raise RuntimeError("istft: the window overlap-add envelope is zero somewhere: the window and hop_length do "
                           "not satisfy the nonzero overlap-add condition")
    out = narrow(signal, -1, start, builtins.min(end, total) - start) / _const(env[:builtins.min(end, total) - start])
    if length is not None and out.shape[-1] < length:
        out = cat([out, _const(xp.zeros(tuple(out.shape[:-1]) + (length - out.shape[-1],), dtype=out.dtype))], -1)
    return out


__all__ = ["addr", "adjoint", "bartlett_window", "blackman_window", "chain_matmul", "cholesky_inverse",
           "cholesky_solve", "corrcoef", "cov", "cumulative_trapezoid", "diff", "dist", "float_power", "frexp", "gcd",
           "ger", "hamming_window", "hann_window", "histogram", "inner", "is_complex", "isreal", "istft",
           "kaiser_window", "lcm", "ldexp", "linalg_vander", "logaddexp2", "nanquantile", "nextafter",
           "nuclear_norm", "frobenius_norm", "stft", "trapezoid", "trapz", "unravel_index", "vander", "vdot"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["addr", "adjoint", "cholesky_inverse", "cholesky_solve", "corrcoef", "cov", "diff", "dist", "float_power",
           "frexp", "gcd", "ger", "inner", "isreal", "istft", "lcm", "ldexp", "logaddexp2", "nanquantile",
           "nextafter", "stft", "vdot"]
