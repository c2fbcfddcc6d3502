"""``nerve.backends`` and the global switches PyTorch scripts set (``torch.backends.cudnn.benchmark = True``,
``torch.backends.mps.is_available()``, ``torch.set_float32_matmul_precision("high")``).

nerve has no cuDNN, no TF32 switch and no Metal backend: the flags are accepted, remembered and change nothing
(nerve has no nondeterministic alternative kernels to switch between).
"""
from __future__ import annotations

from types import SimpleNamespace

__all__ = ["cudnn", "cuda", "mps", "set_float32_matmul_precision", "get_float32_matmul_precision",
           "use_deterministic_algorithms", "are_deterministic_algorithms_enabled"]


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
