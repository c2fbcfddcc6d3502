"""``nerve.backends`` and the global switches PyTorch scripts set (``torch.backends.cudnn.benchmark = True``,
``torch.backends.mps.is_available()``, ``torch.set_float32_matmul_precision("high")``).

nerve has no cuDNN, no TF32 switch and no Metal backend: the flags are accepted, remembered and change nothing
(nerve has no nondeterministic alternative kernels to switch between).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

__all__ = ["cudnn", "cuda", "mps", "set_float32_matmul_precision", "get_float32_matmul_precision",
           "use_deterministic_algorithms", "are_deterministic_algorithms_enabled", "set_num_threads",
           "get_num_threads", "compile", "set_intra_op_threads"]


def _false() -> bool:
    return False


#: cuDNN's flags: settable, without effect (nerve's GPU kernels are CuPy's)
cudnn = SimpleNamespace(benchmark=False, deterministic=False, enabled=True, allow_tf32=True, is_available=_false)
#: ``torch.backends.cuda.matmul.allow_tf32`` and friends: settable, without effect
cuda = SimpleNamespace(matmul=SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True,
                                              allow_bf16_reduced_precision_reduction=True),
                       is_built=_false)
#: Apple's Metal backend: nerve does not drive it
mps = SimpleNamespace(is_available=_false, is_built=_false)

_settings = {"matmul_precision": "highest", "deterministic": False}


def set_float32_matmul_precision(precision: str) -> None:
    """Accepts PyTorch's "highest" / "high" / "medium"; float32 products are always computed in float32 here."""
    if precision not in ("highest", "high", "medium"):
        raise ValueError(f"set_float32_matmul_precision: expected 'highest', 'high' or 'medium', got {precision!r}")
    _settings["matmul_precision"] = precision


def get_float32_matmul_precision() -> str:
    return _settings["matmul_precision"]


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Accepted for PyTorch scripts and remembered; nerve has no alternative kernels for it to choose between."""
    _settings["deterministic"] = bool(mode)


def are_deterministic_algorithms_enabled() -> bool:
    return _settings["deterministic"]


def compile(model: Any = None, *, fullgraph: bool = False, dynamic: bool | None = None, backend: Any = "inductor",
            mode: str | None = None, options: dict | None = None, disable: bool = False) -> Any:
    """``torch.compile``'s signature, returning ``model`` unchanged (or, without it, a decorator that does):
    nerve runs eagerly, so scripts that compile their model run as they are."""
    if model is None:
        return lambda fn: fn
    return model


def _threadpoolctl(name: str):
    try:
        import threadpoolctl
    except ImportError as exc:
        raise ImportError(f"nerve.{name}: sets the BLAS library's threads through the threadpoolctl package "
                          "(pip install threadpoolctl), which is not installed") from exc
    return threadpoolctl


def set_num_threads(num_threads: int) -> None:
    """The threads nerve computes with on the CPU, as ``torch.set_num_threads``: nerve's own threads when they
    are on (the default with numba installed; BLAS stays single-threaded), else NumPy's BLAS (OpenBLAS/MKL)
    threads through threadpoolctl."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {num_threads!r}")
    from nerve import ops

    if ops.streams.get_threads():
        ops.streams.set_threads(num_threads)
        return
    _threadpoolctl("set_num_threads").threadpool_limits(num_threads, user_api="blas")


def set_intra_op_threads(num_threads: int | None) -> None:
    """nerve's own threads for its kernels (PyTorch's intra-op model), on by default when numba is installed:
    BLAS single-threaded for the process and each large kernel cut in ``num_threads`` parts on nerve's worker
    threads; None switches to BLAS's own threads with per-site streams (README, "nerve's own threads";
    ``NERVE_NUM_THREADS=k`` at start-up, 0 for BLAS's)."""
    from nerve import ops

    ops.streams.set_threads(num_threads)


def get_num_threads() -> int:
    """The threads nerve computes with: nerve's own when on, else the BLAS library's (the largest, if NumPy
    loaded several)."""
    from nerve import ops

    if ops.streams.get_threads():
        return ops.streams.get_threads()
    import numpy  # noqa: F401  (its BLAS must be loaded for threadpoolctl to see it)
    info = _threadpoolctl("get_num_threads").threadpool_info()
    return max((i["num_threads"] for i in info if i["user_api"] == "blas"), default=1)
