"""scikit-learn estimators over nerve networks: ``NeuralNetClassifier`` and ``NeuralNetRegressor``.

They follow scikit-learn's conventions (validated input, fitted attributes ending in ``_``, ``random_state``,
picklable), so ``Pipeline``, ``GridSearchCV``, ``cross_val_score`` and ``check_estimator`` accept them.
Training runs ``nerve.train.fit`` in float32; predictions are computed in float64 so that they do not
depend on how the rows are batched.
"""
from __future__ import annotations

import copy
import numbers
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NoReturn, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from nerve import backend, nn, optim
from nerve.data import DataLoader, TensorDataset
from nerve.models.mlp import MLP
from nerve.train import EarlyStopping, fit, predict

try:
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # scikit-learn < 1.6: the same checks were the estimator's own method
    def _validate_data(estimator: BaseEstimator, X: Any, y: Any = "no_validation", **kwargs) -> Any:
        return estimator._validate_data(X, y, **kwargs)

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]

OPTIMIZERS = {"adam": optim.Adam, "adamw": optim.AdamW, "sgd": optim.SGD, "rmsprop": optim.RMSprop,
              "adagrad": optim.Adagrad}
_PREDICT_BATCH = 4096


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Run with nerve's global generator in the state that ``seed`` gives, and put its old state back after.

    Layer initialisation and dropout draw from that generator, so this makes them follow ``random_state``
    without changing the random stream the rest of the program sees.
    """
    # NOTE: the generator is process-wide, so estimators must not be fitted in parallel threads of one process
    # (joblib's default process-based backend, as GridSearchCV(n_jobs=...) uses, is fine).
    saved = backend.get_rng_state()
    backend.set_rng_state(np.random.default_rng(seed).bit_generator.state)
    try:
        yield
    finally:
        backend.set_rng_state(saved)


class _NeuralNetBase(BaseEstimator):
    """Parameters, validation and the training loop shared by the classifier and the regressor."""

    _loss = ""
    _stratify = False

    def __init__(self, hidden_layer_sizes: Sequence[int] | int = (64,), activation: str = "relu", *,
                 module: Callable[[int, int], nn.Module] | None = None, optimizer: str | Callable = "adam",
                 lr: float = 1e-3, batch_size: int | str = 32, max_epochs: int = 100,
                 weight_decay: float = 0.0, dropout: float = 0.0, early_stopping: bool = False,
                 validation_fraction: float = 0.1, n_iter_no_change: int = 10, tol: float = 1e-4,
                 random_state: int | np.random.RandomState | None = None, verbose: int = 0) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.module = module
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose

    # --- parameters ---------------------------------------------------------------------------------
    def _fail(self, name: str, expected: str) -> NoReturn:
        raise ValueError(f"{type(self).__name__}: {name} must be {expected}, got {getattr(self, name)!r}")

    def _hidden_sizes(self) -> tuple[int, ...]:
        """``hidden_layer_sizes`` as a tuple of ints (a lone int is one hidden layer)."""
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = (sizes,)
        try:
            sizes = tuple(sizes) if not isinstance(sizes, str) else None
        except TypeError:
            sizes = None
        if sizes is None or not all(isinstance(h, numbers.Integral) and not isinstance(h, bool) and h > 0
                                    for h in sizes):
            self._fail("hidden_layer_sizes", "a positive int or a sequence of positive ints")
        return tuple(int(h) for h in sizes)

    def _check_params(self) -> None:
        def is_int(v: Any) -> bool:
            return isinstance(v, numbers.Integral) and not isinstance(v, bool)

        def is_real(v: Any) -> bool:
            return isinstance(v, numbers.Real) and not isinstance(v, bool)

        self._hidden_sizes()
        if self.module is not None and not callable(self.module):
            self._fail("module", "None or a callable (n_features, n_outputs) -> nerve.nn.Module")
        if not (callable(self.optimizer) or self.optimizer in OPTIMIZERS):
            self._fail("optimizer", f"one of {sorted(OPTIMIZERS)} or a callable (params, lr=, weight_decay=)")
        if not (is_real(self.lr) and self.lr > 0):
            self._fail("lr", "a positive number")
        if not (self.batch_size == "auto" or (is_int(self.batch_size) and self.batch_size > 0)):
            self._fail("batch_size", "a positive int or 'auto'")
        if not (is_int(self.max_epochs) and self.max_epochs > 0):
            self._fail("max_epochs", "a positive int")
        if not (is_real(self.weight_decay) and self.weight_decay >= 0):
            self._fail("weight_decay", "a number >= 0")
        if not (is_real(self.dropout) and 0 <= self.dropout < 1):
            self._fail("dropout", "a number in [0, 1)")
        if not (is_real(self.validation_fraction) and 0 < self.validation_fraction < 1):
            self._fail("validation_fraction", "a number in (0, 1)")
        if not (is_int(self.n_iter_no_change) and self.n_iter_no_change > 0):
            self._fail("n_iter_no_change", "a positive int")
        if not (is_real(self.tol) and self.tol >= 0):
            self._fail("tol", "a number >= 0")
        if self.verbose not in (0, 1, 2):
            self._fail("verbose", "0, 1 or 2")

    # --- building and training ----------------------------------------------------------------------
    def _initialize(self, n_features: int, n_outputs: int) -> None:
        """A fresh random stream, network and optimiser (``module_``, ``optimizer_``); clears ``history_``."""
        self._check_params()
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        self._rng = np.random.default_rng(seed)
        with _seeded(self._next_seed()):
            if self.module is None:
                module = MLP(n_features, self._hidden_sizes(), n_outputs, self.activation, float(self.dropout))
            else:
                module = self.module(n_features, n_outputs)
                if not isinstance(module, nn.Module):
                    raise TypeError(f"{type(self).__name__}: module(n_features, n_outputs) must return a "
                                    f"nerve.nn.Module, got {type(module).__name__}")
        make_optimizer = OPTIMIZERS[self.optimizer] if isinstance(self.optimizer, str) else self.optimizer
        self.module_ = module
        self.optimizer_ = make_optimizer(module.parameters(), lr=float(self.lr),
                                         weight_decay=float(self.weight_decay))
        self.history_: dict[str, list[float]] = {}

    def _next_seed(self) -> int:
        """A seed drawn from this estimator's own random stream."""
        return int(self._rng.integers(np.iinfo(np.int64).max))

    def _train(self, X: np.ndarray, target: np.ndarray, incremental: bool) -> None:
        """Train ``module_``, appending the epochs' logs to ``history_``.

        A full fit runs up to ``max_epochs`` with the stopping rules; an incremental one (``partial_fit``)
        runs one epoch on all the data given.
        """
        validation_data = None
        callbacks = []
        if not incremental:
            if self.early_stopping:
                X, X_val, target, target_val = train_test_split(
                    X, target, test_size=self.validation_fraction, random_state=self._next_seed() % 2**32,
                    stratify=target if self._stratify else None)
                validation_data = (X_val, target_val)
            callbacks.append(EarlyStopping(monitor="val_loss" if self.early_stopping else "loss", min_delta=self.tol,
                                           patience=self.n_iter_no_change, restore_best_weights=self.early_stopping))
        batch_size = min(200, len(X)) if self.batch_size == "auto" else min(self.batch_size, len(X))
        loader = DataLoader(TensorDataset(X, target), batch_size=batch_size, shuffle=True, generator=self._rng)
        with _seeded(self._next_seed()):
            history = fit(self.module_, loader, loss=self._loss, optimizer=self.optimizer_,
                          epochs=1 if incremental else self.max_epochs, validation_data=validation_data,
                          callbacks=callbacks, verbose=self.verbose)
        self.optimizer_.zero_grad(set_to_none=True)
        for key, values in history.history.items():
            self.history_.setdefault(key, []).extend(values)
        self.n_epochs_ = len(self.history_.get("loss", []))

    def _forward(self, X: Any) -> np.ndarray:
        """The network's outputs for ``X`` as a float64 array (computed in float64, in eval mode)."""
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False, dtype=np.float64)
        # NOTE: float32 matrix products round differently for different numbers of rows; in float64 the
        # difference is far below scikit-learn's tolerances, so a row's prediction does not depend on its batch.
        model = copy.deepcopy(self.module_).to(dtype=np.float64)
        return np.asarray(predict(model, X, batch_size=_PREDICT_BATCH).numpy(), dtype=np.float64)


