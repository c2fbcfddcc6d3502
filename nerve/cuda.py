"""``nerve.cuda``: PyTorch's CUDA queries, answered through CuPy (nerve's GPU array library).

Scripts ask ``nerve.cuda.is_available()`` to pick a device; it is True only when CuPy is installed and sees a GPU.
"""
from __future__ import annotations

from nerve import backend

__all__ = ["is_available", "device_count", "current_device", "get_device_name", "manual_seed", "manual_seed_all",
           "synchronize", "empty_cache"]


def _cupy():
    try:
        import cupy
    except ImportError:
        return None
    return cupy


def device_count() -> int:
    """How many GPUs CuPy sees (0 without CuPy or without a GPU)."""
    cupy = _cupy()
    if cupy is None:
        return 0
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # noqa: BLE001 - any CUDA runtime error (no driver, no device) means no usable GPU
        return 0


def is_available() -> bool:
    """True when CuPy is installed and sees at least one GPU."""
    return device_count() > 0


def _require(name: str):
    if not is_available():
        raise RuntimeError(f"nerve.cuda.{name}: no GPU is available (CuPy is missing or sees no device)")
    return _cupy()


def current_device() -> int:
    """The index of the GPU CuPy currently uses."""
    return int(_require("current_device").cuda.runtime.getDevice())


def get_device_name(device=None) -> str:
    """The GPU's name, e.g. 'NVIDIA H200'."""
    cupy = _require("get_device_name")
    if device is None:
        index = current_device()
    elif isinstance(device, int):
        index = device
    else:
        index = backend.device(device).index or 0
    name = cupy.cuda.runtime.getDeviceProperties(index)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def manual_seed(seed: int) -> None:
    """Seed CuPy's generator (nerve's own draws use ``nerve.manual_seed``, which seeds both); a no-op without
    a GPU, as in PyTorch."""
    if is_available():
        _cupy().random.seed(seed)


manual_seed_all = manual_seed


def synchronize(device=None) -> None:
    """Wait for the GPU's queued work (a no-op without a GPU)."""
    if is_available():
        _cupy().cuda.Device().synchronize()


def empty_cache() -> None:
    """Hand CuPy's cached free blocks back to the driver (a no-op without a GPU)."""
    if is_available():
        _cupy().get_default_memory_pool().free_all_blocks()
