"""Spiking neurons with snnTorch's names, arguments and dynamics; their state lives in module buffers.

Every neuron follows snnTorch (>= 0.7): the reset of step t comes from the membrane of step t − 1,
R[t] = H(U[t−1] − θ), computed by the spike function's forward and *detached* (no gradient flows through
the reset signal; the threshold θ in the subtracted term keeps its gradient). The spike of step t is
S[t] = spike_grad(U[t] − θ) on the new membrane, so a returned membrane above threshold is reset on the
next call (``reset_delay=True``; ``reset_delay=False`` resets it at once). β is clamped to [0, 1] in the
forward as snnTorch does, so a learned β stays a decay.

Calls: ``spk, mem = lif(cur, mem)`` (state passed explicitly, as in snnTorch's tutorials) or
``spk = lif(cur)`` with ``init_hidden=True`` (the module keeps its state; ``output=True`` also returns it).
Either way the module keeps the latest state. ``nerve.snn.reset(model)`` clears every neuron's state;
a state from a batch of another shape, or one whose graph a ``backward()`` has freed (a forgotten reset),
raises instead of silently broadcasting or failing later inside backward.
"""
from __future__ import annotations

import math
from typing import Callable

from nerve import ops
from nerve.autograd.grad_mode import no_grad
from nerve.backend import get_default_dtype, xp
from nerve.nn import Conv2d, Linear, Module, Parameter
from nerve.snn import surrogate
from nerve.tensor import Tensor

__all__ = ["SpikingNeuron", "Leaky", "Lapicque", "Synaptic", "Alpha", "RLeaky", "AdaptiveLeaky"]

RESETS = ("subtract", "zero", "none")


def _as_tensor(value, who: str, what: str) -> Tensor:
    if isinstance(value, Tensor):
        return Tensor._make(xp.array(value.data, dtype=get_default_dtype()), None)
    try:
        array = xp.asarray(value, dtype=get_default_dtype())
    except (TypeError, ValueError):
        raise TypeError(f"{who}: {what} must be a number or an array of numbers, got {type(value).__name__}") from None
    return Tensor._make(array, None)