class NeuralNetClassifier(ClassifierMixin, _NeuralNetBase):
    """A neural-network classifier (a ``nerve.models.MLP`` by default) trained with cross-entropy.

    ``hidden_layer_sizes``, ``activation`` and ``dropout`` shape the MLP; ``module`` replaces it with any
    callable ``(n_features, n_classes) -> nerve.nn.Module`` returning logits. ``optimizer`` is a name
    ('adam', 'adamw', 'sgd', 'rmsprop', 'adagrad') or a callable ``(params, lr=, weight_decay=)``, such as
    ``functools.partial(nerve.optim.SGD, momentum=0.9)``; ``batch_size='auto'`` is min(200, n_samples).
    Training stops after ``max_epochs``, or once the training loss (with ``early_stopping``: the loss on a
    held-out, stratified ``validation_fraction`` of the data, whose best weights are then kept) has not
    improved by ``tol`` for ``n_iter_no_change`` epochs; ``partial_fit`` always runs one epoch on all the
    data it is given. Labels may be any values (strings too).

    Fitted attributes: ``classes_``, ``n_features_in_``, ``module_`` (the trained network), ``optimizer_``,
    ``history_`` (per-epoch 'loss', 'lr' and 'val_loss' lists) and ``n_epochs_``.
    """

    _loss = "cross_entropy"
    _stratify = True

    def fit(self, X: Any, y: Any) -> "NeuralNetClassifier":
        """Train a new network on ``X`` (n_samples, n_features) and labels ``y`` (n_samples,)."""
        X, y = _validate_data(self, X, y, reset=True, dtype=np.float32)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(f"{type(self).__name__}: y has 1 class ({encoder.classes_[0]!r}); "
                             "a classifier needs at least 2 classes")
        self.classes_ = encoder.classes_
        self._initialize(X.shape[1], len(self.classes_))
        self._train(X, encoder.transform(y).astype(np.int64), incremental=False)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> "NeuralNetClassifier":
        """Train for one epoch on (``X``, ``y``), continuing from the current network if there is one.

        The first call needs ``classes``: every label that any call will see.
        """
        first = not hasattr(self, "module_")
        X, y = _validate_data(self, X, y, reset=first, dtype=np.float32)
        check_classification_targets(y)
        encoder = LabelEncoder()
        if first:
            if classes is None:
                raise ValueError(f"{type(self).__name__}.partial_fit: the first call needs classes= (all the "
                                 "labels the data will hold)")
            encoder.fit(np.asarray(classes))
            if len(encoder.classes_) < 2:
                raise ValueError(f"{type(self).__name__}.partial_fit: classes has 1 class; a classifier needs "
                                 "at least 2 classes")
            self.classes_ = encoder.classes_
            self._initialize(X.shape[1], len(self.classes_))
        else:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(f"{type(self).__name__}.partial_fit: classes={list(classes)} differs from the "
                                 f"first call's {list(self.classes_)}")
            encoder.classes_ = self.classes_
        self._train(X, encoder.transform(y).astype(np.int64), incremental=True)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``."""
        logits = self._forward(X)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample."""
        logits = self._forward(X)
        return self.classes_[np.argmax(logits, axis=1)]


