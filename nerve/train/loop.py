"""The training loop: ``fit`` (Keras habits over PyTorch objects), ``evaluate`` and ``predict``."""
from __future__ import annotations

import copy
import itertools
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterable

from nerve import backend
from nerve.autograd.grad_mode import no_grad
from nerve.backend import xp
from nerve.tensor import Tensor
from nerve.train.callbacks import Callback
from nerve.train.checkpoint import Checkpoint, load_checkpoint
from nerve.train.history import History
from nerve.train.metrics import Metric, get_metric
from nerve.train.progress import ProgressBar

__all__ = ["fit", "evaluate", "predict", "Trainer"]

_LOSS_NAMES = {
    "cross_entropy": "cross_entropy", "mse": "mse_loss", "mse_loss": "mse_loss", "l1": "l1_loss",
    "mae": "l1_loss", "l1_loss": "l1_loss", "huber": "huber_loss", "huber_loss": "huber_loss",
    "smooth_l1": "smooth_l1_loss", "smooth_l1_loss": "smooth_l1_loss", "nll": "nll_loss",
    "nll_loss": "nll_loss", "bce": "binary_cross_entropy", "binary_cross_entropy": "binary_cross_entropy",
    "bce_with_logits": "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits": "binary_cross_entropy_with_logits", "kl_div": "kl_div",
}


def _writers() -> tuple:
    from nerve.train.callbacks import CSVLogger, ModelCheckpoint
    from nerve.train.tensorboard import TensorBoard
    return ProgressBar, CSVLogger, ModelCheckpoint, TensorBoard


def _resolve_loss(loss: Any) -> Callable | None:
    if loss is None or callable(loss):
        return loss
    if isinstance(loss, str) and loss in _LOSS_NAMES:
        import nerve.functional as F
        return getattr(F, _LOSS_NAMES[loss])
    raise ValueError(f"unknown loss {loss!r}: pass a callable (output, target) -> Tensor or one of "
                     f"{sorted(_LOSS_NAMES)}")


# --- data ----------------------------------------------------------------------------------------------
def _check_arrays(arrays: list, who: str, what: str) -> None:
    names = ["X", "y"] if len(arrays) == 2 else [f"array {i}" for i in range(len(arrays))]
    lengths = []
    for name, a in zip(names, arrays):
        if getattr(a, "ndim", 1) == 0:
            raise ValueError(f"{who}: {what} {name} is a scalar; expected one row per sample")
        lengths.append(len(a))
    if len(set(lengths)) > 1:
        raise ValueError(f"{who}: {what} " + " but ".join(f"{n} has {k} samples" for n, k in zip(names, lengths)))
    if lengths and lengths[0] == 0:
        raise ValueError(f"{who}: {what} is empty (0 samples)")
    for name, a in zip(names, arrays):
        data = a.data if isinstance(a, Tensor) else xp.asarray(a)
        if data.dtype.kind in "fc":
            bad = ~xp.isfinite(data)
            if bad.any():
                where = [int(i) for i in xp.argwhere(bad)[0]]
                raise ValueError(f"{who}: {what} {name} holds {int(bad.sum())} NaN or infinite values, the "
                                 f"first at index {tuple(where)}")


def _to_dataset(data: Any, who: str, what: str):
    """A Dataset for arrays, tuples of arrays and Datasets; None for a loader (anything else iterable)."""
    from nerve.data import DataLoader, Dataset, TensorDataset

    if isinstance(data, DataLoader):
        return None
    if isinstance(data, Dataset):
        if len(data) == 0:
            raise ValueError(f"{who}: {what} is empty (0 samples)")
        return data
    if isinstance(data, (tuple, list)):
        _check_arrays(list(data), who, what)
        return TensorDataset(*data)
    if isinstance(data, Tensor) or hasattr(data, "shape"):
        _check_arrays([data], who, what)
        return TensorDataset(data)
    if hasattr(data, "__iter__"):
        return None
    raise TypeError(f"{who}: {what} must be (X, y) arrays or Tensors, a Dataset or a DataLoader, got "
                    f"{type(data).__name__}")


def _loader(data: Any, batch_size: int, shuffle: bool, who: str, what: str):
    from nerve.data import DataLoader

    dataset = _to_dataset(data, who, what)
    if dataset is None:
        return data
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)


