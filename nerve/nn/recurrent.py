"""Recurrent layers with PyTorch's names, parameter shapes, gate order and initialisation.

``RNNCell``, ``LSTMCell`` and ``GRUCell`` take one step; ``RNN``, ``LSTM`` and ``GRU`` run whole sequences,
stacked (``num_layers``), optionally ``bidirectional``, with dropout between layers. Each direction of
each layer is one fused graph node (see ``nerve.ops.recurrent``), so weights copied from PyTorch by name
give the same outputs.

Variable-length batches: pass ``lengths`` (one per sequence) or a bool ``mask`` of the real steps. Padded
steps then output zeros and leave the state alone, so the real steps' outputs, and the final states
(taken at each sequence's last real step; at its first step for the reverse direction), equal those of
each sequence run alone, as with PyTorch's packed sequences.

Truncated backpropagation through time: cut a long stream into chunks and feed each chunk the previous
chunk's final state detached from its graph, ``h = h.detach()`` (``(h.detach(), c.detach())`` for an
LSTM): the state carries the memory forward while gradients stop at the chunk boundary.
"""
from __future__ import annotations

import math

from nerve import functional as F
from nerve.backend import xp
from nerve.nn import init
from nerve.nn.linear import _empty
from nerve.nn.module import Module
from nerve.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from nerve.ops import (
    cat, gru_cell, lengths_to_mask, lstm_cell, recurrent_layer, rnn_relu_cell, rnn_tanh_cell, stack,
)
from nerve.tensor import Tensor

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU"]


def _check_dtype(layer: Module, input: Tensor, weight: Tensor) -> None:
    if input.dtype != weight.dtype:
        raise TypeError(f"{layer!r}: input has dtype {input.dtype} but the weights are {weight.dtype}; "
                        "convert the input (x.astype(...)) or the model (model.to(dtype))")


# --- cells ----------------------------------------------------------------------------------------------
class _CellBase(Module):
    """The parameters of one recurrent step: weight_ih (G*H, I), weight_hh (G*H, H), bias_ih, bias_hh."""

    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool, device, dtype) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"{type(self).__name__}: input_size and hidden_size must be positive, got "
                             f"{input_size} and {hidden_size}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        g = self._gates * hidden_size
        self.weight_ih = _empty((g, input_size), device, dtype)
        self.weight_hh = _empty((g, hidden_size), device, dtype)
        if bias:
            self.bias_ih = _empty((g,), device, dtype)
            self.bias_hh = _empty((g,), device, dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _prepare(self, input: Tensor, hx):
        """Check the input, add a batch dim to unbatched input; the zero state when hx is None."""
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"{self!r}: expected input (batch, {self.input_size}) or ({self.input_size},), "
                             f"got {tuple(input.shape)}")
        _check_dtype(self, input, self.weight_ih)
        unbatched = input.ndim == 1
        if unbatched:
            input = input.unsqueeze(0)
        batch = input.shape[0]

        def state(h):
            if h is None:
                return Tensor._make(xp.zeros_like(input.data, shape=(batch, self.hidden_size)), None)
            h = h.unsqueeze(0) if unbatched else h
            if tuple(h.shape) != (batch, self.hidden_size):
                raise ValueError(f"{self!r}: expected a state of shape ({batch}, {self.hidden_size}) for input "
                                 f"{tuple(input.shape[int(unbatched):])}, got {tuple(h.shape[int(unbatched):])}")
            return h
        return input, state, unbatched

    def _weights(self) -> tuple:
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s + (", bias=False" if not self.bias else "")

    def get_config(self) -> dict:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "bias": self.bias}


