"""``nerve.backends``: the switches PyTorch scripts set or query (``torch.backends.cudnn.benchmark = True``,
``torch.backends.mps.is_available()``). nerve has no cuDNN or MPS: the flags are accepted and change nothing."""
from __future__ import annotations

from types import SimpleNamespace

__all__ = ["cudnn", "mps"]


def _false() -> bool:
    return False


#: cuDNN's flags: settable, without effect (nerve's GPU kernels are CuPy's)
cudnn = SimpleNamespace(benchmark=False, deterministic=False, enabled=True, allow_tf32=True,
                        is_available=_false)
#: Apple's Metal backend: nerve does not drive it
mps = SimpleNamespace(is_available=_false, is_built=_false)