def _split_validation(data: Any, split: float, who: str):
    """Hold out the last ``split`` fraction of the samples (before shuffling), as Keras does."""
    from nerve.data import Subset

    if not 0.0 < split < 1.0:
        raise ValueError(f"{who}: validation_split must be in (0, 1), got {split}")
    dataset = _to_dataset(data, who, "the training data")
    if dataset is None:
        raise ValueError(f"{who}: validation_split needs arrays or a Dataset; with a DataLoader pass "
                         "validation_data=")
    n = len(dataset)
    cut = int(n * (1.0 - split))
    if cut == 0 or cut == n:
        raise ValueError(f"{who}: validation_split={split} of {n} samples leaves {cut} for training and "
                         f"{n - cut} for validation; both need at least one")
    return Subset(dataset, range(cut)), Subset(dataset, range(cut, n))


def _split_batch(batch: Any, who: str) -> tuple[tuple, Any]:
    """(inputs, target): the last field of a tuple batch is the target; a lone tensor has none."""
    if isinstance(batch, (tuple, list)):
        if len(batch) == 1:
            return (batch[0],), None
        return tuple(batch[:-1]), batch[-1]
    if isinstance(batch, dict):
        raise TypeError(f"{who}: batches are dicts (keys {list(batch)}); pass train_step= to say how to use "
                        "them")
    return (batch,), None


def _batch_len(batch: Any) -> int:
    first = batch
    while isinstance(first, (tuple, list)) and first:
        first = first[0]
    if isinstance(first, dict) and first:
        first = next(iter(first.values()))
    return len(first) if hasattr(first, "__len__") else 1


def _scalar(value: Any) -> float:
    if isinstance(value, Tensor):
        return float(value.item())
    return float(value)


def _steps(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


# --- accumulating an epoch's logs ----------------------------------------------------------------------
class _Running:
    """Batch-size-weighted means of the step's logs and the metrics' running values, for one epoch."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        for m in self.metrics:
            m.reset()

    def update(self, logs: dict, n: int, output: Any, target: Any) -> None:
        for key, value in logs.items():
            self.sums[key] = self.sums.get(key, 0.0) + value * n
            self.counts[key] = self.counts.get(key, 0) + n
        if output is not None and target is not None:
            for m in self.metrics:
                m.update(output, target)

    def result(self) -> dict:
        out = {k: self.sums[k] / self.counts[k] for k in self.sums}
        for m in self.metrics:
            out[m.name] = float(m.result())
        return out

    def state_dict(self) -> dict:
        return {"sums": dict(self.sums), "counts": dict(self.counts),
                "metrics": [m.state_dict() for m in self.metrics]}

    def load_state_dict(self, state: dict) -> None:
        self.sums, self.counts = dict(state["sums"]), dict(state["counts"])
        for m, s in zip(self.metrics, state["metrics"]):
            m.load_state_dict(s)


def _fresh_metrics(specs: Iterable) -> list[Metric]:
    metrics = []
    for spec in specs:
        m = get_metric(spec)
        if m is spec:  # a Metric instance given by the user: each loop keeps its own copy
            m = copy.deepcopy(spec)
        metrics.append(m)
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise ValueError(f"metrics have repeated names: {names}")
    return metrics


def _modes(model) -> list:
    """Each module's training flag, to put back after an eval pass (parents first, as ``modules`` lists)."""
    modules = model.modules() if callable(getattr(model, "modules", None)) else [model]
    return [(m, m.training) for m in modules]


def _restore_modes(modes: list) -> None:
    for module, training in modes:
        module.train(training)


def _run_eval(model, loader, loss_fn: Callable | None, metrics: list[Metric], who: str) -> dict:
    """Loss and metrics over a loader, in eval mode without recording the graph."""
    running = _Running(metrics)
    with no_grad():
        for batch in loader:
            inputs, target = _split_batch(batch, who)
            output = model(*inputs)
            logs = {}
            if loss_fn is not None:
                loss = loss_fn(output, target) if target is not None else loss_fn(output)
                logs["loss"] = _scalar(loss)
            running.update(logs, _batch_len(batch), output, target)
    return running.result()


class DeferredInterrupt:
    """Turn Ctrl-C into a flag checked between steps (``unit``: what one step is called in the message), so a
    checkpoint sees a whole optimiser step.

    A second Ctrl-C raises at once. Installed only in the main thread over Python's default handler.
    """

    def __init__(self, unit: str = "batch") -> None:
        self.unit = unit

    def __enter__(self) -> "DeferredInterrupt":
        self.pending = False
        self._previous = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame) -> None:
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True
        print(f"\nInterrupted: stopping after this {self.unit} (Ctrl-C again to stop at once)", file=sys.stderr,
              flush=True)

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _optim_state(optimizer: Any) -> Any:
    if optimizer is None:
        return None
    if isinstance(optimizer, (list, tuple)):
        return [_optim_state(o) for o in optimizer]
    if isinstance(optimizer, dict):
        return {k: _optim_state(o) for k, o in optimizer.items()}
    return optimizer.state_dict()


