"""Complex values and discrete Fourier transforms: ``conj``, ``real``, ``imag``, ``complex``, ``view_as_real``,
``angle``, ``polar``, and the primitives behind ``nerve.fft`` (complex-to-complex, real-to-complex onesided,
complex-to-real, zero-padding/trimming).

Gradients follow PyTorch's convention for complex values: the gradient of a real loss L with respect to z = x + iy
is dL/dx + i dL/dy. A complex-linear map's rule is then its adjoint: an FFT's adjoint is the inverse FFT with the
normalisation swapped ("backward" <-> "forward"); rfft's keeps the real part of the inverse of the zero-padded
half spectrum; irfft's is rfft with the entries that stand for two conjugate bins doubled (PyTorch's handling of
the Hermitian half). NumPy's and CuPy's ``fft`` modules have the same functions, so this runs on both.
"""
from __future__ import annotations

from nerve import backend
from nerve.autograd.function import Function
from nerve.autograd.rule_math import define
from nerve.backend import xp
from nerve.ops.elementwise_math import atan2
from nerve.ops.shape import _as_tensor, stack
from nerve.tensor import Tensor

_NORMS = ("backward", "ortho", "forward")
_SWAP = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _complex_dtype(dtype):
    return xp.dtype(xp.complex64 if dtype in (xp.float32, xp.float16, xp.complex64) else xp.complex128)


def _real_dtype(dtype):
    return xp.dtype(xp.float32 if dtype in (xp.float32, xp.float16, xp.complex64) else xp.float64)


# --- complex values ------------------------------------------------------------------------------------------------
class Real(Function):
    uses_inputs = False

    def forward(self, z):
        return xp.array(z.real) if z.dtype.kind == "c" else z.copy()

    def backward(self, g, m):  # Re is real-linear; its adjoint embeds g as g + 0i
        return m.apply(ToComplex, g)


class ToComplex(Function):
    """A real array as complex (imaginary part 0)."""

    uses_inputs = False

    def forward(self, a):
        return a.astype(_complex_dtype(a.dtype))

    def backward(self, g, m):  # the adjoint of x -> x + 0i is Re
        return m.apply(Real, g)


class Imag(Function):
    uses_inputs = False

    def forward(self, z):
        return xp.array(z.imag)

    def backward(self, g, m):  # the adjoint of Im is y -> iy
        return m.apply(TimesI, g)


class TimesI(Function):
    """A real array times i."""

    uses_inputs = False

    def forward(self, a):
        return a.astype(_complex_dtype(a.dtype)) * 1j

    def backward(self, g, m):  # the adjoint of y -> iy is Im
        return m.apply(Imag, g)


class Conj(Function):
    uses_inputs = False

    def forward(self, z):
        return xp.conj(z)

    def backward(self, g, m):  # conj is its own adjoint under the convention
        return m.apply(Conj, g)


def conj(input) -> Tensor:
    """The complex conjugate (the tensor itself for real dtypes, as PyTorch)."""
    x = _as_tensor(input)
    return Conj.apply(x) if x.dtype.kind == "c" else x


def conj_physical(input) -> Tensor:
    """The complex conjugate, always a new tensor."""
    return conj(input)


def resolve_conj(input) -> Tensor:
    """The tensor itself: nerve's conjugates are computed, never lazy flags."""
    return _as_tensor(input)


def is_conj(input) -> bool:
    """False: nerve has no lazy conjugate bit."""
    return False


def real(input) -> Tensor:
    """The real part (the tensor itself for real dtypes, as PyTorch)."""
    x = _as_tensor(input)
    return Real.apply(x) if x.dtype.kind == "c" else x


def imag(input) -> Tensor:
    """The imaginary part of a complex tensor; PyTorch's error for a real one."""
    x = _as_tensor(input)
    if x.dtype.kind != "c":
        raise RuntimeError(f"imag is not implemented for tensors with non-complex dtypes (got {x.dtype})")
    return Imag.apply(x)


def complex(real, imag) -> Tensor:
    """real + i imag from two real tensors of the same floating dtype (broadcasting)."""
    re, im = _as_tensor(real), _as_tensor(imag)
    if re.dtype != im.dtype or re.dtype.kind != "f":
        raise TypeError(f"complex: expected real and imag of the same floating dtype, got {re.dtype} and {im.dtype}")
    return ToComplex.apply(re) + TimesI.apply(im)


def view_as_real(input) -> Tensor:
    """A complex tensor as a real one with a last dimension of size 2 (real, imaginary); a copy, not a view."""
    z = _as_tensor(input)
    if z.dtype.kind != "c":
        raise RuntimeError(f"view_as_real is only supported for complex tensors, got {z.dtype}")
    return stack([Real.apply(z), Imag.apply(z)], -1)


