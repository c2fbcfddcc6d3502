"""fit / evaluate / predict: learning, logs, data forms, modes, custom steps and bad input."""
import io

import numpy as np
import pytest

import nerve
import nerve.nn as nn
import nerve.optim as optim
from nerve.data import DataLoader, TensorDataset
from nerve.train import Callback, ProgressBar, evaluate, fit, predict
from tests.helpers import blobs, mlp, state_arrays


def test_fit_learns_and_history_has_every_log():
    X, y = blobs()
    model = mlp()
    history = fit(model, (X, y), loss=nn.CrossEntropyLoss(), optimizer=optim.Adam(model.parameters(), lr=0.02),
                  epochs=8, batch_size=16, metrics=["accuracy"], validation_split=0.25, verbose=0)
    h = history.history
    assert list(h) == ["loss", "accuracy", "lr", "val_loss", "val_accuracy"]
    assert history.epoch == list(range(8)) and all(len(v) == 8 for v in h.values())
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert h["accuracy"][-1] >= 0.95 and h["val_accuracy"][-1] >= 0.95
    assert h["lr"] == [0.02] * 8
    assert history.stop_reason is None


def test_validation_split_holds_out_the_last_samples():
    X, y = blobs(100)
    model = mlp()
    h = fit(model, (X, y), loss="cross_entropy", optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2,
            validation_split=0.2, metrics=["accuracy", "f1"], verbose=0).history
    last = evaluate(model, (X[80:], y[80:]), loss="cross_entropy", metrics=["accuracy", "f1"])
    assert h["val_loss"][-1] == pytest.approx(last["loss"])
    assert h["val_accuracy"][-1] == last["accuracy"] and h["val_f1"][-1] == pytest.approx(last["f1"])


@pytest.mark.parametrize("form", ["arrays", "tensors", "dataset", "loader"])
def test_every_data_form_gives_the_same_run(form):
    X, y = blobs(64)
    data = {"arrays": (X, y), "tensors": (nerve.tensor(X), nerve.tensor(y)), "dataset": TensorDataset(X, y),
            "loader": DataLoader(TensorDataset(X, y), batch_size=16)}[form]
    nerve.manual_seed(0)
    model = mlp()
    h = fit(model, data, loss="cross_entropy", optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2,
            batch_size=16, shuffle=False, verbose=0).history
    nerve.manual_seed(0)
    ref = mlp()
    opt = optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(2):
        for lo in range(0, 64, 16):
            opt.zero_grad()
            nn.functional.cross_entropy(ref(nerve.tensor(X[lo:lo + 16])), nerve.tensor(y[lo:lo + 16])).backward()
            opt.step()
    for k, v in state_arrays(ref).items():
        np.testing.assert_array_equal(state_arrays(model)[k], v)
    assert len(h["loss"]) == 2