def _load_optim_state(optimizer: Any, state: Any) -> None:
    if optimizer is None:
        return
    if isinstance(optimizer, (list, tuple)):
        for o, s in zip(optimizer, state):
            _load_optim_state(o, s)
    elif isinstance(optimizer, dict):
        for k, o in optimizer.items():
            _load_optim_state(o, state[k])
    else:
        optimizer.load_state_dict(state)


class Trainer:
    """The state of one ``fit`` run, as callbacks see it (``callback.trainer``).

    ``model``, ``optimizer``, ``epoch`` (0-based), ``batch`` (0-based within the epoch), ``global_step``
    (training batches done), ``history``, ``params``, ``resumed``; ``stop(reason)`` ends training after
    the current batch's or epoch's callbacks.
    """

    def __init__(self, model, optimizer, loss_fn, train_step, train_loader, val_loader, metrics, val_metrics,
                 callbacks: list[Callback], params: dict, checkpoint: Checkpoint | None, rule=None) -> None:
        self.model, self.optimizer, self.loss_fn, self.train_step = model, optimizer, loss_fn, train_step
        self.rule = rule
        self.train_loader, self.val_loader = train_loader, val_loader
        self.running = _Running(metrics)
        self.val_metrics = val_metrics
        self.history = History()
        self.callbacks = [*callbacks, self.history]
        self.params, self.checkpoint = params, checkpoint
        self.epoch = self.batch = self.global_step = 0
        self.stop_training, self.stop_reason, self.resumed = False, None, False
        self._skip = 0  # batches to skip when resuming a loader that cannot restore its position
        self.reduce_logs: Callable | None = None  # (logs, samples) -> logs averaged over ranks (distributed)

    def stop(self, reason: str | None = None) -> None:
        """Ask the loop to stop after the current callbacks; the first reason given is kept."""
        self.stop_training = True
        if reason and self.stop_reason is None:
            self.stop_reason = reason

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    # --- checkpoints ------------------------------------------------------------------------------
    def _callback_keys(self) -> list[tuple[str, Callback]]:
        seen: dict[str, int] = {}
        keys = []
        for cb in self.callbacks[:-1]:
            name = type(cb).__name__
            seen[name] = seen.get(name, -1) + 1
            keys.append((f"{name}{'#' + str(seen[name]) if seen[name] else ''}", cb))
        return keys

    def state_dict(self, epoch: int, batch: int) -> dict:
        """The full training state at position (``epoch``, ``batch`` batches done in it)."""
        loader_state = getattr(self.train_loader, "state_dict", None)
        return {
            "format": "nerve.train checkpoint", "version": 1,
            "epoch": epoch, "batch": batch, "global_step": self.global_step,
            "model": self.model.state_dict(),
            "optimizer": _optim_state(self.optimizer),
            "loader": loader_state() if callable(loader_state) else None,
            "running": self.running.state_dict() if batch else None,
            "history": self.history.state_dict(),
            "callbacks": {key: cb.state_dict() for key, cb in self._callback_keys()},
            "stop_training": self.stop_training, "stop_reason": self.stop_reason,
            "rule": self.rule.state_dict() if self.rule is not None else None,
            "rng": backend.get_rng_state(),
        }

    def load_state_dict(self, state: dict) -> tuple[int, int]:
        """Restore a checkpoint's state; returns the (epoch, batch) to continue from."""
        loader = state["loader"]
        saved_distributed = isinstance(loader, dict) and loader.get("kind") == "DistributedLoader"
        if saved_distributed != (self.reduce_logs is not None):
            raise ValueError(f"fit: the checkpoint was written by fit(distributed={saved_distributed}); resume it "
                             f"with distributed={saved_distributed}" + (" (under mpiexec, on any number of ranks)"
                                                                        if saved_distributed else ""))
        self.model.load_state_dict(state["model"])
        _load_optim_state(self.optimizer, state["optimizer"])
        self.history.load_state_dict(state["history"])
        saved = state["callbacks"]
        for key, cb in self._callback_keys():
            if key in saved:
                cb.load_state_dict(saved[key])
        if state["loader"] is not None and callable(getattr(self.train_loader, "load_state_dict", None)):
            self.train_loader.load_state_dict(state["loader"])
        elif state["batch"]:
            self._skip = state["batch"]
        if state["running"] is not None:
            self.running.load_state_dict(state["running"])
        self.global_step = state["global_step"]
        if self.rule is not None and state.get("rule") is not None:
            self.rule.load_state_dict(state["rule"])
        self.stop_training, self.stop_reason = state["stop_training"], state["stop_reason"]
        self.resumed = True
        backend.set_rng_state(state["rng"])  # NOTE: last, so that nothing above draws from it
        return state["epoch"], state["batch"]

    def _save(self, epoch: int, batch: int) -> None:
        self.checkpoint.save(self.state_dict(epoch, batch))

    # --- the loop -----------------------------------------------------------------------------------
    def _logs_of_step(self, batch: Any) -> tuple[dict, Any, Any]:
        if self.rule is not None:
            inputs, target = _split_batch(batch, "fit")
            logs, output = self.rule.train_step(self.model, inputs, target, self.optimizer, self.loss_fn)
            return {k: _scalar(v) for k, v in logs.items()}, output, target
        if self.train_step is None:
            inputs, target = _split_batch(batch, "fit")
            self.optimizer.zero_grad()
            output = self.model(*inputs)
            loss = self.loss_fn(output, target) if target is not None else self.loss_fn(output)
            loss.backward()
            self.optimizer.step()
            return {"loss": _scalar(loss)}, output, target
        result = self.train_step(self.model, batch, self.optimizer)
        if not isinstance(result, dict):
            raise TypeError(f"fit: train_step must return a dict of logs, got {type(result).__name__}")
        result = dict(result)
        output, target = result.pop("output", None), result.pop("target", None)
        return {k: _scalar(v) for k, v in result.items()}, output, target

    def _batches(self, first: int):
        skip, self._skip = self._skip, 0
        batches = iter(self.train_loader)
        return enumerate(itertools.islice(batches, skip, None) if skip else batches, start=first)

    def _current_lr(self) -> float | None:
        groups = getattr(self.optimizer, "param_groups", None)
        return float(groups[0]["lr"]) if groups else None

    def _epoch_logs(self, lr: float | None) -> dict:
        logs = self.running.result()
        if self.reduce_logs is not None:
            logs = self.reduce_logs(logs, max(self.running.counts.values(), default=1))
        if lr is not None:
            logs["lr"] = lr  # the rate the epoch's last batch used
        if self.val_loader is not None and (self.loss_fn is not None or self.val_metrics):
            modes = _modes(self.model)
            self.model.eval()
            try:
                val = _run_eval(self.model, self.val_loader, self.loss_fn, self.val_metrics, "fit")
            finally:
                _restore_modes(modes)
            if self.reduce_logs is not None:
                val = self.reduce_logs(val, len(self.val_loader.dataset))
            logs.update({f"val_{k}": v for k, v in val.items()})
        return logs

    def run(self, epochs: int, resume_state: dict | None) -> History:
        """Train from the start or from ``resume_state`` up to ``epochs``; returns the History."""
        initial_modes = _modes(self.model)
        logs: dict = {}
        steps = self.params["steps"]
        ckpt = self.checkpoint
        with DeferredInterrupt() as interrupt:
            try:
                start_epoch, start_batch = self.load_state_dict(resume_state) if resume_state else (0, 0)
                for cb in self.callbacks:
                    cb.set_trainer(self)
                self._call("on_train_begin", {})
                for epoch in range(start_epoch, epochs):
                    if self.stop_training:
                        break
                    self.epoch = epoch
                    first = start_batch if epoch == start_epoch else 0
                    if not first:
                        self.running.reset()
                    self._call("on_epoch_begin", epoch, {})
                    self.model.train()
                    deferred = False
                    lr = self._current_lr()
                    for b, batch in self._batches(first):
                        self.batch = b
                        self._call("on_batch_begin", b, {"size": _batch_len(batch)})
                        lr = self._current_lr()
                        step_logs, output, target = self._logs_of_step(batch)
                        self.running.update(step_logs, _batch_len(batch), output, target)
                        self.global_step += 1
                        self._call("on_batch_end", b, self.running.result())
                        if steps is not None and b + 1 == steps:
                            # NOTE: the epoch's end comes next; saving there keeps the loader between epochs.
                            deferred = ckpt is not None and ckpt.due_after_batch(self.global_step)
                        else:
                            if ckpt is not None and (interrupt.pending or ckpt.due_after_batch(self.global_step)):
                                self._save(epoch, b + 1)
                            if interrupt.pending:
                                raise KeyboardInterrupt
                        if self.stop_training:
                            break
                    logs = self._epoch_logs(lr)
                    self._call("on_epoch_end", epoch, logs)
                    if ckpt is not None and (deferred or interrupt.pending or ckpt.due_after_epoch(epoch)
                                             or self.stop_training):
                        self._save(epoch + 1, 0)
                    if interrupt.pending:
                        raise KeyboardInterrupt
            finally:
                try:
                    self._call("on_train_end", logs)
                finally:
                    _restore_modes(initial_modes)
        return self.history


