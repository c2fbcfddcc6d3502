"""Array backend: the array module for a device, the default dtype, the seeded random generator.

Compute code imports ``xp`` from here. It is NumPy; CuPy arrays flow through it unchanged because
NumPy's ufuncs and functions dispatch to CuPy (NEP 13/18), so only creation and device moves need the
device's own module (``array_module(device)``).
"""
from __future__ import annotations

import numpy

xp = numpy
ndarray = numpy.ndarray
generic = numpy.generic

_default_dtype = numpy.dtype(numpy.float32)
_generator = numpy.random.default_rng()


def array_module(device: str = "cpu"):
    """The array module for ``device`` ("cpu" -> NumPy, "cuda" -> CuPy)."""
    device = str(device)
    if device == "cpu":
        return numpy
    if device == "cuda" or device.startswith("cuda:") or device == "gpu":
        try:
            import cupy
        except ImportError as exc:
            raise RuntimeError(
                f"device {device!r} needs the CuPy package (for example 'pip install cupy-cuda12x'), "
                "which is not installed"
            ) from exc
        return cupy
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def as_array(value):
    """An array as it is (NumPy or CuPy); a NumPy scalar or a Python number as a 0-d NumPy array.

    NOTE: ``numpy.asarray`` on a CuPy array raises, so device arrays are passed through untouched.
    """
    if isinstance(value, numpy.ndarray) or hasattr(value, "__cuda_array_interface__"):
        return value
    return numpy.asarray(value)


def device_of(array) -> str:
    """"cpu" for NumPy arrays, "cuda" for CuPy arrays."""
    return "cpu" if isinstance(array, (numpy.ndarray, numpy.generic)) else "cuda"


def to_device(array, device: str):
    """Move an array to ``device`` (a no-op when it is already there)."""
    device = "cuda" if str(device).startswith(("cuda", "gpu")) else str(device)
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()
    return array_module(device).asarray(array)


def get_default_dtype():
    """The floating dtype new tensors get (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """Set the floating dtype new tensors get; float64 is useful for gradient checks."""
    global _default_dtype
    dtype = numpy.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    _default_dtype = dtype


def manual_seed(seed: int) -> numpy.random.Generator:
    """Seed the generator every random function in nerve uses by default (and CuPy's, if loaded)."""
    global _generator
    _generator = numpy.random.default_rng(seed)
    import sys
    if "cupy" in sys.modules:
        sys.modules["cupy"].random.seed(seed)
    return _generator


def default_generator() -> numpy.random.Generator:
    """The shared seeded generator (replaced by ``manual_seed``)."""
    return _generator


def generator(seed: int | None = None, stream: int = 0) -> numpy.random.Generator:
    """A generator of its own for (``seed``, ``stream``), or the shared one when ``seed`` is None.

    ``stream`` keeps a component's draws apart from the shared generator seeded with the same number
    (``manual_seed(0)`` and a rule's ``seed=0`` must not draw the same matrices).
    """
    return _generator if seed is None else numpy.random.default_rng([seed, stream])


def get_rng_state() -> dict:
    """The shared generator's state, for checkpoints."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore the shared generator's state saved by ``get_rng_state``."""
    _generator.bit_generator.state = state


def _special(array, name: str):
    if device_of(array) == "cpu":
        import scipy.special as special
    else:
        import cupyx.scipy.special as special
    return getattr(special, name)


def erf(array):
    """Error function, elementwise (SciPy on the CPU, cupyx on a GPU)."""
    return _special(array, "erf")(array)


def expit(array):
    """Logistic sigmoid computed without overflow."""
    return _special(array, "expit")(array)


def _tune_malloc() -> None:
    """Keep freed activation buffers in the process instead of handing them back to the OS.

    NOTE: glibc returns large freed blocks (mmap'd above 128 KiB by default) to the OS, so every training
    step page-faults its activations back in (thousands of faults and ~15% of a small CNN's step). Raising
    the mmap and trim thresholds makes those blocks reusable. Linux/glibc only; NERVE_MALLOC_TUNING=0
    turns it off.
    """
    import os
    import sys
    if os.environ.get("NERVE_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 1 << 30)
    except (OSError, AttributeError):
        pass


_tune_malloc()
