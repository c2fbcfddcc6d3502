"""``CharRNN``: a character-level language model (embedding, LSTM or GRU, linear head) that writes text."""
from __future__ import annotations

import numbers
from typing import Sequence

import numpy

from nerve import backend, nn
from nerve import functional as F
from nerve.autograd.grad_mode import no_grad
from nerve.tensor import Tensor

__all__ = ["CharRNN"]


class CharRNN(nn.Module):
    """Predicts the next character at every position: ids (B, T) -> logits (B, T, vocab_size).

    ``cell`` is 'lstm' or 'gru'; ``dropout`` acts between recurrent layers and before the head. Give the
    vocabulary's characters as ``chars`` (``CharVocab.chars``) to generate from and to text; they are
    saved in ``get_config`` with the other constructor arguments.
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 64, hidden_size: int = 256, num_layers: int = 1,
                 cell: str = "lstm", dropout: float = 0.0, chars: str | None = None) -> None:
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"CharRNN: cell must be 'lstm' or 'gru', got {cell!r}")
        if chars is not None and len(chars) != vocab_size:
            raise ValueError(f"CharRNN: {len(chars)} chars given for a vocabulary of {vocab_size}")
        self.config = {"vocab_size": vocab_size, "embedding_dim": embedding_dim, "hidden_size": hidden_size,
                       "num_layers": num_layers, "cell": cell, "dropout": dropout, "chars": chars}
        self.chars = chars
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(embedding_dim, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, input: Tensor, state=None, return_state: bool = False):
        """Next-character logits (B, T, vocab_size); with ``return_state`` also the final recurrent state,
        to pass back as ``state`` for the next chunk of a stream (detach it first: ``detach_state``)."""
        out, state = self.rnn(self.embedding(input), state)
        logits = self.head(self.dropout(out))
        return (logits, state) if return_state else logits

    @staticmethod
    def loss(logits: Tensor, target: Tensor) -> Tensor:
        """Mean cross-entropy in nats per character of logits (B, T, V) against next-character ids (B, T)."""
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))

    @staticmethod
    def detach_state(state):
        """The state cut from its graph (truncated backpropagation through time keeps values, not gradients)."""
        if isinstance(state, tuple):
            return tuple(s.detach() for s in state)
        return state.detach()

    def generate(self, prompt: str | Sequence[int], length: int, temperature: float = 1.0,
                 top_k: int | None = None, generator=None):
        """The prompt followed by ``length`` sampled characters (a str for a str prompt, else int64 ids).

        Each character is drawn from softmax(logits / temperature) restricted to the ``top_k`` most likely
        (all when None); ``temperature=0`` picks the most likely. ``generator`` is a NumPy Generator or an int
        seed (default: nerve's seeded generator). Runs in eval mode without recording a graph.
        """
        as_text = isinstance(prompt, str)
        if as_text:
            if self.chars is None:
                raise ValueError("CharRNN.generate: a text prompt needs the model's chars (CharRNN(..., chars=))")
            lookup = {c: i for i, c in enumerate(self.chars)}
            unknown = sorted(set(prompt) - set(lookup))
            if unknown:
                raise ValueError(f"CharRNN.generate: prompt characters not in the vocabulary: {unknown!r}")
            ids = [lookup[c] for c in prompt]
        else:
            ids = [int(i) for i in numpy.asarray(prompt).reshape(-1)]
        vocab = self.config["vocab_size"]
        if not ids:
            raise ValueError("CharRNN.generate: the prompt is empty; give at least one character")
        if min(ids) < 0 or max(ids) >= vocab:
            raise ValueError(f"CharRNN.generate: prompt ids must lie in [0, {vocab})")
        if length < 0 or temperature < 0 or (top_k is not None and top_k < 1):
            raise ValueError(f"CharRNN.generate: need length >= 0, temperature >= 0 and top_k >= 1, got {length}, "
                             f"{temperature} and {top_k}")
        if isinstance(generator, numbers.Integral):
            generator = numpy.random.default_rng(int(generator))
        elif generator is None:
            generator = backend.default_generator()
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                logits, state = self(Tensor(numpy.asarray([ids], dtype=numpy.int64)), return_state=True)
                for _ in range(length):
                    nxt = _sample(logits.numpy()[0, -1], temperature, top_k, generator)
                    ids.append(nxt)
                    logits, state = self(Tensor(numpy.asarray([[nxt]], dtype=numpy.int64)), state,
                                         return_state=True)
        finally:
            self.train(was_training)
        if as_text:
            return "".join(self.chars[i] for i in ids)
        return numpy.asarray(ids, dtype=numpy.int64)

    def get_config(self) -> dict:
        """Constructor arguments, saved with the weights."""
        return dict(self.config)


def _sample(logits, temperature: float, top_k: int | None, generator) -> int:
    """One id drawn from the tempered, top-k-restricted softmax of ``logits`` (argmax at temperature 0)."""
    logits = numpy.asarray(logits, dtype=numpy.float64)
    if temperature == 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k is not None and top_k < logits.size:
        cut = numpy.partition(logits, -top_k)[-top_k]
        logits = numpy.where(logits >= cut, logits, -numpy.inf)
    p = numpy.exp(logits - logits.max())
    cdf = numpy.cumsum(p)
    return int(min(numpy.searchsorted(cdf, generator.random() * cdf[-1], side="right"), logits.size - 1))
