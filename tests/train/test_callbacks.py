"""Callbacks: EarlyStopping, ModelCheckpoint, TerminateOnNaN, LearningRateScheduler, CSVLogger, TensorBoard."""
import glob
import math
import os

import numpy as np
import pytest

import nerve
import nerve.nn as nn
import nerve.optim as optim
from nerve.train import (
    Callback, CSVLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint, TensorBoard, TerminateOnNaN, fit,
)
from tests.helpers import blobs, mlp, read_events, state_arrays


class Scripted(Callback):
    """Puts a scripted 'score' into each epoch's logs and snapshots the weights it belongs to."""

    def __init__(self, scores, fail_at=None, error=RuntimeError):
        self.scores, self.fail_at, self.error = scores, fail_at, error
        self.snapshots = []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.fail_at:
            raise self.error("boom")

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.scores[epoch]
        self.snapshots.append(state_arrays(self.model))


def _fit(model, epochs, callbacks, **kw):
    X, y = blobs(48)
    return fit(model, (X, y), loss="cross_entropy", optimizer=optim.SGD(model.parameters(), lr=0.1),
               epochs=epochs, batch_size=16, callbacks=callbacks, verbose=0, **kw)


def _same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a)


def test_early_stopping_stops_and_restores_best_weights():
    scripted = Scripted([3.0, 1.0, 1.5, 0.95, 2.0, 0.1, 0.1])
    stop = EarlyStopping(monitor="score", patience=2, min_delta=0.1, restore_best_weights=True)
    model = mlp()
    history = _fit(model, 7, [scripted, stop])
    # epoch 3's 0.95 is not better by min_delta, so epochs 2 and 3 both wait and training stops after 3
    assert history.epoch == [0, 1, 2, 3] and history.history["score"] == [3.0, 1.0, 1.5, 0.95]
    assert stop.best_epoch == 1 and stop.stopped_epoch == 3
    assert "score did not improve for 2 epochs" in history.stop_reason
    assert _same(state_arrays(model), scripted.snapshots[1])


