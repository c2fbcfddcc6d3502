"""nerve: a deep-learning framework with its own reverse-mode autodiff over NumPy (CuPy on a GPU)."""

import numpy as _np

from nerve.version import __version__

from nerve.backend import (
    default_generator, get_default_dtype, get_rng_state, manual_seed, set_default_dtype, set_rng_state,
)
from nerve.tensor import Tensor
from nerve.autograd import (
    Function, GradcheckError, enable_grad, grad, gradcheck, gradgradcheck, is_grad_enabled, no_grad,
    set_grad_enabled,
)
from nerve.creation import (
    arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, linspace, ones, ones_like,
    rand, rand_like, randint, randint_like, randn, randn_like, randperm, tensor, zeros, zeros_like,
)
from nerve.ops import *  # noqa: F401,F403  (the op functions: nerve.exp, nerve.matmul, ...)

float16 = _np.dtype(_np.float16)
float32 = _np.dtype(_np.float32)
float64 = _np.dtype(_np.float64)
int32 = _np.dtype(_np.int32)
int64 = _np.dtype(_np.int64)
uint8 = _np.dtype(_np.uint8)
bool_ = _np.dtype(_np.bool_)
float = float32
double = float64
long = int64
from nerve.io import load, save  # noqa: E402,F401  (weights files: nerve.save / nerve.load)
from nerve import data, functional, nn, optim, rules, train  # noqa: E402,F401  (nerve.nn.Linear, ... as in PyTorch)
