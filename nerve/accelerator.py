"""``nerve.accelerator``: PyTorch's device-agnostic queries (``torch.accelerator``); the one accelerator nerve
drives is a CUDA GPU through CuPy."""
from __future__ import annotations

from nerve import backend, cuda

__all__ = ["is_available", "current_accelerator", "device_count", "synchronize"]


def is_available() -> bool:
    """True when a GPU is usable (``nerve.cuda.is_available()``)."""
    return cuda.is_available()


def current_accelerator(check_available: bool = False) -> backend.device | None:
    """``device("cuda")`` when CuPy is installed (and, with ``check_available``, sees a GPU); else None."""
    if check_available:
        return backend.device("cuda") if cuda.is_available() else None
    return backend.device("cuda") if cuda._cupy() is not None else None


def device_count() -> int:
    return cuda.device_count()


def synchronize(device=None) -> None:
    cuda.synchronize(device)
