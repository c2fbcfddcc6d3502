"""``torch.fft``: discrete Fourier transforms with PyTorch's arguments (``n``/``s``, ``dim``, ``norm``),
differentiable (their primitives are in ``nerve.ops``), plus ``fftfreq``, ``rfftfreq``, ``fftshift``, ``ifftshift``.

norm: "backward" (default: no scaling forward, 1/n inverse), "ortho" (1/sqrt(n) both ways), "forward" (1/n
forward). Real inputs to the complex transforms are promoted to complex (float32 -> complex64); integer inputs to
the default floating dtype first.
"""
from typing import Sequence

from nerve import backend, ops
from nerve.backend import xp
from nerve.creation import as_tensor
from nerve.ops import conj, fft_c2c as _c2c, fft_c2r as _c2r, fft_norm as _norm, fft_r2c as _r2c
from nerve.tensor import Tensor

_Dims = Sequence[int] | None
_Norm = str | None
_SWAP = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def fft(input, n: int | None = None, dim: int = -1, norm: _Norm = None) -> Tensor:
    """The 1-d discrete Fourier transform along ``dim``, zero-padded or trimmed to ``n``."""
    return _c2c(input, None if n is None else (n,), (dim,), norm, "fft", False)


def ifft(input, n: int | None = None, dim: int = -1, norm: _Norm = None) -> Tensor:
    """The 1-d inverse discrete Fourier transform."""
    return _c2c(input, None if n is None else (n,), (dim,), norm, "ifft", True)


def rfft(input, n: int | None = None, dim: int = -1, norm: _Norm = None) -> Tensor:
    """The FFT of a real signal: the n // 2 + 1 non-negative frequencies."""
    return _r2c(input, None if n is None else (n,), (dim,), norm, "rfft")


def irfft(input, n: int | None = None, dim: int = -1, norm: _Norm = None) -> Tensor:
    """The inverse of ``rfft``: a real signal of length ``n`` (default 2 (m - 1) for m input frequencies)."""
    return _c2r(input, None if n is None else (n,), (dim,), norm, "irfft")


def hfft(input, n: int | None = None, dim: int = -1, norm: _Norm = None) -> Tensor:
    """The FFT of a Hermitian-symmetric signal given by its first half: a real spectrum of length ``n``."""
    return _c2r(conj(input), None if n is None else (n,), (dim,), _SWAP[_norm(norm, "hfft")], "hfft")


def ihfft(input, n: int | None = None, dim: int = -1, norm: _Norm = None) -> Tensor:
    """The inverse of ``hfft``: the onesided inverse FFT of a real signal."""
    return conj(_r2c(input, None if n is None else (n,), (dim,), _SWAP[_norm(norm, "ihfft")], "ihfft"))


def fft2(input, s: _Dims = None, dim: _Dims = (-2, -1), norm: _Norm = None) -> Tensor:
    """The 2-d FFT over ``dim``."""
    return _c2c(input, s, dim, norm, "fft2", False)


def ifft2(input, s: _Dims = None, dim: _Dims = (-2, -1), norm: _Norm = None) -> Tensor:
    """The 2-d inverse FFT."""
    return _c2c(input, s, dim, norm, "ifft2", True)


def rfft2(input, s: _Dims = None, dim: _Dims = (-2, -1), norm: _Norm = None) -> Tensor:
    """The 2-d FFT of a real input, the last of ``dim`` onesided."""
    return _r2c(input, s, dim, norm, "rfft2")


def irfft2(input, s: _Dims = None, dim: _Dims = (-2, -1), norm: _Norm = None) -> Tensor:
    """The inverse of ``rfft2``."""
    return _c2r(input, s, dim, norm, "irfft2")


def hfft2(input, s: _Dims = None, dim: _Dims = (-2, -1), norm: _Norm = None) -> Tensor:
    """The 2-d FFT of a Hermitian-symmetric input given by its half (a real result)."""
    return _c2r(conj(input), s, dim, _SWAP[_norm(norm, "hfft2")], "hfft2")