class NeuralNetRegressor(RegressorMixin, _NeuralNetBase):
    """A neural-network regressor (a ``nerve.models.MLP`` by default) trained with mean squared error.

    Takes the same parameters as ``NeuralNetClassifier`` (``module`` gets ``(n_features, n_targets)``).
    ``y`` may be (n_samples,) or (n_samples, n_targets); each target is standardised for training (with
    the mean and scale of the first ``fit``/``partial_fit`` data, kept in ``y_mean_`` and ``y_scale_``) and
    predictions are mapped back, so targets of any scale train well with the default learning rate.

    Fitted attributes: those of the classifier but ``classes_``, and ``n_outputs_``, ``y_mean_``, ``y_scale_``.
    """

    _loss = "mse"

    def __sklearn_tags__(self):
        """Several targets at once are supported."""
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X: Any, y: Any) -> "NeuralNetRegressor":
        """Train a new network on ``X`` (n_samples, n_features) and targets ``y``."""
        X, y = _validate_data(self, X, y, reset=True, dtype=np.float32, multi_output=True, y_numeric=True)
        self._init_targets(y)
        self._initialize(X.shape[1], self.n_outputs_)
        self._train(X, self._scaled(y), incremental=False)
        return self

    def partial_fit(self, X: Any, y: Any) -> "NeuralNetRegressor":
        """Train for one epoch on (``X``, ``y``), continuing from the current network if there is one."""
        first = not hasattr(self, "module_")
        X, y = _validate_data(self, X, y, reset=first, dtype=np.float32, multi_output=True, y_numeric=True)
        if first:
            self._init_targets(y)
            self._initialize(X.shape[1], self.n_outputs_)
        elif (y.shape[1] if y.ndim == 2 else 1) != self.n_outputs_ or y.ndim != self._y_ndim:
            raise ValueError(f"{type(self).__name__}.partial_fit: y has shape {y.shape} but the first call's y "
                             f"had {self.n_outputs_} target(s) in {self._y_ndim} dimension(s)")
        self._train(X, self._scaled(y), incremental=True)
        return self

    def _init_targets(self, y: np.ndarray) -> None:
        """Remember the targets' shape, mean and scale (1 for a target that is constant up to rounding)."""
        y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        self._y_ndim = y.ndim
        self.n_outputs_ = y2.shape[1]
        self.y_mean_ = y2.mean(axis=0)
        scale = y2.std(axis=0)
        self.y_scale_ = np.where(scale > np.finfo(np.float32).eps * np.maximum(1.0, np.abs(self.y_mean_)),
                                 scale, 1.0)

    def _scaled(self, y: np.ndarray) -> np.ndarray:
        """The targets standardised for training, as a float32 (n_samples, n_outputs_) array."""
        y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        return ((y2 - self.y_mean_) / self.y_scale_).astype(np.float32)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shaped like the ``y`` given to ``fit``."""
        out = self._forward(X) * self.y_scale_ + self.y_mean_
        return out.ravel() if self._y_ndim == 1 else out
