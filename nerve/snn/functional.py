"""Spike losses, accuracy and a firing-rate regulariser, with snnTorch's ``functional`` names (imported as SF).

Losses are objects configured once and called as ``loss_fn(output, targets)``; ``output`` is a time-first
record (num_steps, batch, classes) or a TimeLoop's (spk_rec, mem_rec) tuple: spike losses read the spikes
(the first entry), membrane losses the membrane (the last). Targets are class indices (batch,).
"""
from __future__ import annotations

from nerve import ops
from nerve.backend import xp
from nerve.tensor import Tensor
from nerve.train.metrics import Metric

__all__ = ["ce_rate_loss", "ce_count_loss", "ce_max_membrane_loss", "ce_membrane_loss", "mse_count_loss",
           "mse_membrane_loss", "l1_rate_sparsity", "accuracy_rate", "SpikeAccuracy"]


def _record(output, which: int, who: str) -> Tensor:
    rec = output[which] if isinstance(output, (tuple, list)) else output
    if not isinstance(rec, Tensor) or rec.ndim != 3:
        shape = tuple(rec.shape) if hasattr(rec, "shape") else type(rec).__name__
        raise ValueError(f"SF.{who}: expected a time-first record (num_steps, batch, classes), got {shape}")
    return rec


def _labels(targets, batch: int, who: str):
    y = targets.data if isinstance(targets, Tensor) else xp.asarray(targets)
    y = y.reshape(-1).astype(xp.int64)
    if y.shape[0] != batch:
        raise ValueError(f"SF.{who}: {batch} samples in the record but {y.shape[0]} targets")
    return y


def _one_hot(y, classes: int, dtype, on: float, off: float):
    out = xp.full((y.shape[0], classes), off, dtype=dtype)
    out[xp.arange(y.shape[0]), y] = on
    return out


class _Loss:
    """Shared: the record it reads (spikes 0, membrane -1) and its name."""

    which = 0

    def __call__(self, output, targets) -> Tensor:
        name = type(self).__name__
        rec = _record(output, self.which, name)
        return self.compute(rec, _labels(targets, rec.shape[1], name))

    def __repr__(self) -> str:
        return f"SF.{type(self).__name__}()"


class ce_rate_loss(_Loss):  # noqa: N801 - snnTorch's name
    """Cross-entropy of the output spikes at each step, averaged over steps (snnTorch ``ce_rate_loss``)."""

    def compute(self, spk, y):
        T, B, C = spk.shape
        return ops.cross_entropy(ops.reshape(spk, (T * B, C)), Tensor._make(xp.tile(y, T), None))


class ce_count_loss(_Loss):  # noqa: N801
    """Cross-entropy of the spike counts summed over time (snnTorch ``ce_count_loss``)."""

    def compute(self, spk, y):
        return ops.cross_entropy(ops.sum(spk, 0), Tensor._make(y, None))


class ce_max_membrane_loss(_Loss):  # noqa: N801
    """Cross-entropy of each output's largest membrane over time (snnTorch ``ce_max_membrane_loss``)."""

    which = -1

    def compute(self, mem, y):
        return ops.cross_entropy(ops.amax(mem, 0), Tensor._make(y, None))


class ce_membrane_loss(_Loss):  # noqa: N801
    """Cross-entropy of the output membrane at every step, summed over steps (snnTorch tutorial 5's loss)."""

    which = -1

    def compute(self, mem, y):
        T, B, C = mem.shape
        return ops.cross_entropy(ops.reshape(mem, (T * B, C)), Tensor._make(xp.tile(y, T), None)) * T


class mse_count_loss(_Loss):  # noqa: N801
    """MSE between spike counts and target counts (correct_rate · T for the label, incorrect_rate · T for the
    others), divided by T (snnTorch ``mse_count_loss``)."""

    def __init__(self, correct_rate: float = 1.0, incorrect_rate: float = 0.0) -> None:
        for key, v in (("correct_rate", correct_rate), ("incorrect_rate", incorrect_rate)):
            if not 0 <= v <= 1:
                raise ValueError(f"SF.mse_count_loss: {key} must be in [0, 1], got {v}")
        self.correct_rate, self.incorrect_rate = correct_rate, incorrect_rate

    def compute(self, spk, y):
        T, B, C = spk.shape
        target = _one_hot(y, C, spk.dtype, self.correct_rate * T, self.incorrect_rate * T)
        diff = ops.sum(spk, 0) - Tensor._make(target, None)
        return ops.mean(diff * diff) * (1.0 / T)


class mse_membrane_loss(_Loss):  # noqa: N801
    """MSE of the membrane against on_target (label) / off_target (others) at each step, summed over steps."""

    which = -1

    def __init__(self, on_target: float = 1.0, off_target: float = 0.0) -> None:
        self.on_target, self.off_target = on_target, off_target

    def compute(self, mem, y):
        T, B, C = mem.shape
        diff = mem - Tensor._make(_one_hot(y, C, mem.dtype, self.on_target, self.off_target), None)
        return ops.mean(diff * diff) * T


class l1_rate_sparsity:  # noqa: N801
    """Firing-rate regulariser: Lambda · total spike count per sample (snnTorch ``reg.l1_rate_sparsity``, which
    sums over the batch too; nerve divides by the batch so the penalty does not scale with it)."""

    def __init__(self, Lambda: float = 1e-5) -> None:  # noqa: N803
        if Lambda < 0:
            raise ValueError(f"SF.l1_rate_sparsity: Lambda must be >= 0, got {Lambda}")
        self.Lambda = Lambda

    def __call__(self, spk: Tensor) -> Tensor:
        rec = spk[0] if isinstance(spk, (tuple, list)) else spk
        if rec.ndim < 2:
            raise ValueError(f"SF.l1_rate_sparsity: expected (num_steps, batch, ...) spikes, got {tuple(rec.shape)}")
        return ops.sum(rec) * (self.Lambda / rec.shape[1])


def accuracy_rate(spk_out, targets) -> float:
    """Fraction of samples whose output neuron with the most spikes (first on ties) is the label."""
    rec = _record(spk_out, 0, "accuracy_rate")
    y = _labels(targets, rec.shape[1], "accuracy_rate")
    return float((rec.data.sum(0).argmax(-1) == y).mean())


class SpikeAccuracy(Metric):
    """``fit`` metric: accuracy by spike count over a TimeLoop's output (or a time-first spike record)."""

    def __init__(self, name: str = "accuracy") -> None:
        self.name = name
        self.reset()

    def reset(self) -> None:
        self.correct, self.total = 0, 0

    def update(self, y_pred, y_true) -> None:
        rec = _record(y_pred, 0, "SpikeAccuracy")
        y = _labels(y_true, rec.shape[1], "SpikeAccuracy")
        self.correct += int((rec.data.sum(0).argmax(-1) == y).sum())
        self.total += int(y.shape[0])

    def result(self) -> float:
        return self.correct / self.total if self.total else float("nan")

    def state_dict(self) -> dict:
        return {"correct": self.correct, "total": self.total}

    def load_state_dict(self, state: dict) -> None:
        self.correct, self.total = int(state["correct"]), int(state["total"])
