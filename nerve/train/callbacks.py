"""Callbacks for ``fit``: Keras' hooks (train, epoch and batch begin/end) with the loop's state at hand.

A callback sees the running ``Trainer`` as ``self.trainer`` (``self.model`` for short) and stops training
with ``self.trainer.stop(reason)``. ``on_train_end`` runs however training ends (normal end, a stop, an
exception or Ctrl-C), so callbacks can always restore weights and close files. Callbacks that keep state
across epochs give it through ``state_dict``/``load_state_dict``, which training checkpoints store.
"""
from __future__ import annotations

import csv
import io
import math
import os
import warnings
from typing import Any

from nerve.rules.alignment import alignment

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "TerminateOnNaN", "LearningRateScheduler",
           "CSVLogger", "AlignmentLogger"]


class Callback:
    """Base class: override any of the hooks; ``logs`` maps names ('loss', 'val_loss', ...) to floats."""

    trainer = None

    @property
    def model(self):
        """The model being trained."""
        return self.trainer.model

    @property
    def params(self) -> dict:
        """The run's settings: epochs, steps (batches per epoch, None if unknown), verbose, metric names."""
        return self.trainer.params

    def set_trainer(self, trainer) -> None:
        """Attach to a run; ``fit`` calls this before ``on_train_begin``."""
        self.trainer = trainer

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Called once before the first epoch (also when resuming)."""

    def on_train_end(self, logs: dict | None = None) -> None:
        """Called once at the end, however training ended."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Called before each epoch (0-based), also before the rest of an epoch resumed mid-way."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Called after each epoch with its training and validation logs."""

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before each training batch (0-based within the epoch)."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after each training batch with the epoch's running averages so far."""

    def state_dict(self) -> dict:
        """State to keep in a training checkpoint (empty for stateless callbacks)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore the state saved by ``state_dict``; called before ``on_train_begin`` when resuming."""


_MAX_HINTS = ("acc", "f1", "precision", "recall", "r2", "auc")


def _resolve_mode(monitor: str, mode: str, who: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    return "max" if any(hint in monitor.lower() for hint in _MAX_HINTS) else "min"


def _better(mode: str, current: float, best: float, min_delta: float) -> bool:
    if math.isnan(current):
        return False
    return current < best - min_delta if mode == "min" else current > best + min_delta


def _copy_weights(model) -> dict:
    return {k: v.data.copy() for k, v in model.state_dict().items()}


def _load_weights(model, weights: dict) -> None:
    from nerve.tensor import Tensor
    model.load_state_dict({k: Tensor(v) for k, v in weights.items()})


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the model ends with the weights of its best epoch, however training ends
    (all epochs run, this stop, another callback's stop, an exception or Ctrl-C).
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 mode: str = "auto", baseline: float | None = None, restore_best_weights: bool = False,
                 start_from_epoch: int = 0, verbose: int = 0) -> None:
        self.monitor, self.patience, self.baseline = monitor, patience, baseline
        self.min_delta = abs(min_delta)
        self.mode = _resolve_mode(monitor, mode, "EarlyStopping")
        self.restore_best_weights, self.start_from_epoch, self.verbose = (restore_best_weights,
                                                                          start_from_epoch, verbose)
        self._reset()
        self._warned = False

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = None
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.best_weights = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.trainer.resumed:
            self._reset()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None:
            if not self._warned:
                warnings.warn(f"EarlyStopping: the logs have no {self.monitor!r} (they have "
                              f"{sorted(logs or {})}); it does nothing", stacklevel=2)
                self._warned = True
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = _copy_weights(self.model)
            self.best_epoch = epoch
        self.wait += 1
        if _better(self.mode, current, self.best, self.min_delta):
            self.best, self.best_epoch = float(current), epoch
            if self.restore_best_weights:
                self.best_weights = _copy_weights(self.model)
            if self.baseline is None or _better(self.mode, current, self.baseline, 0.0):
                self.wait = 0
                return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            best_at = "-" if self.best_epoch is None else self.best_epoch + 1
            self.trainer.stop(f"EarlyStopping: {self.monitor} did not improve for {self.wait} epochs "
                              f"(best {self.best:.6g} at epoch {best_at})")

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"EarlyStopping: restoring the weights of epoch {self.best_epoch + 1}")
            _load_weights(self.model, self.best_weights)

    def state_dict(self) -> dict:
        return {"wait": self.wait, "best": self.best, "best_epoch": self.best_epoch,
                "stopped_epoch": self.stopped_epoch, "best_weights": self.best_weights}

    def load_state_dict(self, state: dict) -> None:
        self.wait, self.best, self.best_epoch = state["wait"], state["best"], state["best_epoch"]
        self.stopped_epoch, self.best_weights = state["stopped_epoch"], state["best_weights"]


