"""Whether operations record the graph: ``no_grad``, ``enable_grad``, ``set_grad_enabled`` and ``inference_mode``
as context managers and decorators."""
from __future__ import annotations

import functools


class _GradState:
    __slots__ = ("enabled",)

    def __init__(self) -> None:
        self.enabled = True


state = _GradState()


def is_grad_enabled() -> bool:
    """True while operations record the graph for backward."""
    return state.enabled


class _GradMode:
    """Sets recording on or off for a ``with`` block or a decorated function, then restores it."""

    mode = True

    def __enter__(self):
        self._prev = state.enabled
        state.enabled = self.mode
        return self

    def __exit__(self, *exc) -> None:
        state.enabled = self._prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Stop recording: results of operations have no ``grad_fn`` (inference, optimiser updates)."""

    mode = False


class enable_grad(_GradMode):
    """Record again inside a ``no_grad`` region."""

    mode = True


class set_grad_enabled(_GradMode):
    """Turn recording on or off by a flag: ``with set_grad_enabled(training): ...``."""

    def __init__(self, mode: bool = True) -> None:
        self.mode = bool(mode)

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper


class inference_mode(_GradMode):
    """``no_grad`` under PyTorch's other name for inference (``inference_mode(False)`` records again)."""

    def __init__(self, mode: bool = True) -> None:
        self.mode = not mode
