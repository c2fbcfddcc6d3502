"""``nerve.cuda``: PyTorch's CUDA queries, answered through CuPy (nerve's GPU array library).

Scripts ask ``nerve.cuda.is_available()`` to pick a device; it is True only when CuPy is installed and sees a GPU.
"""
from __future__ import annotations

from types import SimpleNamespace

from nerve import amp as _amp
from nerve import backend

__all__ = ["is_available", "device_count", "current_device", "get_device_name", "manual_seed", "manual_seed_all",
           "synchronize", "empty_cache", "amp"]


def _autocast(enabled: bool = True, dtype=None, cache_enabled: bool | None = None) -> _amp.autocast:
    return _amp.autocast("cuda", dtype, enabled, cache_enabled)


def _grad_scaler(init_scale: float = 2.0 ** 16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> _amp.GradScaler:
    return _amp.GradScaler("cuda", init_scale, growth_factor, backoff_factor, growth_interval, enabled)


#: ``torch.cuda.amp`` (PyTorch's older spelling of ``torch.amp`` with the device fixed to CUDA)
amp = SimpleNamespace(autocast=_autocast, GradScaler=_grad_scaler)


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