class ModelCheckpoint(Callback):
    """Save the model's weights (``nerve.save``, atomic) after each epoch, or only when ``monitor`` improves.

    ``filepath`` may hold ``{epoch}`` (1-based) and any log name with a format, e.g.
    ``"runs/w-{epoch:02d}-{val_loss:.3f}.safetensors"``.
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", mode: str = "auto",
                 save_best_only: bool = False, verbose: int = 0) -> None:
        self.filepath = os.fspath(filepath)
        self.monitor, self.save_best_only, self.verbose = monitor, save_best_only, verbose
        self.mode = _resolve_mode(monitor, mode, "ModelCheckpoint")
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from nerve.io import save

        logs = logs or {}
        current = logs.get(self.monitor)
        if self.save_best_only:
            if current is None:
                warnings.warn(f"ModelCheckpoint: the logs have no {self.monitor!r}; nothing saved",
                              stacklevel=2)
                return
            if not _better(self.mode, current, self.best, 0.0):
                return
            self.best = float(current)
        path = self.filepath.format(epoch=epoch + 1, **logs)
        metadata = {"epoch": epoch + 1, **({self.monitor: float(current)} if current is not None else {})}
        save(self.model, path, metadata=metadata)
        if self.verbose:
            print(f"ModelCheckpoint: saved {path}")

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]


class TerminateOnNaN(Callback):
    """Stop as soon as a batch's loss (or any logged value) is NaN or infinite, naming the epoch and batch."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        for key, value in (logs or {}).items():
            if isinstance(value, (int, float)) and not math.isfinite(value):
                message = (f"TerminateOnNaN: {key} became {value} at epoch {self.trainer.epoch + 1}, "
                           f"batch {batch + 1}; training stopped")
                print(message)
                self.trainer.stop(message)
                return


class LearningRateScheduler(Callback):
    """Step a ``nerve.optim.lr_scheduler`` scheduler each epoch or each batch (``interval``).

    ``ReduceLROnPlateau`` is stepped at epoch end with the value of ``monitor`` (falling back to 'loss'
    when there is no validation). ``schedule`` may instead be a function ``(epoch, lr) -> lr`` applied at
    the start of each epoch, as in Keras.
    """

    def __init__(self, schedule: Any, interval: str = "epoch", monitor: str = "val_loss",
                 verbose: int = 0) -> None:
        if interval not in ("epoch", "batch"):
            raise ValueError(f"LearningRateScheduler: interval must be 'epoch' or 'batch', got {interval!r}")
        self.schedule, self.interval, self.monitor, self.verbose = schedule, interval, monitor, verbose
        self.is_object = callable(getattr(schedule, "step", None))
        if not self.is_object and not callable(schedule):
            raise TypeError("LearningRateScheduler: expected an lr_scheduler object or a function "
                            f"(epoch, lr) -> lr, got {type(schedule).__name__}")
        self.plateau = self.is_object and _is_plateau(schedule)
        if self.plateau and interval == "batch":
            raise ValueError("LearningRateScheduler: ReduceLROnPlateau needs an epoch's metric; use "
                             "interval='epoch'")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.is_object:
            return
        groups = self.trainer.optimizer.param_groups
        lr = float(self.schedule(epoch, groups[0]["lr"]))
        for group in groups:
            group["lr"] = lr
        if self.verbose:
            print(f"LearningRateScheduler: epoch {epoch + 1}, lr {lr:.4g}")

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.is_object and self.interval == "batch":
            self.schedule.step()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.is_object or self.interval != "epoch":
            return
        if self.plateau:
            logs = logs or {}
            key = self.monitor if self.monitor in logs else "loss"
            if key not in logs:
                warnings.warn(f"LearningRateScheduler: no {self.monitor!r} nor 'loss' in the logs; "
                              "ReduceLROnPlateau not stepped", stacklevel=2)
                return
            self.schedule.step(logs[key])
        else:
            self.schedule.step()

    def state_dict(self) -> dict:
        return {"scheduler": self.schedule.state_dict()} if self.is_object else {}

    def load_state_dict(self, state: dict) -> None:
        if self.is_object and "scheduler" in state:
            self.schedule.load_state_dict(state["scheduler"])