def fit(model, data: Any, *, loss: Callable | str | None = None, optimizer: Any = None, epochs: int = 1,
        batch_size: int = 32, validation_data: Any = None, validation_split: float = 0.0,
        metrics: Iterable = (), callbacks: Iterable[Callback] = (), verbose: int = 1, shuffle: bool = True,
        train_step: Callable | None = None, scheduler: Any = None,
        checkpoint: str | os.PathLike | Checkpoint | None = None,
        resume: str | os.PathLike | bool | None = None, rule: Any = None, distributed: bool = False) -> History:
    """Train ``model`` on ``data`` for ``epochs`` and return the ``History`` of per-epoch logs.

    ``data``: (X, y) arrays or Tensors (or (X1, X2, ..., y) for several inputs), a Dataset or a DataLoader;
    the last field of each batch is the target. ``loss(output, target)``: a callable or a name
    ('cross_entropy', 'mse', 'bce_with_logits', ...). ``metrics``: names ('accuracy', 'top5', 'precision',
    'recall', 'f1', 'mae', 'mse', 'r2'), ``Metric`` objects or functions ``(y_pred, y_true) -> float``.
    Logs per epoch: 'loss', each metric, 'lr', and the same with a ``val_`` prefix on validation data
    (``validation_data``, or the last ``validation_split`` of the samples).

    ``train_step(model, batch, optimizer) -> dict`` replaces the default step (zero_grad, forward, loss,
    backward, step) for GANs or other learning rules; its returned scalars are averaged over the epoch, and
    'output'/'target' entries, if given, feed the metrics. ``optimizer`` may then be a list or dict of
    optimisers, or None. ``scheduler`` is an lr_scheduler stepped after each epoch (ReduceLROnPlateau with
    'val_loss', else 'loss'); use ``LearningRateScheduler(s, interval='batch')`` for per-batch schedules.

    ``rule`` (a ``nerve.rules`` learning rule) decides the update directions: a supervised rule (feedback
    alignment, ...) is active around the forward pass and ``backward``; an unsupervised one (Oja, ...)
    takes batches without targets and needs no ``loss``. Its buffers are part of the checkpoint.

    ``checkpoint`` (a path or a ``Checkpoint``) saves the training state every epoch (and every N batches
    if asked); ``resume`` (a checkpoint path, or True for ``checkpoint``'s path if that file exists)
    continues such a run exactly as if it had never stopped; ``distributed=True`` (under ``mpiexec``, see
    ``nerve.distributed``) trains data-parallel: ``batch_size`` per rank, gradients and logs averaged over the
    ranks, only rank 0 prints and writes, and checkpoints resume on any number of ranks. Ctrl-C finishes the
    current batch, saves a checkpoint when ``checkpoint`` is set, runs ``on_train_end`` (restoring best weights,
    closing logs) and re-raises ``KeyboardInterrupt``; a second Ctrl-C stops at once without saving.
    """
    if verbose not in (0, 1, 2):
        raise ValueError(f"fit: verbose must be 0, 1 or 2, got {verbose!r}")
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    loss_fn = _resolve_loss(loss)
    if rule is not None:
        _check_rule(rule, model, loss_fn, train_step)
    if train_step is None:
        if loss_fn is None and (rule is None or rule.supervised):
            raise ValueError("fit: pass loss= (or a train_step= that computes its own)")
        if optimizer is None or not callable(getattr(optimizer, "step", None)):
            raise ValueError(f"fit: optimizer= must be an optimizer (e.g. nerve.optim.Adam(model.parameters())), "
                             f"got {type(optimizer).__name__}")
    if validation_split and validation_data is not None:
        raise ValueError("fit: give validation_data or validation_split, not both")
    if validation_split:
        data, validation_data = _split_validation(data, validation_split, "fit")
    metrics = list(metrics)
    callbacks = list(callbacks)
    if distributed:
        from nerve.distributed import is_main
        from nerve.distributed.training import prepare
        data = _to_dataset(data, "fit", "the training data") or data  # checked as fit checks any data
        if validation_data is not None:
            validation_data = _to_dataset(validation_data, "fit", "the validation data") or validation_data
        optimizer, train_loader, val_loader = prepare(model, optimizer, data, validation_data, batch_size, shuffle)
        if not is_main():  # NOTE: only rank 0 prints and writes; the others keep the callbacks that decide
            verbose = 0
            callbacks = [cb for cb in callbacks if not isinstance(cb, _writers())]
    else:
        train_loader = _loader(data, batch_size, shuffle, "fit", "the training data")
        val_loader = (None if validation_data is None
                      else _loader(validation_data, batch_size, False, "fit", "the validation data"))
    if scheduler is not None:
        from nerve.train.callbacks import LearningRateScheduler
        callbacks.append(LearningRateScheduler(scheduler))
    if verbose and not any(isinstance(cb, ProgressBar) for cb in callbacks):
        callbacks.insert(0, ProgressBar(verbose))
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint(checkpoint)
    train_metrics = _fresh_metrics(metrics)
    params = {"epochs": epochs, "steps": _steps(train_loader), "batch_size": batch_size, "verbose": verbose,
              "metrics": [m.name for m in train_metrics]}
    trainer = Trainer(model, optimizer, loss_fn, train_step, train_loader, val_loader, train_metrics,
                      _fresh_metrics(metrics), callbacks, params, checkpoint, rule)
    resume_state = None
    if resume is True:
        if checkpoint is None:
            raise ValueError("fit: resume=True needs checkpoint= (the file to resume from)")
        resume = checkpoint.path if os.path.exists(checkpoint.path) else None
    if resume:
        resume_state = load_checkpoint(resume)
    if distributed:
        from nerve.distributed.training import average_logs
        trainer.reduce_logs = average_logs
        if not is_main():
            trainer.checkpoint = None
    return trainer.run(epochs, resume_state)


