"""``nerve.amp``: PyTorch's mixed-precision names, so training scripts that use them run unchanged.

``autocast`` is accepted and changes nothing: nerve computes every op in its inputs' dtypes (NumPy has no
bfloat16, and float16 arithmetic on the CPU is slower than float32), so a model runs in the dtype it was built
in (``model.half()`` for float16). ``GradScaler`` is the real loss scaler: it multiplies the loss, unscales
the gradients before the step, skips steps whose gradients overflowed and adapts the scale, which is what
float16 training (on a GPU through CuPy) needs.
"""
from __future__ import annotations

import functools
import math
from typing import Any

from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.tensor import Tensor

__all__ = ["autocast", "GradScaler"]


class autocast:
    """``with autocast(device_type, dtype=None, enabled=True)``: accepted for PyTorch scripts, without effect
    (ops keep their inputs' dtypes); also a decorator."""

    def __init__(self, device_type: str = "cuda", dtype: Any = None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if not isinstance(device_type, str):
            raise TypeError(f"autocast: device_type must be a string such as 'cpu' or 'cuda', got {device_type!r}")
        self.device_type, self.fast_dtype, self.enabled = device_type, dtype, bool(enabled)

    def __enter__(self) -> "autocast":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)
        return wrapper


class GradScaler:
    """Loss scaling for float16 training, with PyTorch's names and defaults.

    ``scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update()``: ``step`` unscales the gradients
    (unless ``unscale_`` already did, e.g. before clipping) and skips the optimiser's step when any is inf or
    NaN; ``update`` halves the scale after such a step (``backoff_factor``) and doubles it after
    ``growth_interval`` steps without one (``growth_factor``). With ``enabled=False`` every method passes
    through, so one script serves float32 and float16.
    """

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True) -> None:
        if not init_scale > 0 or not growth_factor > 1.0 or not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: need init_scale > 0, growth_factor > 1 and 0 < backoff_factor < 1, got "
                             f"{init_scale}, {growth_factor}, {backoff_factor}")
        if not isinstance(growth_interval, int) or growth_interval < 1:
            raise ValueError(f"GradScaler: growth_interval must be a positive int, got {growth_interval!r}")
        self.device, self._enabled = device, bool(enabled)
        self._scale, self._growth_factor, self._backoff_factor = float(init_scale), growth_factor, backoff_factor
        self._growth_interval, self._growth_tracker = growth_interval, 0
        self._per_optimizer: dict = {}

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        """The current scale (1.0 when disabled)."""
        return self._scale if self._enabled else 1.0

    def scale(self, outputs: Any) -> Any:
        """``outputs`` (a tensor, or lists/tuples of them) times the scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError(f"GradScaler.scale: expected a tensor or a list/tuple of tensors, got "
                        f"{type(outputs).__name__}")

    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale in place and note whether any is inf or NaN."""
        if not self._enabled:
            return
        state = self._per_optimizer.setdefault(id(optimizer), {"stage": "ready", "found_inf": False})
        if state["stage"] == "unscaled":
            raise RuntimeError("GradScaler.unscale_: already called on this optimizer since the last update()")
        if state["stage"] == "stepped":
            raise RuntimeError("GradScaler.unscale_: called after step(); call update() first")
        inverse = 1.0 / self._scale
        found = False
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    p.grad.data *= inverse
                    found = found or not bool(xp.isfinite(p.grad.data).all())
        state.update(stage="unscaled", found_inf=found)

    def step(self, optimizer, *args, **kwargs) -> Any:
        """Unscale (if not yet done), then ``optimizer.step()`` unless a gradient is inf or NaN (then None)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        state = self._per_optimizer.setdefault(id(optimizer), {"stage": "ready", "found_inf": False})
        if state["stage"] == "stepped":
            raise RuntimeError("GradScaler.step: already called on this optimizer since the last update()")
        if state["stage"] == "ready":
            self.unscale_(optimizer)
        state["stage"] = "stepped"
        return None if state["found_inf"] else optimizer.step(*args, **kwargs)

    def update(self, new_scale: float | None = None) -> None:
        """Adapt the scale to the steps since the last update (or set it to ``new_scale``)."""
        if not self._enabled:
            return
        if new_scale is not None:
            new_scale = float(new_scale.item() if isinstance(new_scale, Tensor) else new_scale)
            if not (new_scale > 0 and math.isfinite(new_scale)):
                raise ValueError(f"GradScaler.update: new_scale must be a positive finite number, got {new_scale}")
            self._scale = new_scale
        elif any(s["found_inf"] for s in self._per_optimizer.values()):
            self._scale *= self._backoff_factor
            self._growth_tracker = 0
        elif self._per_optimizer:
            self._growth_tracker += 1
            if self._growth_tracker == self._growth_interval:
                self._scale *= self._growth_factor
                self._growth_tracker = 0
        self._per_optimizer.clear()

    def state_dict(self) -> dict:
        return {"scale": self._scale, "growth_factor": self._growth_factor, "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker} \
            if self._enabled else {}

    def load_state_dict(self, state: dict) -> None:
        if not self._enabled:
            return
        if not state:
            raise RuntimeError("GradScaler.load_state_dict: the state is empty (saved from a disabled scaler)")
        self._scale = float(state["scale"])
        self._growth_factor, self._backoff_factor = state["growth_factor"], state["backoff_factor"]
        self._growth_interval, self._growth_tracker = state["growth_interval"], state["_growth_tracker"]