def ihfft2(input, s: _Dims = None, dim: _Dims = (-2, -1), norm: _Norm = None) -> Tensor:
    """The inverse of ``hfft2``."""
    return conj(_r2c(input, s, dim, _SWAP[_norm(norm, "ihfft2")], "ihfft2"))


def fftn(input, s: _Dims = None, dim: _Dims = None, norm: _Norm = None) -> Tensor:
    """The n-d FFT over ``dim`` (all dimensions, or the last len(s), when None)."""
    return _c2c(input, s, dim, norm, "fftn", False)


def ifftn(input, s: _Dims = None, dim: _Dims = None, norm: _Norm = None) -> Tensor:
    """The n-d inverse FFT."""
    return _c2c(input, s, dim, norm, "ifftn", True)


def rfftn(input, s: _Dims = None, dim: _Dims = None, norm: _Norm = None) -> Tensor:
    """The n-d FFT of a real input, the last of ``dim`` onesided."""
    return _r2c(input, s, dim, norm, "rfftn")


def irfftn(input, s: _Dims = None, dim: _Dims = None, norm: _Norm = None) -> Tensor:
    """The inverse of ``rfftn``."""
    return _c2r(input, s, dim, norm, "irfftn")


def hfftn(input, s: _Dims = None, dim: _Dims = None, norm: _Norm = None) -> Tensor:
    """The n-d FFT of a Hermitian-symmetric input given by its half (a real result)."""
    return _c2r(conj(input), s, dim, _SWAP[_norm(norm, "hfftn")], "hfftn")


def ihfftn(input, s: _Dims = None, dim: _Dims = None, norm: _Norm = None) -> Tensor:
    """The inverse of ``hfftn``."""
    return conj(_r2c(input, s, dim, _SWAP[_norm(norm, "ihfftn")], "ihfftn"))


def _freq(values, d: float, dtype, device, requires_grad: bool) -> Tensor:
    dtype = backend.get_default_dtype() if dtype is None else backend.dtype(dtype)
    out = Tensor((values / d).astype(dtype), requires_grad=requires_grad)
    return out if device is None else out.to(device)


def fftfreq(n: int, d: float = 1.0, *, dtype=None, device=None, requires_grad: bool = False,
            layout=None) -> Tensor:
    """The sample frequencies of an n-point FFT: [0, 1, ..., n//2 - 1 (or (n-1)//2), -n//2, ..., -1] / (d n)."""
    k = xp.arange(n)
    return _freq(xp.where(k < (n + 1) // 2, k, k - n) / n, d, dtype, device, requires_grad)


def rfftfreq(n: int, d: float = 1.0, *, dtype=None, device=None, requires_grad: bool = False,
            layout=None) -> Tensor:
    """The sample frequencies of ``rfft``: [0, 1, ..., n // 2] / (d n)."""
    return _freq(xp.arange(n // 2 + 1) / n, d, dtype, device, requires_grad)


def _shift_dims(x: Tensor, dim) -> tuple:
    if dim is None:
        return tuple(range(x.ndim))
    return (dim,) if isinstance(dim, int) else tuple(dim)


def fftshift(input, dim=None) -> Tensor:
    """The zero frequency moved to the centre of ``dim`` (all dims when None): a roll by n // 2."""
    x = input if isinstance(input, Tensor) else as_tensor(input)
    dims = _shift_dims(x, dim)
    return ops.roll(x, tuple(x.shape[d] // 2 for d in dims), dims) if dims else x


def ifftshift(input, dim=None) -> Tensor:
    """The inverse of ``fftshift``: a roll by -(n // 2)."""
    x = input if isinstance(input, Tensor) else as_tensor(input)
    dims = _shift_dims(x, dim)
    return ops.roll(x, tuple(-(x.shape[d] // 2) for d in dims), dims) if dims else x


__all__ = ["fft", "fft2", "fftfreq", "fftn", "fftshift", "hfft", "hfft2", "hfftn", "ifft", "ifft2", "ifftn",
           "ifftshift", "ihfft", "ihfft2", "ihfftn", "irfft", "irfft2", "irfftn", "rfft", "rfft2", "rfftfreq", "rfftn"]