def _check_rule(rule: Any, model, loss_fn, train_step) -> None:
    from nerve.rules import Rule

    if not isinstance(rule, Rule):
        raise TypeError(f"fit: rule= must be a nerve.rules.Rule (e.g. FeedbackAlignment(model)), got "
                        f"{type(rule).__name__}")
    if rule.model is not model:
        raise ValueError(f"fit: the rule {rule!r} was built for another model than the one fit trains")
    if train_step is not None:
        raise ValueError("fit: give rule= or train_step=, not both (a rule defines the step)")
    if loss_fn is not None and not rule.supervised:
        raise ValueError(f"fit: {type(rule).__name__} is unsupervised and uses no loss; drop loss=")


def evaluate(model, data: Any, loss: Callable | str | None = None, metrics: Iterable = (),
             batch_size: int = 32) -> dict:
    """Loss and metrics of ``model`` on ``data`` (same forms as ``fit``), in eval mode without a graph."""
    loader = _loader(data, batch_size, False, "evaluate", "the data")
    modes = _modes(model)
    model.eval()
    try:
        return _run_eval(model, loader, _resolve_loss(loss), _fresh_metrics(metrics), "evaluate")
    finally:
        _restore_modes(modes)


def predict(model, x: Any, batch_size: int = 32) -> Tensor | tuple:
    """The model's outputs on ``x`` (an array/Tensor, a Dataset or a DataLoader), batched, in eval mode.

    Batches that are tuples of two or more fields are taken as (inputs..., target) and the target dropped.
    """
    loader = _loader(x, batch_size, False, "predict", "the data")
    outputs = []
    modes = _modes(model)
    model.eval()
    try:
        with no_grad():
            for batch in loader:
                inputs, _ = _split_batch(batch, "predict")
                outputs.append(model(*inputs))
    finally:
        _restore_modes(modes)
    if not outputs:
        raise ValueError("predict: the data gave no batches")
    if isinstance(outputs[0], (tuple, list)):
        return tuple(Tensor(xp.concatenate([o[i].data for o in outputs])) for i in range(len(outputs[0])))
    return Tensor(xp.concatenate([o.data for o in outputs]))