def test_early_stopping_mode_auto_max_and_normal_end_restores():
    scripted = Scripted([0.5, 0.9, 0.7])
    stop = EarlyStopping(monitor="val_accuracy_like", patience=5, restore_best_weights=True)
    assert stop.mode == "max"

    class Rename(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_accuracy_like"] = logs["score"]

    model = mlp()
    history = _fit(model, 3, [scripted, Rename(), stop])
    assert len(history.epoch) == 3 and history.stop_reason is None
    assert _same(state_arrays(model), scripted.snapshots[1])


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_early_stopping_restores_when_training_dies(error):
    scripted = Scripted([2.0, 1.0, 3.0, 4.0], fail_at=3, error=error)
    stop = EarlyStopping(monitor="score", patience=10, restore_best_weights=True)
    model = mlp()
    with pytest.raises(error, match="boom"):
        _fit(model, 4, [scripted, stop])
    assert _same(state_arrays(model), scripted.snapshots[1])


def test_model_checkpoint_best_only_with_template(tmp_path):
    scripted = Scripted([1.0, 2.0, 0.5, 0.7])
    saver = ModelCheckpoint(tmp_path / "w-{epoch:02d}-{score:.2f}.safetensors", monitor="score",
                            save_best_only=True)
    model = mlp()
    _fit(model, 4, [scripted, saver])
    assert sorted(os.listdir(tmp_path)) == ["w-01-1.00.safetensors", "w-03-0.50.safetensors"]
    back = nerve.load(tmp_path / "w-03-0.50.safetensors")
    assert _same({k: v.numpy() for k, v in back.items()}, scripted.snapshots[2])
    meta = nerve.io.load_metadata(tmp_path / "w-03-0.50.safetensors")
    assert meta["epoch"] == "3" and meta["score"] == "0.5" and "Sequential" in meta["nerve.config"]
    fresh = mlp()
    fresh.load_state_dict(back)
    assert _same(state_arrays(fresh), scripted.snapshots[2])


def test_model_checkpoint_crash_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.safetensors"

    class CrashOnSecondSave(Callback):
        """Makes the second save die half-way through writing its data, as a crash would."""

        def on_epoch_end(self, epoch, logs=None):
            if epoch != 1:
                return
            real_fdopen = os.fdopen

            class HalfWritten:
                def __init__(self, f):
                    self.f = f

                def write(self, b):
                    self.f.write(bytes(b)[: len(b) // 2])
                    raise OSError("simulated crash")

                def __getattr__(self, name):
                    return getattr(self.f, name)

                def __enter__(self):
                    return self

                def __exit__(self, *exc):
                    self.f.close()

            monkeypatch.setattr(os, "fdopen", lambda fd, mode: HalfWritten(real_fdopen(fd, mode)))

    scripted = Scripted([1.0, 1.0, 1.0])
    model = mlp()
    with pytest.raises(OSError, match="simulated crash"):
        _fit(model, 3, [scripted, CrashOnSecondSave(), ModelCheckpoint(path, monitor="score")])
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["last.safetensors"]  # no temporary left behind
    back = nerve.load(path)  # the first epoch's file, intact
    assert _same({k: v.numpy() for k, v in back.items()}, scripted.snapshots[0])


def test_terminate_on_nan_names_epoch_and_batch(capsys):
    calls = {"n": 0}

    def loss(output, target):
        calls["n"] += 1
        value = nn.functional.cross_entropy(output, target)
        return value * float("nan") if calls["n"] == 5 else value

    X, y = blobs(48)
    model = mlp()
    history = fit(model, (X, y), loss=loss, optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=5,
                  batch_size=16, callbacks=[TerminateOnNaN()], verbose=0)
    message = "TerminateOnNaN: loss became nan at epoch 2, batch 2; training stopped"
    assert message in capsys.readouterr().out
    assert history.stop_reason == message and len(history.epoch) == 2 and math.isnan(history.history["loss"][1])
    assert calls["n"] == 5  # stopped right after the bad batch


def test_learning_rate_scheduler_epoch_batch_plateau_and_function():
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=1.0)
    X, y = blobs(48)
    h = fit(model, (X, y), loss="cross_entropy", optimizer=opt, epochs=3, batch_size=16, verbose=0,
            scheduler=optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)).history
    assert h["lr"] == [1.0, 0.5, 0.25] and opt.param_groups[0]["lr"] == 0.125

    opt = optim.SGD(model.parameters(), lr=1.0)
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    h = fit(model, (X, y), loss="cross_entropy", optimizer=opt, epochs=2, batch_size=16, verbose=0,
            callbacks=[LearningRateScheduler(sched, interval="batch")]).history
    assert h["lr"] == [0.5 ** 2, 0.5 ** 5]  # the lr of each epoch's last batch (3 batches per epoch)

    opt = optim.SGD(model.parameters(), lr=1.0)
    plateau = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.1, patience=0)
    scripted = Scripted([1.0, 1.0, 0.5, 0.5])
    h = fit(model, (X, y), loss="cross_entropy", optimizer=opt, epochs=4, batch_size=16, verbose=0,
            callbacks=[scripted, LearningRateScheduler(plateau, monitor="score")]).history
    assert h["lr"] == pytest.approx([1.0, 1.0, 0.1, 0.1]) and opt.param_groups[0]["lr"] == pytest.approx(0.01)

    opt = optim.SGD(model.parameters(), lr=1.0)
    h = fit(model, (X, y), loss="cross_entropy", optimizer=opt, epochs=3, batch_size=16, verbose=0,
            callbacks=[LearningRateScheduler(lambda epoch, lr: 0.1 * (epoch + 1))]).history
    assert h["lr"] == pytest.approx([0.1, 0.2, 0.3])


def test_csv_logger_writes_and_appends(tmp_path):
    path = tmp_path / "log.csv"
    model = mlp()
    _fit(model, 2, [CSVLogger(path)], metrics=["accuracy"], validation_data=blobs(16, seed=1))
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,accuracy,lr,val_loss,val_accuracy" and len(lines) == 3
    assert lines[1].startswith("0,") and lines[2].startswith("1,")
    row = dict(zip(lines[0].split(","), lines[2].split(",")))
    assert float(row["lr"]) == 0.1
    _fit(model, 1, [CSVLogger(path, append=True)], metrics=["accuracy"], validation_data=blobs(16, seed=1))
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and lines[3].startswith("0,")
    _fit(model, 1, [CSVLogger(path)], metrics=["accuracy"], validation_data=blobs(16, seed=1))
    assert len(path.read_text().splitlines()) == 2  # without append the file starts over


def test_tensorboard_callback_writes_train_and_validation_runs(tmp_path):
    model = mlp()
    h = _fit(model, 3, [TensorBoard(tmp_path, update_freq=2)], validation_data=blobs(16, seed=1)).history
    (train,) = glob.glob(str(tmp_path / "train" / "events.out.tfevents.*"))
    (val,) = glob.glob(str(tmp_path / "validation" / "events.out.tfevents.*"))
    events = read_events(train)
    epochs = [e for e in events if "epoch_loss" in e["scalars"]]
    assert [e["step"] for e in epochs] == [0, 1, 2]
    assert [e["scalars"]["epoch_loss"] for e in epochs] == pytest.approx(h["loss"], rel=1e-6)
    assert [e["step"] for e in events if "batch_loss" in e["scalars"]] == [2, 4, 6, 8]
    val_events = [e for e in read_events(val) if e["scalars"]]
    assert [e["scalars"]["epoch_loss"] for e in val_events] == pytest.approx(h["val_loss"], rel=1e-6)
