"""nerve: a deep-learning framework with its own reverse-mode autodiff over NumPy (CuPy on a GPU)."""

import builtins as _builtins

import numpy as _np

from nerve.version import __version__

from nerve.backend import (
    Generator, default_generator, device, get_default_dtype, get_rng_state, manual_seed, set_default_dtype,
    set_rng_state,
)
from nerve.tensor import Tensor
from nerve.autograd import (
    Function, GradcheckError, enable_grad, grad, gradcheck, gradgradcheck, inference_mode, is_grad_enabled, no_grad,
    set_grad_enabled,
)
from nerve.creation import (
    arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, linspace, logspace, ones, ones_like,
    rand, rand_like, randint, randint_like, randn, randn_like, randperm, tensor, zeros, zeros_like,
)
from nerve.ops import *  # noqa: F401,F403  (the op functions: nerve.exp, nerve.matmul, ...)

# dtypes under PyTorch's names (NumPy dtypes: ``x.dtype == nerve.float32`` and NumPy calls both work)
float16 = half = _np.dtype(_np.float16)
float32 = float = _np.dtype(_np.float32)
float64 = double = _np.dtype(_np.float64)
complex64 = cfloat = _np.dtype(_np.complex64)
complex128 = cdouble = _np.dtype(_np.complex128)
uint8 = _np.dtype(_np.uint8)
int8 = _np.dtype(_np.int8)
int16 = short = _np.dtype(_np.int16)
int32 = int = _np.dtype(_np.int32)
int64 = long = _np.dtype(_np.int64)
bool = bool_ = _np.dtype(_np.bool_)
Size = tuple  # NOTE: shapes are plain tuples; torch.Size(...) == x.shape holds
# memory formats are accepted where PyTorch takes them (nerve's arrays are always C-ordered)
contiguous_format, channels_last, channels_last_3d, preserve_format = ("contiguous_format", "channels_last",
                                                                        "channels_last_3d", "preserve_format")


def __getattr__(name: str):
    if name == "bfloat16":
        raise AttributeError("nerve.bfloat16: NumPy (nerve's array library) has no bfloat16 type; "
                             "use nerve.float16 or nerve.float32")
    raise AttributeError(f"module 'nerve' has no attribute {name!r}")


def is_tensor(obj) -> _builtins.bool:
    """True for a nerve Tensor (PyTorch's ``torch.is_tensor``)."""
    return isinstance(obj, Tensor)


def is_nonzero(input: Tensor) -> _builtins.bool:
    """The truth value of a one-element tensor (PyTorch's ``torch.is_nonzero``)."""
    if input.numel() != 1:
        raise RuntimeError(f"is_nonzero: expected a tensor with one element, got shape {tuple(input.shape)}")
    return _builtins.bool(input.item())


def is_floating_point(input: Tensor) -> _builtins.bool:
    """True when ``input`` has a floating dtype."""
    return input.is_floating_point()


from nerve.io import load, save  # noqa: E402,F401  (weights files: nerve.save / nerve.load)
from nerve import data, functional, nn, optim, rules, train  # noqa: E402,F401  (nerve.nn.Linear, ... as in PyTorch)
from nerve import accelerator, amp, backends, cuda, utils  # noqa: E402,F401  (torch.cuda / torch.utils.data look-alikes)
from nerve.amp import autocast  # noqa: E402,F401
from nerve import distributions, func, jit, special  # noqa: E402,F401  (torch.distributions, .func, .jit, .special)
from nerve.func import vmap  # noqa: E402,F401
from nerve.backends import (  # noqa: E402,F401  (switches PyTorch scripts set; no effect here)
    are_deterministic_algorithms_enabled, compile, get_float32_matmul_precision, get_num_threads,
    set_float32_matmul_precision, set_intra_op_threads, set_num_threads, use_deterministic_algorithms,
)
from nerve import linalg  # noqa: E402,F401  (torch.linalg: norms, decompositions, solvers)
from nerve import fft  # noqa: E402,F401  (torch.fft: differentiable transforms)
from nerve import testing  # noqa: E402,F401  (torch.testing.assert_close)
from nerve.numerics import finfo, get_printoptions, iinfo, set_printoptions  # noqa: E402,F401

inf, nan, pi, e = _np.inf, _np.nan, _np.pi, _np.e  # noqa: E402  (torch.inf, torch.pi, ...)
newaxis = None
from nerve.linalg import lu_top as lu, lu_unpack, triangular_solve  # noqa: E402,F401  (torch.lu, ...)
