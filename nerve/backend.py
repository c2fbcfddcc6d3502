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


class device:
    """A device as PyTorch names it: ``device("cpu")``, ``device("cuda:1")``, ``device("cuda", 0)``.

    NOTE: unlike PyTorch's, it compares equal to its name as a string (``t.device == "cpu"``), and a device
    without an index equals the same type with any index, so code written against nerve's device strings
    keeps working.
    """

    __slots__ = ("type", "index")
    TYPES = ("cpu", "cuda", "mps", "meta")

    def __init__(self, type: "str | device", index: int | None = None) -> None:
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        name = str(type)
        if name == "gpu" or name.startswith("gpu:"):
            name = "cuda" + name[3:]
        if ":" in name:
            name, _, number = name.partition(":")
            if index is not None or not number.isdigit():
                raise RuntimeError(f"device: invalid device string {str(type)!r}: expected 'cpu', 'cuda' or 'cuda:N'")
            index = int(number)
        if name not in self.TYPES:
            raise RuntimeError(f"device: expected one of {', '.join(self.TYPES)} at the start of the device "
                               f"string, got {str(type)!r}")
        if index is not None and (not isinstance(index, int) or index < 0):
            raise RuntimeError(f"device: the index must be a non-negative int, got {index!r}")
        self.type = name
        self.index = index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except RuntimeError:
                return False
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and (self.index is None or other.index is None or self.index == other.index)

    def __hash__(self) -> int:
        return hash(self.type)

    def __reduce__(self):
        return (device, (self.type, self.index))


CPU = device("cpu")


def array_module(device: str = "cpu"):
    """The array module for ``device`` ("cpu" -> NumPy, "cuda" -> CuPy; a ``device`` object or its name)."""
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


def device_object(array) -> device:
    """The ``device`` an array lives on (what ``Tensor.device`` returns)."""
    if isinstance(array, (numpy.ndarray, numpy.generic)):
        return CPU
    return device("cuda", int(array.device.id))


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


# PyTorch's legacy tensor-type names (``x.type()``, ``x.type("torch.DoubleTensor")``) and their dtypes
TENSOR_TYPES = {"FloatTensor": "float32", "DoubleTensor": "float64", "HalfTensor": "float16",
                "ByteTensor": "uint8", "CharTensor": "int8", "ShortTensor": "int16", "IntTensor": "int32",
                "LongTensor": "int64", "BoolTensor": "bool", "BFloat16Tensor": "bfloat16"}


def dtype(value) -> numpy.dtype:
    """A dtype from a dtype, a type (``float``), or a name (``"float32"``, ``"torch.float32"``).

    NOTE: NumPy has no bfloat16, so nerve has none either; naming it raises a TypeError that says so.
    """
    if isinstance(value, str):
        name = value.rpartition(".")[2] if value.startswith(("torch.", "nerve.")) else value
        name = TENSOR_TYPES.get(name, name)
        if name == "bfloat16":
            raise TypeError("bfloat16: NumPy (nerve's array library) has no bfloat16 type; use float16 or float32")
        value = name
    try:
        return numpy.dtype(value)
    except TypeError:
        raise TypeError(f"unknown dtype {value!r}: expected a nerve dtype such as nerve.float32") from None


def tensor_type_name(array) -> str:
    """PyTorch's name for an array's tensor type, e.g. ``torch.FloatTensor`` or ``torch.cuda.LongTensor``."""
    names = {v: k for k, v in TENSOR_TYPES.items()}
    kind = names.get(array.dtype.name)
    if kind is None:
        raise TypeError(f"type(): no PyTorch tensor-type name for dtype {array.dtype}")
    return "torch." + ("" if device_of(array) == "cpu" else "cuda.") + kind


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


class Generator(numpy.random.Generator):
    """A random generator with PyTorch's methods (``Generator().manual_seed(0)``); it is a NumPy Generator,
    so every nerve function that takes ``generator=`` accepts it."""

    def __init__(self, device="cpu") -> None:
        # NOTE: NumPy builds generators from a bit generator (``spawn``, pickling) through this constructor.
        if isinstance(device, numpy.random.BitGenerator):
            self._seed, bit_generator = None, device
        elif str(device) != "cpu":
            raise RuntimeError(f"Generator: only CPU generators exist in nerve, got device {str(device)!r}")
        else:
            self._seed = int(numpy.random.SeedSequence().entropy % (1 << 63))
            bit_generator = numpy.random.PCG64(self._seed)
        super().__init__(bit_generator)
        self.device = CPU

    def manual_seed(self, seed: int) -> "Generator":
        """Restart the stream from ``seed``; returns the generator (PyTorch's chaining)."""
        self._seed = int(seed)
        self.bit_generator.state = numpy.random.PCG64(self._seed).state
        return self

    def seed(self) -> int:
        """Reseed from fresh entropy and return the new seed."""
        self.manual_seed(int(numpy.random.SeedSequence().entropy % (1 << 63)))
        return self._seed

    def initial_seed(self) -> int:
        """The seed the stream started from."""
        return self._seed

    def get_state(self) -> dict:
        """The bit generator's state (a dict, where PyTorch gives a byte tensor)."""
        return self.bit_generator.state

    def set_state(self, state: dict) -> "Generator":
        self.bit_generator.state = state
        return self


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