def _is_plateau(scheduler) -> bool:
    try:
        from nerve.optim.lr_scheduler import ReduceLROnPlateau
    except ImportError:
        return type(scheduler).__name__ == "ReduceLROnPlateau"
    return isinstance(scheduler, ReduceLROnPlateau)


class CSVLogger(Callback):
    """Write one CSV row per epoch (epoch, then the logs' keys in order of first appearance).

    ``append=True`` adds to an existing file; a resumed run appends too, cutting any rows written after
    its checkpoint so that no epoch appears twice.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False) -> None:
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self.keys: list[str] | None = None
        self._offset: int | None = None
        self._file = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        resumed = self._offset is not None and self.trainer.resumed
        if resumed or self.append:
            self._file = open(self.filename, "a+", newline="", encoding="utf-8")
            if resumed:
                self._file.truncate(self._offset)
            self._file.seek(0, io.SEEK_END)
        else:
            self._file = open(self.filename, "w", newline="", encoding="utf-8")
            self.keys = None
        if self.keys is None and self._file.tell() > 0:  # appending: continue the existing columns
            with open(self.filename, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            self.keys = header[1:] if header else None
        self._offset = self._file.tell()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        writer = csv.writer(self._file, delimiter=self.separator, lineterminator="\n")
        if self.keys is None:
            self.keys = list(logs)
            writer.writerow(["epoch", *self.keys])
        writer.writerow([epoch, *(_csv_value(logs.get(k, "")) for k in self.keys)])
        self._file.flush()
        self._offset = self._file.tell()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def state_dict(self) -> dict:
        return {"keys": self.keys, "offset": self._offset}

    def load_state_dict(self, state: dict) -> None:
        self.keys, self._offset = state["keys"], state["offset"]


def _csv_value(value):
    return repr(float(value)) if isinstance(value, float) or hasattr(value, "dtype") else value


class AlignmentLogger(Callback):
    """Log, each epoch, how far a learning rule's updates are from backprop's (``nerve.rules.alignment``).

    Adds 'align/<layer>' (angle in degrees between the rule's weight update and the backprop gradient on the
    batch (x, y)) and, for feedback alignment, 'align_B/<layer>' (angle between B and W) to the epoch's logs,
    so History, CSVLogger and TensorBoard record them; list it before those loggers.
    """

    def __init__(self, rule, x, y, loss) -> None:
        super().__init__()
        self.rule, self.x, self.y, self.loss = rule, x, y, loss

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        for name, entry in alignment(self.rule.model, self.rule, self.x, self.y, self.loss).items():
            logs[f"align/{name}"] = entry["update"]
            if "feedback" in entry:
                logs[f"align_B/{name}"] = entry["feedback"]
