"""Spike encoders and decoders with snnTorch's names, arguments and time-first layout (num_steps, *data.shape).

Encoders: ``rate`` (Bernoulli spikes, probability = the clipped value), ``latency`` (one spike per value, early
for large values; logarithmic RC charging or linear, optionally normalised to fill ``num_steps``), ``delta``
(a spike where the signal changes by more than a threshold). Decoders: ``spike_count``, ``first_spike_time``,
and the class predictions ``count_decode`` (most spikes) and ``latency_decode`` (earliest spike).
Random draws use nerve's seeded generator (``nerve.manual_seed``) or the ``generator`` given.
"""
from __future__ import annotations

from nerve import backend
from nerve.backend import xp
from nerve.tensor import Tensor

__all__ = ["rate", "latency", "latency_code", "delta", "spike_count", "first_spike_time", "count_decode",
           "latency_decode"]


def _data(x):
    return x.data if isinstance(x, Tensor) else xp.asarray(x)


def _floating(array):
    return array if array.dtype.kind == "f" else array.astype(backend.get_default_dtype())


def _steps(num_steps, who: str, required: bool = True) -> int | None:
    if num_steps is None or num_steps is False:
        if required:
            raise ValueError(f"spikegen.{who}: num_steps is required")
        return None
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
        raise ValueError(f"spikegen.{who}: num_steps must be a positive int, got {num_steps!r}")
    return num_steps


def rate(data, num_steps: int | None = None, gain: float = 1.0, offset: float = 0.0, first_spike_time: int = 0,
         time_var_input: bool = False, generator=None) -> Tensor:
    """Rate code: spike with probability clip(gain · data + offset, 0, 1) at each step, independently.

    Returns (num_steps, *data.shape); without ``num_steps`` one draw of data's shape. ``time_var_input=True``
    takes data already time-first (one draw per given step). Steps before ``first_spike_time`` are silent.
    """
    p = xp.clip(_floating(_data(data)) * gain + offset, 0.0, 1.0)
    steps = _steps(num_steps, "rate", required=False)
    if first_spike_time < 0 or (first_spike_time and (steps is None or first_spike_time >= steps)):
        raise ValueError(f"spikegen.rate: first_spike_time must be in [0, num_steps), got {first_spike_time}")
    if steps is not None and not time_var_input:
        p = xp.broadcast_to(p, (steps, *p.shape))
    gen = generator if generator is not None else backend.default_generator()
    u = gen.random(p.shape)
    spikes = (xp.asarray(u) < p).astype(p.dtype)
    if first_spike_time:
        spikes[:first_spike_time] = 0
    return Tensor._make(spikes, None)


def latency_code(data, num_steps: int | None = None, threshold: float = 0.01, tau: float = 1.0,
                 first_spike_time: int = 0, normalize: bool = False, linear: bool = False, epsilon: float = 1e-7):
    """Spike times (float, same shape as data) and the mask of values below ``threshold`` (snnTorch's formulas).

    log: t = τ ln(x / (x − θ)) with x clipped to θ + ε;  linear: t = min(−τ (x − 1), −τ (θ − 1)). ``normalize``
    scales the times to end at num_steps − 1 (log: by the largest time; linear: τ = num_steps − 1 − first).
    """
    x = _floating(_data(data))
    if not 0 < threshold < 1:
        raise ValueError(f"spikegen.latency: threshold must be in (0, 1), got {threshold}")
    if tau <= 0:
        raise ValueError(f"spikegen.latency: tau must be > 0, got {tau}")
    if first_spike_time < 0 or (num_steps and first_spike_time > num_steps - 1):
        raise ValueError(f"spikegen.latency: first_spike_time must be in [0, num_steps - 1], got {first_spike_time}")
    if normalize and not num_steps:
        raise ValueError("spikegen.latency: normalize=True needs num_steps")
    below = x < threshold
    if linear:
        if normalize:
            tau = num_steps - 1 - first_spike_time
        t = xp.minimum(-tau * (x - 1), -tau * (threshold - 1)) + first_spike_time
    else:
        xc = xp.maximum(x, threshold + epsilon)
        t = tau * xp.log(xc / (xc - threshold)) + first_spike_time
        if normalize:
            shifted = t - first_spike_time
            t = shifted * (num_steps - first_spike_time - 1) / shifted.max() + first_spike_time
    return t, below


def latency(data, num_steps: int, threshold: float = 0.01, tau: float = 1.0, first_spike_time: int = 0,
            clip: bool = False, normalize: bool = False, linear: bool = False, epsilon: float = 1e-7) -> Tensor:
    """Latency code: one spike per value at round(t) from ``latency_code``; (num_steps, *data.shape).

    Values whose time falls at or after ``num_steps`` do not fire (snnTorch clamps them to the last step and
    then clears it); ``clip=True`` also silences values below ``threshold``.
    """
    steps = _steps(num_steps, "latency")
    t, below = latency_code(data, steps, threshold, tau, first_spike_time, normalize, linear, epsilon)
    idx = xp.rint(t)
    grid = xp.arange(steps, dtype=t.dtype).reshape((steps,) + (1,) * t.ndim)
    spikes = (grid == idx).astype(t.dtype)
    if clip:
        spikes = spikes * ~below
    return Tensor._make(spikes, None)


def delta(data, threshold: float = 0.1, padding: bool = False, off_spike: bool = False) -> Tensor:
    """Delta modulation of time-first data: +1 where x[t] − x[t−1] ≥ threshold (−1 where ≤ −threshold with
    ``off_spike``). The first step compares with zero, or with itself (no spike) when ``padding=True``."""
    x = _floating(_data(data))
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"spikegen.delta: expected time-first data (num_steps, ...), got shape {x.shape}")
    prev = xp.concatenate([x[:1] if padding else xp.zeros_like(x[:1]), x[:-1]])
    diff = x - prev
    out = (diff >= threshold).astype(x.dtype)
    if off_spike:
        out = out - (diff <= -threshold).astype(x.dtype)
    return Tensor._make(out, None)


def _train(spk, who: str):
    s = _data(spk[0] if isinstance(spk, (tuple, list)) else spk)
    if s.ndim < 2:
        raise ValueError(f"spikegen.{who}: expected a time-first spike train (num_steps, batch, ...), got {s.shape}")
    return s


def spike_count(spk) -> Tensor:
    """Spikes per neuron summed over time: (batch, ...)."""
    return Tensor._make(_train(spk, "spike_count").sum(0), None)


def first_spike_time(spk) -> Tensor:
    """Step of each neuron's first spike; num_steps where it never fires: (batch, ...)."""
    s = _train(spk, "first_spike_time") > 0
    first = s.argmax(0).astype(backend.get_default_dtype())
    return Tensor._make(xp.where(s.any(0), first, s.shape[0]), None)


def count_decode(spk) -> Tensor:
    """Predicted class: the output neuron with the most spikes (the first on ties), (batch,)."""
    return Tensor._make(_train(spk, "count_decode").sum(0).argmax(-1), None)


def latency_decode(spk) -> Tensor:
    """Predicted class: the output neuron that fires first (the lowest index on ties), (batch,)."""
    return Tensor._make(first_spike_time(spk).data.argmin(-1), None)

