"""Connectionist temporal classification (Graves et al. 2006): the negative log-likelihood of each target
sequence summed over all its alignments, by the forward-backward recursion in log space.

``CTCLoss`` is a fused kernel: forward runs the alpha recursion, backward the beta recursion and the
posterior of each (time, label); ``reference`` is the alpha recursion composed from primitives, which the
engine differentiates for higher orders.
"""
from __future__ import annotations

from nerve.autograd.function import Function
from nerve.backend import xp
from nerve.ops.elementwise import where
from nerve.ops.elementwise_math import logaddexp
from nerve.ops.index import index
from nerve.tensor import Tensor

__all__ = ["ctc_nll"]
METHODS: list = []

_NEG = -1e30  # "log 0" in the reference: finite, so second derivatives stay finite


def _shift(a, k: int, fill):
    """``a`` moved k places right along its last dim (arrays), ``fill`` in front."""
    out = xp.full_like(a, fill)
    out[..., k:] = a[..., :a.shape[-1] - k]
    return out


class CTCLoss(Function):
    """Per-sample CTC negative log-likelihood of (T, N, C) log-probabilities; ``ext`` are the targets with
    blanks around and between their labels, (N, 2 S + 1)."""

    uses_inputs = False

    def forward(self, lp, ext, input_lengths, target_lengths, blank, zero_infinity):
        t_max, n, _ = lp.shape
        self.ext, self.lengths, self.targets, self.zero_inf = ext, input_lengths, target_lengths, zero_infinity
        self.shape = lp.shape
        rows = xp.arange(n)[:, None]
        emit = lp[:, rows, ext]  # (T, N, L): log y of each extended label
        pos = xp.arange(ext.shape[1])
        self.valid = pos[None, :] < (2 * target_lengths + 1)[:, None]
        skip = xp.zeros(ext.shape, dtype=bool)
        skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
        self.skip, self.emit = skip, emit
        alpha = xp.full((t_max,) + ext.shape, -xp.inf, dtype=lp.dtype)
        alpha[0, :, 0] = emit[0, :, 0]
        alpha[0, :, 1] = xp.where(target_lengths > 0, emit[0, :, 1], -xp.inf)
        for t in range(1, t_max):
            a = alpha[t - 1]
            new = xp.logaddexp(xp.logaddexp(a, _shift(a, 1, -xp.inf)), xp.where(skip, _shift(a, 2, -xp.inf), -xp.inf))
            new = xp.where(self.valid, new + emit[t], -xp.inf)
            alpha[t] = xp.where((t < input_lengths)[:, None], new, a)
        self.alpha = alpha
        last = alpha[-1]
        end = 2 * target_lengths
        loglik = xp.logaddexp(last[xp.arange(n), end], xp.where(end > 0, last[xp.arange(n), end - 1], -xp.inf))
        self.loglik = loglik
        self.infinite = ~xp.isfinite(loglik)
        loss = -loglik
        return xp.where(self.infinite, 0.0, loss).astype(lp.dtype) if zero_infinity else loss

    def _beta(self):
        """beta[t, n, s]: log-probability of emitting the rest of the target from (t, s), emission at t included."""
        emit, skip, valid = self.emit, self.skip, self.valid
        t_max, n, length = emit.shape
        beta = xp.full(emit.shape, -xp.inf, dtype=emit.dtype)
        end = 2 * self.targets
        rows = xp.arange(n)
        skip_next = xp.zeros_like(skip)
        skip_next[:, :-2] = skip[:, 2:]
        for t in range(t_max - 1, -1, -1):
            init = xp.full((n, length), -xp.inf, dtype=emit.dtype)
            init[rows, end] = 0.0
            init[rows, xp.maximum(end - 1, 0)] = 0.0  # the last label, or (no label) the blank again
            if t < t_max - 1:
                b = beta[t + 1]
                nxt = xp.full_like(b, -xp.inf)
                nxt[:, :-1] = b[:, 1:]
                nxt2 = xp.full_like(b, -xp.inf)
                nxt2[:, :-2] = b[:, 2:]
                rec = xp.logaddexp(xp.logaddexp(b, nxt), xp.where(skip_next, nxt2, -xp.inf))
            else:
                rec = init
            last = (t == self.lengths - 1)[:, None]
            beta[t] = xp.where(valid, xp.where(last, init, rec) + emit[t], -xp.inf)
        return beta

    def backward(self, g, m):  # d(-log p)/d lp[t, c] = -sum over s labelled c of alpha beta / (y p)
        loglik = xp.where(self.infinite, 0.0, self.loglik)  # an impossible target has no path: weight 0 below
        posterior = self.alpha + self._beta() - self.emit - loglik[None, :, None]
        inside = (xp.arange(self.shape[0])[:, None] < self.lengths[None, :])[:, :, None]
        weight = xp.where(inside & xp.isfinite(posterior), xp.exp(xp.where(xp.isfinite(posterior), posterior, 0.0)),
                          0.0)
        weight = -weight * g[None, :, None]
        if self.zero_inf:
            weight = xp.where(self.infinite[None, :, None], 0.0, weight)
        grad = xp.zeros(self.shape, dtype=weight.dtype)
        n = self.shape[1]
        xp.add.at(grad, (slice(None), xp.arange(n)[:, None], self.ext), weight)
        return grad, None, None, None, None, None

    def reference(self, lp, ext, input_lengths, target_lengths, blank, zero_infinity):
        t_max, n, _ = lp.shape
        rows = xp.arange(n)[:, None]
        neg = Tensor(xp.full(ext.shape, _NEG, dtype=lp.dtype))
        start = xp.zeros(ext.shape, dtype=bool)
        start[:, 0] = True
        start[:, 1] = target_lengths > 0
        alpha = where(start, index(lp, (0, rows, ext)), neg)
        for t in range(1, t_max):
            stay = index(alpha, (slice(None), xp.maximum(xp.arange(ext.shape[1]) - 1, 0)))
            one = where(xp.arange(ext.shape[1]) >= 1, stay, neg)
            two = where(self.skip, index(alpha, (slice(None), xp.maximum(xp.arange(ext.shape[1]) - 2, 0))), neg)
            new = where(self.valid, logaddexp(logaddexp(alpha, one), two) + index(lp, (t, rows, ext)), neg)
            alpha = where((t < input_lengths)[:, None], new, alpha)
        end = 2 * target_lengths
        n_rows = xp.arange(n)
        loss = -logaddexp(index(alpha, (n_rows, end)), where(end > 0, index(alpha, (n_rows, xp.maximum(end - 1, 0))),
                                                             neg[:, 0]))
        return where(self.infinite, loss.detach() * 0, loss) if zero_infinity else loss


def ctc_nll(log_probs: Tensor, ext, input_lengths, target_lengths, blank: int, zero_infinity: bool) -> Tensor:
    """The primitive behind ``F.ctc_loss``: per-sample losses (N,) of (T, N, C) log-probabilities and the
    blank-extended targets ``ext`` (N, 2 S + 1), lengths as integer arrays (checked by the caller)."""
    return CTCLoss.apply(log_probs, ext, input_lengths, target_lengths, blank, zero_infinity)