class Recorder(Callback):
    """Logs every hook call and the model's mode at that moment."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_train_end(self, logs=None):
        self.calls.append("train_end")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(f"epoch_begin {epoch}")

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(f"epoch_end {epoch} {sorted(logs)} training={self.model.training}")

    def on_batch_begin(self, batch, logs=None):
        self.calls.append(f"batch_begin {batch} training={self.model.training}")

    def on_batch_end(self, batch, logs=None):
        self.calls.append(f"batch_end {batch} {sorted(logs)} step={self.trainer.global_step}")


def test_callback_order_and_modes():
    X, y = blobs(32)
    model = mlp(dropout=0.5)
    model.eval()
    rec = Recorder()
    fit(model, (X, y), loss="cross_entropy", optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2,
        batch_size=16, validation_data=(X, y), metrics=["accuracy"], callbacks=[rec], verbose=0)
    logs = "['accuracy', 'loss', 'lr', 'val_accuracy', 'val_loss']"
    assert rec.calls == [
        "train_begin",
        "epoch_begin 0", "batch_begin 0 training=True", "batch_end 0 ['accuracy', 'loss'] step=1",
        "batch_begin 1 training=True", "batch_end 1 ['accuracy', 'loss'] step=2", f"epoch_end 0 {logs} training=True",
        "epoch_begin 1", "batch_begin 0 training=True", "batch_end 0 ['accuracy', 'loss'] step=3",
        "batch_begin 1 training=True", "batch_end 1 ['accuracy', 'loss'] step=4", f"epoch_end 1 {logs} training=True",
        "train_end",
    ]
    assert model.training is False  # the mode it had before fit


def test_evaluate_and_predict_use_eval_mode_without_a_graph():
    X, y = blobs(40)
    model = mlp(dropout=0.5)
    out = predict(model, X, batch_size=16)
    assert model.training is True and out.shape == (40, 3) and out.grad_fn is None
    model.eval()
    with nerve.no_grad():
        expected = model(nerve.tensor(X)).numpy()
    model.train()
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(predict(model, TensorDataset(X, y)).numpy(), expected, rtol=1e-6, atol=1e-6)
    result = evaluate(model, (X, y), loss=nn.CrossEntropyLoss(), metrics=["accuracy", "top2"])
    assert set(result) == {"loss", "accuracy", "top2"} and model.training is True
    assert result["loss"] == pytest.approx(
        nn.functional.cross_entropy(nerve.tensor(expected), nerve.tensor(y)).item(), rel=1e-5)


def test_custom_train_step_with_two_optimizers():
    """A train_step that alternates two optimisers over two halves of the model (GAN-style)."""
    X, y = blobs(64)
    model = mlp()
    first, second = model[0], model[2]
    opts = {"first": optim.SGD(first.parameters(), lr=0.1), "second": optim.Adam(second.parameters(), lr=0.01)}

    def step(model, batch, optimizers):
        x, target = batch
        logs = {}
        for name, opt in optimizers.items():
            opt.zero_grad()
            output = model(x)
            loss = nn.functional.cross_entropy(output, target)
            loss.backward()
            opt.step()
            logs[f"{name}_loss"] = loss
        return {**logs, "output": output, "target": target}

    h = fit(model, (X, y), optimizer=opts, train_step=step, epochs=4, batch_size=16, metrics=["accuracy"],
            validation_data=(X, y), loss="cross_entropy", verbose=0).history
    assert list(h) == ["first_loss", "second_loss", "accuracy", "val_loss", "val_accuracy"]
    assert h["second_loss"][-1] < h["first_loss"][0] and h["accuracy"][-1] > 0.9


def test_progress_bar_lines_and_terminal_bar(capsys):
    X, y = blobs(48)
    model = mlp()
    fit(model, (X, y), loss="cross_entropy", optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=3,
        batch_size=16, metrics=["accuracy"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("Epoch 1/3") and "loss" in lines[0] and "\r" not in lines[0]

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    fit(model, (X, y), loss="cross_entropy", optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=1,
        batch_size=16, callbacks=[ProgressBar(file=out, interval=0.0)])
    text = out.getvalue()
    assert "3/3 [" in text and "ETA" in text and "\r" in text and text.endswith("\n")
    assert capsys.readouterr().out == ""  # the given ProgressBar replaced the default one
    silent = fit(model, (X, y), loss="cross_entropy", optimizer=optim.SGD(model.parameters(), lr=0.1),
                 epochs=1, verbose=0)
    assert capsys.readouterr().out == "" and len(silent.epoch) == 1


def test_bad_input_errors():
    X, y = blobs(20)
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="X has 20 samples but y has 19"):
        fit(model, (X, y[:-1]), loss="cross_entropy", optimizer=opt, verbose=0)
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values, the first at index \(7, 2\)"):
        fit(model, (bad, y), loss="cross_entropy", optimizer=opt, verbose=0)
    with pytest.raises(ValueError, match="empty"):
        fit(model, (X[:0], y[:0]), loss="cross_entropy", optimizer=opt, verbose=0)
    with pytest.raises(ValueError, match="not both"):
        fit(model, (X, y), loss="cross_entropy", optimizer=opt, validation_split=0.2, validation_data=(X, y))
    with pytest.raises(ValueError, match="optimizer="):
        fit(model, (X, y), loss="cross_entropy")
    with pytest.raises(ValueError, match="unknown loss 'crossentropy'"):
        fit(model, (X, y), loss="crossentropy", optimizer=opt)
    with pytest.raises(ValueError, match="leaves 0 for training"):
        fit(model, (X[:2], y[:2]), loss="cross_entropy", optimizer=opt, validation_split=0.9)