def view_as_complex(input) -> Tensor:
    """A real tensor whose last dimension has size 2 as a complex one; a copy, not a view."""
    x = _as_tensor(input)
    if x.ndim == 0 or x.shape[-1] != 2 or x.dtype.kind != "f":
        raise RuntimeError(f"view_as_complex: expected a floating tensor with a last dimension of size 2, got "
                           f"dtype {x.dtype} and shape {tuple(x.shape)}")
    return complex(x[..., 0], x[..., 1])


def angle(input) -> Tensor:
    """The argument atan2(imag, real) of each element (0 or pi for real tensors, with a zero gradient)."""
    z = _as_tensor(input)
    if z.dtype.kind == "c":
        return atan2(Imag.apply(z), Real.apply(z))
    if z.dtype.kind != "f":
        z = z.to(backend.get_default_dtype())
    return Tensor._make(xp.where(z.data < 0, xp.pi, 0.0).astype(z.dtype), None) + z * 0


def polar(abs, angle) -> Tensor:
    """abs * (cos(angle) + i sin(angle))."""
    r, t = _as_tensor(abs), _as_tensor(angle)
    return complex(r * t.cos(), r * t.sin())


# --- transforms ----------------------------------------------------------------------------------------------------
class Resize(Function):
    """Zero-pad or trim ``dims`` to ``sizes`` (at the end), as the FFTs' ``n`` and ``s`` do."""

    uses_inputs = False

    def forward(self, a, dims, sizes):
        self.dims, self.old = dims, tuple(a.shape[d] for d in dims)
        key = tuple(slice(0, min(n, a.shape[d])) if d in dims else slice(None)
                    for d, n in ((d, dict(zip(dims, sizes)).get(d, a.shape[d])) for d in range(a.ndim)))
        shape = list(a.shape)
        for d, n in zip(dims, sizes):
            shape[d] = n
        out = xp.zeros_like(a, shape=tuple(shape))
        out[key] = a[key]
        return out

    def backward(self, g, m):  # trimming and zero-padding are each other's adjoints
        return m.apply(Resize, g, self.dims, self.old), None, None


class C2C(Function):
    """The n-d FFT (``inverse``: the inverse FFT) over ``dims`` of a complex array."""

    uses_inputs = False

    def forward(self, z, dims, norm, inverse):
        self.dims, self.norm, self.inverse = dims, norm, inverse
        fn = xp.fft.ifftn if inverse else xp.fft.fftn
        return fn(z, axes=dims, norm=norm).astype(z.dtype, copy=False)

    def backward(self, g, m):  # the adjoint of F is F^H: the other direction, normalisation swapped
        return m.apply(C2C, g, self.dims, _SWAP[self.norm], not self.inverse), None, None, None


class R2C(Function):
    """The onesided n-d FFT of a real array (the last of ``dims`` halved to n // 2 + 1)."""

    uses_inputs = False

    def forward(self, a, dims, norm):
        self.dims, self.norm, self.n = dims, norm, a.shape[dims[-1]]
        return xp.fft.rfftn(a, axes=dims, norm=norm).astype(_complex_dtype(a.dtype), copy=False)

    def backward(self, g, m):  # x real: Re(F^H P^T g), P^T padding the half spectrum with zeros
        full = m.apply(Resize, g, (self.dims[-1],), (self.n,))
        return m.apply(Real, m.apply(C2C, full, self.dims, _SWAP[self.norm], True)), None, None


class C2R(Function):
    """The inverse of ``R2C``: a half spectrum (last of ``dims`` of size n // 2 + 1) to a real array of length n."""

    uses_inputs = False

    def forward(self, z, dims, n, norm):
        self.dims, self.norm, self.n = dims, norm, n
        sizes = [z.shape[d] for d in dims[:-1]] + [n]
        return xp.fft.irfftn(z, s=sizes, axes=dims, norm=norm).astype(_real_dtype(z.dtype), copy=False)

    def backward(self, g, m):  # rfft of g, the bins that stand for two conjugate ones doubled (imag of 0, n/2 unused)
        half = m.apply(R2C, g, self.dims, _SWAP[self.norm])
        k = half.shape[-1] if self.dims[-1] in (-1, g.ndim - 1) else half.shape[self.dims[-1]]
        weight = xp.ones(k, dtype=_real_dtype(half.dtype))
        weight[1:1 + self.n - k] = 2
        axis = self.dims[-1] % g.ndim
        weight = weight.reshape((k,) + (1,) * (g.ndim - 1 - axis))
        return half * m.const(backend.to_device(weight, backend.device_of(g.data if isinstance(g, Tensor) else g))),\
            None, None, None


