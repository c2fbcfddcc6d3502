"""Learning-rate schedules: PyTorch's ``torch.optim.lr_scheduler``, stepped after ``optimizer.step()``.

``core.py`` holds the base ``LRScheduler`` and the common schedules (step, exponential, cosine, linear,
one-cycle, plateau, lambda, sequential); ``cyclic.py`` the rest of PyTorch's (cyclic, warm restarts,
polynomial, constant, multiplicative, chained).
"""
from nerve.optim.lr_scheduler.core import *  # noqa: F401,F403
from nerve.optim.lr_scheduler.core import __all__ as _core
from nerve.optim.lr_scheduler.cyclic import *  # noqa: F401,F403
from nerve.optim.lr_scheduler.cyclic import __all__ as _cyclic

__all__ = _core + _cyclic
