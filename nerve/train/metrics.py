"""Metrics: accuracy, top-k accuracy, macro precision/recall/F1, confusion matrix, MAE, MSE, R2.

Every function takes ``(y_pred, y_true)`` in that order, like the losses (scikit-learn's order is the
reverse). ``y_pred`` may be class scores (N, C) (the arg-max is the predicted class), binary scores of
shape (N,) or (N, 1) (thresholded at ``threshold``: 0.5 for probabilities, pass 0.0 for logits) or
integer labels. ``y_true`` may be labels or one-hot rows. The ``Metric`` classes accumulate the same
quantities batch by batch, which is how ``fit`` reports them over an epoch.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from nerve import backend
from nerve.backend import xp
from nerve.tensor import Tensor

__all__ = [
    "accuracy", "top_k_accuracy", "confusion_matrix", "precision", "recall", "f1_score", "mae", "mse",
    "r2_score", "Metric", "Accuracy", "TopKAccuracy", "ConfusionMatrixMetric", "Precision", "Recall", "F1",
    "MeanAbsoluteError", "MeanSquaredError", "R2Score", "MeanMetric", "get_metric",
]


def _array(x):
    """The values of a Tensor, array or list as a host array."""
    if isinstance(x, Tensor):
        x = x.data
    return backend.to_device(x, "cpu") if hasattr(x, "__cuda_array_interface__") else xp.asarray(x)


def _pred_labels(y_pred, threshold: float):
    y_pred = _array(y_pred)
    if y_pred.dtype.kind in "iub":
        return y_pred.reshape(-1).astype(xp.int64)
    if y_pred.ndim >= 2 and y_pred.shape[-1] > 1:
        return y_pred.reshape(-1, y_pred.shape[-1]).argmax(-1)
    return (y_pred.reshape(-1) > threshold).astype(xp.int64)


def _true_labels(y_true, n: int):
    y_true = _array(y_true)
    if y_true.ndim >= 2 and y_true.shape[-1] > 1 and y_true.size == n * y_true.shape[-1]:
        return y_true.reshape(n, -1).argmax(-1)
    labels = y_true.reshape(-1)
    if labels.size != n:
        raise ValueError(f"metrics: {n} predictions but {labels.size} targets")
    if labels.dtype.kind == "f":
        labels = xp.rint(labels)
    return labels.astype(xp.int64)


def _labels(y_pred, y_true, threshold: float):
    pred = _pred_labels(y_pred, threshold)
    return pred, _true_labels(y_true, pred.size)


def _regression_pair(y_pred, y_true):
    y_pred = _array(y_pred).astype(xp.float64)
    y_true = _array(y_true).astype(xp.float64)
    if y_pred.shape != y_true.shape:
        if y_pred.size != y_true.size:
            raise ValueError(f"metrics: predictions of shape {y_pred.shape} and targets of shape "
                             f"{y_true.shape} hold different numbers of values")
        y_true = y_true.reshape(y_pred.shape)
    return y_pred, y_true


def accuracy(y_pred, y_true, threshold: float = 0.5) -> float:
    """Fraction of samples whose predicted class equals the true class."""
    pred, true = _labels(y_pred, y_true, threshold)
    return float((pred == true).mean()) if pred.size else float("nan")


def _top_k_hits(y_pred, y_true, k: int):
    scores = _array(y_pred)
    if scores.ndim != 2:
        raise ValueError(f"top_k_accuracy: expected class scores of shape (N, C), got {scores.shape}")
    true = _true_labels(y_true, scores.shape[0])
    true_score = scores[xp.arange(scores.shape[0]), true]
    # NOTE: a tie with the true class counts as a hit, the favourable reading of a tie.
    return (scores > true_score[:, None]).sum(1) < k


def top_k_accuracy(y_pred, y_true, k: int = 5) -> float:
    """Fraction of samples whose true class is among the ``k`` highest-scoring classes."""
    hits = _top_k_hits(y_pred, y_true, k)
    return float(hits.mean()) if hits.size else float("nan")


def confusion_matrix(y_pred, y_true, num_classes: int | None = None, threshold: float = 0.5):
    """Counts (C, C) with rows the true class and columns the predicted class (scikit-learn's layout)."""
    pred, true = _labels(y_pred, y_true, threshold)
    if pred.size and min(int(pred.min()), int(true.min())) < 0:
        raise ValueError("confusion_matrix: class labels must be non-negative")
    top = int(max(pred.max(), true.max())) + 1 if pred.size else 0
    c = top if num_classes is None else num_classes
    if top > c:
        raise ValueError(f"confusion_matrix: label {top - 1} is out of range for num_classes={c}")
    return xp.bincount(true * c + pred, minlength=c * c).reshape(c, c)


def _per_class(cm, kind: str):
    cm = cm.astype(xp.float64)
    tp = xp.diag(cm)
    predicted, actual = cm.sum(0), cm.sum(1)
    with xp.errstate(divide="ignore", invalid="ignore"):
        p = xp.where(predicted > 0, tp / predicted, 0.0)
        r = xp.where(actual > 0, tp / actual, 0.0)
        if kind == "precision":
            return p
        if kind == "recall":
            return r
        return xp.where(p + r > 0, 2 * p * r / (p + r), 0.0)


def _average(cm, kind: str, average: str | None):
    values = _per_class(cm, kind)
    if average is None:
        return values
    if average != "macro":
        raise ValueError(f"{kind}: average must be 'macro' or None, got {average!r}")
    present = (cm.sum(0) + cm.sum(1)) > 0  # classes seen in the targets or the predictions
    return float(values[present].mean()) if present.any() else float("nan")


def precision(y_pred, y_true, average: str | None = "macro", num_classes: int | None = None,
              threshold: float = 0.5):
    """Precision per class (``average=None``) or its unweighted mean over the classes seen ('macro')."""
    return _average(confusion_matrix(y_pred, y_true, num_classes, threshold), "precision", average)


def recall(y_pred, y_true, average: str | None = "macro", num_classes: int | None = None,
           threshold: float = 0.5):
    """Recall per class (``average=None``) or its unweighted mean over the classes seen ('macro')."""
    return _average(confusion_matrix(y_pred, y_true, num_classes, threshold), "recall", average)


def f1_score(y_pred, y_true, average: str | None = "macro", num_classes: int | None = None,
             threshold: float = 0.5):
    """F1 (harmonic mean of precision and recall) per class or macro-averaged."""
    return _average(confusion_matrix(y_pred, y_true, num_classes, threshold), "f1", average)


def mae(y_pred, y_true) -> float:
    """Mean absolute error over all values."""
    p, t = _regression_pair(y_pred, y_true)
    return float(xp.abs(p - t).mean())


def mse(y_pred, y_true) -> float:
    """Mean squared error over all values."""
    p, t = _regression_pair(y_pred, y_true)
    return float(((p - t) ** 2).mean())


def _r2_from(sse, m2):
    """R2 per output from residual and total sums of squares; constant targets give 1 (exact) or 0."""
    with xp.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - sse / m2
    return xp.where(m2 > 0, r2, xp.where(sse == 0, 1.0, 0.0))


def r2_score(y_pred, y_true) -> float:
    """Coefficient of determination, averaged uniformly over outputs (scikit-learn's default)."""
    p, t = _regression_pair(y_pred, y_true)
    p, t = p.reshape(p.shape[0], -1), t.reshape(t.shape[0], -1)
    sse = ((t - p) ** 2).sum(0)
    m2 = ((t - t.mean(0)) ** 2).sum(0)
    return float(_r2_from(sse, m2).mean())


# --- accumulating metrics for the training loop ---------------------------------------------------
class Metric:
    """A metric accumulated over batches: ``update`` each batch, ``result`` for the epoch, ``reset``."""

    name = "metric"

    def reset(self) -> None:
        """Forget every batch seen so far."""
        raise NotImplementedError

    def update(self, y_pred, y_true) -> None:
        """Add one batch of predictions and targets."""
        raise NotImplementedError

    def result(self) -> float:
        """The metric over every batch since the last reset."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """The accumulated counts, for checkpoints."""
        return {k: v for k, v in vars(self).items() if k.startswith("_")}

    def load_state_dict(self, state: dict) -> None:
        """Restore counts saved by ``state_dict``."""
        for k, v in state.items():
            setattr(self, k, xp.asarray(v) if hasattr(v, "shape") else v)


class Accuracy(Metric):
    """Running accuracy (see ``accuracy``)."""

    def __init__(self, threshold: float = 0.5, name: str = "accuracy") -> None:
        self.threshold, self.name = threshold, name
        self.reset()

    def reset(self) -> None:
        self._correct, self._total = 0, 0

    def update(self, y_pred, y_true) -> None:
        pred, true = _labels(y_pred, y_true, self.threshold)
        self._correct += int((pred == true).sum())
        self._total += int(pred.size)

    def result(self) -> float:
        return self._correct / self._total if self._total else float("nan")


class TopKAccuracy(Accuracy):
    """Running top-k accuracy (see ``top_k_accuracy``)."""

    def __init__(self, k: int = 5, name: str | None = None) -> None:
        super().__init__(name=name or f"top{k}_accuracy")
        self.k = k

    def update(self, y_pred, y_true) -> None:
        hits = _top_k_hits(y_pred, y_true, self.k)
        self._correct += int(hits.sum())
        self._total += int(hits.size)


class ConfusionMatrixMetric(Metric):
    """Running confusion matrix (grows as new classes appear); ``result`` is the matrix itself."""

    name = "confusion_matrix"

    def __init__(self, num_classes: int | None = None, threshold: float = 0.5, name: str | None = None) -> None:
        self.num_classes, self.threshold = num_classes, threshold
        if name is not None:
            self.name = name
        self.reset()

    def reset(self) -> None:
        self._cm = xp.zeros((self.num_classes or 0,) * 2, dtype=xp.int64)

    def update(self, y_pred, y_true) -> None:
        pred, true = _labels(y_pred, y_true, self.threshold)
        if not pred.size:
            return
        c = max(self._cm.shape[0], int(max(pred.max(), true.max())) + 1)
        if c > self._cm.shape[0]:
            grown = xp.zeros((c, c), dtype=xp.int64)
            grown[:self._cm.shape[0], :self._cm.shape[0]] = self._cm
            self._cm = grown
        self._cm += xp.bincount(true * c + pred, minlength=c * c).reshape(c, c)

    def result(self):
        return self._cm.copy()


class _FromConfusion(ConfusionMatrixMetric):
    kind = ""

    def result(self) -> float:
        return _average(self._cm, self.kind, "macro")


class Precision(_FromConfusion):
    """Running macro precision."""

    name, kind = "precision", "precision"


class Recall(_FromConfusion):
    """Running macro recall."""

    name, kind = "recall", "recall"


class F1(_FromConfusion):
    """Running macro F1."""

    name, kind = "f1", "f1"


class MeanAbsoluteError(Metric):
    """Running mean absolute error."""

    name = "mae"
    power = 1

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            self.name = name
        self.reset()

    def reset(self) -> None:
        self._sum, self._count = 0.0, 0

    def update(self, y_pred, y_true) -> None:
        p, t = _regression_pair(y_pred, y_true)
        self._sum += float((xp.abs(p - t) ** self.power).sum())
        self._count += int(p.size)

    def result(self) -> float:
        return self._sum / self._count if self._count else float("nan")


class MeanSquaredError(MeanAbsoluteError):
    """Running mean squared error."""

    name = "mse"
    power = 2


class R2Score(Metric):
    """Running R2 per output (streaming mean and sum of squares, Chan et al.), averaged over outputs."""

    name = "r2"

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            self.name = name
        self.reset()

    def reset(self) -> None:
        self._n, self._mean, self._m2, self._sse = 0, 0.0, 0.0, 0.0

    def update(self, y_pred, y_true) -> None:
        p, t = _regression_pair(y_pred, y_true)
        p, t = p.reshape(p.shape[0], -1), t.reshape(t.shape[0], -1)
        nb = t.shape[0]
        if not nb:
            return
        mean_b = t.mean(0)
        m2_b = ((t - mean_b) ** 2).sum(0)
        n = self._n + nb
        delta = mean_b - self._mean
        self._m2 = self._m2 + m2_b + delta ** 2 * self._n * nb / n
        self._mean = self._mean + delta * nb / n
        self._sse = self._sse + ((t - p) ** 2).sum(0)
        self._n = n

    def result(self) -> float:
        if not self._n:
            return float("nan")
        return float(_r2_from(xp.asarray(self._sse), xp.asarray(self._m2)).mean())


class MeanMetric(Metric):
    """A function ``fn(y_pred, y_true) -> float`` averaged over batches, weighted by batch size."""

    def __init__(self, fn: Callable, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.reset()

    def reset(self) -> None:
        self._sum, self._count = 0.0, 0

    def update(self, y_pred, y_true) -> None:
        value = self.fn(y_pred, y_true)
        n = len(y_true) if hasattr(y_true, "__len__") else 1
        self._sum += float(value.item() if isinstance(value, Tensor) else value) * n
        self._count += n

    def result(self) -> float:
        return self._sum / self._count if self._count else float("nan")


_NAMES: dict[str, Callable[[], Metric]] = {
    "accuracy": Accuracy, "acc": Accuracy,
    "top_k_accuracy": lambda: TopKAccuracy(5, name="top_k_accuracy"),
    "precision": Precision, "recall": Recall, "f1": F1, "f1_score": lambda: F1(name="f1_score"),
    "mae": MeanAbsoluteError, "mse": MeanSquaredError, "r2": R2Score,
}


def get_metric(spec: Any) -> Metric:
    """A fresh ``Metric`` from a name ('accuracy', 'top5', 'f1', 'mae', ...), a Metric, or a function."""
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, str):
        key = spec.lower()
        if key in _NAMES:
            metric = _NAMES[key]()
            metric.name = spec
            return metric
        match = re.fullmatch(r"top_?(\d+)(_accuracy)?", key)
        if match:
            return TopKAccuracy(int(match.group(1)), name=spec)
        raise ValueError(f"unknown metric {spec!r}: expected one of {sorted(_NAMES)}, 'top<k>', a Metric or "
                         "a function (y_pred, y_true) -> float")
    if callable(spec):
        return MeanMetric(spec)
    raise TypeError(f"a metric must be a name, a Metric or a function, got {type(spec).__name__}")