# --- the planning behind nerve.fft -----------------------------------------------------------------------------------
def fft_norm(norm, name: str) -> str:
    norm = "backward" if norm is None else norm
    if norm not in _NORMS:
        raise ValueError(f"fft.{name}: invalid normalization mode {norm!r} (use 'backward', 'ortho' or 'forward')")
    return norm


def _floating(x) -> Tensor:
    x = _as_tensor(x)
    return x if x.dtype.kind in "fc" else x.to(backend.get_default_dtype())


def _to_complex(x: Tensor) -> Tensor:
    return x if x.dtype.kind == "c" else ToComplex.apply(x)


def _to_real(x: Tensor, name: str) -> Tensor:
    if x.dtype.kind == "c":
        raise RuntimeError(f"fft.{name} expects a real input tensor, but got {x.dtype}")
    return x


def _plan(x: Tensor, s, dim, name: str, default_all: bool) -> tuple:
    """(dims, sizes) from PyTorch's s / dim conventions, checked."""
    if isinstance(dim, int):
        dim = (dim,)
    if isinstance(s, int):
        s = (s,)
    if dim is None:
        dims = tuple(range(x.ndim - len(s), x.ndim)) if s is not None else (
            tuple(range(x.ndim)) if default_all else (x.ndim - 2, x.ndim - 1))
    else:
        dims = tuple(dim)
    for d in dims:
        if not -x.ndim <= d < x.ndim:
            raise IndexError(f"fft.{name}: dim {d} is out of range for a tensor of shape {tuple(x.shape)}")
    dims = tuple(d % x.ndim for d in dims)
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"fft.{name}: dims {dims} must be unique")
    if s is not None and len(s) != len(dims):
        raise RuntimeError(f"fft.{name}: s {tuple(s)} and dim {dims} must have the same length")
    sizes = tuple(x.shape[d] if s is None or s[i] == -1 else int(s[i]) for i, d in enumerate(dims))
    for n in sizes:
        if n < 1:
            raise RuntimeError(f"fft.{name}: invalid number of data points ({n}) specified")
    return dims, sizes


def _resize(x: Tensor, dims: tuple, sizes: tuple) -> Tensor:
    if tuple(x.shape[d] for d in dims) == tuple(sizes):
        return x
    return Resize.apply(x, dims, sizes)


def fft_c2c(x, s, dim, norm, name: str, inverse: bool, default_all: bool = True) -> Tensor:
    """The (inverse) FFT over ``dim`` after padding/trimming to ``s``, with PyTorch's defaults (``nerve.fft``)."""
    x = _floating(x)
    dims, sizes = _plan(x, s, dim, name, default_all)
    if not dims:
        return _to_complex(x)
    return C2C.apply(_resize(_to_complex(x), dims, sizes), dims, fft_norm(norm, name), inverse)


def fft_r2c(x, s, dim, norm, name: str, default_all: bool = True) -> Tensor:
    """The onesided FFT of a real input over ``dim`` (the last halved)."""
    x = _to_real(_floating(x), name)
    dims, sizes = _plan(x, s, dim, name, default_all)
    return R2C.apply(_resize(x, dims, sizes), dims, fft_norm(norm, name))


def fft_c2r(x, s, dim, norm, name: str, default_all: bool = True) -> Tensor:
    """The inverse of ``fft_r2c``: a real output whose last dim has s[-1] (default 2 (m - 1)) points."""
    x = _floating(x)
    dims, sizes = _plan(x, s, dim, name, default_all)
    if s is None or (s[-1] if not isinstance(s, int) else s) == -1:
        sizes = sizes[:-1] + (2 * (x.shape[dims[-1]] - 1),)
    n = sizes[-1]
    if n < 1:
        raise RuntimeError(f"fft.{name}: invalid number of data points ({n}) specified")
    half = _resize(_to_complex(x), dims, sizes[:-1] + (n // 2 + 1,))
    return C2R.apply(half, dims, n, fft_norm(norm, name))


# helper for rules anywhere in ops: m.real(z), the real part on both paths
define("real", lambda z: z.real, lambda z: Real.apply(z))

__all__ = ["angle", "complex", "conj", "conj_physical", "fft_c2c", "fft_c2r", "fft_norm", "fft_r2c", "imag", "is_conj",
           "polar", "real", "resolve_conj", "view_as_complex", "view_as_real"]
#: functions that are also Tensor methods (x.name(...) == name(x, ...))
METHODS = ["angle", "conj", "conj_physical", "is_conj", "resolve_conj"]