class SpikingNeuron(Module):
    """Base of the neurons: threshold, spike function, reset mechanism and the state buffers ``state_names``."""

    state_names: tuple = ("mem",)
    default_reset = "subtract"

    def __init__(self, threshold=1.0, spike_grad: Callable | None = None, surrogate_disable: bool = False,
                 init_hidden: bool = False, learn_threshold: bool = False, reset_mechanism: str | None = None,
                 output: bool = False, graded_spikes_factor: float = 1.0, reset_delay: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        reset_mechanism = self.default_reset if reset_mechanism is None else reset_mechanism
        if reset_mechanism not in RESETS:
            raise ValueError(f"{name}: reset_mechanism must be 'subtract', 'zero' or 'none', got {reset_mechanism!r}")
        if spike_grad is not None and not callable(spike_grad):
            raise TypeError(f"{name}: spike_grad must be a callable such as nerve.snn.surrogate.atan(), got "
                            f"{type(spike_grad).__name__}")
        self.spike_grad = surrogate.heaviside() if surrogate_disable else (spike_grad or surrogate.atan())
        self.reset_mechanism = reset_mechanism
        self.init_hidden, self.output, self.reset_delay = bool(init_hidden), bool(output), bool(reset_delay)
        self.graded_spikes_factor = float(graded_spikes_factor)
        self._register("threshold", threshold, learn_threshold)
        if (self.threshold.data <= 0).any():
            raise ValueError(f"{name}: threshold must be > 0, got {self.threshold.data.tolist()}")
        for state in self.state_names:
            self.register_buffer(state, None, persistent=False)
        self.monitor = None  # a nerve.snn.loop recorder while a TimeLoop watches this neuron

    # --- parameters and state ----------------------------------------------------------------------
    def _register(self, name: str, value, learn: bool) -> None:
        t = _as_tensor(value, type(self).__name__, name)
        if learn:
            self.register_parameter(name, Parameter(t.data))
        else:
            self.register_buffer(name, t)

    def _decay(self, name: str, value, learn: bool) -> None:
        """Register a decay rate (β, α) after checking it lies in [0, 1]."""
        self._register(name, value, learn)
        data = getattr(self, name).data
        if ((data < 0) | (data > 1)).any():
            raise ValueError(f"{type(self).__name__}: {name} must be in [0, 1], got {data.tolist()}")

    def _clamped(self, name: str) -> Tensor:
        value = getattr(self, name)
        return ops.clamp(value, 0.0, 1.0) if value.requires_grad else value

    def _state(self, name: str, given, like: Tensor) -> Tensor:
        """The state ``name`` for an input like ``like``: the one given, else the module's (zero when fresh)."""
        who = type(self).__name__
        if given is not None:
            if self.init_hidden:
                raise TypeError(f"{who}: {name} must not be passed while init_hidden=True (the module keeps it)")
            state = given if isinstance(given, Tensor) else _as_tensor(given, who, name)
        else:
            state = getattr(self, name)
            if state is None:
                return Tensor._make(xp.zeros((), dtype=like.dtype), None)
        if state.ndim and tuple(state.shape) != tuple(like.shape):
            raise ValueError(f"{who}: state {name} has shape {tuple(state.shape)} but the input has shape "
                             f"{tuple(like.shape)}; the state comes from another batch: call nerve.snn.reset(model) "
                             "(or reset_mem()) before each batch")
        fn = state.grad_fn
        if fn is not None and fn.inputs is None:
            raise RuntimeError(f"{who}: state {name} belongs to a graph that backward() has already freed (a reset "
                               "forgotten between batches): call nerve.snn.reset(model) at the start of each batch, "
                               "or nerve.snn.detach_hidden(model) to carry the state on (truncated BPTT)")
        return state

    def reset_mem(self) -> None:
        """Forget the state: the next call starts from zero (any batch size)."""
        for state in self.state_names:
            setattr(self, state, None)

    def detach_hidden(self) -> None:
        """Cut the state from the graph (truncated BPTT), keeping its values."""
        for state in self.state_names:
            value = getattr(self, state)
            if value is not None:
                setattr(self, state, value.detach())

    # --- spiking ------------------------------------------------------------------------------------
    def fire(self, mem: Tensor) -> Tensor:
        """S = spike_grad(U − θ), times ``graded_spikes_factor``."""
        spk = self.spike_grad(mem - self.threshold)
        if self.graded_spikes_factor != 1.0:
            spk = spk * self.graded_spikes_factor
        if self.monitor is not None:
            self.monitor.spikes(self, spk)
        return spk

    def mem_reset(self, mem: Tensor):
        """R = spike_grad(U − θ) on the previous membrane, detached (an array); None for a fresh state."""
        if mem.ndim == 0 or self.reset_mechanism == "none":
            return None
        with no_grad():
            return self.spike_grad(Tensor._make(mem.data - self.threshold.data, None)).data

    def _late_reset(self, mem: Tensor, spk: Tensor, reset) -> Tensor:
        """reset_delay=False: reset at once on this step's spike (minus the reset already applied)."""
        do = spk.data / self.graded_spikes_factor - (0 if reset is None else reset)
        if self.reset_mechanism == "subtract":
            return mem - self.threshold * do
        if self.reset_mechanism == "zero":
            return mem - mem * do
        return mem

    def _out(self, spk: Tensor, *states: Tensor):
        if self.init_hidden and not self.output:
            return spk
        return (spk, *states)

    def extra_repr(self) -> str:
        return f"reset_mechanism={self.reset_mechanism!r}, spike_grad={self.spike_grad!r}"


class Leaky(SpikingNeuron):
    """First-order leaky integrate-and-fire neuron (snnTorch ``Leaky``).

    subtract: U[t] = β U[t−1] + I[t] − R[t] θ;  zero: U[t] = β (1 − R[t]) U[t−1] + I[t];  none: no reset;
    S[t] = H(U[t] − θ). ``beta``/``threshold`` are numbers (shared) or arrays (per neuron), learnable with
    ``learn_beta``/``learn_threshold``. Returns (spk, mem); with ``init_hidden=True`` spk (and mem if ``output``).
    """

    def __init__(self, beta, threshold=1.0, spike_grad: Callable | None = None, surrogate_disable: bool = False,
                 init_hidden: bool = False, learn_beta: bool = False, learn_threshold: bool = False,
                 reset_mechanism: str = "subtract", output: bool = False, graded_spikes_factor: float = 1.0,
                 reset_delay: bool = True) -> None:
        super().__init__(threshold, spike_grad, surrogate_disable, init_hidden, learn_threshold, reset_mechanism,
                         output, graded_spikes_factor, reset_delay)
        self._decay("beta", beta, learn_beta)

    def _update(self, input_: Tensor, mem: Tensor, reset) -> Tensor:
        beta = self._clamped("beta")
        if reset is not None and self.reset_mechanism == "zero":
            mem = mem * (1 - reset)
        new = beta * mem + input_
        if reset is not None and self.reset_mechanism == "subtract":
            new = new - self.threshold * reset
        return new

    def forward(self, input_: Tensor, mem=None):
        mem = self._state("mem", mem, input_)
        reset = self.mem_reset(mem)
        new = self._update(input_, mem, reset)
        spk = self.fire(new)
        if not self.reset_delay:
            new = self._late_reset(new, spk, reset)
        self.mem = new
        return self._out(spk, new)

    def init_leaky(self) -> Tensor:
        """snnTorch's habit: reset the state and return a zero membrane to pass to the first call."""
        self.reset_mem()
        return Tensor._make(xp.zeros((), dtype=self.threshold.dtype), None)


class Lapicque(Leaky):
    """Lapicque's RC neuron (snnTorch ``Lapicque``): U[t] = I[t] Δt / C + (1 − Δt / (RC)) U[t−1] − reset.

    Give ``beta`` (then R = 1 and C = Δt / ln(1/β)) or ``R`` and ``C``. The reset is snnTorch's: subtract θ,
    or zero the whole update. The integrate-and-fire neuron without leak is ``Leaky(beta=1.0)``.
    """

    def __init__(self, beta=None, R: float | None = None, C: float | None = None, time_step: float = 1e-3,
                 threshold=1.0, spike_grad: Callable | None = None, init_hidden: bool = False,
                 learn_threshold: bool = False, reset_mechanism: str = "subtract", output: bool = False) -> None:
        if beta is None and (R is None or C is None):
            raise ValueError("Lapicque: give beta, or both R and C")
        if beta is not None:
            if not 0 < float(beta) < 1:
                raise ValueError(f"Lapicque: beta must be in (0, 1), got {beta}")
            R = 1.0 if R is None else R
            C = time_step / (R * math.log(1 / float(beta)))
        elif R <= 0 or C <= 0:
            raise ValueError(f"Lapicque: R and C must be > 0, got R={R}, C={C}")
        super().__init__(math.exp(-time_step / (R * C)), threshold, spike_grad, False, init_hidden, False,
                         learn_threshold, reset_mechanism, output)
        self.R, self.C, self.time_step = float(R), float(C), float(time_step)

    def _update(self, input_: Tensor, mem: Tensor, reset) -> Tensor:
        new = input_ * (self.time_step / self.C) + mem * (1 - self.time_step / (self.R * self.C))
        if reset is None:
            return new
        if self.reset_mechanism == "subtract":
            return new - self.threshold * reset
        return new * (1 - reset) if self.reset_mechanism == "zero" else new


class AdaptiveLeaky(Leaky):
    """LIF with an adaptive threshold (Bellec et al. 2018's ALIF, in snnTorch's reset-delay form).

    b[t] = ρ b[t−1] + (1 − ρ) R[t];  A[t] = θ + γ b[t];  U[t] = β U[t−1] + I[t] − R[t] A[t−1] (subtract; zero:
    β (1 − R[t]) U[t−1] + I[t]);  S[t] = H(U[t] − A[t]);  R[t] = H(U[t−1] − A[t−1]) detached, so b carries no
    gradient. ρ = ``adapt_decay``, γ = ``adapt_strength``. Returns (spk, mem); the adaptation is ``self.b``.
    """

    state_names = ("mem", "b")

    def __init__(self, beta, adapt_decay: float = 0.95, adapt_strength: float = 1.8, threshold=1.0,
                 spike_grad: Callable | None = None, init_hidden: bool = False, learn_beta: bool = False,
                 learn_threshold: bool = False, reset_mechanism: str = "subtract", output: bool = False) -> None:
        super().__init__(beta, threshold, spike_grad, False, init_hidden, learn_beta, learn_threshold,
                         reset_mechanism, output)
        if not 0 <= adapt_decay <= 1:
            raise ValueError(f"AdaptiveLeaky: adapt_decay must be in [0, 1], got {adapt_decay}")
        if adapt_strength < 0:
            raise ValueError(f"AdaptiveLeaky: adapt_strength must be >= 0, got {adapt_strength}")
        self.adapt_decay, self.adapt_strength = float(adapt_decay), float(adapt_strength)

    def forward(self, input_: Tensor, mem=None, b=None):
        mem = self._state("mem", mem, input_)
        b = self._state("b", b, input_).detach()
        old_thr = self.threshold + b * self.adapt_strength
        reset = None
        if mem.ndim:
            with no_grad():
                reset = self.spike_grad(Tensor._make(mem.data - old_thr.data, None)).data
        beta = self._clamped("beta")
        if reset is not None and self.reset_mechanism == "zero":
            mem = mem * (1 - reset)
        new = beta * mem + input_
        if reset is not None and self.reset_mechanism == "subtract":
            new = new - old_thr * reset
        b = b * self.adapt_decay + (0 if reset is None else reset * (1 - self.adapt_decay))
        spk = self.spike_grad(new - (self.threshold + b * self.adapt_strength))
        if self.monitor is not None:
            self.monitor.spikes(self, spk)
        self.mem, self.b = new, b
        return self._out(spk, new)


class Synaptic(SpikingNeuron):
    """Second-order LIF with a synaptic current (snnTorch ``Synaptic``).

    I_syn[t] = α I_syn[t−1] + I[t];  U[t] = β U[t−1] + I_syn[t] − R[t] θ (subtract) or (β U[t−1] + I_syn[t])(1 − R[t])
    (zero; the current is not reset). Returns (spk, syn, mem). NOTE: snnTorch 0.9's ``forward(x, syn, mem)``
    assigns the passed ``mem`` to ``syn``; nerve follows the documented equations.
    """

    state_names = ("syn", "mem")

    def __init__(self, alpha, beta, threshold=1.0, spike_grad: Callable | None = None,
                 surrogate_disable: bool = False, init_hidden: bool = False, learn_alpha: bool = False,
                 learn_beta: bool = False, learn_threshold: bool = False, reset_mechanism: str = "subtract",
                 output: bool = False, reset_delay: bool = True) -> None:
        super().__init__(threshold, spike_grad, surrogate_disable, init_hidden, learn_threshold, reset_mechanism,
                         output, 1.0, reset_delay)
        self._decay("alpha", alpha, learn_alpha)
        self._decay("beta", beta, learn_beta)

    def forward(self, input_: Tensor, syn=None, mem=None):
        syn = self._state("syn", syn, input_)
        mem = self._state("mem", mem, input_)
        reset = self.mem_reset(mem)
        syn = self._clamped("alpha") * syn + input_
        new = self._clamped("beta") * mem + syn
        if reset is not None and self.reset_mechanism == "subtract":
            new = new - self.threshold * reset
        elif reset is not None and self.reset_mechanism == "zero":
            new = new * (1 - reset)
        spk = self.fire(new)
        if not self.reset_delay:
            new = self._late_reset(new, spk, reset)
        self.syn, self.mem = syn, new
        return self._out(spk, syn, new)

    def init_synaptic(self) -> tuple:
        """snnTorch's habit: reset and return zero (syn, mem)."""
        self.reset_mem()
        zero = Tensor._make(xp.zeros((), dtype=self.threshold.dtype), None)
        return zero, zero


class Alpha(SpikingNeuron):
    """Alpha-function neuron (snnTorch ``Alpha``, as its code computes it; needs α > β, β < 1).

    I_exc[t] = α I_exc[t−1] + I[t];  I_inh[t] = β I_inh[t−1] − I[t];  τ = ln α / (ln β − ln α) + 1;
    U[t] = τ (I_exc[t] + I_inh[t]). Reset ``zero`` (the default): all three times (1 − R[t]); ``subtract``:
    I_exc −= θ R, I_inh −= I_inh[t] R, U += I_inh[t−1] R. Returns (spk, syn_exc, syn_inh, mem).
    """

    state_names = ("syn_exc", "syn_inh", "mem")
    default_reset = "zero"

    def __init__(self, alpha, beta, threshold=1.0, spike_grad: Callable | None = None,
                 surrogate_disable: bool = False, init_hidden: bool = False, learn_alpha: bool = False,
                 learn_beta: bool = False, learn_threshold: bool = False, reset_mechanism: str = "zero",
                 output: bool = False) -> None:
        super().__init__(threshold, spike_grad, surrogate_disable, init_hidden, learn_threshold, reset_mechanism,
                         output)
        self._decay("alpha", alpha, learn_alpha)
        self._decay("beta", beta, learn_beta)
        if (self.alpha.data <= self.beta.data).any() or (self.beta.data >= 1).any():
            raise ValueError(f"Alpha: needs alpha > beta and beta < 1, got alpha={self.alpha.data.tolist()}, "
                             f"beta={self.beta.data.tolist()}")

    def forward(self, input_: Tensor, syn_exc=None, syn_inh=None, mem=None):
        exc = self._state("syn_exc", syn_exc, input_)
        inh_old = self._state("syn_inh", syn_inh, input_)
        mem = self._state("mem", mem, input_)
        reset = self.mem_reset(mem)
        a, b = self._clamped("alpha"), self._clamped("beta")
        exc = a * exc + input_
        inh = b * inh_old - input_
        tau = ops.log(a) / (ops.log(b) - ops.log(a)) + 1
        new = tau * (exc + inh)
        if reset is not None and self.reset_mechanism == "zero":
            exc, inh, new = exc * (1 - reset), inh * (1 - reset), new * (1 - reset)
        elif reset is not None and self.reset_mechanism == "subtract":
            exc, inh, new = exc - self.threshold * reset, inh * (1 - reset), new + inh_old * reset
        spk = self.fire(new)
        self.syn_exc, self.syn_inh, self.mem = exc, inh, new
        return self._out(spk, exc, inh, new)


class RLeaky(Leaky):
    """Recurrent LIF (snnTorch ``RLeaky``): U[t] = β U[t−1] + I[t] + V(S[t−1]) − R[t] θ, S[−1] = 0 (so a
    recurrent Linear adds its bias from the first step, as in snnTorch).

    V is a Linear(n, n) (``linear_features=n``), a same-padded Conv2d (``conv2d_channels``, ``kernel_size``),
    or with ``all_to_all=False`` an elementwise weight ``V``; learnable unless ``learn_recurrent=False``.
    The zero reset zeros the whole update as snnTorch's RLeaky does. Returns (spk, mem).
    """

    state_names = ("spk", "mem")

    def __init__(self, beta, V=1.0, all_to_all: bool = True, linear_features: int | None = None,
                 conv2d_channels: int | None = None, kernel_size: int | None = None, threshold=1.0,
                 spike_grad: Callable | None = None, surrogate_disable: bool = False, init_hidden: bool = False,
                 learn_beta: bool = False, learn_threshold: bool = False, learn_recurrent: bool = True,
                 reset_mechanism: str = "subtract", output: bool = False, reset_delay: bool = True) -> None:
        super().__init__(beta, threshold, spike_grad, surrogate_disable, init_hidden, learn_beta, learn_threshold,
                         reset_mechanism, output, 1.0, reset_delay)
        if all_to_all:
            if linear_features and (conv2d_channels or kernel_size):
                raise ValueError("RLeaky: give linear_features or (conv2d_channels, kernel_size), not both")
            if linear_features:
                self.recurrent = Linear(linear_features, linear_features)
            elif conv2d_channels and kernel_size:
                self.recurrent = Conv2d(conv2d_channels, conv2d_channels, kernel_size, padding=kernel_size // 2)
            else:
                raise ValueError("RLeaky: all_to_all=True needs linear_features, or conv2d_channels and kernel_size")
            if not learn_recurrent:
                self.recurrent.requires_grad_(False)
        else:
            if linear_features or conv2d_channels or kernel_size:
                raise ValueError("RLeaky: all_to_all=False takes the elementwise weight V, not layer sizes")
            self._register("V", V, learn_recurrent)
            self.recurrent = None

    def _update(self, input_: Tensor, mem: Tensor, reset) -> Tensor:
        spk = self.spk if self.spk is not None and self.spk.ndim else Tensor._make(xp.zeros_like(input_.data), None)
        new = self._clamped("beta") * mem + input_ + (self.recurrent(spk) if self.recurrent is not None
                                                        else spk * self.V)
        if reset is None:
            return new
        if self.reset_mechanism == "subtract":
            return new - self.threshold * reset
        return new * (1 - reset) if self.reset_mechanism == "zero" else new

    def forward(self, input_: Tensor, spk=None, mem=None):
        if spk is not None:
            self.spk = self._state("spk", spk, input_)
        elif self.spk is not None:
            self._state("spk", None, input_)
        out = super().forward(input_, mem)
        self.spk = out if isinstance(out, Tensor) else out[0]
        return out