class RNNCell(_CellBase):
    """One Elman step: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or ReLU with ``nonlinearity='relu'``)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """The next hidden state (batch, hidden_size), from zeros when ``hx`` is None."""
        input, state, unbatched = self._prepare(input, hx)
        step = rnn_relu_cell if self.nonlinearity == "relu" else rnn_tanh_cell
        h = step(input, state(hx), *self._weights())
        return h.squeeze(0) if unbatched else h

    def extra_repr(self) -> str:
        return super().extra_repr() + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")

    def get_config(self) -> dict:
        return {**super().get_config(), "nonlinearity": self.nonlinearity}


class LSTMCell(_CellBase):
    """One LSTM step (gate rows i, f, g, o): returns ``(h', c')``."""

    _gates = 4

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:
        """``(h', c')``, each (batch, hidden_size); the state starts at zeros when ``hx`` is None."""
        input, state, unbatched = self._prepare(input, hx)
        h0, c0 = (None, None) if hx is None else hx
        h, c = lstm_cell(input, (state(h0), state(c0)), *self._weights())
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(_CellBase):
    """One GRU step (gate rows r, z, n; n = tanh(W_in x + b_in + r (W_hn h + b_hn)))."""

    _gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """The next hidden state (batch, hidden_size), from zeros when ``hx`` is None."""
        input, state, unbatched = self._prepare(input, hx)
        h = gru_cell(input, state(hx), *self._weights())
        return h.squeeze(0) if unbatched else h


# --- sequence layers ---------------------------------------------------------------------------------------
class _RNNBase(Module):
    """A stack of recurrent layers over whole sequences; parameters ``weight_ih_l{k}[_reverse]`` etc."""

    _gates = 1

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        if input_size < 1 or hidden_size < 1 or num_layers < 1:
            raise ValueError(f"{name}: input_size, hidden_size and num_layers must be positive, got "
                             f"{input_size}, {hidden_size} and {num_layers}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        g = self._gates * hidden_size
        directions = 2 if bidirectional else 1
        self._names = []
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size * directions
            for d in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                names = [f"weight_ih{suffix}", f"weight_hh{suffix}"]
                setattr(self, names[0], _empty((g, width), device, dtype))
                setattr(self, names[1], _empty((g, hidden_size), device, dtype))
                if bias:
                    names += [f"bias_ih{suffix}", f"bias_hh{suffix}"]
                    setattr(self, names[2], _empty((g,), device, dtype))
                    setattr(self, names[3], _empty((g,), device, dtype))
                self._names.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _weights(self, index: int) -> tuple:
        """(w_ih, w_hh, b_ih, b_hh) of layer-direction ``index`` (layer * directions + direction)."""
        names = self._names[index]
        params = tuple(getattr(self, n) for n in names)
        return params if self.bias else params + (None, None)

    def flatten_parameters(self) -> None:
        """Does nothing: PyTorch compacts its cuDNN weights here; nerve's weights are always usable as they are."""

    @property
    def all_weights(self) -> list:
        """The parameters per layer and direction, in PyTorch's order."""
        return [[getattr(self, n) for n in names] for names in self._names]

    def _check_state(self, h: Tensor, what: str, batch: int, unbatched: bool) -> Tensor:
        expected = (self.num_layers * (2 if self.bidirectional else 1), batch, self.hidden_size)
        if unbatched:
            if tuple(h.shape) != expected[:1] + expected[2:]:
                raise ValueError(f"{self!r}: {what} must have shape {expected[:1] + expected[2:]} for an "
                                 f"unbatched input, got {tuple(h.shape)}")
            return h.unsqueeze(1)
        if tuple(h.shape) != expected:
            raise ValueError(f"{self!r}: {what} must have shape {expected} (num_layers * directions, batch, "
                             f"hidden_size), got {tuple(h.shape)}")
        return h

    def _mask(self, input: Tensor, lengths, mask, unbatched: bool):
        """The bool mask of real steps in the input's layout, from ``lengths`` or ``mask`` (None if all)."""
        if lengths is not None and mask is not None:
            raise ValueError(f"{self!r}: give lengths or mask, not both")
        steps_dim = 1 if self.batch_first else 0
        T, B = input.shape[steps_dim], input.shape[1 - steps_dim]
        if lengths is not None:
            lengths = lengths.data if isinstance(lengths, Tensor) else lengths
            lengths = xp.asarray(lengths).reshape(-1)
            if lengths.shape != (B,):
                raise ValueError(f"{self!r}: expected {B} lengths (one per sequence), got {lengths.shape[0]}")
            return lengths_to_mask(lengths, T, self.batch_first)
        if mask is not None:
            mask = mask.data if isinstance(mask, Tensor) else mask
            if unbatched:
                mask = mask.reshape((1, -1) if self.batch_first else (-1, 1))
        return mask

    def forward(self, input: Tensor, hx=None, lengths=None, mask=None):
        """Run the sequence: ``(output, h_n)``, or ``(output, (h_n, c_n))`` for an LSTM.

        ``input`` is (T, B, input_size), (B, T, input_size) with ``batch_first``, or (T, input_size)
        unbatched. ``output`` is (T, B, directions * hidden_size) in the same layout; the states are
        (num_layers * directions, B, hidden_size). ``lengths`` (B,) or a bool ``mask`` shaped like the
        input's first two dims mark the real steps of padded sequences. A ``PackedSequence`` input gives a
        ``PackedSequence`` output (states in the batch's original order), as in PyTorch.
        """
        if isinstance(input, PackedSequence):
            if lengths is not None or mask is not None:
                raise ValueError(f"{self!r}: a PackedSequence carries its lengths; do not pass lengths or mask")
            padded, lengths = pad_packed_sequence(input, batch_first=self.batch_first)
            output, state = self.forward(padded, hx, lengths=lengths)
            return pack_padded_sequence(output, lengths, self.batch_first,
                                        enforce_sorted=input.sorted_indices is None), state
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            layout = "(B, T" if self.batch_first else "(T, B"
            raise ValueError(f"{self!r}: expected input {layout}, {self.input_size}) or (T, {self.input_size}), "
                             f"got {tuple(input.shape)}")
        _check_dtype(self, input, self.weight_ih_l0)
        unbatched = input.ndim == 2
        if unbatched:
            input = input.unsqueeze(0 if self.batch_first else 1)
        batch = input.shape[0 if self.batch_first else 1]
        lstm = self.mode == "lstm"
        h0 = c0 = None
        if hx is not None:
            if lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise ValueError(f"{self!r}: hx must be a tuple (h_0, c_0)")
                h0, c0 = (self._check_state(s, n, batch, unbatched) for s, n in zip(hx, ("h_0", "c_0")))
            else:
                h0 = self._check_state(hx, "hx", batch, unbatched)
        mask = self._mask(input, lengths, mask, unbatched)
        directions = 2 if self.bidirectional else 1
        h_n, c_n = [], []
        x = input
        for layer in range(self.num_layers):
            outs = []
            for d in range(directions):
                index = layer * directions + d
                state = None
                if h0 is not None:
                    state = (h0[index], c0[index]) if lstm else h0[index]
                out, state = recurrent_layer(self.mode, x, *self._weights(index), hx=state, mask=mask,
                                             reverse=d == 1, batch_first=self.batch_first)
                outs.append(out)
                if lstm:
                    h_n.append(state[0])
                    c_n.append(state[1])
                else:
                    h_n.append(state)
            x = outs[0] if directions == 1 else cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout)

        def gather(states):
            s = states[0].unsqueeze(0) if len(states) == 1 else stack(states, 0)
            return s.squeeze(1) if unbatched else s
        output = x.squeeze(0 if self.batch_first else 1) if unbatched else x
        return (output, (gather(h_n), gather(c_n))) if lstm else (output, gather(h_n))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    def get_config(self) -> dict:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "bias": self.bias, "batch_first": self.batch_first, "dropout": self.dropout,
                "bidirectional": self.bidirectional}


class RNN(_RNNBase):
    """Elman RNN over sequences: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or ReLU)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(f"rnn_{nonlinearity}", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")

    def get_config(self) -> dict:
        return {**super().get_config(), "nonlinearity": self.nonlinearity}


class LSTM(_RNNBase):
    """Long short-term memory over sequences (gate rows i, f, g, o); returns ``(output, (h_n, c_n))``."""

    _gates = 4

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__("lstm", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype)


class GRU(_RNNBase):
    """Gated recurrent unit over sequences (gate rows r, z, n as in PyTorch); returns ``(output, h_n)``."""

    _gates = 3

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__("gru", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype)
